//! Reading a bundle: every file streamed straight into normalized resources, files in
//! parallel (one reader thread per file, at most [`ReadOptions::threads`] at once), events
//! handed to the caller's sink on the calling thread.
//!
//! Events, all with `observed_at` = the bundle's `collected_at`:
//! - Kubernetes (source `kubernetes/<bundle.json cluster, else "bundle">`): `ObjectApplied`
//!   per object (`ObjectRejected` for one that cannot be read), then after **every** object
//!   of the bundle one `SyncCompleted` per collected kind;
//! - TrueNAS (source `truenas/<system.info hostname, else "bundle">`): `SystemObserved`,
//!   `PoolObserved`, `DatasetObserved`, `SnapshotObserved`, `ShareObserved`, then after every
//!   object one `PollCompleted { poll: 1, .. }` whose `not_collected` lists the classes
//!   without a method file and whose `rejected` names the objects that could not be read.
//!
//! Objects of one file arrive in the file's order; files interleave. Event ids are
//! deterministic: the version part is a digest of the event's content, prefixed with
//! `collected_at` when `bundle.json` gives it — the same bundle always gives the same ids.
//!
//! A malformed object is named in [`BundleInfo::rejected`] and reading goes on; a malformed
//! *file* (invalid JSON, wrong top-level shape) fails the whole read with a
//! [`BundleError`] naming the file, the line and column, and what to do. Events already
//! handed to the sink before such an error are a partial view and must be discarded.

mod kube;
mod truenas;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use ktd_model::truenas::{ApiTransport, NasCollection, SystemInfo};
use ktd_model::{Envelope, Event, KubeKind, PollCounts, SourceId, Timestamp, content_digest};
use serde::Serialize;

use super::manifest::{BundleManifest, LeftOut};
use super::{
    ISCSI_GLOBAL_CONFIG, KUBERNETES_FILE, MANIFEST_FILE, SERVICE_QUERY, TRUENAS_DIR, method_file,
    methods_of,
};

/// Why a bundle could not be read. Never retryable: the bundle must be fixed (each message
/// says how).
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The path does not exist or is not a directory.
    #[error(
        "{dir} is not a directory: give the directory `ktd collect --out` wrote, or a hand-made bundle (docs/bundle.md)"
    )]
    NotADirectory {
        /// The path given.
        dir: PathBuf,
    },
    /// The directory holds nothing ktd reads.
    #[error(
        "{dir} holds neither kubernetes.json nor truenas/<method>.json: is it a bundle? Write one with `ktd collect --out DIR` (the format is in docs/bundle.md)"
    )]
    Empty {
        /// The directory.
        dir: PathBuf,
    },
    /// A file could not be opened or read.
    #[error("cannot read {path}: check that it exists and is readable")]
    Io {
        /// The file.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// A file is not what its name says: invalid JSON, or the wrong top-level shape.
    #[error("{path} cannot be read: {detail}. {hint}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line and column where the parser stopped.
        detail: String,
        /// What the file must hold, and how to produce it.
        hint: String,
    },
    /// `kubernetes.json` is a `kind: List` whose items carry no `kind`.
    #[error(
        "{path}: {items} item(s) of the `kind: List` have no `apiVersion`/`kind` (the first: {first}), so ktd cannot tell what they are. kubectl always fills them: re-create the file with `kubectl get pv,pvc,sc,volumeattachments,csidrivers,csinodes,nodes,volumesnapshots,volumesnapshotcontents,volumesnapshotclasses -A -o json > kubernetes.json` or with `ktd collect`"
    )]
    ItemsWithoutKind {
        /// `kubernetes.json`.
        path: PathBuf,
        /// How many items lack a kind.
        items: u64,
        /// The first of them (its name, or its position).
        first: String,
    },
    /// `bundle.json` is invalid.
    #[error(
        "{path} is invalid: {detail}. Fix it (docs/bundle.md describes bundle.json) or delete it to let ktd infer what was collected"
    )]
    Manifest {
        /// `bundle.json`.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// Both snapshot query files exist: it is unclear which one is the system's.
    #[error(
        "{dir} holds both zfs.snapshot.query.json and pool.snapshot.query.json: keep the one of the system's release (pool.snapshot.query from TrueNAS 25.10 on, zfs.snapshot.query before) and remove the other"
    )]
    TwoSnapshotFiles {
        /// The `truenas` directory.
        dir: PathBuf,
    },
    /// `bundle.json` lists Kubernetes kinds but there is no `kubernetes.json`.
    #[error(
        "{path} is missing but bundle.json lists Kubernetes kinds as collected: put the kubernetes.json of that collection back, or remove `kubernetes_kinds` from bundle.json"
    )]
    KubernetesMissing {
        /// The missing `kubernetes.json`.
        path: PathBuf,
    },
}

/// How to read a bundle.
#[derive(Clone, Debug, Default)]
pub struct ReadOptions {
    /// Files read at once (0 = one per available core, at least 2).
    pub threads: usize,
    /// "Now" when `bundle.json` does not say `collected_at` (default: the current time).
    pub now: Option<Timestamp>,
}

/// Where the set of collected Kubernetes kinds came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum KindsFrom {
    /// `bundle.json` `kubernetes_kinds`.
    BundleJson,
    /// The kinds `kubernetes.json` holds objects of.
    Inferred,
}

/// One object that could not be read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Rejected {
    /// The file, relative to the bundle (`kubernetes.json`, `truenas/pool.dataset.query.json`).
    pub file: String,
    /// The object, as far as it could be named (`PersistentVolume pv-1`, `sharing.nfs.query 7`).
    pub object: String,
    /// What is wrong with it.
    pub error: String,
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}: {}", self.file, self.object, self.error)
    }
}

/// What the Kubernetes side of a bundle held.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KubernetesInfo {
    /// The source of its events.
    pub source: SourceId,
    /// Collected kinds and their objects (read or rejected).
    pub kinds: BTreeMap<KubeKind, u64>,
    /// Where the set of collected kinds came from.
    pub kinds_from: KindsFrom,
    /// Objects of kinds `bundle.json` does not list as collected (delivered, never judged).
    pub uncollected_objects: BTreeMap<KubeKind, u64>,
    /// Items of kinds ktd does not read (`Namespace`, `Secret`, ...), skipped.
    pub skipped: BTreeMap<String, u64>,
}

/// What the TrueNAS side of a bundle held.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TrueNasInfo {
    /// The source of its events.
    pub source: SourceId,
    /// `system.info` version, when the bundle has it.
    pub version: Option<String>,
    /// Classes whose method file exists: the file (relative to the bundle) and the objects read.
    pub collected: BTreeMap<NasCollection, (String, u64)>,
    /// Classes without a method file: never judged.
    pub not_collected: Vec<NasCollection>,
    /// The counts of the `PollCompleted`.
    pub counts: PollCounts,
}

/// What a bundle held, as read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BundleInfo {
    /// The bundle directory.
    pub dir: PathBuf,
    /// "Now" of the bundle: `observed_at` of every event.
    pub collected_at: Timestamp,
    /// Whether `collected_at` came from `bundle.json` (else from [`ReadOptions::now`] or
    /// the clock).
    pub collected_at_from_bundle: bool,
    /// The ktd version that collected it (`bundle.json`).
    pub ktd_version: Option<String>,
    /// The Kubernetes side (None: no `kubernetes.json`).
    pub kubernetes: Option<KubernetesInfo>,
    /// The TrueNAS side (None: no `truenas/` method file).
    pub truenas: Option<TrueNasInfo>,
    /// Objects that could not be read (everything else was).
    pub rejected: Vec<Rejected>,
    /// What the collection left out (`bundle.json` `left_out`).
    pub left_out: Vec<LeftOut>,
    /// Things a person should know (unknown files or fields, leftovers of an interrupted
    /// collection, ...).
    pub warnings: Vec<String>,
    /// Events handed to the sink.
    pub events: u64,
}

/// Reads the bundle in `dir` with default options. See [`read_bundle_with`].
pub fn read_bundle(dir: &Path, sink: &mut dyn FnMut(Envelope)) -> Result<BundleInfo, BundleError> {
    read_bundle_with(dir, &ReadOptions::default(), sink)
}

/// Reads the bundle in `dir`, handing every event to `sink` (on the calling thread) in the
/// order described in the [module documentation](self), and returns what it held.
pub fn read_bundle_with(
    dir: &Path,
    options: &ReadOptions,
    sink: &mut dyn FnMut(Envelope),
) -> Result<BundleInfo, BundleError> {
    if !dir.is_dir() {
        return Err(BundleError::NotADirectory {
            dir: dir.to_owned(),
        });
    }
    let mut warnings = Vec::new();
    let manifest = read_manifest(dir, &mut warnings)?;
    let layout = Layout::scan(dir, &mut warnings)?;
    if layout.kubernetes.is_none() && layout.truenas.is_empty() && layout.system.is_none() {
        return Err(BundleError::Empty {
            dir: dir.to_owned(),
        });
    }
    if layout.kubernetes.is_none() && manifest.kubernetes_kinds.is_some() {
        return Err(BundleError::KubernetesMissing {
            path: dir.join(KUBERNETES_FILE),
        });
    }

    let collected_at_from_bundle = manifest.collected_at.is_some();
    let collected_at = manifest
        .collected_at
        .or(options.now)
        .unwrap_or_else(Timestamp::now);
    let stamp = Stamp {
        observed_at: collected_at,
        prefix: manifest
            .collected_at
            .map(|t| t.unix_ms().to_be_bytes().to_vec())
            .unwrap_or_default(),
    };
    let kube_source = SourceId::kubernetes(
        manifest
            .cluster
            .clone()
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "bundle".into()),
    );

    // The system first: its host name names the TrueNAS source of every other event.
    let mut tally = Tally::default();
    let system = match &layout.system {
        Some(files) => Some(truenas::read_system(files)?),
        None => None,
    };
    let nas_source = SourceId::truenas(
        system
            .as_ref()
            .and_then(|s| s.as_ref().ok())
            .map(|s| s.hostname.clone())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "bundle".into()),
    );
    let mut deliver = |env: Envelope, tally: &mut Tally| {
        tally.observe(&env);
        sink(env);
    };
    match &system {
        Some(Ok(system)) => deliver(
            stamp.envelope(
                &nas_source,
                Event::SystemObserved {
                    system: system.clone(),
                },
            ),
            &mut tally,
        ),
        Some(Err(rejected)) => tally.nas_rejected.push(rejected.clone()),
        None => {}
    }

    // Every other file, in parallel.
    let mut jobs: Vec<Job> = Vec::new();
    if let Some(path) = &layout.kubernetes {
        jobs.push(Job::Kubernetes(path.clone()));
    }
    for (class, (method, path)) in &layout.truenas {
        jobs.push(Job::TrueNas(*class, method, path.clone()));
    }
    jobs.sort_by_key(|j| std::cmp::Reverse(std::fs::metadata(j.path()).map_or(0, |m| m.len())));
    let threads = match options.threads {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get().max(2)),
        n => n,
    }
    .min(jobs.len().max(1));
    let errors = run_jobs(
        jobs,
        threads,
        &Context {
            dir: dir.to_owned(),
            stamp: stamp.clone(),
            kube_source: kube_source.clone(),
            nas_source: nas_source.clone(),
        },
        |msg| match msg {
            Msg::Event(env) => deliver(env, &mut tally),
            Msg::NasRejected(r) => tally.nas_rejected.push(r),
            Msg::Skipped(kind) => *tally.skipped.entry(kind).or_default() += 1,
        },
    );
    if let Some(error) = errors.into_iter().next() {
        return Err(error);
    }

    // Completeness markers, after every object.
    let kubernetes = layout.kubernetes.as_ref().map(|_| {
        let (collected, kinds_from) = match &manifest.kubernetes_kinds {
            Some(kinds) => (
                kinds.iter().copied().collect::<BTreeSet<_>>(),
                KindsFrom::BundleJson,
            ),
            None => (
                tally.kube_objects.keys().copied().collect(),
                KindsFrom::Inferred,
            ),
        };
        let mut info = KubernetesInfo {
            source: kube_source.clone(),
            kinds: BTreeMap::new(),
            kinds_from,
            uncollected_objects: BTreeMap::new(),
            skipped: std::mem::take(&mut tally.skipped),
        };
        for (kind, n) in &tally.kube_objects {
            if !collected.contains(kind) {
                info.uncollected_objects.insert(*kind, *n);
            }
        }
        for kind in collected {
            let objects = tally.kube_objects.get(&kind).copied().unwrap_or(0);
            info.kinds.insert(kind, objects);
        }
        info
    });
    if let Some(info) = &kubernetes {
        for (kind, objects) in &info.kinds {
            let event = Event::SyncCompleted {
                kind: *kind,
                objects: *objects,
            };
            deliver(stamp.envelope(&kube_source, event), &mut tally);
        }
        for (kind, n) in &info.uncollected_objects {
            warnings.push(format!(
                "kubernetes.json holds {n} {kind} object(s) but bundle.json does not list {kind} as collected: they are read but {kind} is not judged"
            ));
        }
        for (kind, n) in &info.skipped {
            warnings.push(format!(
                "kubernetes.json holds {n} {kind} item(s), a kind ktd does not read: skipped"
            ));
        }
    }

    let truenas = (!layout.truenas.is_empty() || layout.system.is_some()).then(|| {
        let mut collected = BTreeMap::new();
        for (class, (method, _)) in &layout.truenas {
            let n = tally.nas_objects.get(class).copied().unwrap_or(0);
            collected.insert(*class, (method_file(method), n));
        }
        if layout.system.is_some() {
            let n = u64::from(matches!(system, Some(Ok(_))));
            collected.insert(NasCollection::System, (method_file("system.info"), n));
        }
        let not_collected: Vec<NasCollection> = NasCollection::ALL
            .into_iter()
            .filter(|c| !collected.contains_key(c))
            .collect();
        let counts = PollCounts {
            pools: tally.nas_count(NasCollection::Pools),
            datasets: tally.nas_count(NasCollection::Datasets),
            snapshots: tally.nas_count(NasCollection::Snapshots),
            shares: [
                NasCollection::NfsShares,
                NasCollection::SmbShares,
                NasCollection::IscsiTargets,
                NasCollection::IscsiExtents,
                NasCollection::IscsiTargetExtents,
            ]
            .into_iter()
            .map(|c| tally.nas_count(c))
            .sum(),
            changes: tally.nas_events,
        };
        let version = system
            .as_ref()
            .and_then(|s| s.as_ref().ok())
            .map(|s| s.version.clone());
        TrueNasInfo {
            source: nas_source.clone(),
            version,
            collected,
            not_collected,
            counts,
        }
    });
    if let Some(info) = &truenas {
        let transport = match system.as_ref().and_then(|s| s.as_ref().ok()) {
            // What ktd itself would have used on that release.
            Some(s) if s.release.as_slice() >= [25, 4].as_slice() => ApiTransport::JsonRpc,
            _ => ApiTransport::RestV2,
        };
        let event = Event::PollCompleted {
            poll: 1,
            transport,
            duration_ms: 0,
            counts: info.counts.clone(),
            rejected: tally.nas_rejected.iter().map(ToString::to_string).collect(),
            not_collected: info.not_collected.clone(),
        };
        deliver(stamp.envelope(&nas_source, event), &mut tally);
    }

    let mut rejected = std::mem::take(&mut tally.kube_rejected);
    rejected.append(&mut tally.nas_rejected);
    Ok(BundleInfo {
        dir: dir.to_owned(),
        collected_at,
        collected_at_from_bundle,
        ktd_version: manifest.ktd_version.clone(),
        kubernetes,
        truenas,
        rejected,
        left_out: manifest.left_out.clone(),
        warnings,
        events: tally.events,
    })
}

fn read_manifest(dir: &Path, warnings: &mut Vec<String>) -> Result<BundleManifest, BundleError> {
    let path = dir.join(MANIFEST_FILE);
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BundleManifest::default()),
        Err(source) => return Err(BundleError::Io { path, source }),
    };
    let manifest = BundleManifest::from_json(&text).map_err(|e| BundleError::Manifest {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    for key in manifest.unknown.keys() {
        warnings.push(format!(
            "bundle.json: unknown field `{key}` ignored (known: collected_at, kubernetes_kinds, cluster, ktd_version, left_out)"
        ));
    }
    Ok(manifest)
}

/// Which files a bundle has.
struct Layout {
    kubernetes: Option<PathBuf>,
    /// Classes with a method file (other than the system): the method and the file.
    truenas: BTreeMap<NasCollection, (&'static str, PathBuf)>,
    system: Option<SystemFiles>,
}

/// `system.info` and the optional files that complete it.
pub(super) struct SystemFiles {
    info: PathBuf,
    iscsi_global: Option<PathBuf>,
    services: Option<PathBuf>,
}

impl Layout {
    fn scan(dir: &Path, warnings: &mut Vec<String>) -> Result<Layout, BundleError> {
        let kubernetes = Some(dir.join(KUBERNETES_FILE)).filter(|p| p.is_file());
        let nas_dir = dir.join(TRUENAS_DIR);
        let mut truenas = BTreeMap::new();
        let mut system = None;
        let mut known: BTreeSet<String> = BTreeSet::new();
        let file =
            |method: &str| Some(nas_dir.join(format!("{method}.json"))).filter(|p| p.is_file());
        for class in NasCollection::ALL {
            let found: Vec<(&'static str, PathBuf)> = methods_of(class)
                .iter()
                .filter_map(|m| file(m).map(|p| (*m, p)))
                .collect();
            known.extend(methods_of(class).iter().map(|m| format!("{m}.json")));
            match (class, found.as_slice()) {
                (_, []) => {}
                (NasCollection::System, [(_, info)]) => {
                    system = Some(SystemFiles {
                        info: info.clone(),
                        iscsi_global: file(ISCSI_GLOBAL_CONFIG),
                        services: file(SERVICE_QUERY),
                    });
                }
                (_, [(method, path)]) => {
                    truenas.insert(class, (*method, path.clone()));
                }
                (_, _) => return Err(BundleError::TwoSnapshotFiles { dir: nas_dir }),
            }
        }
        known.insert(format!("{ISCSI_GLOBAL_CONFIG}.json"));
        known.insert(format!("{SERVICE_QUERY}.json"));
        if system.is_none() {
            for extra in [ISCSI_GLOBAL_CONFIG, SERVICE_QUERY] {
                if file(extra).is_some() {
                    warnings.push(format!(
                        "truenas/{extra}.json is ignored without truenas/system.info.json (it only completes the system)"
                    ));
                }
            }
        }
        for (location, entries) in [
            ("", std::fs::read_dir(dir).ok()),
            ("truenas/", std::fs::read_dir(&nas_dir).ok()),
        ] {
            for entry in entries.into_iter().flatten().flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.ends_with(".partial") {
                    warnings.push(format!(
                        "{location}{name} is left over from an interrupted `ktd collect`: ignored (re-collect if the bundle lacks what it was writing)"
                    ));
                } else if location.is_empty() {
                    let expected = [MANIFEST_FILE, KUBERNETES_FILE, TRUENAS_DIR];
                    if !expected.contains(&name.as_str()) {
                        warnings.push(format!("{name} is not part of a bundle: ignored"));
                    }
                } else if !known.contains(&name) {
                    warnings.push(format!(
                        "truenas/{name} is not a TrueNAS method ktd reads: ignored"
                    ));
                }
            }
        }
        Ok(Layout {
            kubernetes,
            truenas,
            system,
        })
    }
}

/// `observed_at` and the version prefix of every event of one bundle.
#[derive(Clone)]
pub(super) struct Stamp {
    observed_at: Timestamp,
    prefix: Vec<u8>,
}

impl Stamp {
    /// Wraps `event` with a content-derived version.
    pub(super) fn envelope(&self, source: &SourceId, event: Event) -> Envelope {
        let mut version = self.prefix.clone();
        version.extend_from_slice(&content_digest(&event));
        Envelope::new(source.clone(), self.observed_at, event, &version)
    }
}

/// What reader threads share.
pub(super) struct Context {
    pub(super) dir: PathBuf,
    pub(super) stamp: Stamp,
    pub(super) kube_source: SourceId,
    pub(super) nas_source: SourceId,
}

impl Context {
    /// The path of `path` relative to the bundle, for messages.
    pub(super) fn relative(&self, path: &Path) -> String {
        path.strip_prefix(&self.dir)
            .unwrap_or(path)
            .display()
            .to_string()
    }
}

/// One file to read.
enum Job {
    Kubernetes(PathBuf),
    TrueNas(NasCollection, &'static str, PathBuf),
}

impl Job {
    fn path(&self) -> &Path {
        match self {
            Job::Kubernetes(p) | Job::TrueNas(_, _, p) => p,
        }
    }
}

/// What reader threads send to the calling thread. Nearly every message is an event, so
/// boxing it would only add an allocation per event.
#[allow(clippy::large_enum_variant)]
pub(super) enum Msg {
    /// An event for the sink.
    Event(Envelope),
    /// A TrueNAS object that could not be read (it goes into `PollCompleted.rejected`).
    NasRejected(Rejected),
    /// A Kubernetes item of a kind ktd does not read.
    Skipped(String),
}

/// The sending end of a reader thread: stops the thread (by failing its reads) once the
/// calling thread has given up.
#[derive(Clone)]
pub(super) struct Out {
    tx: SyncSender<Msg>,
    stop: Arc<AtomicBool>,
}

impl Out {
    pub(super) fn send(&self, msg: Msg) {
        if self.tx.send(msg).is_err() {
            self.stop.store(true, Ordering::Relaxed);
        }
    }

    /// `file` opened for streaming; reads fail once reading has been stopped.
    pub(super) fn open(&self, path: &Path) -> Result<Stoppable<File>, BundleError> {
        let file = File::open(path).map_err(|source| BundleError::Io {
            path: path.to_owned(),
            source,
        })?;
        Ok(Stoppable {
            inner: file,
            stop: self.stop.clone(),
        })
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// A reader that fails once reading has been stopped.
pub(super) struct Stoppable<R> {
    inner: R,
    stop: Arc<AtomicBool>,
}

impl<R: Read> Read for Stoppable<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(std::io::Error::other("reading stopped"));
        }
        self.inner.read(buf)
    }
}

/// Runs `jobs` on `threads` scoped threads; `on_msg` sees every message on the calling
/// thread. Returns the errors of the files that failed (none when all were read).
fn run_jobs(
    jobs: Vec<Job>,
    threads: usize,
    ctx: &Context,
    mut on_msg: impl FnMut(Msg),
) -> Vec<BundleError> {
    let queue = Mutex::new(jobs.into_iter());
    let errors = Mutex::new(Vec::new());
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx): (SyncSender<Msg>, Receiver<Msg>) = sync_channel(4096);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let out = Out {
                tx: tx.clone(),
                stop: stop.clone(),
            };
            let (queue, errors) = (&queue, &errors);
            scope.spawn(move || {
                loop {
                    let job = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                    let Some(job) = job else { break };
                    let result = match &job {
                        Job::Kubernetes(path) => kube::read_kubernetes(ctx, path, &out),
                        Job::TrueNas(class, method, path) => {
                            truenas::read_class(ctx, *class, method, path, &out)
                        }
                    };
                    if let Err(e) = result {
                        // A failure caused by stopping is not the file's fault.
                        if !out.stopped() {
                            out.stop.store(true, Ordering::Relaxed);
                            errors.lock().unwrap_or_else(|e| e.into_inner()).push(e);
                        }
                    }
                }
            });
        }
        drop(tx);
        for msg in rx {
            if !stop.load(Ordering::Relaxed) {
                on_msg(msg);
            }
        }
    });
    errors.into_inner().unwrap_or_else(|e| e.into_inner())
}

/// Counts kept by the calling thread.
#[derive(Default)]
struct Tally {
    events: u64,
    kube_objects: BTreeMap<KubeKind, u64>,
    kube_rejected: Vec<Rejected>,
    skipped: BTreeMap<String, u64>,
    nas_objects: BTreeMap<NasCollection, u64>,
    nas_events: u64,
    nas_rejected: Vec<Rejected>,
}

impl Tally {
    fn observe(&mut self, env: &Envelope) {
        self.events += 1;
        let nas = |t: &mut Tally, c: NasCollection| {
            *t.nas_objects.entry(c).or_default() += 1;
            t.nas_events += 1;
        };
        match &env.event {
            Event::ObjectApplied { object } => {
                *self.kube_objects.entry(object.kind()).or_default() += 1;
            }
            Event::ObjectRejected { kind, key, error } => {
                *self.kube_objects.entry(*kind).or_default() += 1;
                self.kube_rejected.push(Rejected {
                    file: KUBERNETES_FILE.into(),
                    object: match key {
                        Some(key) => format!("{kind} {key}"),
                        None => format!("{kind} (unnamed)"),
                    },
                    error: error.clone(),
                });
            }
            Event::SystemObserved { .. } => self.nas_events += 1,
            Event::PoolObserved { .. } => nas(self, NasCollection::Pools),
            Event::DatasetObserved { .. } => nas(self, NasCollection::Datasets),
            Event::SnapshotObserved { .. } => nas(self, NasCollection::Snapshots),
            Event::ShareObserved { share } => nas(self, NasCollection::of_share(share.key().kind)),
            _ => {}
        }
    }

    fn nas_count(&self, class: NasCollection) -> u64 {
        self.nas_objects.get(&class).copied().unwrap_or(0)
    }
}

/// Turns a parser's message into [`BundleError::Malformed`] for `path`.
pub(super) fn malformed(
    path: &Path,
    detail: impl Into<String>,
    hint: impl Into<String>,
) -> BundleError {
    BundleError::Malformed {
        path: path.to_owned(),
        detail: detail.into(),
        hint: hint.into(),
    }
}

/// The system of a bundle, or why its `system.info` could not be read.
pub(super) type SystemResult = Result<SystemInfo, Rejected>;
