//! TrueNAS result shapes of every supported release (reference/truenas-api.md §2) into
//! normalized resources.

use ktd_model::Timestamp;
use ktd_model::normalize::truenas as tn;
use ktd_model::truenas::*;
use serde_json::{Value, json};

fn prop(raw: &str, parsed: Value, source: &str) -> Value {
    json!({"parsed": parsed, "rawvalue": raw, "value": raw, "source": source, "source_info": null})
}

fn user(v: &str, source: &str) -> Value {
    json!({"value": v, "rawvalue": v, "parsed": v, "source": source})
}

/// A 25.04 `pool.dataset.query` with the default `flat: true`: every dataset carries its
/// whole subtree, so children appear twice.
fn flat_dataset_query() -> Value {
    let zvol = json!({
        "id": "tank/k8s/iscsi/pvc-3f2a", "name": "tank/k8s/iscsi/pvc-3f2a", "pool": "tank", "type": "VOLUME",
        "encrypted": false, "encryption_root": null, "key_loaded": false, "locked": false, "mountpoint": null,
        "children": [],
        "used": prop("10748952576", json!(10748952576u64), "NONE"),
        "available": prop("7534150254592", json!(7534150254592u64), "NONE"),
        "volsize": prop("10737418240", json!(10737418240u64), "LOCAL"),
        "refreservation": {"parsed": null, "rawvalue": "0", "value": null, "source": "DEFAULT", "source_info": null},
        "creation": {"parsed": {"$date": 1731000000000u64}, "rawvalue": "1731000000", "value": "Thu Nov  7 17:20 2024", "source": "NONE", "source_info": null},
        "compressratio": {"parsed": "1.37", "rawvalue": "1.37", "value": "1.37x", "source": "NONE", "source_info": null},
        "origin": {"parsed": "", "rawvalue": "", "value": "", "source": "NONE", "source_info": null},
        "user_properties": {
            "democratic-csi:csi_volume_name": user("pvc-3f2a", "LOCAL"),
            "democratic-csi:managed_resource": user("true", "LOCAL"),
            "org.freenas:description": {"value": "k8s", "rawvalue": "k8s", "parsed": "k8s", "source": "INHERITED", "source_info": "tank/k8s"}
        }
    });
    let fs = json!({
        "id": "tank/k8s/nfs/pvc-91bd", "name": "tank/k8s/nfs/pvc-91bd", "pool": "tank", "type": "FILESYSTEM",
        "encrypted": false, "locked": false, "mountpoint": "/mnt/tank/k8s/nfs/pvc-91bd", "children": [],
        "usedbysnapshots": prop("1048576", json!(1048576), "NONE"),
        "refquota": {"parsed": null, "rawvalue": "0", "value": null, "source": "DEFAULT", "source_info": null},
        "origin": prop("tank/k8s/nfs/pvc-src@snapshot-1", json!("tank/k8s/nfs/pvc-src@snapshot-1"), "NONE"),
        "readonly": {"parsed": false, "rawvalue": "off", "value": "OFF", "source": "DEFAULT", "source_info": null},
        "user_properties": {"democratic-csi:managed_resource": user("true", "LOCAL")}
    });
    let nfs_parent = json!({"id": "tank/k8s/nfs", "name": "tank/k8s/nfs", "pool": "tank", "type": "FILESYSTEM",
        "mountpoint": "/mnt/tank/k8s/nfs", "children": [fs.clone()], "user_properties": {}});
    let iscsi_parent = json!({"id": "tank/k8s/iscsi", "name": "tank/k8s/iscsi", "pool": "tank", "type": "FILESYSTEM",
        "mountpoint": "/mnt/tank/k8s/iscsi", "children": [zvol.clone()], "user_properties": {}});
    let k8s = json!({"id": "tank/k8s", "name": "tank/k8s", "pool": "tank", "type": "FILESYSTEM",
        "mountpoint": "/mnt/tank/k8s", "children": [nfs_parent.clone(), iscsi_parent.clone()], "user_properties": {}});
    let root = json!({"id": "tank", "name": "tank", "pool": "tank", "type": "FILESYSTEM",
        "mountpoint": "/mnt/tank", "children": [k8s.clone()], "user_properties": {}});
    json!([root, k8s, nfs_parent, fs, iscsi_parent, zvol])
}

#[test]
fn flat_dataset_query_is_flattened_once() {
    let datasets = tn::datasets(&flat_dataset_query()).unwrap();
    let names: Vec<_> = datasets.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "tank",
            "tank/k8s",
            "tank/k8s/nfs",
            "tank/k8s/nfs/pvc-91bd",
            "tank/k8s/iscsi",
            "tank/k8s/iscsi/pvc-3f2a"
        ]
    );
}

#[test]
fn dataset_properties_are_read_from_their_objects() {
    let datasets = tn::datasets(&flat_dataset_query()).unwrap();
    let zvol = datasets
        .iter()
        .find(|d| d.name.ends_with("pvc-3f2a"))
        .unwrap();
    assert_eq!(zvol.kind, DatasetType::Volume);
    assert_eq!(zvol.mountpoint, None);
    assert_eq!(zvol.used, Some(10_748_952_576));
    assert_eq!(zvol.volsize, Some(10 << 30));
    assert_eq!(zvol.refreservation, None, "0 means none");
    assert_eq!(
        zvol.creation,
        Some(Timestamp::from_unix_secs(1_731_000_000))
    );
    assert_eq!(zvol.compressratio.as_deref(), Some("1.37"));
    assert_eq!(zvol.origin, None);
    assert!(zvol.is_managed());
    assert_eq!(
        zvol.own_prop("democratic-csi:csi_volume_name"),
        Some("pvc-3f2a")
    );
    let desc = &zvol.user_properties["org.freenas:description"];
    assert_eq!(desc.source, PropertySource::Inherited);
    assert_eq!(desc.inherited_from.as_deref(), Some("tank/k8s"));

    let fs = datasets
        .iter()
        .find(|d| d.name.ends_with("pvc-91bd"))
        .unwrap();
    assert_eq!(fs.mountpoint.as_deref(), Some("/mnt/tank/k8s/nfs/pvc-91bd"));
    assert_eq!(fs.used_by_snapshots, Some(1_048_576));
    assert_eq!(fs.refquota, None);
    assert_eq!(fs.readonly, Some(false));
    assert_eq!(
        fs.origin.as_deref(),
        Some("tank/k8s/nfs/pvc-src@snapshot-1")
    );
}

#[test]
fn tree_form_and_streaming_give_the_same_datasets() {
    let flat = tn::datasets(&flat_dataset_query()).unwrap();
    // flat: false returns only the roots, with the tree inside.
    let tree = json!([flat_dataset_query()[0].clone()]);
    let from_tree = tn::datasets(&tree).unwrap();
    assert_eq!(from_tree, flat);
    // Streaming hands each dataset over when its object closes (children before their
    // parent): the same datasets, in another order.
    let by_name = |mut v: Vec<Dataset>| {
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    };
    for doc in [flat_dataset_query(), tree] {
        let text = serde_json::to_vec(&doc).unwrap();
        let mut streamed = Vec::new();
        let n = tn::read_datasets(text.as_slice(), |d| streamed.push(d.unwrap())).unwrap();
        assert_eq!(n, 6);
        assert_eq!(by_name(streamed), by_name(flat.clone()));
    }
}

#[test]
fn a_tree_streams_node_by_node_and_a_bad_parent_keeps_its_children() {
    let doc = json!({"id": "tank", "name": "tank", "type": "FILESYSTEM", "children": [
        {"name": "tank/bad", "type": 42, "children": [
            {"name": "tank/bad/child", "type": "VOLUME", "children": []},
            {"type": "FILESYSTEM", "used": 7},
            "not an object"
        ]},
        {"name": "tank/odd", "type": "FILESYSTEM", "children": "none"}
    ]});
    let mut ok = Vec::new();
    let mut rejected = Vec::new();
    tn::read_dataset_tree(&serde_json::to_vec(&doc).unwrap(), |r| match r {
        Ok(d) => ok.push(d.name),
        Err(r) => rejected.push((r.name, r.error.to_string())),
    })
    .unwrap();
    ok.sort();
    assert_eq!(ok, ["tank", "tank/bad/child"]);
    assert_eq!(rejected.len(), 4, "{rejected:?}");
    let named: Vec<_> = rejected.iter().filter_map(|(n, _)| n.clone()).collect();
    assert_eq!(named.len(), 2, "{rejected:?}");
    assert!(named.contains(&"tank/bad".to_owned()));
    assert!(
        rejected
            .iter()
            .any(|(n, e)| n.as_deref() == Some("tank/odd") && e.contains("`children`")),
        "{rejected:?}"
    );
    assert!(
        rejected
            .iter()
            .any(|(n, e)| n.is_none() && e.contains("a string"))
    );
    // Not JSON at all: the whole answer fails, naming the method.
    let err = tn::read_dataset_tree(br#"{"name": "tank", "children": [{"name": }]}"#, |_| {})
        .unwrap_err();
    assert!(err.to_string().contains("pool.dataset.query"), "{err}");
}

#[test]
fn a_snapshot_reads_from_json_text_like_from_a_value() {
    let entry = snapshot_entry();
    let text = serde_json::to_vec(&entry).unwrap();
    assert_eq!(
        tn::snapshot_from_json(&text).unwrap(),
        tn::snapshot(&entry).unwrap()
    );
    let err = tn::snapshot_from_json(br#"{"name": "tank/a", "properties": {}}"#).unwrap_err();
    assert!(err.to_string().contains("tank/a"), "{err}");
    assert!(tn::snapshot_from_json(br#"{"name": "tank/a@s", "properties": 3}"#).is_err());
}

#[test]
fn malformed_entries_are_named_and_the_rest_still_read() {
    let doc = json!([
        {"id": "tank/a", "name": "tank/a", "type": "FILESYSTEM"},
        {"id": "tank/b", "name": "tank/b", "type": "BLOCKDEVICE"},
        {"name": "tank/c", "used": "not-an-object"},
        {"id": "tank/d", "name": "tank/d", "type": "VOLUME"}
    ]);
    let mut ok = Vec::new();
    let mut errors = Vec::new();
    tn::read_datasets(serde_json::to_vec(&doc).unwrap().as_slice(), |r| match r {
        Ok(d) => ok.push(d.name),
        Err(e) => errors.push(e.to_string()),
    })
    .unwrap();
    assert_eq!(ok, ["tank/a", "tank/d"]);
    assert_eq!(errors.len(), 2);
    assert!(
        errors[0].contains("tank/b") && errors[0].contains("BLOCKDEVICE"),
        "{}",
        errors[0]
    );
    assert!(errors[1].contains("tank/c"), "{}", errors[1]);
}

#[test]
fn a_document_that_is_not_an_array_fails_clearly() {
    let err = tn::read_datasets(&b"{\"message\": \"Invalid API key\"}"[..], |_| {}).unwrap_err();
    assert!(err.to_string().contains("pool.dataset.query"), "{err}");
    let err = tn::read_datasets(&b"[{\"id\": \"tank\"}"[..], |_| {}).unwrap_err();
    assert!(err.to_string().contains("EOF"), "{err}");
}

fn snapshot_entry() -> Value {
    json!({
        "id": "tank/k8s/iscsi/pvc-3f2a@snapshot-7c1e", "name": "tank/k8s/iscsi/pvc-3f2a@snapshot-7c1e",
        "pool": "tank", "type": "SNAPSHOT", "snapshot_name": "snapshot-7c1e", "dataset": "tank/k8s/iscsi/pvc-3f2a",
        "createtxg": "918273",
        "properties": {
            "used": {"value": "1.2M", "rawvalue": "1253376", "source": "NONE", "parsed": 1253376},
            "referenced": {"value": "4.1G", "rawvalue": "4402341888", "source": "NONE", "parsed": 4402341888u64},
            "creation": {"value": "Fri Nov  8 10:00 2024", "rawvalue": "1731060000", "source": "NONE", "parsed": {"$date": 1731060000000u64}},
            "clones": {"value": "tank/k8s/iscsi/pvc-new", "rawvalue": "tank/k8s/iscsi/pvc-new", "source": "NONE", "parsed": "tank/k8s/iscsi/pvc-new"},
            "defer_destroy": {"value": "off", "rawvalue": "off", "source": "NONE", "parsed": false},
            "democratic-csi:csi_snapshot_name": {"value": "snapshot-7c1e", "rawvalue": "snapshot-7c1e", "source": "LOCAL", "parsed": "snapshot-7c1e"},
            "democratic-csi:managed_resource": {"value": "true", "rawvalue": "true", "source": "LOCAL", "parsed": "true"},
            "democratic-csi:csi_volume_name": {"value": "pvc-3f2a", "rawvalue": "pvc-3f2a", "source": "INHERITED", "parsed": "pvc-3f2a"}
        },
        "holds": {"truenas": 1}
    })
}

#[test]
fn snapshots_of_zfs_and_pool_snapshot_query_read_alike() {
    // zfs.snapshot.query (≤ 25.04) and pool.snapshot.query (25.10) share the entry shape.
    let s = tn::snapshot(&snapshot_entry()).unwrap();
    assert_eq!(s.dataset, "tank/k8s/iscsi/pvc-3f2a");
    assert_eq!(s.snapshot_name, "snapshot-7c1e");
    assert_eq!(
        s.createtxg,
        Some(918_273),
        "createtxg is a string on the wire"
    );
    assert_eq!(s.used, Some(1_253_376));
    assert_eq!(s.referenced, Some(4_402_341_888));
    assert_eq!(s.creation, Some(Timestamp::from_unix_secs(1_731_060_000)));
    assert_eq!(s.clones, ["tank/k8s/iscsi/pvc-new"]);
    assert_eq!(s.holds, Some(1));
    assert!(s.is_managed());
    assert_eq!(
        s.user_properties["democratic-csi:csi_volume_name"].source,
        PropertySource::Inherited
    );
    assert!(
        !s.user_properties.contains_key("used"),
        "native properties are not user properties"
    );
}

#[test]
fn snapshot_with_26_style_empty_properties_still_reads() {
    // 26 returns no properties unless asked: the snapshot is still known, without figures.
    let s = tn::snapshot(
        &json!({"id": "tank/a@b", "name": "tank/a@b", "dataset": "tank/a",
        "snapshot_name": "b", "pool": "tank", "createtxg": 12, "properties": {}}),
    )
    .unwrap();
    assert_eq!(s.createtxg, Some(12));
    assert_eq!(s.used, None);
    assert!(!s.is_managed());
}

#[test]
fn nfs_shares_of_every_release() {
    // 22.12+: `path`; 22.12 still has `quiet`; 25.04 adds `expose_snapshots`.
    let v2212 = json!({"id": 7, "path": "/mnt/tank/k8s/nfs/pvc-91bd", "aliases": [], "comment": "democratic-csi (org.democratic-csi.nfs): tank/k8s/nfs/pvc-91bd",
        "networks": ["10.0.0.0/24"], "hosts": [], "ro": false, "quiet": false, "maproot_user": "root", "maproot_group": "root",
        "mapall_user": null, "mapall_group": null, "security": [], "enabled": true, "locked": false});
    let s = tn::nfs_share(&v2212).unwrap();
    assert_eq!(s.path, "/mnt/tank/k8s/nfs/pvc-91bd");
    assert_eq!(s.networks, ["10.0.0.0/24"]);
    assert!(s.enabled);
    // Before 22.12 (and CORE): `paths`.
    let old = json!({"id": 3, "paths": ["/mnt/tank/a", "/mnt/tank/b"], "comment": "", "ro": true, "enabled": true, "alldirs": false});
    let s = tn::nfs_share(&old).unwrap();
    assert_eq!(s.path, "/mnt/tank/a");
    assert_eq!(s.extra_paths, ["/mnt/tank/b"]);
    assert!(s.readonly);
    let err = tn::nfs_share(&json!({"id": 4})).unwrap_err();
    assert!(err.to_string().contains("NFS share 4"), "{err}");
}

#[test]
fn smb_shares_flat_and_25_10_shapes() {
    let flat = json!({"id": 1, "purpose": "DEFAULT_SHARE", "path": "/mnt/tank/k8s/smb/pvc-1", "name": "pvc-1",
        "comment": "", "ro": true, "browsable": true, "abe": false, "enabled": true, "locked": false});
    let s = tn::smb_share(&flat).unwrap();
    assert!(s.readonly);
    assert_eq!(s.purpose.as_deref(), Some("DEFAULT_SHARE"));
    let v2510 = json!({"id": 1, "purpose": "LEGACY_SHARE", "path": "/mnt/tank/k8s/smb/pvc-1", "name": "pvc-1",
        "comment": "", "readonly": true, "browsable": true, "access_based_share_enumeration": false,
        "enabled": true, "locked": false, "options": {"auxsmbconf": ""}});
    let t = tn::smb_share(&v2510).unwrap();
    assert_eq!(t.readonly, s.readonly);
    assert_eq!(t.name, s.name);
}

#[test]
fn iscsi_entries() {
    let extent = json!({"id": 12, "name": "pvc-3f2a", "type": "DISK", "disk": "zvol/tank/k8s/iscsi/pvc-3f2a",
        "path": "zvol/tank/k8s/iscsi/pvc-3f2a", "serial": "08002799a5f1", "filesize": "0", "blocksize": 512,
        "pblocksize": false, "avail_threshold": null, "comment": "", "insecure_tpc": true, "xen": false,
        "rpm": "SSD", "ro": false, "enabled": true, "naa": "0x6589cfc000000abc", "vendor": "TrueNAS", "locked": false});
    let e = tn::iscsi_extent(&extent).unwrap();
    assert_eq!(e.zvol(), Some("tank/k8s/iscsi/pvc-3f2a"));
    let file = json!({"id": 13, "name": "f", "type": "FILE", "disk": null, "path": "/mnt/tank/file.img", "filesize": 1024});
    assert_eq!(tn::iscsi_extent(&file).unwrap().zvol(), None);
    let target = json!({"id": 9, "name": "pvc-3f2a", "alias": null, "mode": "ISCSI",
        "groups": [{"portal": 1, "initiator": 1, "authmethod": "NONE", "auth": null}], "auth_networks": [], "rel_tgt_id": 9});
    let t = tn::iscsi_target(&target).unwrap();
    assert_eq!(
        (t.id, t.name.as_str(), t.portals.as_slice()),
        (9, "pvc-3f2a", &[1][..])
    );
    let te =
        tn::iscsi_targetextent(&json!({"id": 15, "target": 9, "lunid": 0, "extent": 12})).unwrap();
    assert_eq!((te.target, te.extent, te.lunid), (9, 12, 0));
}

#[test]
fn pools_of_22_12_and_25_04() {
    let v2212 = json!({"id": 1, "name": "tank", "guid": "123", "encrypt": 0, "encryptkey": "", "is_decrypted": true,
        "status": "ONLINE", "path": "/mnt/tank", "scan": {"function": "SCRUB", "state": "FINISHED", "errors": 0,
        "end_time": {"$date": 1731203600000u64}}, "healthy": true, "size": 11991548690432u64,
        "allocated": 4123168604160u64, "free": 7868380086272u64, "fragmentation": "3", "topology": null});
    let p = tn::pool(&v2212).unwrap();
    assert!(p.healthy);
    assert_eq!(p.fragmentation, Some(3));
    let scan = p.scan.unwrap();
    assert_eq!(
        scan.end_time,
        Some(Timestamp::from_unix_ms(1_731_203_600_000))
    );
    let v2504 = json!({"id": 2, "name": "fast", "guid": "9", "status": "DEGRADED", "status_code": "OK",
        "status_detail": "One or more devices are faulted", "healthy": false, "warning": true, "scan": null,
        "size": 100, "allocated": 90, "free": 10, "freeing": 0, "fragmentation": "40", "dedup_table_size": 0});
    let q = tn::pool(&v2504).unwrap();
    assert!(!q.healthy);
    assert_eq!(q.status, "DEGRADED");
    assert!(q.scan.is_none());
}

#[test]
fn system_info_with_and_without_scale_in_the_version() {
    let info = json!({"version": "TrueNAS-SCALE-22.12.4.2", "buildtime": {"$date": 1690000000000u64}, "hostname": "nas01",
        "physmem": 68719476736u64, "birthday": {"$date": 1600000000000u64}, "boottime": {"$date": 1749000000000u64}});
    let global = json!({"id": 1, "basename": "iqn.2005-10.org.freenas.ctl", "isns_servers": [], "listen_port": 3260});
    let services = json!([{"id": 9, "service": "nfs", "enable": true, "state": "RUNNING", "pids": [1234]},
                          {"id": 10, "service": "iscsitarget", "enable": false, "state": "STOPPED", "pids": []}]);
    let s = tn::system_info(&info, Some(&global), Some(&services)).unwrap();
    assert_eq!(s.release, [22, 12, 4, 2]);
    assert_eq!(s.major_minor(), Some((22, 12)));
    assert_eq!(
        s.iscsi_basename.as_deref(),
        Some("iqn.2005-10.org.freenas.ctl")
    );
    assert_eq!(s.services.len(), 2);
    assert_eq!(s.boottime, Some(Timestamp::from_unix_ms(1_749_000_000_000)));
    let v2504 = tn::system_info(
        &json!({"version": "TrueNAS-25.04.2.6", "hostname": "nas02"}),
        None,
        None,
    )
    .unwrap();
    assert_eq!(v2504.major_minor(), Some((25, 4)));
    assert!(tn::system_info(&json!({"hostname": "x"}), None, None).is_err());
}

#[test]
fn datetimes_in_every_shape() {
    assert_eq!(
        tn::parse_datetime(&json!({"$date": 1000})),
        Some(Timestamp::from_unix_ms(1000))
    );
    assert_eq!(
        tn::parse_datetime(&json!("1731060000")),
        Some(Timestamp::from_unix_secs(1_731_060_000))
    );
    assert_eq!(
        tn::parse_datetime(&json!(5)),
        Some(Timestamp::from_unix_secs(5))
    );
    assert_eq!(
        tn::parse_datetime(&json!("2024-11-08T10:00:00Z")),
        Some(Timestamp::from_unix_secs(1_731_060_000))
    );
    assert_eq!(tn::parse_datetime(&json!("Fri Nov  8")), None);
    assert_eq!(tn::parse_datetime(&json!(null)), None);
}
