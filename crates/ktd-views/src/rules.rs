//! The finding catalogue as rules: each one says what it needs to have observed completely
//! and derives its findings from the inventory and its join.
//!
//! Every cross-system rule waits out the grace period on the resource's own creation (or
//! phase change) time, because the two systems are observed at different moments (a watch
//! is live, a poll is up to one interval old) and democratic-csi works in several steps.

use ktd_model::kube::{PersistentVolume, PvPhase, PvcPhase};
use ktd_model::truenas::{
    Dataset, DatasetType, HasUserProperties, NasCollection, Share, Snapshot, props,
};
use ktd_model::{
    Finding, FindingId, FindingKind, KubeKind, Related, ResourceRef, Severity, Timestamp,
};

use crate::config::{Age, FindingsConfig};
use crate::inventory::Inventory;
use crate::topology::{Topology, is_dcsi, is_detached_snapshot, leaf};

use KubeKind as K;
use NasCollection as N;

/// Helper snapshots democratic-csi takes for detached snapshots and clones.
const HELPER_FOR_SNAPSHOT: &str = "volume-source-for-snapshot-";
const HELPER_FOR_VOLUME: &str = "volume-source-for-volume-";

/// One rule: a finding kind (restricted to some subject types when the kind has rules
/// with different needs), what it needs, and how it derives findings.
pub struct Rule {
    /// The kind it yields.
    pub kind: FindingKind,
    /// Subject types it judges (its findings of other types are left alone).
    pub subjects: &'static [&'static str],
    /// Kubernetes kinds that must be synced.
    pub kube: &'static [KubeKind],
    /// TrueNAS classes that must be complete.
    pub nas: &'static [NasCollection],
    /// Derives the findings.
    pub eval: fn(&Ctx<'_>, &mut Vec<Finding>),
}

/// What a rule sees.
pub struct Ctx<'a> {
    /// Both systems.
    pub inv: &'a Inventory,
    /// Their join.
    pub topo: &'a Topology<'a>,
    /// Thresholds.
    pub cfg: &'a FindingsConfig,
    /// Event time.
    pub now: Timestamp,
    /// The earliest future moment at which an age condition the rules checked becomes
    /// true: until then, time alone changes nothing.
    pub deadline: std::cell::Cell<Option<Timestamp>>,
}

impl Ctx<'_> {
    /// Whether `t` lies at least `age` before now. Unknown times are never old enough.
    fn older(&self, t: Option<Timestamp>, age: Age) -> bool {
        let Some(t) = t else { return false };
        let due = t.unix_ms().saturating_add(age.as_millis());
        if self.now.unix_ms() >= due {
            return true;
        }
        let due = Timestamp::from_unix_ms(due);
        if self.deadline.get().is_none_or(|d| due < d) {
            self.deadline.set(Some(due));
        }
        false
    }

    fn past_grace(&self, t: Option<Timestamp>) -> bool {
        self.older(t, self.cfg.grace)
    }
}

/// Every rule, in catalogue order.
pub const RULES: &[Rule] = &[
    Rule {
        kind: FindingKind::PvBackingMissing,
        subjects: &["PersistentVolume"],
        kube: &[K::PersistentVolume],
        nas: &[N::Datasets],
        eval: pv_backing_missing,
    },
    Rule {
        kind: FindingKind::PvReleased,
        subjects: &["PersistentVolume"],
        kube: &[K::PersistentVolume],
        nas: &[],
        eval: pv_released,
    },
    Rule {
        kind: FindingKind::PvcPending,
        subjects: &["PersistentVolumeClaim"],
        kube: &[K::PersistentVolumeClaim],
        nas: &[],
        eval: pvc_pending,
    },
    Rule {
        kind: FindingKind::PvcLost,
        subjects: &["PersistentVolumeClaim"],
        kube: &[K::PersistentVolumeClaim],
        nas: &[],
        eval: pvc_lost,
    },
    Rule {
        kind: FindingKind::DatasetOrphaned,
        subjects: &["dataset", "zvol"],
        kube: &[K::PersistentVolume],
        nas: &[N::Datasets],
        eval: dataset_orphaned,
    },
    Rule {
        kind: FindingKind::DatasetProvisionIncomplete,
        subjects: &["dataset", "zvol"],
        kube: &[K::PersistentVolume],
        nas: &[N::Datasets],
        eval: dataset_provision_incomplete,
    },
    Rule {
        kind: FindingKind::VolumeattachmentStale,
        subjects: &["VolumeAttachment"],
        kube: &[K::VolumeAttachment, K::PersistentVolume, K::Node],
        nas: &[],
        eval: volumeattachment_stale,
    },
    Rule {
        kind: FindingKind::SnapshotOrphaned,
        subjects: &["snapshot", "dataset", "zvol"],
        kube: &[K::PersistentVolume, K::VolumeSnapshotContent],
        nas: &[N::Datasets, N::Snapshots],
        eval: snapshot_orphaned,
    },
    Rule {
        kind: FindingKind::SnapshotcontentBackingMissing,
        subjects: &["VolumeSnapshotContent"],
        kube: &[K::PersistentVolume, K::VolumeSnapshotContent],
        nas: &[N::Datasets, N::Snapshots],
        eval: snapshotcontent_backing_missing,
    },
    Rule {
        kind: FindingKind::SnapshotcontentOrphaned,
        subjects: &["VolumeSnapshotContent"],
        kube: &[K::VolumeSnapshotContent, K::VolumeSnapshot],
        nas: &[],
        eval: snapshotcontent_orphaned,
    },
    Rule {
        kind: FindingKind::VolumesnapshotNotReady,
        subjects: &["VolumeSnapshot"],
        kube: &[K::VolumeSnapshot],
        nas: &[],
        eval: volumesnapshot_not_ready,
    },
    Rule {
        kind: FindingKind::SnapshotHelperLeftover,
        subjects: &["snapshot"],
        kube: &[K::PersistentVolume],
        nas: &[N::Datasets, N::Snapshots],
        eval: snapshot_helper_leftover,
    },
    Rule {
        kind: FindingKind::CloneBlocksDelete,
        subjects: &["snapshot", "dataset", "zvol"],
        kube: &[K::PersistentVolume, K::VolumeSnapshotContent],
        nas: &[N::Datasets, N::Snapshots],
        eval: clone_blocks_delete,
    },
    Rule {
        kind: FindingKind::ShareOrphaned,
        subjects: &["nfs-share"],
        kube: &[K::PersistentVolume],
        nas: &[N::Datasets, N::NfsShares],
        eval: nfs_share_orphaned,
    },
    Rule {
        kind: FindingKind::ShareOrphaned,
        subjects: &["smb-share"],
        kube: &[K::PersistentVolume],
        nas: &[N::Datasets, N::SmbShares],
        eval: smb_share_orphaned,
    },
    Rule {
        kind: FindingKind::IscsiOrphaned,
        subjects: &["iscsi-extent"],
        kube: &[K::PersistentVolume],
        nas: &[N::Datasets, N::IscsiExtents],
        eval: iscsi_orphaned,
    },
];

// ---- building findings -------------------------------------------------------------------

struct Draft(Finding);

fn draft(kind: FindingKind, severity: Severity, subject: ResourceRef, now: Timestamp) -> Draft {
    Draft(Finding {
        id: FindingId::of(kind, &subject),
        kind,
        severity,
        subject,
        related: Vec::new(),
        reason: String::new(),
        reclaimable_bytes: None,
        first_seen: now,
        last_seen: now,
        remediation: Vec::new(),
    })
}

impl Draft {
    fn related(mut self, resource: ResourceRef, relation: &str) -> Self {
        self.0.related.push(Related {
            resource,
            relation: relation.to_owned(),
        });
        self
    }
    fn reason(mut self, reason: String) -> Self {
        self.0.reason = reason;
        self
    }
    fn step(mut self, step: String) -> Self {
        self.0.remediation.push(step);
        self
    }
    fn reclaim(mut self, bytes: Option<u64>) -> Self {
        self.0.reclaimable_bytes = bytes.filter(|b| *b > 0);
        self
    }
    fn push(self, out: &mut Vec<Finding>) {
        out.push(self.0);
    }
}

fn ds_type(d: &Dataset) -> &'static str {
    match d.kind {
        DatasetType::Volume => "zvol",
        DatasetType::Filesystem => "dataset",
    }
}

fn ds_ref(d: &Dataset) -> ResourceRef {
    ResourceRef::truenas(ds_type(d), &d.name)
}

fn snap_ref(name: &str) -> ResourceRef {
    ResourceRef::truenas("snapshot", name)
}

fn pv_ref(pv: &PersistentVolume) -> ResourceRef {
    ResourceRef::kube("PersistentVolume", &pv.meta.name)
}

/// Bytes as people read them (`1.5 GiB`), for reasons and reports.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn used(d: &Dataset) -> Option<u64> {
    d.used.or(d.used_by_dataset)
}

/// Evidence a dataset carries with it: its shares, iSCSI assets and clones of its snapshots.
fn dataset_evidence(ctx: &Ctx<'_>, d: &Dataset, mut f: Draft) -> Draft {
    let mountpoint = d.mountpoint.as_deref();
    for share in ctx.inv.shares().values() {
        match share {
            Share::Nfs(s) if Some(s.path.as_str()) == mountpoint => {
                f = f.related(
                    ResourceRef::truenas("nfs-share", &s.path),
                    "NFS share of the dataset",
                );
            }
            Share::Smb(s) if Some(s.path.as_str()) == mountpoint => {
                f = f.related(
                    ResourceRef::truenas("smb-share", &s.name),
                    "SMB share of the dataset",
                );
            }
            Share::IscsiExtent(e) if e.zvol() == Some(d.name.as_str()) => {
                f = f.related(
                    ResourceRef::truenas("iscsi-extent", &e.name),
                    "iSCSI extent of the zvol",
                );
                for t in iscsi_targets_of(ctx, e.id) {
                    f = f.related(
                        ResourceRef::truenas("iscsi-target", t),
                        "iSCSI target of the extent",
                    );
                }
            }
            _ => {}
        }
    }
    f
}

fn iscsi_targets_of<'a>(ctx: &Ctx<'a>, extent: i64) -> Vec<&'a str> {
    let shares = ctx.inv.shares();
    let mut out = Vec::new();
    for share in shares.values() {
        if let Share::IscsiTargetExtent(te) = share
            && te.extent == extent
        {
            for s in shares.values() {
                if let Share::IscsiTarget(t) = s
                    && t.id == te.target
                {
                    out.push(t.name.as_str());
                }
            }
        }
    }
    out
}

fn nas_name(ctx: &Ctx<'_>) -> String {
    ctx.inv
        .system()
        .map(|s| s.hostname.clone())
        .filter(|h| !h.is_empty())
        .or_else(|| ctx.inv.nas_source().map(|s| s.instance.clone()))
        .unwrap_or_else(|| "TrueNAS".into())
}

/// A PV whose deletion is in flight: released with policy Delete (democratic-csi is
/// destroying the dataset) or with a deletion timestamp, less than the grace ago.
fn deletion_in_flight(ctx: &Ctx<'_>, pv: &PersistentVolume) -> bool {
    let releasing = pv.phase == PvPhase::Released
        && pv.reclaim_policy.as_deref() == Some("Delete")
        && !ctx.past_grace(pv.phase_since);
    let deleting = pv.meta.deleting.is_some() && !ctx.past_grace(pv.meta.deleting);
    releasing || deleting
}

// ---- Kubernetes-side volumes -------------------------------------------------------------

fn pv_backing_missing(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    for pv in ctx.inv.pvs().filter(|pv| is_dcsi(pv)) {
        let Some(csi) = &pv.csi else { continue };
        if !ctx.topo.driver_on_nas(&csi.driver)
            || !ctx.past_grace(pv.meta.created)
            || deletion_in_flight(ctx, pv)
            || ctx
                .topo
                .volume_dataset(ctx.inv, &csi.volume_handle)
                .is_some()
        {
            continue;
        }
        let parents = &ctx.topo.driver_parents[csi.driver.as_str()];
        let expected: Vec<String> = parents
            .iter()
            .map(|p| format!("{p}/{}", csi.volume_handle))
            .collect();
        let attached = ctx
            .inv
            .attachments()
            .any(|va| va.pv_name.as_deref() == Some(&pv.meta.name) && va.attached);
        let severity = if attached {
            Severity::Critical
        } else {
            Severity::High
        };
        let mut f =
            draft(FindingKind::PvBackingMissing, severity, pv_ref(pv), ctx.now).reason(format!(
                "PersistentVolume {} ({}) needs {} `{}`, which does not exist on {}.",
                pv.meta.name,
                csi.driver,
                if expected.len() == 1 {
                    "dataset"
                } else {
                    "one of the datasets"
                },
                expected.join("`, `"),
                nas_name(ctx)
            ));
        for name in &expected {
            f = f.related(
                ResourceRef::truenas("dataset", name),
                "expected backing dataset (missing)",
            );
        }
        if let Some(claim) = &pv.claim {
            f = f.related(
                ResourceRef::kube_ns(
                    "PersistentVolumeClaim",
                    claim.namespace.as_deref().unwrap_or(""),
                    &claim.name,
                ),
                "claim",
            );
        }
        f.step(format!(
            "Look for the dataset on TrueNAS (`zfs list -t all | grep {}`): it may have been renamed, destroyed by hand, or live on another pool",
            csi.volume_handle
        ))
        .step("If it was destroyed, restore it from a snapshot or replica under the same name before the workload writes again".into())
        .step(format!(
            "If the data is not needed, delete the claim and then PersistentVolume {} so the workload gets a new volume",
            pv.meta.name
        ))
        .push(out);
    }
}

fn pv_released(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    for pv in ctx
        .inv
        .pvs()
        .filter(|pv| is_dcsi(pv) && pv.phase == PvPhase::Released)
    {
        let policy = pv.reclaim_policy.as_deref().unwrap_or("Delete");
        // Without a phase transition time, only a Retain volume is known to stay Released.
        let since = pv.phase_since.or(if policy == "Retain" {
            pv.meta.created
        } else {
            None
        });
        if !ctx.past_grace(since) {
            continue;
        }
        let dataset = pv
            .csi
            .as_ref()
            .and_then(|c| ctx.topo.volume_dataset(ctx.inv, &c.volume_handle));
        let severity = if policy == "Retain" {
            Severity::Medium
        } else {
            Severity::High
        };
        let what = if policy == "Retain" {
            "its reclaim policy is Retain, so nothing deletes it"
        } else {
            "its reclaim policy is Delete but the volume was not deleted, so DeleteVolume keeps failing"
        };
        let mut f = draft(FindingKind::PvReleased, severity, pv_ref(pv), ctx.now).reason(format!(
            "PersistentVolume {} was released by its claim {} and {what}{}.",
            pv.meta.name,
            pv.claim
                .as_ref()
                .map(|c| format!("{}/{}", c.namespace.as_deref().unwrap_or(""), c.name))
                .unwrap_or_else(|| "(unknown)".into()),
            dataset
                .and_then(used)
                .map(|b| format!(
                    "; dataset {} still uses {}",
                    dataset.map_or("", |d| &d.name),
                    human_bytes(b)
                ))
                .unwrap_or_default()
        ));
        if let Some(d) = dataset {
            f = dataset_evidence(ctx, d, f.related(ds_ref(d), "backing dataset"));
        }
        if let Some(claim) = &pv.claim {
            f = f.related(
                ResourceRef::kube_ns(
                    "PersistentVolumeClaim",
                    claim.namespace.as_deref().unwrap_or(""),
                    &claim.name,
                ),
                "former claim",
            );
        }
        let f = if policy == "Retain" {
            f.step("Check with the owner of the former claim whether the data is still needed (a Retain volume is kept on purpose)".into())
                .step(format!("If not, delete PersistentVolume {}, then destroy its dataset on TrueNAS (Retain never deletes it)", pv.meta.name))
                .step(format!("To re-use the data instead, remove spec.claimRef from PersistentVolume {} and bind a new claim to it", pv.meta.name))
        } else {
            f.step("Read the CSI controller's logs and the PersistentVolume's events for the DeleteVolume error (dependent clones, busy dataset, API key)".into())
                .step("Fix the cause; the provisioner retries by itself and the PersistentVolume disappears".into())
        };
        f.reclaim(dataset.and_then(used)).push(out);
    }
}

fn pvc_pending(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    for pvc in ctx.inv.pvcs().filter(|p| p.phase == PvcPhase::Pending) {
        if !ctx.older(pvc.meta.created, ctx.cfg.pvc_pending) {
            continue;
        }
        let ns = pvc.meta.namespace.as_deref().unwrap_or("");
        let mut f = draft(
            FindingKind::PvcPending,
            Severity::Medium,
            ResourceRef::kube_ns("PersistentVolumeClaim", ns, &pvc.meta.name),
            ctx.now,
        )
        .reason(format!(
            "PersistentVolumeClaim {ns}/{} has been Pending for more than {} (StorageClass {}).",
            pvc.meta.name,
            ctx.cfg.pvc_pending,
            pvc.storage_class.as_deref().unwrap_or("(default)")
        ));
        if let Some(sc) = &pvc.storage_class {
            f = f.related(ResourceRef::kube("StorageClass", sc), "storage class");
        }
        f.step(format!("`kubectl describe pvc -n {ns} {}`: the events name the provisioning error", pvc.meta.name))
            .step("Check that the StorageClass exists and its provisioner (the democratic-csi controller) is running; `ktd validate` checks both".into())
            .step("If the claim waits for a consumer (WaitForFirstConsumer), schedule the pod or delete the unused claim".into())
            .push(out);
    }
}

fn pvc_lost(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    for pvc in ctx.inv.pvcs().filter(|p| p.phase == PvcPhase::Lost) {
        let ns = pvc.meta.namespace.as_deref().unwrap_or("");
        let mut f = draft(
            FindingKind::PvcLost,
            Severity::High,
            ResourceRef::kube_ns("PersistentVolumeClaim", ns, &pvc.meta.name),
            ctx.now,
        )
        .reason(format!(
            "PersistentVolumeClaim {ns}/{} is Lost: its PersistentVolume {} no longer exists.",
            pvc.meta.name,
            pvc.volume_name.as_deref().unwrap_or("(unknown)")
        ));
        if let Some(pv) = &pvc.volume_name {
            f = f.related(
                ResourceRef::kube("PersistentVolume", pv),
                "bound volume (missing)",
            );
        }
        f.step("Find out whether the PersistentVolume was deleted by hand; its dataset may still exist on TrueNAS (look for a dataset-orphaned finding)".into())
            .step("To recover, recreate the PersistentVolume pointing at the dataset (same volumeHandle and attributes) and it binds again".into())
            .step("Otherwise delete the claim and let the workload create a new one".into())
            .push(out);
    }
}

// ---- TrueNAS-side volumes ----------------------------------------------------------------

fn dataset_orphaned(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    for d in ctx.inv.datasets().values() {
        if !d.is_managed()
            || !ctx.topo.in_volume_parent(&d.name)
            || d.own_prop(props::PROVISION_SUCCESS) != Some("true")
            || ctx.topo.pv_by_handle.contains_key(d.leaf())
            || d.own_prop(props::CSI_VOLUME_NAME)
                .is_some_and(|n| ctx.topo.pv_names.contains(n))
            || !ctx.past_grace(d.creation)
        {
            continue;
        }
        let pv_name = d.own_prop(props::CSI_VOLUME_NAME).unwrap_or("(unknown)");
        let snaps = ctx.inv.snapshots_of(&d.name).count();
        let f = draft(FindingKind::DatasetOrphaned, Severity::Medium, ds_ref(d), ctx.now)
            .reason(format!(
                "{} {} was provisioned by democratic-csi for PersistentVolume {pv_name}, which no longer exists{}.",
                if d.kind == DatasetType::Volume { "Zvol" } else { "Dataset" },
                d.name,
                used(d).map(|b| format!("; it uses {}", human_bytes(b))).unwrap_or_default()
            ))
            .related(ResourceRef::kube("PersistentVolume", pv_name), "volume it was provisioned for (missing)");
        let f = dataset_evidence(ctx, d, f);
        let f = if snaps > 0 {
            f.step(format!(
                "It has {snaps} snapshot(s): check none is needed for a restore"
            ))
        } else {
            f
        };
        f.step("Confirm no other cluster uses this parent dataset (several clusters may share a NAS)".into())
            .step(format!(
                "Delete its shares, then `zfs destroy -r {}` (or Datasets > Delete in the TrueNAS UI); `ktd remediate` can quarantine it first",
                d.name
            ))
            .reclaim(used(d))
            .push(out);
    }
}

fn dataset_provision_incomplete(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    for d in ctx.inv.datasets().values() {
        if !d.is_managed()
            || !ctx.topo.in_volume_parent(&d.name)
            || d.own_prop(props::PROVISION_SUCCESS) == Some("true")
            || is_detached_snapshot(d)
            || !ctx.past_grace(d.creation)
        {
            continue;
        }
        let pv = d.own_prop(props::CSI_VOLUME_NAME);
        let mut f = draft(FindingKind::DatasetProvisionIncomplete, Severity::Low, ds_ref(d), ctx.now)
            .reason(format!(
                "{} was created by democratic-csi more than {} ago but never marked provision_success: CreateVolume failed part-way.",
                d.name, ctx.cfg.grace
            ));
        if let Some(pv) = pv {
            let exists = ctx.topo.pv_names.contains(pv);
            f = f.related(
                ResourceRef::kube("PersistentVolume", pv),
                if exists {
                    "volume it was provisioned for"
                } else {
                    "volume it was provisioned for (never created)"
                },
            );
        }
        dataset_evidence(ctx, d, f)
            .step(
                "Read the CSI controller's logs for the failed CreateVolume of this volume".into(),
            )
            .step(format!(
                "If no PersistentVolume uses it, delete its shares and `zfs destroy -r {}`",
                d.name
            ))
            .reclaim(used(d))
            .push(out);
    }
}

fn volumeattachment_stale(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    for va in ctx.inv.attachments() {
        let mut problems = Vec::new();
        let old = ctx.past_grace(va.meta.created);
        let pv_missing = va
            .pv_name
            .as_deref()
            .is_some_and(|pv| ctx.inv.pv(pv).is_none());
        if pv_missing && old {
            problems.push(format!(
                "its PersistentVolume {} no longer exists",
                va.pv_name.as_deref().unwrap_or("")
            ));
        }
        let node_missing = !ctx.inv.has_node(&va.node_name);
        if node_missing && old {
            problems.push(format!("its node {} no longer exists", va.node_name));
        }
        for (what, err) in [("attach", &va.attach_error), ("detach", &va.detach_error)] {
            if let Some(e) = err
                && ctx.past_grace(e.time.or(va.meta.created))
            {
                problems.push(format!("its {what} error persists: {}", e.message));
            }
        }
        if problems.is_empty() {
            continue;
        }
        let mut f = draft(
            FindingKind::VolumeattachmentStale,
            Severity::Medium,
            ResourceRef::kube("VolumeAttachment", &va.meta.name),
            ctx.now,
        )
        .reason(format!(
            "VolumeAttachment {}: {}.",
            va.meta.name,
            problems.join("; ")
        ));
        if let Some(pv) = &va.pv_name {
            f = f.related(
                ResourceRef::kube("PersistentVolume", pv),
                if pv_missing {
                    "volume (missing)"
                } else {
                    "volume"
                },
            );
        }
        f = f.related(
            ResourceRef::kube("Node", &va.node_name),
            if node_missing {
                "node (missing)"
            } else {
                "node"
            },
        );
        f.step(format!("`kubectl describe volumeattachment {}` and the CSI node plugin logs on {}", va.meta.name, va.node_name))
            .step("If the volume or node is gone, remove the attachment's finalizer (`kubectl patch volumeattachment <name> --type merge -p '{\"metadata\":{\"finalizers\":null}}'`) after making sure nothing is mounted".into())
            .push(out);
    }
}

// ---- snapshots -----------------------------------------------------------------------------

fn is_csi_snapshot(s: &Snapshot) -> bool {
    s.is_managed() && s.own_prop(props::CSI_SNAPSHOT_NAME).is_some()
}

fn is_helper(s: &Snapshot) -> bool {
    s.snapshot_name.starts_with(HELPER_FOR_SNAPSHOT)
        || s.snapshot_name.starts_with(HELPER_FOR_VOLUME)
}

fn snapshot_orphaned(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    let unclaimed = |handle: &str| !ctx.topo.contents_by_handle.contains_key(handle);
    for s in ctx.inv.snapshots().values() {
        if !is_csi_snapshot(s)
            || s.defer_destroy
            || !ctx.topo.in_volume_parent(&s.dataset)
            || !ctx.past_grace(s.creation)
        {
            continue;
        }
        let handle = Topology::handle_of(&s.name);
        if !unclaimed(&handle) {
            continue;
        }
        let csi_name = s.own_prop(props::CSI_SNAPSHOT_NAME).unwrap_or("");
        let mut f = draft(FindingKind::SnapshotOrphaned, Severity::Low, snap_ref(&s.name), ctx.now)
            .reason(format!(
                "ZFS snapshot {} was taken by democratic-csi ({csi_name}) but no VolumeSnapshotContent has handle {handle}{}.",
                s.name,
                s.used.map(|b| format!("; it holds {}", human_bytes(b))).unwrap_or_default()
            ))
            .related(ResourceRef::truenas("dataset", &s.dataset), "snapshot of");
        if let Some(pv) = ctx.topo.pv_by_handle.get(leaf(&s.dataset)) {
            f = f.related(pv_ref(pv), "volume");
        }
        if let Some(clones) = ctx.topo.origins.get(s.name.as_str()) {
            for c in clones {
                f = f.related(
                    ResourceRef::truenas("dataset", c),
                    "clone (destroy it first)",
                );
            }
        }
        f.step("Check that no VolumeSnapshot in any namespace should point at it (a VolumeSnapshotContent may have been deleted by hand)".into())
            .step(format!("If it is not needed, `zfs destroy {}`", s.name))
            .step("To keep it usable from Kubernetes instead, import it with a pre-provisioned VolumeSnapshotContent (spec.source.snapshotHandle) and a VolumeSnapshot".into())
            .reclaim(s.used)
            .push(out);
    }
    for d in ctx.inv.datasets().values() {
        if !is_detached_snapshot(d)
            || !ctx.topo.is_detached_position(&d.name)
            || !ctx.past_grace(d.creation)
        {
            continue;
        }
        let handle = Topology::handle_of(&d.name);
        if !unclaimed(&handle) {
            continue;
        }
        let f = draft(FindingKind::SnapshotOrphaned, Severity::Low, ds_ref(d), ctx.now)
            .reason(format!(
                "Detached snapshot {} was made by democratic-csi but no VolumeSnapshotContent has handle {handle}{}.",
                d.name,
                used(d).map(|b| format!("; it uses {}", human_bytes(b))).unwrap_or_default()
            ));
        let mut f = f;
        for s in ctx.inv.snapshots_of(&d.name) {
            if let Some(clones) = ctx.topo.origins.get(s.name.as_str()) {
                for c in clones {
                    f = f.related(
                        ResourceRef::truenas("dataset", c),
                        "clone (destroy it first)",
                    );
                }
            }
        }
        f.step("Check that no VolumeSnapshot should point at it".into())
            .step(format!(
                "If it is not needed, `zfs destroy -r {}` (and its container if it is left empty)",
                d.name
            ))
            .reclaim(used(d))
            .push(out);
    }
}

fn snapshot_exists(ctx: &Ctx<'_>, handle: &str) -> Option<ResourceRef> {
    if handle.contains('@') {
        ctx.topo.volume_parents.iter().find_map(|p| {
            let name = format!("{p}/{handle}");
            ctx.inv
                .snapshots()
                .contains_key(&name)
                .then(|| snap_ref(&name))
        })
    } else {
        ctx.topo
            .detached_parents
            .iter()
            .find_map(|p| ctx.inv.datasets().get(&format!("{p}/{handle}")).map(ds_ref))
    }
}

fn snapshotcontent_backing_missing(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    for c in ctx.inv.snapshot_contents() {
        let Some(handle) = c.handle() else { continue };
        if !ctx.topo.driver_on_nas(&c.driver)
            || c.meta.deleting.is_some()
            || !ctx.past_grace(c.meta.created)
            || snapshot_exists(ctx, handle).is_some()
        {
            continue;
        }
        let where_ = if handle.contains('@') {
            format!(
                "a ZFS snapshot `<parent>/{handle}` under {}",
                join(&ctx.topo.volume_parents)
            )
        } else {
            format!(
                "a detached snapshot dataset `<parent>/{handle}` under {}",
                join(&ctx.topo.detached_parents)
            )
        };
        let mut f = draft(
            FindingKind::SnapshotcontentBackingMissing,
            Severity::High,
            ResourceRef::kube("VolumeSnapshotContent", &c.meta.name),
            ctx.now,
        )
        .reason(format!(
            "VolumeSnapshotContent {} has handle {handle} but {} has no such snapshot ({where_}): restores from it will fail.",
            c.meta.name,
            nas_name(ctx)
        ));
        if !c.snapshot_ref.name.is_empty() {
            f = f.related(
                ResourceRef::kube_ns(
                    "VolumeSnapshot",
                    c.snapshot_ref.namespace.as_deref().unwrap_or(""),
                    &c.snapshot_ref.name,
                ),
                "bound VolumeSnapshot",
            );
        }
        f.step("Check whether the snapshot was destroyed on TrueNAS (by hand, by a retention task, or with its volume by `zfs destroy -r`)".into())
            .step(format!("Delete the VolumeSnapshot and VolumeSnapshotContent {} (with deletionPolicy Delete the driver's DeleteSnapshot succeeds on a missing snapshot)", c.meta.name))
            .step("Take a new snapshot if one is needed".into())
            .push(out);
    }
}

fn join(set: &std::collections::BTreeSet<String>) -> String {
    if set.is_empty() {
        "(no parent found)".into()
    } else {
        set.iter().cloned().collect::<Vec<_>>().join(", ")
    }
}

fn snapshotcontent_orphaned(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    for c in ctx.inv.snapshot_contents() {
        if c.deletion_policy != "Retain"
            || c.meta.deleting.is_some()
            || !ctx.past_grace(c.meta.created)
        {
            continue;
        }
        let r = &c.snapshot_ref;
        let ns = r.namespace.as_deref().unwrap_or("");
        let bound = ctx
            .inv
            .volume_snapshot(ns, &r.name)
            .is_some_and(|vs| r.uid.as_deref().is_none_or(|uid| uid == vs.meta.uid));
        if bound {
            continue;
        }
        let backing = c.handle().and_then(|h| snapshot_exists(ctx, h));
        let bytes = backing.as_ref().and_then(|b| match b.kind.as_str() {
            "snapshot" => ctx.inv.snapshots().get(&b.name).and_then(|s| s.used),
            _ => ctx.inv.datasets().get(&b.name).and_then(used),
        });
        let mut f = draft(
            FindingKind::SnapshotcontentOrphaned,
            Severity::Low,
            ResourceRef::kube("VolumeSnapshotContent", &c.meta.name),
            ctx.now,
        )
        .reason(format!(
            "VolumeSnapshotContent {} (deletionPolicy Retain) belongs to VolumeSnapshot {ns}/{}, which no longer exists.",
            c.meta.name, r.name
        ))
        .related(ResourceRef::kube_ns("VolumeSnapshot", ns, &r.name), "VolumeSnapshot (missing)");
        if let Some(b) = backing {
            f = f.related(b, "backing snapshot on TrueNAS");
        }
        f.step("If the snapshot is still wanted, bind a new VolumeSnapshot to it (spec.source.volumeSnapshotContentName) after clearing spec.volumeSnapshotRef's uid".into())
            .step(format!("Otherwise set deletionPolicy to Delete and delete it (`kubectl patch volumesnapshotcontent {} --type merge -p '{{\"spec\":{{\"deletionPolicy\":\"Delete\"}}}}'` then `kubectl delete`), which also destroys the ZFS snapshot", c.meta.name))
            .reclaim(bytes)
            .push(out);
    }
}

fn volumesnapshot_not_ready(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    for vs in ctx.inv.volume_snapshots() {
        if vs.ready_to_use == Some(true) {
            continue;
        }
        let old = ctx.older(vs.meta.created, ctx.cfg.snapshot_not_ready);
        if !old && vs.error.is_none() {
            continue;
        }
        let ns = vs.meta.namespace.as_deref().unwrap_or("");
        let why = match &vs.error {
            Some(e) => format!("its error is: {}", e.message),
            None => format!("it has not become ready in {}", ctx.cfg.snapshot_not_ready),
        };
        let mut f = draft(
            FindingKind::VolumesnapshotNotReady,
            Severity::Medium,
            ResourceRef::kube_ns("VolumeSnapshot", ns, &vs.meta.name),
            ctx.now,
        )
        .reason(format!(
            "VolumeSnapshot {ns}/{} is not ready to use: {why}.",
            vs.meta.name
        ));
        if let Some(pvc) = &vs.source_pvc {
            f = f.related(
                ResourceRef::kube_ns("PersistentVolumeClaim", ns, pvc),
                "source claim",
            );
        }
        if let Some(c) = &vs.bound_content {
            f = f.related(
                ResourceRef::kube("VolumeSnapshotContent", c),
                "bound content",
            );
        }
        if let Some(class) = &vs.class {
            f = f.related(
                ResourceRef::kube("VolumeSnapshotClass", class),
                "snapshot class",
            );
        }
        f.step(format!("`kubectl describe volumesnapshot -n {ns} {}` and the snapshot controller / csi-snapshotter logs", vs.meta.name))
            .step("Check the VolumeSnapshotClass's driver matches the volume's CSI driver and the snapshot CRDs are installed (`ktd validate`)".into())
            .push(out);
    }
}

fn snapshot_helper_leftover(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    for s in ctx.inv.snapshots().values() {
        if !is_helper(s)
            || !(ctx.topo.in_volume_parent(&s.dataset)
                || ctx.topo.under_detached_parent(&s.dataset))
            || !ctx.past_grace(s.creation)
        {
            continue;
        }
        let for_volume = s.snapshot_name.starts_with(HELPER_FOR_VOLUME);
        if for_volume && ctx.topo.origins.contains_key(s.name.as_str()) {
            continue; // the origin of a live clone: normal
        }
        let what = if for_volume {
            "a clone-from-volume helper whose clone no longer exists"
        } else {
            "a detached-snapshot helper that should have been destroyed when the copy finished"
        };
        draft(FindingKind::SnapshotHelperLeftover, Severity::Low, snap_ref(&s.name), ctx.now)
            .reason(format!(
                "{} is {what}: a democratic-csi operation failed part-way{}.",
                s.name,
                s.used.map(|b| format!("; it holds {}", human_bytes(b))).unwrap_or_default()
            ))
            .related(ResourceRef::truenas("dataset", &s.dataset), "snapshot of")
            .step("Check the CSI controller's logs around the snapshot's creation time for the failed CreateSnapshot/CreateVolume".into())
            .step(format!("`zfs destroy {}` (nothing depends on it)", s.name))
            .reclaim(s.used)
            .push(out);
    }
}

fn clone_blocks_delete(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    let clone_refs = |f: Draft, snapshot: &str| -> Draft {
        let mut f = f;
        for c in ctx.topo.origins.get(snapshot).into_iter().flatten() {
            f = f.related(ResourceRef::truenas("dataset", c), "dependent clone");
        }
        f
    };
    // (a) snapshots destroyed with `zfs destroy -d` that wait for their clones.
    for s in ctx.inv.snapshots().values() {
        if !s.defer_destroy
            || is_helper(s)
            || !ctx.topo.origins.contains_key(s.name.as_str())
            || !(ctx.topo.in_volume_parent(&s.dataset)
                || ctx.topo.under_detached_parent(&s.dataset))
        {
            continue;
        }
        let f = draft(
            FindingKind::CloneBlocksDelete,
            Severity::Medium,
            snap_ref(&s.name),
            ctx.now,
        )
        .reason(format!(
            "Snapshot {} was deleted (defer_destroy=on) but stays because clones depend on it{}.",
            s.name,
            s.used
                .map(|b| format!("; it holds {}", human_bytes(b)))
                .unwrap_or_default()
        ));
        clone_refs(f, &s.name)
            .step("Decide whether the clones are still needed (they are PersistentVolumes restored from this snapshot)".into())
            .step("`zfs promote <clone>` makes a clone independent; the deferred destroy then completes".into())
            .reclaim(s.used)
            .push(out);
    }
    // (b) released volumes whose DeleteVolume fails with "dependent clones".
    for pv in ctx
        .inv
        .pvs()
        .filter(|pv| is_dcsi(pv) && pv.phase == PvPhase::Released)
    {
        if pv.reclaim_policy.as_deref() != Some("Delete")
            || !ctx.past_grace(pv.phase_since.or(pv.meta.created))
        {
            continue;
        }
        let Some(d) = pv
            .csi
            .as_ref()
            .and_then(|c| ctx.topo.volume_dataset(ctx.inv, &c.volume_handle))
        else {
            continue;
        };
        let cloned: Vec<&Snapshot> = ctx
            .inv
            .snapshots_of(&d.name)
            .filter(|s| ctx.topo.origins.contains_key(s.name.as_str()))
            .collect();
        if cloned.is_empty() {
            continue;
        }
        let mut f = draft(FindingKind::CloneBlocksDelete, Severity::Medium, ds_ref(d), ctx.now)
            .reason(format!(
                "PersistentVolume {} is released with policy Delete, but {} cannot be destroyed: {} of its snapshots have dependent clones.",
                pv.meta.name,
                d.name,
                cloned.len()
            ))
            .related(pv_ref(pv), "released volume");
        for s in &cloned {
            f = clone_refs(f.related(snap_ref(&s.name), "cloned snapshot"), &s.name);
        }
        f.step("Decide whether the clones are still needed".into())
            .step("`zfs promote <clone>` each clone (or delete the clones' PersistentVolumes); the provisioner's next DeleteVolume retry then succeeds".into())
            .reclaim(used(d))
            .push(out);
    }
    // (c) detached snapshots whose VolumeSnapshotContent deletion is blocked by clones.
    for d in ctx.inv.datasets().values() {
        if !is_detached_snapshot(d) || !ctx.topo.is_detached_position(&d.name) {
            continue;
        }
        let handle = Topology::handle_of(&d.name);
        let Some(contents) = ctx.topo.contents_by_handle.get(handle.as_str()) else {
            continue;
        };
        let Some(c) = contents
            .iter()
            .find(|c| c.meta.deleting.is_some() && c.deletion_policy == "Delete")
        else {
            continue;
        };
        let cloned: Vec<&Snapshot> = ctx
            .inv
            .snapshots_of(&d.name)
            .filter(|s| ctx.topo.origins.contains_key(s.name.as_str()))
            .collect();
        if cloned.is_empty() {
            continue;
        }
        let mut f = draft(FindingKind::CloneBlocksDelete, Severity::Medium, ds_ref(d), ctx.now)
            .reason(format!(
                "VolumeSnapshotContent {} is being deleted, but detached snapshot {} has dependent clones, so DeleteSnapshot fails and is retried forever.",
                c.meta.name, d.name
            ))
            .related(ResourceRef::kube("VolumeSnapshotContent", &c.meta.name), "content being deleted");
        for s in &cloned {
            f = clone_refs(f.related(snap_ref(&s.name), "cloned snapshot"), &s.name);
        }
        f.step("Decide whether the clones (volumes restored from this snapshot) are still needed".into())
            .step("`zfs promote <clone>` each clone; the snapshotter's next retry then deletes the snapshot".into())
            .reclaim(used(d))
            .push(out);
    }
}

// ---- shares ------------------------------------------------------------------------------

/// The dataset a share path names (`/mnt/<dataset>`), when it lies in an owned volume
/// parent and does not exist.
fn missing_share_dataset(ctx: &Ctx<'_>, path: &str) -> Option<String> {
    let name = path.strip_prefix("/mnt/")?.trim_end_matches('/');
    (ctx.topo.in_volume_parent(name) && !ctx.inv.datasets().contains_key(name))
        .then(|| name.to_owned())
}

fn nfs_share_orphaned(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    for share in ctx.inv.shares().values() {
        let Share::Nfs(s) = share else { continue };
        let Some(dataset) = missing_share_dataset(ctx, &s.path) else {
            continue;
        };
        share_finding(
            ctx,
            ResourceRef::truenas("nfs-share", &s.path),
            "NFS share",
            s.id,
            &s.path,
            &dataset,
            "sharing.nfs.delete",
            out,
        );
    }
}

fn smb_share_orphaned(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    for share in ctx.inv.shares().values() {
        let Share::Smb(s) = share else { continue };
        let Some(dataset) = missing_share_dataset(ctx, &s.path) else {
            continue;
        };
        share_finding(
            ctx,
            ResourceRef::truenas("smb-share", &s.name),
            "SMB share",
            s.id,
            &s.path,
            &dataset,
            "sharing.smb.delete",
            out,
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn share_finding(
    ctx: &Ctx<'_>,
    subject: ResourceRef,
    what: &str,
    id: i64,
    path: &str,
    dataset: &str,
    delete_method: &str,
    out: &mut Vec<Finding>,
) {
    let mut f = draft(
        FindingKind::ShareOrphaned,
        Severity::Medium,
        subject,
        ctx.now,
    )
    .reason(format!(
        "{what} {} (id {id}) exports {path}, but dataset {dataset} no longer exists.",
        if what == "NFS share" {
            path.to_owned()
        } else {
            format!("`{}`", leaf(path))
        }
    ))
    .related(
        ResourceRef::truenas("dataset", dataset),
        "exported dataset (missing)",
    );
    if let Some(pv) = ctx.topo.pv_by_handle.get(leaf(dataset)) {
        f = f.related(pv_ref(pv), "volume");
    }
    f.step(format!("Delete the share in the TrueNAS UI (Shares) or with `midclt call {delete_method} {id}`"))
        .step("If a new dataset will be created at the same path, delete the share first: democratic-csi would adopt it with the old settings".into())
        .push(out);
}

fn iscsi_orphaned(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    // Which managed zvol claims which extent id.
    let mut claims: std::collections::HashMap<i64, &Dataset> = std::collections::HashMap::new();
    for d in ctx.inv.datasets().values() {
        if d.is_managed()
            && ctx.topo.in_volume_parent(&d.name)
            && let Some(id) = d
                .own_prop(props::ISCSI_EXTENT_ID)
                .and_then(|v| v.parse().ok())
        {
            claims.insert(id, d);
        }
    }
    for share in ctx.inv.shares().values() {
        let Share::IscsiExtent(e) = share else {
            continue;
        };
        let Some(zvol) = e.zvol() else { continue };
        let claimant = claims.get(&e.id).filter(|d| d.name != zvol);
        let gone = ctx.topo.in_volume_parent(zvol) && !ctx.inv.datasets().contains_key(zvol);
        if claimant.is_none() && !gone {
            continue;
        }
        let subject = ResourceRef::truenas("iscsi-extent", &e.name);
        let mut f = match claimant {
            Some(d) => draft(FindingKind::IscsiOrphaned, Severity::Critical, subject, ctx.now)
                .reason(format!(
                    "iSCSI extent {} (id {}) is recorded on zvol {} but exports {zvol}: initiators of that volume reach another volume's data.",
                    e.name, e.id, d.name
                ))
                .related(ds_ref(d), "zvol that claims the extent"),
            None => draft(FindingKind::IscsiOrphaned, Severity::Medium, subject, ctx.now)
                .reason(format!(
                    "iSCSI extent {} (id {}) exports zvol {zvol}, which no longer exists.",
                    e.name, e.id
                )),
        };
        f = f.related(
            ResourceRef::truenas("zvol", zvol),
            if gone {
                "exported zvol (missing)"
            } else {
                "exported zvol"
            },
        );
        for t in iscsi_targets_of(ctx, e.id) {
            f = f.related(
                ResourceRef::truenas("iscsi-target", t),
                "iSCSI target of the extent",
            );
        }
        let f = if claimant.is_some() {
            f.step("Stop using the affected volume: check which initiators are logged in to the target (Sharing > iSCSI > Sessions)".into())
                .step("Point the extent at the right zvol or delete it and let democratic-csi recreate the volume's iSCSI assets".into())
        } else {
            f.step(format!("Delete the extent and its target in the TrueNAS UI or with `midclt call iscsi.extent.delete {}` and `iscsi.target.delete`", e.id))
        };
        f.push(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_like_people_write_them() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(10 * 1024 * 1024 * 1024), "10.0 GiB");
    }

    #[test]
    fn every_kind_has_a_rule() {
        for kind in FindingKind::ALL {
            assert!(RULES.iter().any(|r| r.kind == *kind), "{kind} has no rule");
        }
    }
}
