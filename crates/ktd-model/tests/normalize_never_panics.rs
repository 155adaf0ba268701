//! Bad input gets an error, never a panic: arbitrary JSON through every normalizer.

use ktd_model::KubeKind;
use ktd_model::normalize::{kube, truenas};
use proptest::prelude::*;
use serde_json::Value;

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[a-zA-Z0-9@/:.$ -]{0,12}".prop_map(Value::from),
    ];
    let keys = prop_oneof![
        Just("kind".to_owned()),
        Just("metadata".to_owned()),
        Just("name".to_owned()),
        Just("namespace".to_owned()),
        Just("spec".to_owned()),
        Just("status".to_owned()),
        Just("id".to_owned()),
        Just("type".to_owned()),
        Just("properties".to_owned()),
        Just("user_properties".to_owned()),
        Just("children".to_owned()),
        Just("rawvalue".to_owned()),
        Just("parsed".to_owned()),
        Just("$date".to_owned()),
        Just("capacity".to_owned()),
        Just("storage".to_owned()),
        Just("path".to_owned()),
        Just("paths".to_owned()),
        "[a-z]{1,6}",
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map(keys.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn kubernetes_normalizers(v in arb_json()) {
        let _ = kube::normalize_object(&v, None);
        for kind in KubeKind::ALL {
            let _ = kube::normalize_as(*kind, &v);
        }
        let list = serde_json::json!({"kind": "List", "items": [v.clone()]});
        let _ = kube::read_list(serde_json::to_vec(&list).unwrap().as_slice(), |_| {});
    }

    #[test]
    fn truenas_normalizers(v in arb_json()) {
        let _ = truenas::dataset(&v);
        let _ = truenas::snapshot(&v);
        let _ = truenas::nfs_share(&v);
        let _ = truenas::smb_share(&v);
        let _ = truenas::iscsi_target(&v);
        let _ = truenas::iscsi_extent(&v);
        let _ = truenas::iscsi_targetextent(&v);
        let _ = truenas::pool(&v);
        let _ = truenas::system_info(&v, Some(&v), Some(&v));
        let _ = truenas::datasets(&Value::Array(vec![v.clone()]));
        let bytes = serde_json::to_vec(&Value::Array(vec![v])).unwrap();
        let _ = truenas::read_snapshots(bytes.as_slice(), |_| {});
        let _ = truenas::read_datasets(bytes.as_slice(), |_| {});
    }
}
