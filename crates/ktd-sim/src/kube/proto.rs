//! Just enough Kubernetes protobuf to read a SelfSubjectAccessReview: kubectl's clientset
//! (`kubectl auth can-i`) posts it as `application/vnd.kubernetes.protobuf`.
//!
//! Wire format: the magic `k8s\0`, then a `runtime.Unknown` (1: typeMeta {1: apiVersion,
//! 2: kind}, 2: raw), where `raw` is the `SelfSubjectAccessReview` (2: spec {1:
//! resourceAttributes {1: namespace, 2: verb, 3: group, 4: version, 5: resource,
//! 6: subresource, 7: name}, 2: nonResourceAttributes {1: path, 2: verb}}). The answer
//! goes back as JSON, which client-go decodes by the response's Content-Type.

use serde_json::{Map, Value, json};

const MAGIC: &[u8] = b"k8s\0";

fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*pos)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// The length-delimited fields of one message (number, bytes); other wire types are
/// skipped. `None` if the message is malformed.
fn fields(buf: &[u8]) -> Option<Vec<(u64, &[u8])>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let (number, wire) = (key >> 3, key & 7);
        match wire {
            0 => {
                varint(buf, &mut pos)?;
            }
            1 => pos += 8,
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).ok()?;
                let bytes = buf.get(pos..pos.checked_add(len)?)?;
                pos += len;
                out.push((number, bytes));
            }
            5 => pos += 4,
            _ => return None,
        }
    }
    (pos == buf.len()).then_some(out)
}

fn message(buf: &[u8], number: u64) -> Option<&[u8]> {
    fields(buf)?
        .into_iter()
        .find_map(|(n, b)| (n == number).then_some(b))
}

/// The string fields of a message, by the names of their numbers (1-based).
fn strings(buf: &[u8], names: &[&str]) -> Option<Value> {
    let mut map = Map::new();
    for (n, b) in fields(buf)? {
        if let Some(name) = names.get(n.checked_sub(1)? as usize) {
            map.insert(
                (*name).to_owned(),
                String::from_utf8_lossy(b).into_owned().into(),
            );
        }
    }
    Some(Value::Object(map))
}

/// Whether a request body is Kubernetes protobuf.
pub fn is_protobuf(body: &[u8]) -> bool {
    body.starts_with(MAGIC)
}

/// A protobuf SelfSubjectAccessReview as its JSON form (spec only).
pub fn access_review(body: &[u8]) -> Option<Value> {
    let unknown = body.strip_prefix(MAGIC)?;
    let raw = message(unknown, 2)?;
    let spec = message(raw, 2)?;
    let mut json_spec = Map::new();
    if let Some(attrs) = message(spec, 1) {
        let names = [
            "namespace",
            "verb",
            "group",
            "version",
            "resource",
            "subresource",
            "name",
        ];
        json_spec.insert("resourceAttributes".into(), strings(attrs, &names)?);
    }
    if let Some(attrs) = message(spec, 2) {
        json_spec.insert(
            "nonResourceAttributes".into(),
            strings(attrs, &["path", "verb"])?,
        );
    }
    Some(json!({
        "kind": "SelfSubjectAccessReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": {},
        "spec": json_spec,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_kubectl_auth_can_i_sends() {
        // Captured from `kubectl auth can-i list pv` (kubectl 1.32.4).
        let body = b"k8s\0\n2\n\x17authorization.k8s.io/v1\x12\x17SelfSubjectAccessReview\x12J\n\x10\n\0\x12\0\x1a\0\"\0*\x002\08\0B\0\x12,\n*\n\x07default\x12\x04list\x1a\0\"\0*\x11persistentvolumes2\0:\0\x1a\x08\x08\0\x12\0\x1a\0 \0\x1a\0\"\0";
        assert!(is_protobuf(body));
        let review = access_review(body).expect("parses");
        let attrs = &review["spec"]["resourceAttributes"];
        assert_eq!(attrs["verb"], "list");
        assert_eq!(attrs["resource"], "persistentvolumes");
        assert_eq!(attrs["group"], "");
        assert_eq!(attrs["namespace"], "default");
        assert!(access_review(b"k8s\0\xff\xff").is_none());
    }
}
