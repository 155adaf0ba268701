//! `meta.k8s.io/v1` Tables for kubectl's human output, with the columns of the upstream
//! printers (built-in kinds) and of the external-snapshotter CRDs' printer columns.

use serde_json::{Value, json};

use super::list::{Include, partial};
use super::resources::ResourceType;

/// One column: header, type, priority (1 = only with `-o wide`) and how to fill a cell.
struct Column {
    name: &'static str,
    ty: &'static str,
    priority: u8,
    cell: fn(&Value, i64) -> Value,
}

const fn col(name: &'static str, cell: fn(&Value, i64) -> Value) -> Column {
    Column {
        name,
        ty: "string",
        priority: 0,
        cell,
    }
}

/// A string at a JSON pointer, `""` if absent.
fn s(o: &Value, pointer: &str) -> Value {
    match o.pointer(pointer) {
        Some(Value::String(x)) => x.clone().into(),
        Some(Value::Bool(b)) => b.to_string().into(),
        Some(Value::Number(n)) => n.to_string().into(),
        _ => "".into(),
    }
}

fn or(o: &Value, pointer: &str, default: &str) -> Value {
    match s(o, pointer) {
        Value::String(x) if x.is_empty() => default.into(),
        v => v,
    }
}

fn name(o: &Value, _: i64) -> Value {
    s(o, "/metadata/name")
}

fn age(o: &Value, now: i64) -> Value {
    age_of(o.pointer("/metadata/creationTimestamp"), now)
}

fn age_of(time: Option<&Value>, now: i64) -> Value {
    match time
        .and_then(Value::as_str)
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
    {
        Some(t) => human_duration(now - t.as_second()).into(),
        None => "<unknown>".into(),
    }
}

fn access_modes(o: &Value, pointer: &str) -> Value {
    let modes = o.pointer(pointer).and_then(Value::as_array);
    let short: Vec<&str> = modes
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|m| match m {
            "ReadWriteOnce" => "RWO",
            "ReadOnlyMany" => "ROX",
            "ReadWriteMany" => "RWX",
            "ReadWriteOncePod" => "RWOP",
            other => other,
        })
        .collect();
    short.join(",").into()
}

fn columns(rt: &ResourceType) -> Vec<Column> {
    let mut cols = vec![Column {
        ty: "string",
        ..col("Name", name)
    }];
    let extra: Vec<Column> = match rt.kind {
        "PersistentVolume" => vec![
            col("Capacity", |o, _| s(o, "/spec/capacity/storage")),
            col("Access Modes", |o, _| access_modes(o, "/spec/accessModes")),
            col("Reclaim Policy", |o, _| {
                s(o, "/spec/persistentVolumeReclaimPolicy")
            }),
            col("Status", |o, _| s(o, "/status/phase")),
            col("Claim", |o, _| match o.pointer("/spec/claimRef/name") {
                Some(_) => format!(
                    "{}/{}",
                    s(o, "/spec/claimRef/namespace").as_str().unwrap_or(""),
                    s(o, "/spec/claimRef/name").as_str().unwrap_or("")
                )
                .into(),
                None => "".into(),
            }),
            col("StorageClass", |o, _| s(o, "/spec/storageClassName")),
            col("VolumeAttributesClass", |o, _| {
                or(o, "/spec/volumeAttributesClassName", "<unset>")
            }),
            col("Reason", |o, _| s(o, "/status/reason")),
            col("Age", age),
            Column {
                priority: 1,
                ..col("VolumeMode", |o, _| or(o, "/spec/volumeMode", "Filesystem"))
            },
        ],
        "PersistentVolumeClaim" => vec![
            col("Status", |o, _| s(o, "/status/phase")),
            col("Volume", |o, _| s(o, "/spec/volumeName")),
            col("Capacity", |o, _| s(o, "/status/capacity/storage")),
            col("Access Modes", |o, _| {
                access_modes(o, "/status/accessModes")
            }),
            col("StorageClass", |o, _| s(o, "/spec/storageClassName")),
            col("VolumeAttributesClass", |o, _| {
                or(o, "/spec/volumeAttributesClassName", "<unset>")
            }),
            col("Age", age),
            Column {
                priority: 1,
                ..col("VolumeMode", |o, _| or(o, "/spec/volumeMode", "Filesystem"))
            },
        ],
        "StorageClass" => vec![
            col("Provisioner", |o, _| s(o, "/provisioner")),
            col("ReclaimPolicy", |o, _| or(o, "/reclaimPolicy", "Delete")),
            col("VolumeBindingMode", |o, _| {
                or(o, "/volumeBindingMode", "Immediate")
            }),
            col("AllowVolumeExpansion", |o, _| {
                or(o, "/allowVolumeExpansion", "false")
            }),
            col("Age", age),
        ],
        "VolumeAttachment" => vec![
            col("Attacher", |o, _| s(o, "/spec/attacher")),
            col("PV", |o, _| s(o, "/spec/source/persistentVolumeName")),
            col("Node", |o, _| s(o, "/spec/nodeName")),
            col("Attached", |o, _| or(o, "/status/attached", "false")),
            col("Age", age),
        ],
        "CSIDriver" => vec![
            col("AttachRequired", |o, _| {
                or(o, "/spec/attachRequired", "true")
            }),
            col("PodInfoOnMount", |o, _| {
                or(o, "/spec/podInfoOnMount", "false")
            }),
            col("StorageCapacity", |o, _| {
                or(o, "/spec/storageCapacity", "false")
            }),
            col("TokenRequests", |o, _| {
                or(o, "/spec/tokenRequests", "<unset>")
            }),
            col("RequiresRepublish", |o, _| {
                or(o, "/spec/requiresRepublish", "false")
            }),
            col("Modes", |o, _| {
                let modes = o
                    .pointer("/spec/volumeLifecycleModes")
                    .and_then(Value::as_array);
                let modes: Vec<&str> = modes
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                if modes.is_empty() {
                    "Persistent".into()
                } else {
                    modes.join(",").into()
                }
            }),
            col("Age", age),
        ],
        "CSINode" => vec![
            col("Drivers", |o, _| {
                let n = o
                    .pointer("/spec/drivers")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                n.into()
            }),
            col("Age", age),
        ],
        "Node" => vec![
            col("Status", |o, _| {
                let conditions = o.pointer("/status/conditions").and_then(Value::as_array);
                let ready = conditions
                    .into_iter()
                    .flatten()
                    .find(|c| c["type"] == "Ready");
                match ready.map(|c| c["status"].as_str().unwrap_or("")) {
                    Some("True") => "Ready".into(),
                    Some("False") => "NotReady".into(),
                    _ => "Unknown".into(),
                }
            }),
            col("Roles", |o, _| {
                let labels = o.pointer("/metadata/labels").and_then(Value::as_object);
                let roles: Vec<&str> = labels
                    .into_iter()
                    .flatten()
                    .filter_map(|(k, _)| k.strip_prefix("node-role.kubernetes.io/"))
                    .collect();
                if roles.is_empty() {
                    "<none>".into()
                } else {
                    roles.join(",").into()
                }
            }),
            col("Age", age),
            col("Version", |o, _| s(o, "/status/nodeInfo/kubeletVersion")),
        ],
        "Pod" => vec![
            col("Ready", |o, _| {
                let total = o
                    .pointer("/spec/containers")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                let statuses = o
                    .pointer("/status/containerStatuses")
                    .and_then(Value::as_array);
                let ready = statuses
                    .into_iter()
                    .flatten()
                    .filter(|c| c["ready"] == true)
                    .count();
                format!("{ready}/{total}").into()
            }),
            col("Status", |o, _| {
                or(o, "/status/reason", "")
                    .as_str()
                    .filter(|r| !r.is_empty())
                    .map_or_else(|| s(o, "/status/phase"), Value::from)
            }),
            Column {
                ty: "integer",
                ..col("Restarts", |o, _| {
                    let statuses = o
                        .pointer("/status/containerStatuses")
                        .and_then(Value::as_array);
                    let n: i64 = statuses
                        .into_iter()
                        .flatten()
                        .filter_map(|c| c["restartCount"].as_i64())
                        .sum();
                    n.into()
                })
            },
            col("Age", age),
            Column {
                priority: 1,
                ..col("IP", |o, _| or(o, "/status/podIP", "<none>"))
            },
            Column {
                priority: 1,
                ..col("Node", |o, _| or(o, "/spec/nodeName", "<none>"))
            },
        ],
        "Event" => {
            cols.clear();
            vec![
                col("Last Seen", |o, now| {
                    let t = o.pointer("/lastTimestamp").filter(|t| t.is_string());
                    age_of(t.or_else(|| o.pointer("/eventTime")), now)
                }),
                col("Type", |o, _| s(o, "/type")),
                col("Reason", |o, _| s(o, "/reason")),
                col("Object", |o, _| {
                    let kind = s(o, "/involvedObject/kind");
                    let name = s(o, "/involvedObject/name");
                    format!(
                        "{}/{}",
                        kind.as_str().unwrap_or("").to_ascii_lowercase(),
                        name.as_str().unwrap_or("")
                    )
                    .into()
                }),
                col("Message", |o, _| s(o, "/message")),
            ]
        }
        "Namespace" => vec![
            col("Status", |o, _| or(o, "/status/phase", "Active")),
            col("Age", age),
        ],
        "VolumeSnapshot" => vec![
            col("ReadyToUse", |o, _| s(o, "/status/readyToUse")),
            col("SourcePVC", |o, _| {
                s(o, "/spec/source/persistentVolumeClaimName")
            }),
            col("SourceSnapshotContent", |o, _| {
                s(o, "/spec/source/volumeSnapshotContentName")
            }),
            col("RestoreSize", |o, _| s(o, "/status/restoreSize")),
            col("SnapshotClass", |o, _| {
                s(o, "/spec/volumeSnapshotClassName")
            }),
            col("SnapshotContent", |o, _| {
                s(o, "/status/boundVolumeSnapshotContentName")
            }),
            col("CreationTime", |o, now| {
                match o.pointer("/status/creationTime") {
                    Some(t) => age_of(Some(t), now),
                    None => "".into(),
                }
            }),
            col("Age", age),
        ],
        "VolumeSnapshotContent" => vec![
            col("ReadyToUse", |o, _| s(o, "/status/readyToUse")),
            col("RestoreSize", |o, _| s(o, "/status/restoreSize")),
            col("DeletionPolicy", |o, _| s(o, "/spec/deletionPolicy")),
            col("Driver", |o, _| s(o, "/spec/driver")),
            col("VolumeSnapshotClass", |o, _| {
                s(o, "/spec/volumeSnapshotClassName")
            }),
            col("VolumeSnapshot", |o, _| {
                s(o, "/spec/volumeSnapshotRef/name")
            }),
            col("VolumeSnapshotNamespace", |o, _| {
                s(o, "/spec/volumeSnapshotRef/namespace")
            }),
            col("Age", age),
        ],
        "VolumeSnapshotClass" => vec![
            col("Driver", |o, _| s(o, "/driver")),
            col("DeletionPolicy", |o, _| s(o, "/deletionPolicy")),
            col("Age", age),
        ],
        _ => vec![col("Age", age)],
    };
    cols.extend(extra);
    cols
}

/// The Table of `objects` (its `metadata` is left for the caller to fill).
pub fn table(rt: &ResourceType, objects: &[&Value], include: Include) -> Value {
    let now = jiff::Timestamp::now().as_second();
    let cols = columns(rt);
    let definitions: Vec<Value> = cols
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "type": c.ty,
                "format": if c.name == "Name" { "name" } else { "" },
                "description": "",
                "priority": c.priority,
            })
        })
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut cells: Vec<Value> = cols.iter().map(|c| (c.cell)(o, now)).collect();
            if rt.kind == "StorageClass"
                && o.pointer("/metadata/annotations/storageclass.kubernetes.io~1is-default-class")
                    == Some(&json!("true"))
            {
                cells[0] = format!("{} (default)", cells[0].as_str().unwrap_or("")).into();
            }
            let mut row = json!({"cells": cells});
            match include {
                Include::None => {}
                Include::Metadata => row["object"] = partial(o),
                Include::Object => row["object"] = (*o).clone(),
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {},
        "columnDefinitions": definitions,
        "rows": rows,
    })
}

/// `k8s.io/apimachinery/pkg/util/duration.HumanDuration`, in seconds.
pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    let secs = secs.max(0);
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86_400);
    if secs < 120 {
        format!("{secs}s")
    } else if m < 10 {
        if secs % 60 == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{}s", secs % 60)
        }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        if h % 24 == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{}h", h % 24)
        }
    } else if d < 365 * 2 {
        format!("{d}d")
    } else if d < 365 * 8 {
        let (y, dy) = (d / 365, d % 365);
        if dy == 0 {
            format!("{y}y")
        } else {
            format!("{y}y{dy}d")
        }
    } else {
        format!("{}y", d / 365)
    }
}

#[cfg(test)]
mod tests {
    use super::super::resources::by_name;
    use super::*;

    #[test]
    fn durations_like_kubectl() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(150), "2m30s");
        assert_eq!(human_duration(3600), "60m");
        assert_eq!(human_duration(4 * 3600 + 60), "4h1m");
        assert_eq!(human_duration(30 * 3600), "30h");
        assert_eq!(human_duration(3 * 86_400), "3d");
        assert_eq!(human_duration(400 * 86_400), "400d");
        assert_eq!(human_duration(3 * 365 * 86_400 + 86_400), "3y1d");
    }

    #[test]
    fn pv_row_has_upstream_columns() {
        let pv = json!({"metadata": {"name": "pv1", "creationTimestamp": "2020-01-01T00:00:00Z"},
            "spec": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "nfs",
                "claimRef": {"namespace": "db", "name": "data"}},
            "status": {"phase": "Bound"}});
        let t = table(by_name("pv").unwrap(), &[&pv], Include::Metadata);
        let cells = &t["rows"][0]["cells"];
        assert_eq!(cells[0], "pv1");
        assert_eq!(cells[1], "10Gi");
        assert_eq!(cells[2], "RWO");
        assert_eq!(cells[4], "Bound");
        assert_eq!(cells[5], "db/data");
        assert_eq!(t["columnDefinitions"][9]["name"], "Age");
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    }
}
