//! The write methods a cleanup tool needs: deleting snapshots, datasets, shares and iSCSI
//! objects, and updating dataset user properties. Changes go through
//! [`Shared::update`] as API changes, so subscribers get the middleware's events.

use serde_json::{Value, json};

use super::Shared;
use super::events::Origin;
use super::methods::CallError;
use crate::world::{Nas, Personality};

/// Write methods the simulator performs (the others are refused).
const WRITES: [&str; 9] = [
    "pool.dataset.delete",
    "pool.dataset.update",
    "zfs.snapshot.delete",
    "pool.snapshot.delete",
    "sharing.nfs.delete",
    "sharing.smb.delete",
    "iscsi.target.delete",
    "iscsi.extent.delete",
    "iscsi.targetextent.delete",
];

/// Whether the simulator performs this write method (availability is checked by the caller).
pub(crate) fn performs(method: &str) -> bool {
    WRITES.contains(&method)
}

fn efault(reason: String) -> CallError {
    CallError::Call {
        errno: 14,
        errname: "EFAULT",
        reason,
    }
}

fn bool_opt(params: &[Value], key: &str) -> bool {
    params
        .get(1)
        .and_then(|o| o.get(key))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// Performs a write method; `params` are the positional JSON-RPC params.
pub(crate) fn call(
    shared: &Shared,
    server: Personality,
    method: &str,
    params: &[Value],
) -> Result<Value, CallError> {
    let id = params
        .first()
        .cloned()
        .ok_or_else(|| CallError::invalid("id", "attribute required"))?;
    match method {
        "pool.dataset.delete" => {
            let name = id
                .as_str()
                .ok_or_else(|| CallError::invalid("id", "Not a string"))?
                .to_owned();
            let recursive = bool_opt(params, "recursive");
            shared
                .update(Origin::Api, |nas| delete_dataset(nas, &name, recursive))
                .map(|()| json!(true))
        }
        "pool.dataset.update" => {
            let name = id
                .as_str()
                .ok_or_else(|| CallError::invalid("id", "Not a string"))?
                .to_owned();
            let changes = params.get(1).cloned().unwrap_or(Value::Null);
            shared.update(Origin::Api, |nas| update_dataset(nas, &name, &changes))?;
            let r = shared.rendered(server);
            super::methods::dataset_entry(&r, &name).ok_or(CallError::NotFound)
        }
        "zfs.snapshot.delete" | "pool.snapshot.delete" => {
            let name = id
                .as_str()
                .ok_or_else(|| CallError::invalid("id", "Not a string"))?
                .to_owned();
            let defer = bool_opt(params, "defer");
            shared
                .update(Origin::Api, |nas| delete_snapshot(nas, &name, defer))
                .map(|()| json!(true))
        }
        _ => {
            let id = id
                .as_u64()
                .ok_or_else(|| CallError::invalid("id", "Not an integer"))?;
            let id = u32::try_from(id).map_err(|_| CallError::NotFound)?;
            shared
                .update(Origin::Api, |nas| delete_record(nas, method, id))
                .map(|()| json!(true))
        }
    }
}

fn delete_dataset(nas: &mut Nas, name: &str, recursive: bool) -> Result<(), CallError> {
    if !nas.datasets.iter().any(|d| d.name == name) {
        return Err(CallError::NotFound);
    }
    let prefix = format!("{name}/");
    let inside = |ds: &str| ds == name || ds.starts_with(&prefix);
    let has_children = nas.datasets.iter().any(|d| d.name.starts_with(&prefix))
        || nas.snapshots.iter().any(|s| s.dataset == name);
    if has_children && !recursive {
        return Err(efault(format!(
            "Failed to delete dataset: cannot destroy '{name}': filesystem has children\nuse '-r' to destroy the following datasets"
        )));
    }
    let clones: Vec<&str> = nas
        .datasets
        .iter()
        .filter(|d| !inside(&d.name))
        .filter(|d| {
            d.origin
                .as_deref()
                .and_then(|o| o.split_once('@'))
                .is_some_and(|(ds, _)| inside(ds))
        })
        .map(|d| d.name.as_str())
        .collect();
    if !clones.is_empty() {
        return Err(efault(format!(
            "Failed to delete dataset: cannot destroy '{name}': filesystem has dependent clones\nuse '-R' to destroy the following datasets:\n{}",
            clones.join("\n")
        )));
    }
    nas.datasets.retain(|d| !inside(&d.name));
    nas.snapshots.retain(|s| !inside(&s.dataset));
    Ok(())
}

fn update_dataset(nas: &mut Nas, name: &str, changes: &Value) -> Result<(), CallError> {
    let ds = nas
        .datasets
        .iter_mut()
        .find(|d| d.name == name)
        .ok_or(CallError::NotFound)?;
    let Some(obj) = changes.as_object() else {
        return Err(CallError::invalid(
            "pool_dataset_update.data",
            "Not a dictionary",
        ));
    };
    for (k, v) in obj {
        if k != "user_properties_update" {
            return Err(CallError::invalid(
                &format!("pool_dataset_update.{k}"),
                "The simulator only updates user_properties_update",
            ));
        }
        for (i, item) in v.as_array().into_iter().flatten().enumerate() {
            let attr = format!("pool_dataset_update.user_properties_update.{i}");
            let key = item
                .get("key")
                .and_then(Value::as_str)
                .ok_or_else(|| CallError::invalid(&attr, "key required"))?;
            if !key.contains(':') {
                return Err(CallError::invalid(
                    &format!("{attr}.key"),
                    "User property name must contain a ':'",
                ));
            }
            if item.get("remove").and_then(Value::as_bool).unwrap_or(false) {
                // `zfs inherit`: the local value goes, an ancestor's shows through.
                ds.user_properties.remove(key);
            } else {
                let value = item
                    .get("value")
                    .and_then(Value::as_str)
                    .ok_or_else(|| CallError::invalid(&attr, "value required"))?;
                ds.user_properties.insert(key.to_owned(), value.to_owned());
            }
        }
    }
    Ok(())
}

fn delete_snapshot(nas: &mut Nas, name: &str, defer: bool) -> Result<(), CallError> {
    let Some(i) = nas.snapshots.iter().position(|s| s.full_name() == name) else {
        return Err(CallError::NotFound);
    };
    let clones: Vec<&str> = nas
        .datasets
        .iter()
        .filter(|d| d.origin.as_deref() == Some(name))
        .map(|d| d.name.as_str())
        .collect();
    if !clones.is_empty() {
        if defer {
            nas.snapshots[i].defer_destroy = true;
            return Ok(());
        }
        return Err(efault(format!(
            "cannot destroy snapshot {name}: snapshot has dependent clones\nuse '-R' to destroy the following datasets:\n{}",
            clones.join("\n")
        )));
    }
    if nas.snapshots[i].holds > 0 {
        return Err(efault(format!(
            "cannot destroy snapshot {name}: dataset is busy"
        )));
    }
    nas.snapshots.remove(i);
    Ok(())
}

fn delete_record(nas: &mut Nas, method: &str, id: u32) -> Result<(), CallError> {
    let before = record_count(nas);
    match method {
        "sharing.nfs.delete" => nas.nfs_shares.retain(|s| s.id != id),
        "sharing.smb.delete" => nas.smb_shares.retain(|s| s.id != id),
        "iscsi.target.delete" => {
            nas.iscsi_targets.retain(|t| t.id != id);
            nas.iscsi_targetextents.retain(|te| te.target != id);
        }
        "iscsi.extent.delete" => {
            nas.iscsi_extents.retain(|e| e.id != id);
            nas.iscsi_targetextents.retain(|te| te.extent != id);
        }
        "iscsi.targetextent.delete" => nas.iscsi_targetextents.retain(|te| te.id != id),
        _ => return Err(CallError::NoMethod),
    }
    if record_count(nas) == before {
        Err(CallError::NotFound)
    } else {
        Ok(())
    }
}

fn record_count(nas: &Nas) -> usize {
    nas.nfs_shares.len()
        + nas.smb_shares.len()
        + nas.iscsi_targets.len()
        + nas.iscsi_extents.len()
        + nas.iscsi_targetextents.len()
}
