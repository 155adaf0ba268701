//! Names and ids: uuids from the seeded RNG, democratic-csi volume ids (plain, hashed,
//! truncated), Kubernetes-style random suffixes and RFC 3339 times.

use ktd_model::Timestamp;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// A version-4 uuid drawn from the seeded RNG (deterministic, unlike `Uuid::new_v4`).
pub fn uuid(rng: &mut ChaCha8Rng) -> String {
    let bytes: [u8; 16] = rng.random();
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// `n` lower-case hex digits.
pub fn hex(rng: &mut ChaCha8Rng, n: usize) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    (0..n)
        .map(|_| DIGITS[rng.random_range(0..16)] as char)
        .collect()
}

/// A Kubernetes generated-name suffix (`[bcdfghjklmnpqrstvwxz2456789]`, as apimachinery's
/// `rand.String` draws them).
pub fn k8s_suffix(rng: &mut ChaCha8Rng, n: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..n)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// CRC-32 (IEEE 802.3, the `crc32` idHash strategy of democratic-csi), as 8 hex digits.
pub fn crc32_hex(text: &str) -> String {
    let mut crc: u32 = 0xffff_ffff;
    for &byte in text.as_bytes() {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xedb8_8320 & mask);
        }
    }
    format!("{:08x}", !crc)
}

/// How external-provisioner and democratic-csi turned a PVC into a CSI name and a volume id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdStyle {
    /// `pvc-<uuid>` for both (the default).
    Plain,
    /// CSI name `pvc-<uuid>`, volume id = CRC-32 hex of it (`_private.csi.volume.idHash`).
    Hashed,
    /// external-provisioner `--volume-name-uuid-length=16`: `pvc-<16 hex>` for both.
    Truncated,
}

/// `(CSI name = PV name, volume id)` of a volume provisioned for the PVC with uid `pvc_uid`.
pub fn volume_names(style: IdStyle, pvc_uid: &str) -> (String, String) {
    match style {
        IdStyle::Plain => {
            let name = format!("pvc-{pvc_uid}");
            (name.clone(), name)
        }
        IdStyle::Hashed => {
            let name = format!("pvc-{pvc_uid}");
            let id = crc32_hex(&name);
            (name, id)
        }
        IdStyle::Truncated => {
            let compact: String = pvc_uid.chars().filter(|c| *c != '-').take(16).collect();
            let name = format!("pvc-{compact}");
            (name.clone(), name)
        }
    }
}

/// RFC 3339 UTC (`2026-11-22T00:00:00Z`), what Kubernetes puts in `creationTimestamp`.
pub fn rfc3339(unix_secs: i64) -> String {
    Timestamp::from_unix_secs(unix_secs).to_string()
}

/// TrueNAS periodic snapshot task name `auto-YYYY-MM-DD_HH-MM` (default naming schema
/// `auto-%Y-%m-%d_%H-%M`).
pub fn auto_snapshot_name(unix_secs: i64) -> String {
    let t = rfc3339(unix_secs); // 2026-11-22T00:00:00Z
    format!("auto-{}_{}-{}", &t[..10], &t[11..13], &t[14..16])
}

/// Human quantity for a byte count that is a whole number of GiB/MiB (`"10Gi"`).
pub fn quantity(bytes: u64) -> String {
    const GI: u64 = 1 << 30;
    const MI: u64 = 1 << 20;
    if bytes.is_multiple_of(GI) {
        format!("{}Gi", bytes / GI)
    } else if bytes.is_multiple_of(MI) {
        format!("{}Mi", bytes / MI)
    } else {
        bytes.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn crc32_matches_the_reference_check_value() {
        assert_eq!(crc32_hex("123456789"), "cbf43926");
    }

    #[test]
    fn volume_names_follow_the_provisioner_rules() {
        let uid = "0d87ad71-a644-4e81-9c1d-3f0e8d5b2a10";
        assert_eq!(
            volume_names(IdStyle::Truncated, uid).0,
            "pvc-0d87ad71a6444e81"
        );
        let (name, id) = volume_names(IdStyle::Hashed, uid);
        assert_eq!(name, format!("pvc-{uid}"));
        assert_eq!(id.len(), 8);
    }

    #[test]
    fn times_and_uuids_are_well_formed() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            auto_snapshot_name(3600 * 25 + 60 * 7),
            "auto-1970-01-02_01-07"
        );
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let u = uuid(&mut rng);
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_eq!(quantity(10 << 30), "10Gi");
    }
}
