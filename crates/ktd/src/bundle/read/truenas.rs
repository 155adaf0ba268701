//! `truenas/<method>.json`: the raw result of one TrueNAS API method (the same JSON over
//! REST v2.0, JSON-RPC 2.0 and `midclt call`), of any supported release, streamed through
//! the model's normalizers.

use std::path::Path;

use ktd_model::Event;
use ktd_model::normalize::NormalizeError;
use ktd_model::normalize::truenas as nt;
use ktd_model::truenas::{NasCollection, Share};
use serde_json::Value;

use super::{BundleError, Context, Msg, Out, Rejected, SystemFiles, SystemResult, malformed};

fn hint(method: &str, shape: &str) -> String {
    format!(
        "truenas/{method}.json must hold the raw result of `{method}` ({shape}, as `midclt call {method}` prints it, or the `result` of the API response), not an error message or a whole response envelope: re-collect it with `ktd collect` or `midclt call {method} > {method}.json`"
    )
}

/// Reads `system.info` (+ `iscsi.global.config`, `service.query` when present): small
/// objects, read whole. `Ok(Err(_))` when the object itself cannot be understood.
pub(super) fn read_system(files: &SystemFiles) -> Result<SystemResult, BundleError> {
    let read = |path: &Path, method: &str, shape: &str| -> Result<Value, BundleError> {
        let file = std::fs::File::open(path).map_err(|source| BundleError::Io {
            path: path.to_owned(),
            source,
        })?;
        let value: Value = serde_json::from_reader(std::io::BufReader::new(file))
            .map_err(|e| malformed(path, e.to_string(), hint(method, shape)))?;
        let expected_object = shape.starts_with("a JSON object");
        if value.is_object() != expected_object {
            return Err(malformed(
                path,
                format!("expected {shape}, found {}", kind_of(&value)),
                hint(method, shape),
            ));
        }
        Ok(value)
    };
    let object = "a JSON object";
    let info = read(&files.info, "system.info", object)?;
    let iscsi = match &files.iscsi_global {
        Some(path) => Some(read(path, super::ISCSI_GLOBAL_CONFIG, object)?),
        None => None,
    };
    let services = match &files.services {
        Some(path) => Some(read(path, super::SERVICE_QUERY, "a JSON array")?),
        None => None,
    };
    Ok(
        nt::system_info(&info, iscsi.as_ref(), services.as_ref()).map_err(|e| Rejected {
            file: super::method_file("system.info"),
            object: "system.info".into(),
            error: e.to_string(),
        }),
    )
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a JSON array",
        Value::Object(_) => "a JSON object",
    }
}

/// Streams the method file of one class into events.
pub(super) fn read_class(
    ctx: &Context,
    class: NasCollection,
    method: &str,
    path: &Path,
    out: &Out,
) -> Result<(), BundleError> {
    let reader = out.open(path)?;
    let file = ctx.relative(path);
    let emit = |event: Event| {
        out.send(Msg::Event(ctx.stamp.envelope(&ctx.nas_source, event)));
    };
    let reject = |object: String, error: String| {
        out.send(Msg::NasRejected(Rejected {
            file: file.clone(),
            object,
            error,
        }));
    };
    // Element errors name the entry themselves (`pool.dataset.query entry "tank/x"`).
    let reject_normalized = |e: NormalizeError| match e {
        NormalizeError::Invalid { what, reason } => reject(what, reason),
        other => reject(method.to_owned(), other.to_string()),
    };
    let file_error = |e: NormalizeError| {
        let detail = match e {
            NormalizeError::Invalid { reason, .. } => reason,
            other => other.to_string(),
        };
        malformed(path, detail, hint(method, "a JSON array"))
    };
    match class {
        NasCollection::Datasets => {
            nt::read_datasets(reader, |r| match r {
                Ok(dataset) => emit(Event::DatasetObserved { dataset }),
                Err(e) => reject_normalized(e),
            })
            .map_err(file_error)?;
        }
        NasCollection::Snapshots => {
            nt::read_snapshots(reader, |r| match r {
                Ok(snapshot) => emit(Event::SnapshotObserved { snapshot }),
                Err(e) => reject_normalized(e),
            })
            .map_err(file_error)?;
        }
        NasCollection::System => unreachable!("system.info is read first, on its own"),
        _ => {
            let normalize: fn(&Value) -> Result<Event, NormalizeError> = match class {
                NasCollection::Pools => |v| nt::pool(v).map(|pool| Event::PoolObserved { pool }),
                NasCollection::NfsShares => |v| share(nt::nfs_share(v).map(Share::Nfs)),
                NasCollection::SmbShares => |v| share(nt::smb_share(v).map(Share::Smb)),
                NasCollection::IscsiTargets => {
                    |v| share(nt::iscsi_target(v).map(Share::IscsiTarget))
                }
                NasCollection::IscsiExtents => {
                    |v| share(nt::iscsi_extent(v).map(Share::IscsiExtent))
                }
                _ => |v| share(nt::iscsi_targetextent(v).map(Share::IscsiTargetExtent)),
            };
            nt::for_each_element::<Value, _>(reader, method, |raw| {
                let Ok(raw) = raw else { return };
                match normalize(&raw) {
                    Ok(event) => emit(event),
                    Err(e) => reject(format!("{method} {}", label(&raw)), reason(e)),
                }
            })
            .map_err(file_error)?;
        }
    }
    Ok(())
}

fn share(r: Result<Share, NormalizeError>) -> Result<Event, NormalizeError> {
    r.map(|share| Event::ShareObserved { share })
}

fn reason(e: NormalizeError) -> String {
    match e {
        NormalizeError::Invalid { reason, .. } => reason,
        other => other.to_string(),
    }
}

/// How an entry is named in messages: its `name`, else its `id`, else `(unnamed)`.
fn label(raw: &Value) -> String {
    match raw.get("name").or_else(|| raw.get("id")) {
        Some(Value::String(s)) => s.clone(),
        Some(v) if !v.is_null() => v.to_string(),
        _ => "(unnamed)".into(),
    }
}
