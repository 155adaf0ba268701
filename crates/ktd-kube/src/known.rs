//! What the source knows about each kind: per object only `key → (uid, resourceVersion)`,
//! plus how many syncs of the kind were started. Rebuilt from the log at start-up with
//! [`KnownObjects::apply`], so that objects deleted while ktd was down are reported at the
//! first relist and sync markers get fresh ids.

use std::collections::{BTreeMap, HashMap};

use ktd_model::{Envelope, Event, KubeKind, ObjectKey, SourceId};

/// The source's memory, per kind. Start from [`KnownObjects::new`] (nothing known) or fold
/// the source's past events into it with [`KnownObjects::apply`].
#[derive(Clone, Debug)]
pub struct KnownObjects {
    source: SourceId,
    kinds: BTreeMap<KubeKind, KnownKind>,
}

/// One kind's memory.
#[derive(Clone, Debug, Default)]
pub(crate) struct KnownKind {
    /// Objects last seen, by key.
    pub(crate) objects: HashMap<ObjectKey, KnownObject>,
    /// Syncs started so far (the version of the latest `SyncStarted`).
    pub(crate) generation: u64,
}

/// What is kept of one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KnownObject {
    /// `metadata.uid` (empty when unknown).
    pub(crate) uid: Box<str>,
    /// `metadata.resourceVersion`.
    pub(crate) rv: Box<str>,
    /// The list pass in which the object was last listed (0 = not in this run).
    pub(crate) seen: u64,
}

impl KnownObjects {
    /// Nothing known yet, for the Kubernetes source `instance`.
    pub fn new(instance: impl Into<String>) -> Self {
        KnownObjects {
            source: SourceId::kubernetes(instance),
            kinds: BTreeMap::new(),
        }
    }

    /// Folds one event of the log into the memory; events of other sources are ignored.
    /// Feed every event of this source, in log order.
    pub fn apply(&mut self, envelope: &Envelope) {
        if envelope.source != self.source {
            return;
        }
        match &envelope.event {
            Event::ObjectApplied { object } => {
                let meta = object.meta();
                self.kind_mut(object.kind()).objects.insert(
                    object.key(),
                    KnownObject {
                        uid: meta.uid.as_str().into(),
                        rv: meta.resource_version.as_str().into(),
                        seen: 0,
                    },
                );
            }
            Event::ObjectDeleted { kind, key, .. } => {
                self.kind_mut(*kind).objects.remove(key);
            }
            Event::SyncStarted { kind } => self.kind_mut(*kind).generation += 1,
            _ => {}
        }
    }

    /// The source these memories belong to.
    pub fn source(&self) -> &SourceId {
        &self.source
    }

    /// How many objects of `kind` are known.
    pub fn len(&self, kind: KubeKind) -> usize {
        self.kinds.get(&kind).map_or(0, |k| k.objects.len())
    }

    /// Whether no object of any kind is known.
    pub fn is_empty(&self) -> bool {
        self.kinds.values().all(|k| k.objects.is_empty())
    }

    /// The last known resourceVersion of an object.
    pub fn resource_version(&self, kind: KubeKind, key: &ObjectKey) -> Option<&str> {
        self.kinds.get(&kind)?.objects.get(key).map(|o| &*o.rv)
    }

    /// How many syncs of `kind` were started.
    pub fn syncs(&self, kind: KubeKind) -> u64 {
        self.kinds.get(&kind).map_or(0, |k| k.generation)
    }

    fn kind_mut(&mut self, kind: KubeKind) -> &mut KnownKind {
        self.kinds.entry(kind).or_default()
    }

    /// Takes one kind's memory out (for its watcher).
    pub(crate) fn take(&mut self, kind: KubeKind) -> KnownKind {
        self.kinds.remove(&kind).unwrap_or_default()
    }
}
