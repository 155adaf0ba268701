//! Kubernetes resource quantities (`10Gi`, `500M`, `1.5Ti`, `1e9`) as bytes.

/// Parses a Kubernetes quantity into a whole number of units (bytes for storage),
/// rounding fractions up like the apiserver does.
pub fn parse_quantity(q: &str) -> Result<u64, String> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let (number, exp10): (&str, i32) = match suffix {
        s if s.starts_with(['e', 'E']) && s.len() > 1 => {
            let e: i32 = s[1..]
                .parse()
                .map_err(|_| format!("invalid quantity `{q}`"))?;
            (number, e)
        }
        _ => (number, 0),
    };
    let multiplier: f64 = match if exp10 != 0 { "" } else { suffix } {
        "" => 1.0,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        other => return Err(format!("invalid quantity `{q}`: unknown suffix `{other}`")),
    };
    if number.is_empty() {
        return Err(format!("invalid quantity `{q}`: no number"));
    }
    // Exact integer path for the common case (`10Gi`) to avoid float rounding.
    if let Ok(n) = number.parse::<u64>()
        && exp10 == 0
        && multiplier >= 1.0
    {
        return n
            .checked_mul(multiplier as u64)
            .ok_or_else(|| format!("quantity `{q}` overflows"));
    }
    let n: f64 = number
        .parse()
        .map_err(|_| format!("invalid quantity `{q}`"))?;
    if n < 0.0 {
        return Err(format!("quantity `{q}` is negative"));
    }
    let v = (n * multiplier * 10f64.powi(exp10)).ceil();
    if v > u64::MAX as f64 {
        return Err(format!("quantity `{q}` overflows"));
    }
    Ok(v as u64)
}

#[cfg(test)]
mod tests {
    use super::parse_quantity;

    #[test]
    fn binary_and_decimal_suffixes() {
        assert_eq!(parse_quantity("10Gi").unwrap(), 10 * 1024 * 1024 * 1024);
        assert_eq!(parse_quantity("1G").unwrap(), 1_000_000_000);
        assert_eq!(parse_quantity("1.5Gi").unwrap(), 1_610_612_736);
        assert_eq!(parse_quantity("1e9").unwrap(), 1_000_000_000);
        assert_eq!(parse_quantity("12345").unwrap(), 12345);
        assert_eq!(parse_quantity("100m").unwrap(), 1, "fractions round up");
    }

    #[test]
    fn garbage_is_rejected() {
        assert!(parse_quantity("ten").is_err());
        assert!(parse_quantity("10Xi").is_err());
        assert!(parse_quantity("-1Gi").is_err());
        assert!(parse_quantity("").is_err());
    }
}
