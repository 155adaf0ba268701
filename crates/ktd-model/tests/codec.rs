//! The msgpack codec: round trips, id determinism, schema evolution.

use std::collections::BTreeMap;

use ktd_model::codec::{self, CodecError, Upcaster, Upcasters, field_mut, rename_field};
use ktd_model::kube::{CsiVolumeSource, Meta, ObjectRef, PersistentVolume, PvPhase};
use ktd_model::truenas::{Dataset, DatasetType, PropertySource, Snapshot, UserProperty};
use ktd_model::*;
use proptest::prelude::*;

fn meta(name: String, rv: u64, labels: BTreeMap<String, String>) -> Meta {
    Meta {
        name,
        namespace: None,
        uid: format!("uid-{rv}"),
        resource_version: rv.to_string(),
        created: Some(Timestamp::from_unix_secs(1_700_000_000)),
        deleting: None,
        labels,
        annotations: BTreeMap::new(),
        finalizers: vec!["kubernetes.io/pv-protection".into()],
        owners: vec![],
    }
}

prop_compose! {
    fn arb_pv()(name in "[a-z0-9-]{1,40}", rv in 1u64..u64::MAX, cap in proptest::option::of(0u64..1<<50),
                handle in "[a-zA-Z0-9_-]{1,64}", attrs in proptest::collection::btree_map("[a-z_]{1,12}", ".{0,20}", 0..5),
                labels in proptest::collection::btree_map("[a-z./]{1,12}", "[a-z0-9]{0,8}", 0..3),
                phase in prop_oneof![Just(PvPhase::Bound), Just(PvPhase::Released), Just(PvPhase::Pending)]) -> PersistentVolume {
        PersistentVolume {
            meta: meta(name, rv, labels),
            capacity_bytes: cap,
            access_modes: vec!["ReadWriteOnce".into()],
            reclaim_policy: Some("Delete".into()),
            storage_class: Some("nfs".into()),
            volume_mode: None,
            csi: Some(CsiVolumeSource { driver: "org.democratic-csi.nfs".into(), volume_handle: handle, fs_type: None, volume_attributes: attrs }),
            claim: Some(ObjectRef { kind: None, namespace: Some("db".into()), name: "data".into(), uid: None }),
            phase,
            message: None,
            phase_since: None,
        }
    }
}

prop_compose! {
    fn arb_dataset()(leaf in "[a-zA-Z0-9_-]{1,64}", used in proptest::option::of(any::<u64>()),
                     managed in proptest::option::of(prop_oneof![Just(PropertySource::Local), Just(PropertySource::Inherited)]),
                     creation in -1_000_000_000_000i64..4_000_000_000_000) -> Dataset {
        let mut user_properties = BTreeMap::new();
        if let Some(source) = managed {
            user_properties.insert("democratic-csi:managed_resource".to_owned(),
                UserProperty { value: "true".into(), source, inherited_from: None });
        }
        Dataset {
            name: format!("tank/k8s/{leaf}"), pool: "tank".into(), kind: DatasetType::Volume,
            mountpoint: None, used, available: Some(1), used_by_dataset: None, used_by_snapshots: None,
            used_by_children: None, used_by_refreservation: None, volsize: Some(10 << 30), volblocksize: None,
            quota: None, refquota: None, reservation: None, refreservation: None, origin: None,
            creation: Some(Timestamp::from_unix_ms(creation)), compressratio: None, encrypted: false,
            locked: false, readonly: None, snapshot_count: None, user_properties,
        }
    }
}

fn arb_event() -> impl Strategy<Value = Event> {
    prop_oneof![
        arb_pv().prop_map(|pv| Event::ObjectApplied {
            object: KubeObject::PersistentVolume(pv)
        }),
        arb_dataset().prop_map(|dataset| Event::DatasetObserved { dataset }),
        "[a-z/@-]{1,50}".prop_map(|name| Event::SnapshotRemoved { name }),
        (any::<u64>(), ".{0,80}", any::<bool>()).prop_map(|(poll, error, retryable)| {
            Event::PollFailed {
                poll,
                error,
                method: Some("pool.dataset.query".into()),
                retryable,
            }
        }),
        Just(Event::Tick),
        (any::<u64>(), "[a-z]{1,10}").prop_map(|(objects, _)| Event::SyncCompleted {
            kind: KubeKind::VolumeSnapshotContent,
            objects
        }),
    ]
}

prop_compose! {
    fn arb_envelope()(event in arb_event(), instance in ".{1,20}", at in 0i64..4_000_000_000_000,
                      version in proptest::collection::vec(any::<u8>(), 0..16), seq in any::<u64>()) -> Envelope {
        let mut env = Envelope::new(SourceId::kubernetes(instance), Timestamp::from_unix_ms(at), event, &version);
        env.seq = seq;
        env
    }
}

proptest! {
    #[test]
    fn every_envelope_round_trips(env in arb_envelope()) {
        let bytes = codec::encode(&env).unwrap();
        let back = codec::decode(&bytes).unwrap();
        prop_assert_eq!(&back, &env);
        // JSON (the human form) round-trips too.
        let json = serde_json::to_string(&env).unwrap();
        let from_json: Envelope = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(from_json, env);
    }

    #[test]
    fn ids_ignore_observation_time_and_sequence(event in arb_event(), a in any::<i64>(), b in any::<i64>(), v in proptest::collection::vec(any::<u8>(), 0..8)) {
        let x = Envelope::new(SourceId::truenas("nas"), Timestamp::from_unix_ms(a), event.clone(), &v);
        let y = Envelope::new(SourceId::truenas("nas"), Timestamp::from_unix_ms(b), event, &v);
        prop_assert_eq!(x.id, y.id);
    }

    #[test]
    fn truncated_records_are_rejected_not_misread(env in arb_envelope(), cut in 1usize..64) {
        let bytes = codec::encode(&env).unwrap();
        let cut = cut.min(bytes.len() - 1);
        let res = codec::decode(&bytes[..bytes.len() - cut]);
        prop_assert!(res.is_err());
    }
}

#[test]
fn encoding_uses_named_fields() {
    let env = Envelope::new(
        SourceId::ktd("clock"),
        Timestamp::from_unix_secs(5),
        Event::Tick,
        b"5",
    );
    let bytes = codec::encode(&env).unwrap();
    let value: rmpv::Value = rmp_serde::from_slice(&bytes).unwrap();
    let keys: Vec<&str> = value
        .as_map()
        .unwrap()
        .iter()
        .filter_map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(
        keys,
        [
            "id",
            "seq",
            "observed_at",
            "source",
            "subject",
            "schema_version",
            "event"
        ]
    );
}

#[test]
fn readers_skip_fields_added_by_newer_writers() {
    let env = Envelope::new(
        SourceId::ktd("clock"),
        Timestamp::from_unix_secs(5),
        Event::Tick,
        b"5",
    );
    let mut value: rmpv::Value = rmp_serde::from_slice(&codec::encode(&env).unwrap()).unwrap();
    if let rmpv::Value::Map(m) = &mut value {
        m.push(("added_in_v2".into(), rmpv::Value::from("whatever")));
    }
    let bytes = rmp_serde::to_vec(&value).unwrap();
    assert_eq!(codec::decode(&bytes).unwrap(), env);
}

#[test]
fn unreadable_newer_schema_says_upgrade() {
    let mut value = rmpv::Value::Map(vec![
        ("schema_version".into(), rmpv::Value::from(9u16)),
        (
            "event".into(),
            rmpv::Value::Map(vec![("type".into(), "FutureThing".into())]),
        ),
    ]);
    let _ = field_mut(&mut value, "schema_version");
    let bytes = rmp_serde::to_vec(&value).unwrap();
    let err = codec::decode(&bytes).unwrap_err();
    assert!(
        matches!(
            err,
            CodecError::NewerSchema {
                found: 9,
                supported: 1
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("upgrade ktd"));
}

#[test]
fn garbage_is_malformed() {
    let err = codec::decode(b"\xc1\xc1\xc1").unwrap_err();
    assert!(matches!(err, CodecError::Malformed(_)), "{err:?}");
}

/// A hypothetical schema 0 called `objects` `count` in SyncCompleted.
struct RenameCount;

impl Upcaster for RenameCount {
    fn reads_version(&self) -> u16 {
        0
    }
    fn upcast(&self, envelope: &mut rmpv::Value) -> Result<(), String> {
        let data = field_mut(envelope, "event")
            .and_then(|e| field_mut(e, "data"))
            .ok_or("event.data missing")?;
        rename_field(data, "count", "objects");
        Ok(())
    }
}

#[test]
fn older_schemas_are_upcast() {
    let current = Envelope::new(
        SourceId::kubernetes("prod"),
        Timestamp::from_unix_secs(7),
        Event::SyncCompleted {
            kind: KubeKind::PersistentVolume,
            objects: 42,
        },
        b"rv-9",
    );
    let mut old: rmpv::Value = rmp_serde::from_slice(&codec::encode(&current).unwrap()).unwrap();
    *field_mut(&mut old, "schema_version").unwrap() = rmpv::Value::from(0u16);
    let data = field_mut(field_mut(&mut old, "event").unwrap(), "data").unwrap();
    assert!(rename_field(data, "objects", "count"));
    let old_bytes = rmp_serde::to_vec(&old).unwrap();

    // Without the upcaster the old shape does not fit.
    let err = codec::decode(&old_bytes).unwrap_err();
    assert!(matches!(err, CodecError::Upcast { from: 0, .. }), "{err:?}");

    let upgraded = codec::decode_with(&old_bytes, &Upcasters::builtin().with(RenameCount)).unwrap();
    assert_eq!(upgraded, current);
}

#[test]
fn snapshot_user_properties_keep_their_source() {
    let mut props = BTreeMap::new();
    props.insert(
        "democratic-csi:managed_resource".to_owned(),
        UserProperty {
            value: "true".into(),
            source: PropertySource::Inherited,
            inherited_from: Some("tank/v/pvc-1".into()),
        },
    );
    let snap = Snapshot {
        name: "tank/v/pvc-1@auto-1".into(),
        dataset: "tank/v/pvc-1".into(),
        snapshot_name: "auto-1".into(),
        pool: "tank".into(),
        createtxg: Some(5),
        creation: None,
        used: Some(0),
        referenced: Some(1),
        clones: vec![],
        defer_destroy: false,
        holds: None,
        user_properties: props,
    };
    let env = Envelope::new(
        SourceId::truenas("nas"),
        Timestamp::EPOCH,
        Event::SnapshotObserved { snapshot: snap },
        b"1",
    );
    let back = codec::decode(&codec::encode(&env).unwrap()).unwrap();
    let Event::SnapshotObserved { snapshot } = back.event else {
        panic!("wrong variant")
    };
    let p = &snapshot.user_properties["democratic-csi:managed_resource"];
    assert_eq!(p.source, PropertySource::Inherited);
    assert_eq!(p.inherited_from.as_deref(), Some("tank/v/pvc-1"));
}
