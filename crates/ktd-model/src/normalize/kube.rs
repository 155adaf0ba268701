//! Raw Kubernetes JSON (as the apiserver or `kubectl get -o json` prints it) into
//! normalized [`KubeObject`]s.
//!
//! The raw structs below name only the fields ktd reads; everything else (managedFields,
//! unknown fields of newer Kubernetes releases) is skipped while parsing, so memory
//! follows the normalized state, not the JSON size.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::NormalizeError;
use super::quantity::parse_quantity;
use crate::kube::*;
use crate::time::Timestamp;

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Normalizes one object whose `kind` is given by the object itself or by `kind_hint`
/// (items of a typed `<Kind>List` carry no kind).
pub fn normalize_object(
    value: &Value,
    kind_hint: Option<KubeKind>,
) -> Result<KubeObject, NormalizeError> {
    let kind = match value.get("kind").and_then(Value::as_str) {
        Some(k) => {
            KubeKind::from_kind(k).ok_or_else(|| NormalizeError::UnsupportedKind(k.to_owned()))?
        }
        None => kind_hint.ok_or(NormalizeError::MissingKind)?,
    };
    normalize_as(kind, value)
}

/// Normalizes one object of a known kind.
pub fn normalize_as(kind: KubeKind, value: &Value) -> Result<KubeObject, NormalizeError> {
    let name = || {
        value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("<unnamed>")
            .to_owned()
    };
    let wrap = |e: serde_json::Error| NormalizeError::Invalid {
        what: format!("{kind} {}", name()),
        reason: e.to_string(),
    };
    Ok(match kind {
        KubeKind::PersistentVolume => {
            KubeObject::PersistentVolume(RawPv::deserialize(value).map_err(wrap)?.into_model()?)
        }
        KubeKind::PersistentVolumeClaim => KubeObject::PersistentVolumeClaim(
            RawPvc::deserialize(value).map_err(wrap)?.into_model()?,
        ),
        KubeKind::StorageClass => KubeObject::StorageClass(
            RawStorageClass::deserialize(value)
                .map_err(wrap)?
                .into_model()?,
        ),
        KubeKind::VolumeAttachment => KubeObject::VolumeAttachment(
            RawVolumeAttachment::deserialize(value)
                .map_err(wrap)?
                .into_model()?,
        ),
        KubeKind::CsiDriver => KubeObject::CsiDriver(
            RawCsiDriver::deserialize(value)
                .map_err(wrap)?
                .into_model()?,
        ),
        KubeKind::CsiNode => {
            KubeObject::CsiNode(RawCsiNode::deserialize(value).map_err(wrap)?.into_model()?)
        }
        KubeKind::Node => {
            KubeObject::Node(RawNode::deserialize(value).map_err(wrap)?.into_model()?)
        }
        KubeKind::Pod => KubeObject::Pod(RawPod::deserialize(value).map_err(wrap)?.into_model()?),
        KubeKind::Event => {
            KubeObject::Event(RawEvent::deserialize(value).map_err(wrap)?.into_model()?)
        }
        KubeKind::VolumeSnapshot => {
            KubeObject::VolumeSnapshot(RawVs::deserialize(value).map_err(wrap)?.into_model()?)
        }
        KubeKind::VolumeSnapshotContent => KubeObject::VolumeSnapshotContent(
            RawVsc::deserialize(value).map_err(wrap)?.into_model()?,
        ),
        KubeKind::VolumeSnapshotClass => KubeObject::VolumeSnapshotClass(
            RawVsClass::deserialize(value).map_err(wrap)?.into_model()?,
        ),
    })
}

fn time(s: &Option<String>, what: &str) -> Result<Option<Timestamp>, NormalizeError> {
    match s.as_deref() {
        None | Some("") => Ok(None),
        Some(t) => Timestamp::parse_rfc3339(t)
            .map(Some)
            .map_err(|e| NormalizeError::Invalid {
                what: what.to_owned(),
                reason: e.to_string(),
            }),
    }
}

fn bytes(q: Option<&str>, what: &str) -> Result<Option<u64>, NormalizeError> {
    q.map(|q| {
        parse_quantity(q).map_err(|reason| NormalizeError::Invalid {
            what: what.to_owned(),
            reason,
        })
    })
    .transpose()
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawMeta {
    name: Option<String>,
    namespace: Option<String>,
    uid: String,
    resource_version: String,
    creation_timestamp: Option<String>,
    deletion_timestamp: Option<String>,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    finalizers: Vec<String>,
    owner_references: Vec<RawOwner>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawOwner {
    kind: String,
    name: String,
}

impl RawMeta {
    fn into_model(mut self, kind: KubeKind) -> Result<Meta, NormalizeError> {
        let name =
            self.name
                .take()
                .filter(|n| !n.is_empty())
                .ok_or_else(|| NormalizeError::Invalid {
                    what: kind.to_string(),
                    reason: "metadata.name is missing".into(),
                })?;
        if kind.namespaced() && self.namespace.as_deref().is_none_or(str::is_empty) {
            return Err(NormalizeError::Invalid {
                what: format!("{kind} {name}"),
                reason: "metadata.namespace is missing on a namespaced kind".into(),
            });
        }
        let what = format!("{kind} {name}");
        self.annotations.remove(LAST_APPLIED);
        Ok(Meta {
            created: time(&self.creation_timestamp, &what)?,
            deleting: time(&self.deletion_timestamp, &what)?,
            name,
            namespace: if kind.namespaced() {
                self.namespace
            } else {
                None
            },
            uid: self.uid,
            resource_version: self.resource_version,
            labels: self.labels,
            annotations: self.annotations,
            finalizers: self.finalizers,
            owners: self
                .owner_references
                .into_iter()
                .map(|o| format!("{}/{}", o.kind, o.name))
                .collect(),
        })
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawRef {
    kind: Option<String>,
    namespace: Option<String>,
    name: String,
    uid: Option<String>,
}

impl From<RawRef> for ObjectRef {
    fn from(r: RawRef) -> Self {
        ObjectRef {
            kind: r.kind.filter(|s| !s.is_empty()),
            namespace: r.namespace.filter(|s| !s.is_empty()),
            name: r.name,
            uid: r.uid.filter(|s| !s.is_empty()),
        }
    }
}

// ---- PersistentVolume ------------------------------------------------------------------

#[derive(Deserialize)]
struct RawPv {
    #[serde(default)]
    metadata: RawMeta,
    #[serde(default)]
    spec: RawPvSpec,
    #[serde(default)]
    status: RawPvStatus,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawPvSpec {
    capacity: BTreeMap<String, String>,
    access_modes: Vec<String>,
    persistent_volume_reclaim_policy: Option<String>,
    storage_class_name: Option<String>,
    volume_mode: Option<String>,
    csi: Option<RawCsi>,
    claim_ref: Option<RawRef>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawCsi {
    driver: String,
    volume_handle: String,
    fs_type: Option<String>,
    volume_attributes: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawPvStatus {
    phase: Option<String>,
    message: Option<String>,
    last_phase_transition_time: Option<String>,
}

fn pv_phase(p: Option<&str>) -> PvPhase {
    match p {
        Some("Pending") => PvPhase::Pending,
        Some("Available") => PvPhase::Available,
        Some("Bound") => PvPhase::Bound,
        Some("Released") => PvPhase::Released,
        Some("Failed") => PvPhase::Failed,
        _ => PvPhase::Unknown,
    }
}

impl RawPv {
    fn into_model(self) -> Result<PersistentVolume, NormalizeError> {
        let meta = self.metadata.into_model(KubeKind::PersistentVolume)?;
        let what = format!("PersistentVolume {}", meta.name);
        if let Some(csi) = &self.spec.csi
            && csi.volume_handle.is_empty()
        {
            return Err(NormalizeError::Invalid {
                what,
                reason: "spec.csi.volumeHandle is empty".into(),
            });
        }
        Ok(PersistentVolume {
            capacity_bytes: bytes(self.spec.capacity.get("storage").map(String::as_str), &what)?,
            access_modes: self.spec.access_modes,
            reclaim_policy: self.spec.persistent_volume_reclaim_policy,
            storage_class: self.spec.storage_class_name.filter(|s| !s.is_empty()),
            volume_mode: self.spec.volume_mode,
            csi: self.spec.csi.map(|c| CsiVolumeSource {
                driver: c.driver,
                volume_handle: c.volume_handle,
                fs_type: c.fs_type,
                volume_attributes: c.volume_attributes,
            }),
            claim: self.spec.claim_ref.map(ObjectRef::from),
            phase: pv_phase(self.status.phase.as_deref()),
            message: self.status.message,
            phase_since: time(&self.status.last_phase_transition_time, &what)?,
            meta,
        })
    }
}

// ---- PersistentVolumeClaim ---------------------------------------------------------------

#[derive(Deserialize)]
struct RawPvc {
    #[serde(default)]
    metadata: RawMeta,
    #[serde(default)]
    spec: RawPvcSpec,
    #[serde(default)]
    status: RawPvcStatus,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawPvcSpec {
    storage_class_name: Option<String>,
    volume_name: Option<String>,
    access_modes: Vec<String>,
    resources: RawResources,
    data_source: Option<RawRef>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawResources {
    requests: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawPvcStatus {
    phase: Option<String>,
    capacity: BTreeMap<String, String>,
}

impl RawPvc {
    fn into_model(self) -> Result<PersistentVolumeClaim, NormalizeError> {
        let meta = self.metadata.into_model(KubeKind::PersistentVolumeClaim)?;
        let what = format!("PersistentVolumeClaim {}", meta.key());
        Ok(PersistentVolumeClaim {
            storage_class: self.spec.storage_class_name.filter(|s| !s.is_empty()),
            volume_name: self.spec.volume_name.filter(|s| !s.is_empty()),
            requested_bytes: bytes(
                self.spec
                    .resources
                    .requests
                    .get("storage")
                    .map(String::as_str),
                &what,
            )?,
            capacity_bytes: bytes(
                self.status.capacity.get("storage").map(String::as_str),
                &what,
            )?,
            access_modes: self.spec.access_modes,
            data_source: self.spec.data_source.map(ObjectRef::from),
            phase: match self.status.phase.as_deref() {
                Some("Pending") | None => PvcPhase::Pending,
                Some("Bound") => PvcPhase::Bound,
                Some("Lost") => PvcPhase::Lost,
                Some(_) => PvcPhase::Unknown,
            },
            meta,
        })
    }
}

// ---- StorageClass ---------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawStorageClass {
    #[serde(default)]
    metadata: RawMeta,
    #[serde(default)]
    provisioner: String,
    #[serde(default)]
    parameters: BTreeMap<String, String>,
    reclaim_policy: Option<String>,
    volume_binding_mode: Option<String>,
    allow_volume_expansion: Option<bool>,
    #[serde(default)]
    mount_options: Vec<String>,
}

fn annotated_true(meta: &Meta, key: &str) -> bool {
    meta.annotations
        .get(key)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

impl RawStorageClass {
    fn into_model(self) -> Result<StorageClass, NormalizeError> {
        let meta = self.metadata.into_model(KubeKind::StorageClass)?;
        Ok(StorageClass {
            is_default: annotated_true(&meta, "storageclass.kubernetes.io/is-default-class")
                || annotated_true(&meta, "storageclass.beta.kubernetes.io/is-default-class"),
            provisioner: self.provisioner,
            parameters: self.parameters,
            reclaim_policy: self.reclaim_policy,
            volume_binding_mode: self.volume_binding_mode,
            allow_volume_expansion: self.allow_volume_expansion,
            mount_options: self.mount_options,
            meta,
        })
    }
}

// ---- VolumeAttachment -----------------------------------------------------------------------

#[derive(Deserialize)]
struct RawVolumeAttachment {
    #[serde(default)]
    metadata: RawMeta,
    #[serde(default)]
    spec: RawVaSpec,
    #[serde(default)]
    status: RawVaStatus,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawVaSpec {
    attacher: String,
    node_name: String,
    source: RawVaSource,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawVaSource {
    persistent_volume_name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawVaStatus {
    attached: bool,
    attach_error: Option<RawVolumeError>,
    detach_error: Option<RawVolumeError>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawVolumeError {
    time: Option<String>,
    message: String,
}

impl RawVolumeError {
    fn into_snapshot_error(self, what: &str) -> Result<SnapshotError, NormalizeError> {
        Ok(SnapshotError {
            time: time(&self.time, what)?,
            message: self.message,
        })
    }

    fn into_model(self, what: &str) -> Result<VolumeError, NormalizeError> {
        Ok(VolumeError {
            time: time(&self.time, what)?,
            message: self.message,
        })
    }
}

impl RawVolumeAttachment {
    fn into_model(self) -> Result<VolumeAttachment, NormalizeError> {
        let meta = self.metadata.into_model(KubeKind::VolumeAttachment)?;
        let what = format!("VolumeAttachment {}", meta.name);
        Ok(VolumeAttachment {
            attacher: self.spec.attacher,
            node_name: self.spec.node_name,
            pv_name: self.spec.source.persistent_volume_name,
            attached: self.status.attached,
            attach_error: self
                .status
                .attach_error
                .map(|e| e.into_model(&what))
                .transpose()?,
            detach_error: self
                .status
                .detach_error
                .map(|e| e.into_model(&what))
                .transpose()?,
            meta,
        })
    }
}

// ---- CSIDriver / CSINode / Node / Pod ---------------------------------------------------------

#[derive(Deserialize)]
struct RawCsiDriver {
    #[serde(default)]
    metadata: RawMeta,
    #[serde(default)]
    spec: RawCsiDriverSpec,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawCsiDriverSpec {
    attach_required: Option<bool>,
    pod_info_on_mount: Option<bool>,
    fs_group_policy: Option<String>,
    volume_lifecycle_modes: Vec<String>,
}

impl RawCsiDriver {
    fn into_model(self) -> Result<CsiDriver, NormalizeError> {
        Ok(CsiDriver {
            meta: self.metadata.into_model(KubeKind::CsiDriver)?,
            attach_required: self.spec.attach_required,
            pod_info_on_mount: self.spec.pod_info_on_mount,
            fs_group_policy: self.spec.fs_group_policy,
            volume_lifecycle_modes: self.spec.volume_lifecycle_modes,
        })
    }
}

#[derive(Deserialize)]
struct RawCsiNode {
    #[serde(default)]
    metadata: RawMeta,
    #[serde(default)]
    spec: RawCsiNodeSpec,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawCsiNodeSpec {
    drivers: Option<Vec<RawCsiNodeDriver>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawCsiNodeDriver {
    name: String,
    #[serde(rename = "nodeID")]
    node_id: String,
    topology_keys: Option<Vec<String>>,
    allocatable: Option<RawAllocatable>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawAllocatable {
    count: Option<u64>,
}

impl RawCsiNode {
    fn into_model(self) -> Result<CsiNode, NormalizeError> {
        Ok(CsiNode {
            meta: self.metadata.into_model(KubeKind::CsiNode)?,
            drivers: self
                .spec
                .drivers
                .unwrap_or_default()
                .into_iter()
                .map(|d| CsiNodeDriver {
                    name: d.name,
                    node_id: d.node_id,
                    topology_keys: d.topology_keys.unwrap_or_default(),
                    allocatable: d.allocatable.and_then(|a| a.count),
                })
                .collect(),
        })
    }
}

#[derive(Deserialize)]
struct RawNode {
    #[serde(default)]
    metadata: RawMeta,
    #[serde(default)]
    spec: RawNodeSpec,
    #[serde(default)]
    status: RawNodeStatus,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawNodeSpec {
    unschedulable: bool,
    taints: Vec<RawTaint>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawTaint {
    key: String,
    value: Option<String>,
    effect: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawNodeStatus {
    conditions: Vec<RawCondition>,
    node_info: RawNodeInfo,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawNodeInfo {
    kubelet_version: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawCondition {
    #[serde(rename = "type")]
    kind: String,
    status: String,
}

fn condition(conds: &[RawCondition], kind: &str) -> Option<bool> {
    conds
        .iter()
        .find(|c| c.kind == kind)
        .map(|c| c.status == "True")
}

impl RawNode {
    fn into_model(self) -> Result<Node, NormalizeError> {
        Ok(Node {
            meta: self.metadata.into_model(KubeKind::Node)?,
            unschedulable: self.spec.unschedulable,
            ready: condition(&self.status.conditions, "Ready"),
            taints: self
                .spec
                .taints
                .into_iter()
                .map(|t| match t.value {
                    Some(v) if !v.is_empty() => format!("{}={}:{}", t.key, v, t.effect),
                    _ => format!("{}:{}", t.key, t.effect),
                })
                .collect(),
            kubelet_version: self.status.node_info.kubelet_version,
        })
    }
}

#[derive(Deserialize)]
struct RawPod {
    #[serde(default)]
    metadata: RawMeta,
    #[serde(default)]
    spec: RawPodSpec,
    #[serde(default)]
    status: RawPodStatus,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawPodSpec {
    node_name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawPodStatus {
    phase: String,
    conditions: Vec<RawCondition>,
    container_statuses: Vec<RawContainerStatus>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawContainerStatus {
    name: String,
    image: String,
    ready: bool,
    restart_count: u32,
    state: Option<Value>,
}

impl RawPod {
    fn into_model(self) -> Result<Pod, NormalizeError> {
        Ok(Pod {
            meta: self.metadata.into_model(KubeKind::Pod)?,
            node_name: self.spec.node_name.filter(|s| !s.is_empty()),
            phase: self.status.phase,
            ready: condition(&self.status.conditions, "Ready").unwrap_or(false),
            containers: self
                .status
                .container_statuses
                .into_iter()
                .map(|c| ContainerState {
                    waiting_reason: c
                        .state
                        .as_ref()
                        .and_then(|s| s.pointer("/waiting/reason"))
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    name: c.name,
                    image: c.image,
                    ready: c.ready,
                    restart_count: c.restart_count,
                })
                .collect(),
        })
    }
}

// ---- Event ------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEvent {
    #[serde(default)]
    metadata: RawMeta,
    #[serde(default)]
    involved_object: RawRef,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    message: String,
    #[serde(default, rename = "type")]
    event_type: String,
    #[serde(default)]
    count: Option<u32>,
    first_timestamp: Option<String>,
    last_timestamp: Option<String>,
    event_time: Option<String>,
    #[serde(default)]
    series: Option<RawSeries>,
    #[serde(default)]
    source: Option<RawEventSource>,
    reporting_component: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawSeries {
    count: Option<u32>,
    last_observed_time: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawEventSource {
    component: Option<String>,
}

impl RawEvent {
    fn into_model(self) -> Result<KubeEvent, NormalizeError> {
        let meta = self.metadata.into_model(KubeKind::Event)?;
        let what = format!("Event {}", meta.key());
        let event_time = time(&self.event_time, &what)?;
        let series_last = self
            .series
            .as_ref()
            .map(|s| time(&s.last_observed_time, &what))
            .transpose()?
            .flatten();
        Ok(KubeEvent {
            involved: self.involved_object.into(),
            reason: self.reason,
            message: self.message,
            event_type: self.event_type,
            count: self
                .count
                .or(self.series.as_ref().and_then(|s| s.count))
                .unwrap_or(1),
            first: time(&self.first_timestamp, &what)?.or(event_time),
            last: time(&self.last_timestamp, &what)?
                .or(series_last)
                .or(event_time),
            component: self
                .source
                .and_then(|s| s.component)
                .filter(|c| !c.is_empty())
                .or(self.reporting_component)
                .unwrap_or_default(),
            meta,
        })
    }
}

// ---- snapshot.storage.k8s.io ---------------------------------------------------------------------

#[derive(Deserialize)]
struct RawVs {
    #[serde(default)]
    metadata: RawMeta,
    #[serde(default)]
    spec: RawVsSpec,
    #[serde(default)]
    status: Option<RawVsStatus>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawVsSpec {
    source: RawVsSource,
    volume_snapshot_class_name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawVsSource {
    persistent_volume_claim_name: Option<String>,
    volume_snapshot_content_name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawVsStatus {
    bound_volume_snapshot_content_name: Option<String>,
    creation_time: Option<String>,
    ready_to_use: Option<bool>,
    restore_size: Option<String>,
    error: Option<RawVolumeError>,
}

impl RawVs {
    fn into_model(self) -> Result<VolumeSnapshot, NormalizeError> {
        let meta = self.metadata.into_model(KubeKind::VolumeSnapshot)?;
        let what = format!("VolumeSnapshot {}", meta.key());
        let status = self.status.unwrap_or_default();
        Ok(VolumeSnapshot {
            source_pvc: self.spec.source.persistent_volume_claim_name,
            source_content: self.spec.source.volume_snapshot_content_name,
            class: self.spec.volume_snapshot_class_name,
            bound_content: status.bound_volume_snapshot_content_name,
            creation_time: time(&status.creation_time, &what)?,
            ready_to_use: status.ready_to_use,
            restore_size: bytes(status.restore_size.as_deref(), &what)?,
            error: status
                .error
                .map(|e| e.into_snapshot_error(&what))
                .transpose()?,
            meta,
        })
    }
}

#[derive(Deserialize)]
struct RawVsc {
    #[serde(default)]
    metadata: RawMeta,
    #[serde(default)]
    spec: RawVscSpec,
    #[serde(default)]
    status: Option<RawVscStatus>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawVscSpec {
    deletion_policy: String,
    driver: String,
    volume_snapshot_class_name: Option<String>,
    source: RawVscSource,
    volume_snapshot_ref: RawRef,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawVscSource {
    volume_handle: Option<String>,
    snapshot_handle: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawVscStatus {
    snapshot_handle: Option<String>,
    creation_time: Option<i64>,
    ready_to_use: Option<bool>,
    restore_size: Option<i64>,
    error: Option<RawVolumeError>,
}

impl RawVsc {
    fn into_model(self) -> Result<VolumeSnapshotContent, NormalizeError> {
        let meta = self.metadata.into_model(KubeKind::VolumeSnapshotContent)?;
        let what = format!("VolumeSnapshotContent {}", meta.name);
        let status = self.status.unwrap_or_default();
        Ok(VolumeSnapshotContent {
            deletion_policy: self.spec.deletion_policy,
            driver: self.spec.driver,
            class: self.spec.volume_snapshot_class_name,
            source_volume_handle: self.spec.source.volume_handle,
            source_snapshot_handle: self.spec.source.snapshot_handle,
            snapshot_ref: self.spec.volume_snapshot_ref.into(),
            snapshot_handle: status.snapshot_handle.filter(|h| !h.is_empty()),
            creation_time: status.creation_time.map(Timestamp::from_unix_nanos),
            ready_to_use: status.ready_to_use,
            restore_size: status.restore_size.and_then(|b| u64::try_from(b).ok()),
            error: status
                .error
                .map(|e| e.into_snapshot_error(&what))
                .transpose()?,
            meta,
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawVsClass {
    #[serde(default)]
    metadata: RawMeta,
    #[serde(default)]
    driver: String,
    #[serde(default)]
    parameters: BTreeMap<String, String>,
    #[serde(default)]
    deletion_policy: String,
}

impl RawVsClass {
    fn into_model(self) -> Result<VolumeSnapshotClass, NormalizeError> {
        let meta = self.metadata.into_model(KubeKind::VolumeSnapshotClass)?;
        Ok(VolumeSnapshotClass {
            is_default: annotated_true(&meta, "snapshot.storage.kubernetes.io/is-default-class"),
            driver: self.driver,
            parameters: self.parameters,
            deletion_policy: self.deletion_policy,
            meta,
        })
    }
}

/// Streams the items of a Kubernetes list document (`kind: List` as printed by
/// `kubectl get a,b,c -A -o json`, or a typed `<Kind>List`) into `sink`, one normalized
/// object (or one error naming the object) at a time. Items of kinds ktd does not watch
/// are skipped and counted. Returns `(items seen, items skipped as unsupported)`.
pub fn read_list<R: std::io::Read>(
    reader: R,
    mut sink: impl FnMut(Result<KubeObject, NormalizeError>),
) -> Result<(u64, u64), NormalizeError> {
    use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
    use std::fmt;

    struct ListVisitor<'a, F> {
        sink: &'a mut F,
        seen: u64,
        skipped: u64,
        /// Items without `kind` seen before the list's own `kind` (JSON key order is not
        /// guaranteed: `kubectl` sorts keys, so `items` comes first).
        pending: Vec<Value>,
    }
    impl<F: FnMut(Result<KubeObject, NormalizeError>)> ListVisitor<'_, F> {
        fn item(&mut self, item: Value, hint: Option<KubeKind>) {
            if hint.is_none() && item.get("kind").is_none() {
                self.pending.push(item);
                return;
            }
            match normalize_object(&item, hint) {
                Err(NormalizeError::UnsupportedKind(_)) => self.skipped += 1,
                other => (self.sink)(other),
            }
        }
    }
    struct Items<'b, 'a, F>(&'b mut ListVisitor<'a, F>, Option<KubeKind>);

    impl<'de, F: FnMut(Result<KubeObject, NormalizeError>)> DeserializeSeed<'de> for Items<'_, '_, F> {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_seq(self)
        }
    }
    impl<'de, F: FnMut(Result<KubeObject, NormalizeError>)> Visitor<'de> for Items<'_, '_, F> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of Kubernetes objects")
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while let Some(item) = seq.next_element::<Value>()? {
                self.0.seen += 1;
                self.0.item(item, self.1);
            }
            Ok(())
        }
    }
    impl<'de, F: FnMut(Result<KubeObject, NormalizeError>)> Visitor<'de> for ListVisitor<'_, F> {
        type Value = (u64, u64);
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a Kubernetes list object with `items`")
        }
        fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(u64, u64), A::Error> {
            let mut hint = None;
            let mut saw_items = false;
            while let Some(key) = map.next_key::<String>()? {
                match key.as_str() {
                    "kind" => {
                        let kind: String = map.next_value()?;
                        hint = kind.strip_suffix("List").and_then(KubeKind::from_kind);
                    }
                    "items" => {
                        saw_items = true;
                        map.next_value_seed(Items(&mut self, hint))?;
                    }
                    _ => {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
            }
            if !saw_items {
                return Err(serde::de::Error::missing_field("items"));
            }
            for item in std::mem::take(&mut self.pending) {
                match normalize_object(&item, hint) {
                    Err(NormalizeError::UnsupportedKind(_)) => self.skipped += 1,
                    other => (self.sink)(other),
                }
            }
            Ok((self.seen, self.skipped))
        }
    }

    let mut de =
        serde_json::Deserializer::from_reader(std::io::BufReader::with_capacity(1 << 16, reader));
    let visitor = ListVisitor {
        sink: &mut sink,
        seen: 0,
        skipped: 0,
        pending: Vec::new(),
    };
    let out = serde::Deserializer::deserialize_map(&mut de, visitor).map_err(|e| {
        NormalizeError::Invalid {
            what: "Kubernetes list".into(),
            reason: e.to_string(),
        }
    })?;
    de.end().map_err(|e| NormalizeError::Invalid {
        what: "Kubernetes list".into(),
        reason: e.to_string(),
    })?;
    Ok(out)
}
