//! The envelope every event travels in, its source, its subject and its id.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::codec::SCHEMA_VERSION;
use crate::event::Event;
use crate::finding::System;
use crate::id::{EventId, IdHasher};
use crate::time::Timestamp;

/// Who observed (or derived) an event: a system and a configured instance name, e.g.
/// `kubernetes/prod-eu`, `truenas/nas01`, `ktd/orphans`.
#[derive(
    Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize, JsonSchema,
)]
pub struct SourceId {
    /// Which system.
    pub system: System,
    /// Instance name from the configuration.
    pub instance: String,
}

impl SourceId {
    /// A Kubernetes cluster source.
    pub fn kubernetes(instance: impl Into<String>) -> Self {
        SourceId {
            system: System::Kubernetes,
            instance: instance.into(),
        }
    }
    /// A TrueNAS source.
    pub fn truenas(instance: impl Into<String>) -> Self {
        SourceId {
            system: System::Truenas,
            instance: instance.into(),
        }
    }
    /// A ktd component (views, notifiers, API).
    pub fn ktd(instance: impl Into<String>) -> Self {
        SourceId {
            system: System::Ktd,
            instance: instance.into(),
        }
    }
}

impl fmt::Display for SourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.system, self.instance)
    }
}

/// One event with everything needed to store, route, de-duplicate and replay it.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Envelope {
    /// Deterministic id: equal ids are the same fact (the log keeps the first).
    pub id: EventId,
    /// Position in the log, assigned on append (0 before).
    #[serde(default)]
    pub seq: u64,
    /// When the source observed it.
    pub observed_at: Timestamp,
    /// Who observed it.
    pub source: SourceId,
    /// Routing subject (`ktd.v1.obs.<instance>.<kind>`, `ktd.v1.findings.<kind>`,
    /// `ktd.v1.audit.<kind>`).
    pub subject: String,
    /// Schema version the event was written with.
    pub schema_version: u16,
    /// The event.
    pub event: Event,
}

impl Envelope {
    /// Wraps an event. `version` tells successive observations of the same resource apart
    /// and must be derived from the observation, never from the clock of the writer:
    /// a Kubernetes `resourceVersion`, a TrueNAS poll number plus content digest, or the
    /// instant of a `Tick`. See `docs/adr/0002-event-ids-and-idempotency.md`.
    pub fn new(source: SourceId, observed_at: Timestamp, event: Event, version: &[u8]) -> Self {
        let mut h = EventId::hasher();
        h.text(source.system.as_str())
            .text(&source.instance)
            .text(event.type_name());
        event.natural_key(&mut h);
        h.part(version);
        let id = EventId::from_hasher(&h);
        let subject = subject_for(&source, &event);
        Envelope {
            id,
            seq: 0,
            observed_at,
            source,
            subject,
            schema_version: SCHEMA_VERSION,
            event,
        }
    }
}

/// The routing subject of an event from `source`.
pub fn subject_for(source: &SourceId, event: &Event) -> String {
    let token = subject_token(&event.subject_token());
    match event {
        Event::FindingOpened { .. }
        | Event::FindingUpdated { .. }
        | Event::FindingResolved { .. } => format!("ktd.v1.findings.{token}"),
        e if e.is_derived() => format!("ktd.v1.audit.{token}"),
        _ => format!("ktd.v1.obs.{}.{token}", subject_token(&source.instance)),
    }
}

/// Escapes text for use as one NATS subject token: `.`, `*`, `>`, `%`, whitespace,
/// control and non-ASCII characters become `%XX` (UTF-8 bytes), so the mapping is
/// reversible and never produces a wildcard or separator. An empty text becomes `_`, so
/// a token is never empty.
pub fn subject_token(text: &str) -> String {
    if text.is_empty() {
        return "_".to_owned();
    }
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'.' | b'*' | b'>' | b'%' => out.push_str(&format!("%{b:02X}")),
            0x21..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl Event {
    /// Feeds the identity of the resource this event is about into an id digest.
    pub(crate) fn natural_key(&self, h: &mut IdHasher) {
        match self {
            Event::ObjectApplied { object } => {
                let key = object.key();
                h.text(object.kind().as_str())
                    .text(key.namespace.as_deref().unwrap_or(""))
                    .text(&key.name);
            }
            Event::ObjectDeleted { kind, key, .. } => {
                h.text(kind.as_str())
                    .text(key.namespace.as_deref().unwrap_or(""))
                    .text(&key.name);
            }
            Event::ObjectRejected { kind, key, .. } => {
                h.text(kind.as_str());
                if let Some(key) = key {
                    h.text(key.namespace.as_deref().unwrap_or(""))
                        .text(&key.name);
                }
            }
            Event::SyncStarted { kind }
            | Event::SyncCompleted { kind, .. }
            | Event::WatchFailed { kind, .. } => {
                h.text(kind.as_str());
            }
            Event::DatasetObserved { dataset } | Event::DatasetChanged { dataset } => {
                h.text(&dataset.name);
            }
            Event::DatasetRemoved { name }
            | Event::SnapshotRemoved { name }
            | Event::PoolRemoved { name } => {
                h.text(name);
            }
            Event::SnapshotObserved { snapshot } => {
                h.text(&snapshot.name);
            }
            Event::ShareObserved { share } => {
                let k = share.key();
                h.text(k.kind.resource_type()).part(&k.id.to_le_bytes());
            }
            Event::ShareRemoved { share } => {
                h.text(share.kind.resource_type())
                    .part(&share.id.to_le_bytes());
            }
            Event::PoolObserved { pool } => {
                h.text(&pool.name);
            }
            Event::FindingOpened { finding } | Event::FindingUpdated { finding } => {
                h.part(&finding.id.to_bytes());
            }
            Event::FindingResolved { id, .. }
            | Event::NotificationSent { finding: id, .. }
            | Event::NotificationFailed { finding: id, .. } => {
                h.part(&id.to_bytes());
            }
            Event::RemediationProposed { remediation, .. }
            | Event::RemediationApproved { remediation, .. }
            | Event::RemediationExecuted { remediation, .. }
            | Event::RemediationUndone { remediation, .. } => {
                h.text(remediation);
            }
            Event::ApiCallAudited { request_id, .. } => {
                h.text(request_id);
            }
            Event::SystemObserved { .. }
            | Event::UsageSampled { .. }
            | Event::PollCompleted { .. }
            | Event::PollFailed { .. }
            | Event::Tick => {}
        }
    }
}

/// A 128-bit digest of a value's msgpack encoding: the "content version" of a TrueNAS
/// observation, so that re-observing the same state yields the same event id.
pub fn content_digest<T: Serialize>(value: &T) -> [u8; 16] {
    // Encoding plain data into a Vec cannot fail.
    let bytes = rmp_serde::to_vec(value).unwrap_or_default();
    let hash = blake3::hash(&bytes);
    let mut out = [0u8; 16];
    out.copy_from_slice(&hash.as_bytes()[..16]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::{KubeKind, ObjectKey};

    fn deleted(name: &str) -> Event {
        Event::ObjectDeleted {
            kind: KubeKind::PersistentVolume,
            key: ObjectKey::cluster(name),
            uid: None,
            missing_from_relist: false,
        }
    }

    #[test]
    fn same_observation_same_id() {
        let src = SourceId::kubernetes("prod");
        let t1 = Timestamp::from_unix_secs(1);
        let t2 = Timestamp::from_unix_secs(2);
        let a = Envelope::new(src.clone(), t1, deleted("pv-1"), b"100");
        let b = Envelope::new(src.clone(), t2, deleted("pv-1"), b"100");
        assert_eq!(a.id, b.id, "observation time is not part of the identity");
        let c = Envelope::new(src.clone(), t1, deleted("pv-1"), b"101");
        assert_ne!(a.id, c.id);
        let d = Envelope::new(src, t1, deleted("pv-2"), b"100");
        assert_ne!(a.id, d.id);
        let e = Envelope::new(SourceId::kubernetes("dev"), t1, deleted("pv-1"), b"100");
        assert_ne!(a.id, e.id, "two clusters never share ids");
    }

    #[test]
    fn subjects_follow_the_design() {
        let src = SourceId::kubernetes("prod.eu");
        let env = Envelope::new(src, Timestamp::EPOCH, deleted("x"), b"1");
        assert_eq!(env.subject, "ktd.v1.obs.prod%2Eeu.persistentvolume");
        let tick = Envelope::new(SourceId::ktd("clock"), Timestamp::EPOCH, Event::Tick, b"0");
        assert_eq!(tick.subject, "ktd.v1.obs.clock.tick");
    }

    #[test]
    fn subject_tokens_never_contain_separators_or_wildcards() {
        for s in ["a.b", "*", ">", "with space", "tab\t", "ümlaut", "50%", ""] {
            let t = subject_token(s);
            assert!(!t.is_empty());
            assert!(
                t.bytes()
                    .all(|b| b.is_ascii_graphic() && !matches!(b, b'.' | b'*' | b'>')),
                "{s:?} -> {t:?}"
            );
        }
        assert_ne!(subject_token("a.b"), subject_token("a%2Eb"));
    }
}
