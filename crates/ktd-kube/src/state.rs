//! The per-kind state machine: kube-runtime watcher events in, ktd envelopes out.
//!
//! - `Init` → `SyncStarted` (once per sync: a list that fails and restarts is the same sync);
//! - `InitApply`/`Apply` → `ObjectApplied`, or `ObjectRejected` naming a malformed object;
//!   nothing when the resourceVersion equals the known one (relist of an unchanged object);
//! - `InitDone` → `ObjectDeleted { missing_from_relist: true }` for every known object the
//!   relist did not contain (version = its last known RV), then `SyncCompleted`;
//! - `Delete` → `ObjectDeleted` (version = the deletion RV stamped on the object);
//! - errors → at most one `WatchFailed` per failure episode (see [`crate::failure`]).
//!
//! Event versions (the `version` of the id, ADR 0002): objects use their resourceVersion;
//! `SyncStarted`/`SyncCompleted` use `sync/<n>` where `n` counts the kind's syncs (rebuilt
//! from the log by [`crate::KnownObjects`]); `WatchFailed` uses `failed/<n>/<i>`, the
//! `i`-th report during sync `n`. All are derived from what was observed, never from
//! the clock.

use ktd_model::normalize::kube::normalize_as;
use ktd_model::{Envelope, Event, KubeKind, ObjectKey, SourceId, Timestamp};
use kube::api::DynamicObject;
use kube::runtime::watcher;

use crate::config::EventSelection;
use crate::failure::{self, FailureGate};
use crate::known::{KnownKind, KnownObject};

/// One kind's watch state.
pub(crate) struct KindState {
    kind: KubeKind,
    source: SourceId,
    known: KnownKind,
    /// Incremented at every `Init` (every list attempt); objects listed in the current
    /// attempt carry it in `seen`.
    pass: u64,
    /// Between `Init` and `InitDone`.
    syncing: bool,
    /// Objects listed in the current pass.
    listed: u64,
    /// `WatchFailed` reports during the current sync generation.
    reports: u64,
    gate: FailureGate,
    /// Client-side filter (core Events only).
    filter: Option<EventSelection>,
}

impl KindState {
    /// A state for `kind`, starting from what is already known about it.
    pub(crate) fn new(
        source: SourceId,
        kind: KubeKind,
        known: KnownKind,
        filter: Option<EventSelection>,
    ) -> Self {
        KindState {
            kind,
            source,
            known,
            pass: 0,
            syncing: false,
            listed: 0,
            reports: 0,
            gate: FailureGate::default(),
            filter,
        }
    }

    /// Handles one item of the watcher stream, observed at `now`.
    pub(crate) fn handle(
        &mut self,
        item: Result<watcher::Event<DynamicObject>, watcher::Error>,
        now: Timestamp,
    ) -> Vec<Envelope> {
        let mut out = Vec::new();
        match item {
            Ok(watcher::Event::Init) => self.on_init(now, &mut out),
            Ok(watcher::Event::InitApply(obj)) => {
                self.gate.healthy();
                self.on_object(obj, true, now, &mut out);
            }
            Ok(watcher::Event::Apply(obj)) => {
                self.gate.healthy();
                self.on_object(obj, false, now, &mut out);
            }
            Ok(watcher::Event::InitDone) => {
                self.gate.healthy();
                self.on_init_done(now, &mut out);
            }
            Ok(watcher::Event::Delete(obj)) => {
                self.gate.healthy();
                self.on_delete(obj, now, &mut out);
            }
            Err(err) => self.on_error(&err, now, &mut out),
        }
        out
    }

    /// How many objects are known (for tests and telemetry).
    #[cfg(test)]
    pub(crate) fn known_len(&self) -> usize {
        self.known.objects.len()
    }

    fn envelope(&self, now: Timestamp, event: Event, version: &[u8]) -> Envelope {
        Envelope::new(self.source.clone(), now, event, version)
    }

    fn sync_version(&self) -> Vec<u8> {
        format!("sync/{}", self.known.generation).into_bytes()
    }

    fn on_init(&mut self, now: Timestamp, out: &mut Vec<Envelope>) {
        self.pass += 1;
        self.listed = 0;
        if self.syncing {
            // The previous list attempt failed part-way; this is the same sync.
            tracing::debug!(pass = self.pass, "list restarted");
            return;
        }
        self.syncing = true;
        self.known.generation += 1;
        self.reports = 0;
        tracing::debug!(generation = self.known.generation, "sync started");
        out.push(self.envelope(
            now,
            Event::SyncStarted { kind: self.kind },
            &self.sync_version(),
        ));
    }

    fn on_object(
        &mut self,
        mut obj: DynamicObject,
        listing: bool,
        now: Timestamp,
        out: &mut Vec<Envelope>,
    ) {
        if let Some(filter) = &self.filter
            && !filter.keeps(&obj.data)
        {
            return;
        }
        let rv = obj.metadata.resource_version.clone().unwrap_or_default();
        let Some(key) = self.key_of(&obj) else {
            out.push(self.envelope(
                now,
                Event::ObjectRejected {
                    kind: self.kind,
                    key: None,
                    error: format!(
                        "{} without metadata.name (resourceVersion {rv:?})",
                        self.kind
                    ),
                },
                rv.as_bytes(),
            ));
            return;
        };
        if listing {
            self.listed += 1;
        }
        let uid = obj.metadata.uid.clone().unwrap_or_default();
        if let Some(known) = self.known.objects.get_mut(&key) {
            if listing {
                known.seen = self.pass;
            }
            if *known.rv == *rv && (known.uid.is_empty() || *known.uid == *uid) {
                return; // unchanged: a relist, or a replay of what the log already has
            }
        }
        let seen = match self.known.objects.get(&key) {
            _ if listing => self.pass,
            Some(known) => known.seen,
            None => 0,
        };
        let previous = self.known.objects.insert(
            key.clone(),
            KnownObject {
                uid: uid.as_str().into(),
                rv: rv.as_str().into(),
                seen,
            },
        );
        if let Some(old) = previous
            && !old.uid.is_empty()
            && !uid.is_empty()
            && *old.uid != *uid
        {
            // Deleted and re-created under the same name while we were not watching:
            // surface the deletion of the old incarnation first.
            out.push(self.deleted(now, key.clone(), Some(old.uid.to_string()), true, &old.rv));
        }
        obj.metadata.managed_fields = None;
        let event = match serde_json::to_value(&obj)
            .map_err(|e| e.to_string())
            .and_then(|value| normalize_as(self.kind, &value).map_err(|e| e.to_string()))
        {
            Ok(object) => Event::ObjectApplied { object },
            Err(error) => {
                tracing::warn!(%key, %error, "object rejected");
                Event::ObjectRejected {
                    kind: self.kind,
                    key: Some(key),
                    error,
                }
            }
        };
        out.push(self.envelope(now, event, rv.as_bytes()));
    }

    fn on_init_done(&mut self, now: Timestamp, out: &mut Vec<Envelope>) {
        let pass = self.pass;
        let mut missing: Vec<(ObjectKey, KnownObject)> = Vec::new();
        self.known.objects.retain(|key, o| {
            let keep = o.seen == pass;
            if !keep {
                missing.push((key.clone(), o.clone()));
            }
            keep
        });
        missing.sort_by(|a, b| a.0.cmp(&b.0));
        for (key, o) in missing {
            let uid = (!o.uid.is_empty()).then(|| o.uid.to_string());
            out.push(self.deleted(now, key, uid, true, &o.rv));
        }
        self.syncing = false;
        tracing::debug!(objects = self.listed, "sync completed");
        out.push(self.envelope(
            now,
            Event::SyncCompleted {
                kind: self.kind,
                objects: self.listed,
            },
            &self.sync_version(),
        ));
    }

    fn on_delete(&mut self, obj: DynamicObject, now: Timestamp, out: &mut Vec<Envelope>) {
        if let Some(filter) = &self.filter
            && !filter.keeps(&obj.data)
        {
            return;
        }
        let Some(key) = self.key_of(&obj) else {
            return;
        };
        self.known.objects.remove(&key);
        let rv = obj.metadata.resource_version.unwrap_or_default();
        out.push(self.deleted(now, key, obj.metadata.uid, false, &rv));
    }

    fn deleted(
        &self,
        now: Timestamp,
        key: ObjectKey,
        uid: Option<String>,
        missing_from_relist: bool,
        rv: &str,
    ) -> Envelope {
        self.envelope(
            now,
            Event::ObjectDeleted {
                kind: self.kind,
                key,
                uid,
                missing_from_relist,
            },
            rv.as_bytes(),
        )
    }

    fn on_error(&mut self, err: &watcher::Error, now: Timestamp, out: &mut Vec<Envelope>) {
        let (failure, verb) = failure::classify(err);
        if !failure.is_reported() {
            tracing::debug!(error = %err, "watch restarts (routine)");
            return;
        }
        if !self.gate.report(&failure, now) {
            tracing::debug!(error = %err, "watch still failing");
            return;
        }
        let error = failure::message(self.kind, &failure, err);
        tracing::warn!(verb, %error, "watch failed");
        self.reports += 1;
        let version = format!("failed/{}/{}", self.known.generation, self.reports);
        out.push(self.envelope(
            now,
            Event::WatchFailed {
                kind: self.kind,
                error,
                // kube-runtime retries every failure with backoff; a fixed RBAC rule or
                // an installed CRD is picked up without a restart.
                retryable: true,
            },
            version.as_bytes(),
        ));
    }

    fn key_of(&self, obj: &DynamicObject) -> Option<ObjectKey> {
        let name = obj.metadata.name.clone().filter(|n| !n.is_empty())?;
        Some(ObjectKey {
            namespace: obj.metadata.namespace.clone().filter(|n| !n.is_empty()),
            name,
        })
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
