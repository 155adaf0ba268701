//! World → wire JSON for the database-backed services (shares, iSCSI, services), the
//! system calls and alerts.

use serde_json::{Value, json};

use super::render::{date, fake_guid};
use crate::world::{Nas, Personality};

/// `sharing.nfs.query` entries.
pub(crate) fn nfs_shares(nas: &Nas, p: Personality) -> Vec<Value> {
    nas.nfs_shares
        .iter()
        .map(|s| {
            let mut o = json!({
                "id": s.id, "path": s.path, "aliases": [], "comment": s.comment,
                "networks": s.networks, "hosts": s.hosts, "ro": false,
                "maproot_user": "root", "maproot_group": "root",
                "mapall_user": null, "mapall_group": null, "security": [],
                "enabled": s.enabled, "locked": false,
            });
            let m = o.as_object_mut().expect("object literal");
            if p == Personality::V22_12 {
                m.insert("quiet".into(), json!(false));
            }
            if p >= Personality::V25_04 {
                m.insert("expose_snapshots".into(), json!(false));
            }
            o
        })
        .collect()
}

/// `sharing.smb.query` entries: flat up to 25.04, reshaped in 25.10.
pub(crate) fn smb_shares(nas: &Nas, p: Personality) -> Vec<Value> {
    nas.smb_shares
        .iter()
        .map(|s| {
            if p >= Personality::V25_10 {
                return json!({
                    "id": s.id, "purpose": "DEFAULT_SHARE", "name": s.name, "path": s.path,
                    "enabled": s.enabled, "comment": s.comment, "readonly": false,
                    "browsable": true, "access_based_share_enumeration": false, "locked": false,
                    "audit": {"enable": false, "watch_list": [], "ignore_list": []},
                    "options": {"aapl_name_mangling": false, "hostsallow": [], "hostsdeny": [],
                                "guestok": false, "streams": true, "durablehandle": true,
                                "shadowcopy": true, "fsrvp": false, "auxsmbconf": ""},
                });
            }
            let mut o = json!({
                "id": s.id, "purpose": "NO_PRESET", "path": s.path, "path_suffix": "",
                "home": false, "name": s.name, "comment": s.comment, "ro": false,
                "browsable": true, "timemachine": false, "recyclebin": false, "guestok": false,
                "abe": false, "hostsallow": [], "hostsdeny": [], "aapl_name_mangling": false,
                "acl": true, "durablehandle": true, "shadowcopy": true, "streams": true,
                "fsrvp": false, "auxsmbconf": "", "enabled": s.enabled, "afp": false,
                "vuid": format!("{:032x}", u128::from(fake_guid(&s.name))),
                "path_local": s.path, "locked": false,
            });
            let m = o.as_object_mut().expect("object literal");
            if p == Personality::V22_12 {
                m.insert("cluster_volname".into(), json!(""));
            } else {
                m.insert("timemachine_quota".into(), json!(0));
                m.insert(
                    "audit".into(),
                    json!({"enable": false, "watch_list": [], "ignore_list": []}),
                );
            }
            o
        })
        .collect()
}

/// `iscsi.extent.query` entries.
pub(crate) fn iscsi_extents(nas: &Nas, _p: Personality) -> Vec<Value> {
    nas.iscsi_extents
        .iter()
        .map(|e| {
            let serial = format!("{:012x}", fake_guid(&e.name) & 0xffff_ffff_ffff);
            json!({
                "id": e.id, "name": e.name, "type": "DISK", "disk": e.disk, "serial": serial,
                "path": e.disk, "filesize": 0, "blocksize": 512, "pblocksize": false,
                "avail_threshold": null, "comment": e.comment,
                "naa": format!("0x6589cfc000000{:03x}", fake_guid(&e.name) & 0xfff),
                "insecure_tpc": true, "xen": false, "rpm": "SSD", "ro": false,
                "enabled": e.enabled, "vendor": "TrueNAS", "locked": false,
            })
        })
        .collect()
}

/// `iscsi.target.query` entries.
pub(crate) fn iscsi_targets(nas: &Nas, p: Personality) -> Vec<Value> {
    nas.iscsi_targets
        .iter()
        .map(|t| {
            let mut o = json!({
                "id": t.id, "name": t.name, "alias": null, "mode": "ISCSI",
                "groups": [{"portal": t.portal, "initiator": t.initiator,
                            "authmethod": "NONE", "auth": null}],
                "auth_networks": [],
            });
            let m = o.as_object_mut().expect("object literal");
            if p >= Personality::V24_10 {
                m.insert("rel_tgt_id".into(), json!(t.id));
            }
            if p >= Personality::V25_04 {
                m.insert("iscsi_parameters".into(), Value::Null);
            }
            o
        })
        .collect()
}

/// `iscsi.targetextent.query` entries.
pub(crate) fn iscsi_targetextents(nas: &Nas, _p: Personality) -> Vec<Value> {
    nas.iscsi_targetextents
        .iter()
        .map(|te| json!({"id": te.id, "target": te.target, "lunid": te.lunid, "extent": te.extent}))
        .collect()
}

/// `iscsi.global.config`.
pub(crate) fn iscsi_global(nas: &Nas, p: Personality) -> Value {
    let mut o = json!({
        "id": 1, "basename": nas.iscsi_basename, "isns_servers": [], "listen_port": 3260,
        "pool_avail_threshold": null, "alua": false,
    });
    if p >= Personality::V25_04 {
        o["iser"] = json!(false);
    }
    o
}

/// `service.query` entries.
pub(crate) fn services(nas: &Nas, _p: Personality) -> Vec<Value> {
    nas.services
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let running = s.state == "RUNNING";
            let pids: Vec<u32> = if running {
                vec![1000 + i as u32 * 17]
            } else {
                vec![]
            };
            json!({"id": i + 1, "service": s.service, "enable": s.enable,
                   "state": s.state, "pids": pids})
        })
        .collect()
}

/// Wall-clock now, Unix seconds.
pub(crate) fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// `system.info` of a `server` release, in the shape of API version `p`.
pub(crate) fn system_info(nas: &Nas, server: Personality, p: Personality) -> Value {
    let now = now();
    let up = (now - nas.boottime).max(0);
    let uptime = format!(
        "{} days, {}:{:02}:{:02}.000000",
        up / 86_400,
        up % 86_400 / 3600,
        up % 3600 / 60,
        up % 60
    );
    let mut o = json!({
        "version": server.version_string(), "buildtime": date(nas.boottime - 30 * 86_400),
        "hostname": nas.hostname, "physmem": 68_719_476_736u64, "model": "AMD EPYC 7302P 16-Core Processor",
        "cores": 32, "physical_cores": 16, "loadavg": [0.42, 0.38, 0.35],
        "uptime": uptime, "uptime_seconds": up as f64,
        "system_serial": "SIM0001", "system_product": "ktd-sim", "system_product_version": "1.0",
        "license": null, "boottime": date(nas.boottime), "datetime": date(now),
        "timezone": "UTC", "system_manufacturer": "ktd", "ecc_memory": true,
    });
    if p == Personality::V22_12 {
        o["birthday"] = date(nas.boottime - 365 * 86_400);
    }
    o
}

/// Capacity thresholds (notice, warning, critical) in percent for this release.
fn capacity_thresholds(p: Personality) -> [(u64, &'static str, &'static str); 3] {
    // 85/90/95 from 25.04.2; our 25.04 personality is 25.04.2.6.
    let t = if p >= Personality::V25_04 {
        [85, 90, 95]
    } else {
        [70, 80, 90]
    };
    [
        (t[2], "ZpoolCapacityCritical", "CRITICAL"),
        (t[1], "ZpoolCapacityWarning", "WARNING"),
        (t[0], "ZpoolCapacityNotice", "NOTICE"),
    ]
}

/// Python `%` formatting with a dict: `%(name)s`, `%(name)d`, `%%`.
fn format_alert(text: &str, args: &Value) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('%') {
            out.push('%');
            rest = r;
        } else if let Some(r) = rest.strip_prefix('(')
            && let Some(end) = r.find(')')
        {
            let v = &args[&r[..end]];
            out.push_str(&v.as_str().map_or_else(|| v.to_string(), str::to_owned));
            rest = r.get(end + 2..).unwrap_or_default();
        } else {
            out.push('%');
        }
    }
    out.push_str(rest);
    out
}

fn alert(
    source: &str,
    klass: &str,
    level: &str,
    key: &str,
    args: Value,
    text: &str,
    at: i64,
) -> Value {
    let formatted = format_alert(text, &args);
    let uuid = uuid::Uuid::from_u64_pair(fake_guid(klass), fake_guid(key)).to_string();
    json!({"uuid": uuid, "id": uuid, "source": source, "klass": klass, "args": args,
           "node": "Controller A", "key": key, "datetime": date(at), "last_occurrence": date(at),
           "dismissed": false, "mail": null, "text": text, "level": level,
           "formatted": formatted, "one_shot": false})
}

/// `alert.list`: derived from the world (pool capacity and health, snapshot total, revoked keys).
pub(crate) fn alerts(nas: &Nas, p: Personality) -> Vec<Value> {
    let mut out = Vec::new();
    let at = nas.boottime.max(0) + 300;
    for pool in &nas.pools {
        if pool.size == 0 {
            continue;
        }
        let capacity = pool.allocated.saturating_mul(100) / pool.size;
        if let Some((_, klass, level)) = capacity_thresholds(p)
            .into_iter()
            .find(|(t, _, _)| capacity >= *t)
        {
            let key = serde_json::to_string(&[&pool.name]).unwrap_or_default();
            out.push(alert(
                "ZpoolCapacity", klass, level, &key,
                json!({"volume": pool.name, "capacity": capacity}),
                "Space usage for pool \"%(volume)s\" is %(capacity)d%%. Optimal pool performance requires used space remain below 80%%.",
                at,
            ));
        }
        if pool.status != "ONLINE" {
            let key = serde_json::to_string(&[&pool.name]).unwrap_or_default();
            out.push(alert(
                "VolumeStatus",
                "VolumeStatus",
                "CRITICAL",
                &key,
                json!({"volume": pool.name, "state": pool.status, "status": ""}),
                "Pool %(volume)s state is %(state)s: %(status)s",
                at,
            ));
        }
    }
    let total = nas.snapshots.len();
    if total > 10_000 {
        out.push(alert(
            "SnapshotCount", "SnapshotTotalCount", "WARNING", "null",
            json!({"count": total, "max": 10_000}),
            "Your system has more snapshots (%(count)d) than recommended (%(max)d). Performance or functionality might degrade.",
            at,
        ));
    }
    if p >= Personality::V25_04 {
        for key in nas.api_keys.iter().filter(|k| k.revoked) {
            out.push(alert(
                "ApiKeyRevoked", "ApiKeyRevoked", "WARNING", &key.id.to_string(),
                json!({"key_name": key.name, "reason": "Attempt to use over an insecure transport"}),
                "%(key_name)s: API key has been revoked and must either be renewed or deleted. Once the maintenance is performed, this alert may be dismissed. Reason: %(reason)s.",
                at,
            ));
        }
    }
    out
}

/// 25.10.1+: the daily `RESTAPIUsage` warning listing the clients that used REST.
/// (The simulator raises it as soon as REST was used; the wording is approximate.)
pub(crate) fn rest_usage_alert(
    p: Personality,
    uses: &[(std::net::IpAddr, u64)],
    boottime: i64,
) -> Option<Value> {
    if p < Personality::V25_10 || uses.is_empty() {
        return None;
    }
    let count: u64 = uses.iter().map(|(_, n)| n).sum();
    let ips: Vec<String> = uses.iter().map(|(ip, _)| ip.to_string()).collect();
    Some(alert(
        "RESTAPIUsage",
        "RESTAPIUsage",
        "WARNING",
        "null",
        json!({"count": count, "ip_addresses": ips.join(", ")}),
        "Deprecated REST API usage: %(count)d successful authentications in the last 24 hours from %(ip_addresses)s. The REST API will be removed in version 26.04.",
        boottime.max(0) + 86_400,
    ))
}
