//! Event time.
//!
//! Views never read the wall clock: every time they compare comes from an event
//! (`observed_at`, a `Tick`, a resource's creation time), so a replay of the log
//! reaches the same conclusions as the live run did.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A UTC instant with millisecond precision.
///
/// Binary encodings (msgpack) store it as an integer of milliseconds since the
/// Unix epoch; human-readable ones (JSON, YAML) as an RFC 3339 string. Both forms
/// are accepted when reading either.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

/// Why a text could not be read as a [`Timestamp`].
#[derive(Debug, thiserror::Error)]
#[error("`{input}` is not an RFC 3339 timestamp (expected e.g. 2024-11-07T17:20:00Z)")]
pub struct TimestampParseError {
    input: String,
}

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// From milliseconds since the Unix epoch.
    pub const fn from_unix_ms(ms: i64) -> Self {
        Timestamp(ms)
    }

    /// From whole seconds since the Unix epoch.
    pub const fn from_unix_secs(secs: i64) -> Self {
        Timestamp(secs.saturating_mul(1000))
    }

    /// From nanoseconds since the Unix epoch (VolumeSnapshotContent `creationTime`).
    pub const fn from_unix_nanos(nanos: i64) -> Self {
        Timestamp(nanos / 1_000_000)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn unix_ms(self) -> i64 {
        self.0
    }

    /// Whole seconds since the Unix epoch (rounded down).
    pub const fn unix_secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// The current wall-clock time. Only sources and drivers call this; views never do.
    pub fn now() -> Self {
        Timestamp(jiff::Timestamp::now().as_millisecond())
    }

    /// This instant moved forward by `d` (saturating).
    pub fn plus(self, d: Duration) -> Self {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_add(ms))
    }

    /// This instant moved back by `d` (saturating).
    pub fn minus(self, d: Duration) -> Self {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_sub(ms))
    }

    /// Time elapsed from `earlier` to `self`; zero if `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0))
    }

    /// Parses RFC 3339 (`2024-11-07T17:20:00Z`, `2024-11-07T17:20:00.123+01:00`).
    pub fn parse_rfc3339(s: &str) -> Result<Self, TimestampParseError> {
        s.parse::<jiff::Timestamp>()
            .map(|t| Timestamp(t.as_millisecond()))
            .map_err(|_| TimestampParseError {
                input: s.to_owned(),
            })
    }

    fn to_jiff(self) -> jiff::Timestamp {
        jiff::Timestamp::from_millisecond(self.0).unwrap_or(if self.0 < 0 {
            jiff::Timestamp::MIN
        } else {
            jiff::Timestamp::MAX
        })
    }
}

impl FromStr for Timestamp {
    type Err = TimestampParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Timestamp::parse_rfc3339(s)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 % 1000 == 0 {
            write!(f, "{:.0}", self.to_jiff())
        } else {
            write!(f, "{:.3}", self.to_jiff())
        }
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            serializer.serialize_i64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 timestamp or milliseconds since the Unix epoch")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timestamp, E> {
                Ok(Timestamp(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timestamp, E> {
                i64::try_from(v)
                    .map(Timestamp)
                    .map_err(|_| E::custom("timestamp out of range"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
                Timestamp::parse_rfc3339(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl schemars::JsonSchema for Timestamp {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Timestamp".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "format": "date-time",
            "description": "RFC 3339 UTC instant (msgpack: integer milliseconds since the Unix epoch)"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip_keeps_milliseconds() {
        let t = Timestamp::parse_rfc3339("2024-11-07T17:20:00.123Z").unwrap();
        assert_eq!(t.unix_ms(), 1_731_000_000_123);
        assert_eq!(t.to_string(), "2024-11-07T17:20:00.123Z");
        let whole = Timestamp::from_unix_secs(1_731_000_000);
        assert_eq!(whole.to_string(), "2024-11-07T17:20:00Z");
    }

    #[test]
    fn offsets_are_normalised_to_utc() {
        let t = Timestamp::parse_rfc3339("2024-11-07T18:20:00+01:00").unwrap();
        assert_eq!(t, Timestamp::from_unix_secs(1_731_000_000));
    }

    #[test]
    fn json_is_text_and_msgpack_is_integer() {
        let t = Timestamp::from_unix_ms(1_731_000_000_500);
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"2024-11-07T17:20:00.500Z\""
        );
        let bin = rmp_serde::to_vec(&t).unwrap();
        let back: i64 = rmp_serde::from_slice(&bin).unwrap();
        assert_eq!(back, 1_731_000_000_500);
        let again: Timestamp = rmp_serde::from_slice(&bin).unwrap();
        assert_eq!(again, t);
    }

    #[test]
    fn garbage_is_rejected_with_the_input_named() {
        let err = Timestamp::parse_rfc3339("yesterday").unwrap_err();
        assert!(err.to_string().contains("yesterday"));
    }

    #[test]
    fn arithmetic_saturates() {
        let t = Timestamp::from_unix_secs(100);
        assert_eq!(t.plus(Duration::from_secs(5)).unix_secs(), 105);
        assert_eq!(t.minus(Duration::from_secs(5)).unix_secs(), 95);
        assert_eq!(t.since(t.plus(Duration::from_secs(1))), Duration::ZERO);
    }
}
