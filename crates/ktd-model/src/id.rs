//! Deterministic identifiers.
//!
//! An [`EventId`] is a 128-bit BLAKE3 digest of what the event *observed*, never of
//! when it was written: the same observation always gets the same id, so a source that
//! re-publishes after a crash produces duplicates that the log drops (see
//! `docs/adr/0002-event-ids-and-idempotency.md`). A [`FindingId`] is the digest of a
//! finding's kind and subject, stable across runs and versions.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Builds a 128-bit digest from length-prefixed parts, so that `("ab","c")` and
/// `("a","bc")` never collide.
#[derive(Clone)]
pub struct IdHasher(blake3::Hasher);

impl IdHasher {
    /// Starts a digest in the given domain (e.g. `"event"`, `"finding"`).
    pub fn new(domain: &str) -> Self {
        let mut h = IdHasher(blake3::Hasher::new());
        h.part(domain.as_bytes());
        h
    }

    /// Adds one part.
    pub fn part(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.update(&(bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
        self
    }

    /// Adds one textual part.
    pub fn text(&mut self, s: &str) -> &mut Self {
        self.part(s.as_bytes())
    }

    /// Adds one integer part.
    pub fn int(&mut self, v: u64) -> &mut Self {
        self.part(&v.to_le_bytes())
    }

    fn finish128(&self) -> u128 {
        let hash = self.0.finalize();
        let mut first = [0u8; 16];
        first.copy_from_slice(&hash.as_bytes()[..16]);
        u128::from_be_bytes(first)
    }
}

macro_rules! hex_id {
    ($(#[$doc:meta])* $name:ident, $domain:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(u128);

        impl $name {
            /// Wraps a raw 128-bit value.
            pub const fn from_u128(v: u128) -> Self {
                Self(v)
            }
            /// The raw 128-bit value.
            pub const fn as_u128(self) -> u128 {
                self.0
            }
            /// Big-endian bytes (the on-disk key form).
            pub const fn to_bytes(self) -> [u8; 16] {
                self.0.to_be_bytes()
            }
            /// From big-endian bytes.
            pub const fn from_bytes(b: [u8; 16]) -> Self {
                Self(u128::from_be_bytes(b))
            }
            /// Finishes a digest built with [`IdHasher::new`] in this id's domain.
            pub fn from_hasher(h: &IdHasher) -> Self {
                Self(h.finish128())
            }
            /// A hasher in this id's domain.
            pub fn hasher() -> IdHasher {
                IdHasher::new($domain)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:032x}", self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({:032x})"), self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                if s.len() != 32 {
                    return Err(IdParseError(s.to_owned()));
                }
                u128::from_str_radix(s, 16).map(Self).map_err(|_| IdParseError(s.to_owned()))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.collect_str(self)
                } else {
                    s.serialize_bytes(&self.to_bytes())
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("32 hex digits or 16 bytes")
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$name, E> {
                        v.parse().map_err(E::custom)
                    }
                    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<$name, E> {
                        let b: [u8; 16] = v.try_into().map_err(|_| E::invalid_length(v.len(), &self))?;
                        Ok($name::from_bytes(b))
                    }
                }
                d.deserialize_any(V)
            }
        }

        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "type": "string",
                    "pattern": "^[0-9a-f]{32}$",
                    "description": "128-bit deterministic id, lower-case hex"
                })
            }
        }
    };
}

hex_id!(
    /// Identity of one observation; equal ids mean "the same fact", and the log keeps only the first.
    EventId,
    "ktd.event.v1"
);

hex_id!(
    /// Stable identity of a finding: a digest of its kind and subject.
    FindingId,
    "ktd.finding.v1"
);

/// A text that is not 32 lower-case hex digits.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not an id (expected 32 hex digits)")]
pub struct IdParseError(String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_length_prefixed() {
        let a = EventId::from_hasher(EventId::hasher().text("ab").text("c"));
        let b = EventId::from_hasher(EventId::hasher().text("a").text("bc"));
        assert_ne!(a, b);
    }

    #[test]
    fn domains_separate_id_kinds() {
        let e = EventId::from_hasher(EventId::hasher().text("x"));
        let f = FindingId::from_hasher(FindingId::hasher().text("x"));
        assert_ne!(e.as_u128(), f.as_u128());
    }

    #[test]
    fn text_and_binary_forms_round_trip() {
        let id = EventId::from_hasher(EventId::hasher().text("pv").int(7));
        let s = id.to_string();
        assert_eq!(s.len(), 32);
        assert_eq!(s.parse::<EventId>().unwrap(), id);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<EventId>(&json).unwrap(), id);
        let bin = rmp_serde::to_vec(&id).unwrap();
        assert_eq!(bin.len(), 18, "msgpack bin8 header + 16 bytes");
        assert_eq!(rmp_serde::from_slice::<EventId>(&bin).unwrap(), id);
    }

    #[test]
    fn digest_is_stable_across_releases() {
        // Changing the hashing scheme would silently break de-duplication of logs written
        // by earlier versions: this value must never change.
        let id = EventId::from_hasher(EventId::hasher().text("kubernetes/prod").int(42));
        assert_eq!(id.to_string(), KNOWN);
    }
    const KNOWN: &str = "b758d4cb3cf20afa02491cc7a01c1f06";
}
