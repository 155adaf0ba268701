//! The on-log encoding: MessagePack with named fields (rmp-serde), so a reader skips
//! fields it does not know, plus a schema version and an upcasting hook for the changes
//! that named fields cannot absorb (renames, removals, new variants).
//!
//! Reading rules:
//! - same schema version: decode directly;
//! - older: decode into a dynamic value, run the [`Upcaster`] chain up to
//!   [`SCHEMA_VERSION`], then decode;
//! - newer: decode directly if the shape is still understood (only fields were added),
//!   otherwise fail with [`CodecError::NewerSchema`], which tells the user to upgrade.

use serde::Deserialize;

use crate::envelope::Envelope;

/// The schema version this build writes.
pub const SCHEMA_VERSION: u16 = 1;

/// Why an envelope could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The bytes are not a ktd envelope (corrupt, truncated, or not ktd's). Not retryable:
    /// the record must be skipped and reported.
    #[error("not a valid ktd event envelope")]
    Malformed(#[source] rmp_serde::decode::Error),
    /// Written by a newer ktd whose events this build cannot read. Not retryable:
    /// upgrade ktd.
    #[error(
        "event written with schema version {found}, but this ktd reads up to {supported}: upgrade ktd to read this log"
    )]
    NewerSchema {
        /// Version in the record.
        found: u16,
        /// Newest version this build reads.
        supported: u16,
    },
    /// An older event could not be upgraded to the current schema. Not retryable.
    #[error("cannot upgrade an event from schema version {from}: {reason}")]
    Upcast {
        /// Version the failing step reads.
        from: u16,
        /// What went wrong.
        reason: String,
    },
    /// Encoding failed (only possible for values serde cannot represent). Not retryable.
    #[error("cannot encode event")]
    Encode(#[source] rmp_serde::encode::Error),
}

/// Upgrades an encoded envelope by one schema version.
pub trait Upcaster: Send + Sync {
    /// The version this step reads; it produces `reads_version() + 1`.
    fn reads_version(&self) -> u16;
    /// Rewrites the whole envelope (a msgpack map with named fields) in place.
    fn upcast(&self, envelope: &mut rmpv::Value) -> Result<(), String>;
}

/// An ordered chain of upcasters.
#[derive(Default)]
pub struct Upcasters {
    steps: Vec<Box<dyn Upcaster>>,
}

impl Upcasters {
    /// The chain that ships with this build (empty while the schema is at version 1).
    pub fn builtin() -> Self {
        Upcasters::default()
    }

    /// Adds a step.
    pub fn with(mut self, step: impl Upcaster + 'static) -> Self {
        self.steps.push(Box::new(step));
        self
    }

    fn has_steps_from(&self, version: u16) -> bool {
        self.steps.iter().any(|s| s.reads_version() >= version)
    }

    fn run(&self, value: &mut rmpv::Value, mut version: u16) -> Result<(), CodecError> {
        while version < SCHEMA_VERSION {
            let step = self
                .steps
                .iter()
                .find(|s| s.reads_version() == version)
                .ok_or_else(|| CodecError::Upcast {
                    from: version,
                    reason: "no upcaster for this version".into(),
                })?;
            step.upcast(value).map_err(|reason| CodecError::Upcast {
                from: version,
                reason,
            })?;
            version += 1;
        }
        set_field(value, "schema_version", rmpv::Value::from(SCHEMA_VERSION));
        Ok(())
    }
}

/// Encodes an envelope.
pub fn encode(envelope: &Envelope) -> Result<Vec<u8>, CodecError> {
    rmp_serde::to_vec_named(envelope).map_err(CodecError::Encode)
}

/// Decodes an envelope with the built-in upcasters.
pub fn decode(bytes: &[u8]) -> Result<Envelope, CodecError> {
    decode_with(bytes, &Upcasters::builtin())
}

/// Decodes an envelope, upgrading older schema versions with `upcasters`.
pub fn decode_with(bytes: &[u8], upcasters: &Upcasters) -> Result<Envelope, CodecError> {
    match rmp_serde::from_slice::<Envelope>(bytes) {
        Ok(env)
            if env.schema_version >= SCHEMA_VERSION
                || !upcasters.has_steps_from(env.schema_version) =>
        {
            Ok(env)
        }
        Ok(env) => upcast(bytes, env.schema_version, upcasters),
        Err(err) => match peek_version(bytes) {
            Some(v) if v > SCHEMA_VERSION => Err(CodecError::NewerSchema {
                found: v,
                supported: SCHEMA_VERSION,
            }),
            Some(v) if v < SCHEMA_VERSION => upcast(bytes, v, upcasters),
            _ => Err(CodecError::Malformed(err)),
        },
    }
}

fn upcast(bytes: &[u8], from: u16, upcasters: &Upcasters) -> Result<Envelope, CodecError> {
    let mut value: rmpv::Value = rmp_serde::from_slice(bytes).map_err(CodecError::Malformed)?;
    upcasters.run(&mut value, from)?;
    let mut upgraded = Vec::with_capacity(bytes.len() + 16);
    rmpv::encode::write_value(&mut upgraded, &value).map_err(|e| CodecError::Upcast {
        from,
        reason: e.to_string(),
    })?;
    rmp_serde::from_slice(&upgraded).map_err(|e| CodecError::Upcast {
        from,
        reason: e.to_string(),
    })
}

fn peek_version(bytes: &[u8]) -> Option<u16> {
    #[derive(Deserialize)]
    struct Header {
        schema_version: u16,
    }
    rmp_serde::from_slice::<Header>(bytes)
        .ok()
        .map(|h| h.schema_version)
}

fn set_field(map: &mut rmpv::Value, name: &str, new: rmpv::Value) {
    if let rmpv::Value::Map(entries) = map {
        match entries.iter_mut().find(|(k, _)| k.as_str() == Some(name)) {
            Some((_, v)) => *v = new,
            None => entries.push((rmpv::Value::from(name), new)),
        }
    }
}

/// Looks up a field of a msgpack map (for writing upcasters).
pub fn field_mut<'a>(map: &'a mut rmpv::Value, name: &str) -> Option<&'a mut rmpv::Value> {
    match map {
        rmpv::Value::Map(entries) => entries
            .iter_mut()
            .find(|(k, _)| k.as_str() == Some(name))
            .map(|(_, v)| v),
        _ => None,
    }
}

/// Renames a field of a msgpack map (for writing upcasters). Returns whether it existed.
pub fn rename_field(map: &mut rmpv::Value, from: &str, to: &str) -> bool {
    if let rmpv::Value::Map(entries) = map
        && let Some((k, _)) = entries.iter_mut().find(|(k, _)| k.as_str() == Some(from))
    {
        *k = rmpv::Value::from(to);
        return true;
    }
    false
}
