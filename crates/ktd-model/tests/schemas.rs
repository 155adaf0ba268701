//! The JSON Schemas in `schemas/` are generated from the types; this test fails when
//! they are stale. Regenerate with `KTD_UPDATE_SCHEMAS=1 cargo test -p ktd-model --test schemas`.

use std::path::PathBuf;

#[test]
fn checked_in_schemas_are_current() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
    let update = std::env::var_os("KTD_UPDATE_SCHEMAS").is_some();
    let mut stale = Vec::new();
    for (file, schema) in ktd_model::schema::all() {
        let path = dir.join(file);
        let want = ktd_model::schema::to_text(&schema);
        if update {
            std::fs::write(&path, &want).unwrap();
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(have) if have == want => {}
            _ => stale.push(file),
        }
    }
    assert!(
        stale.is_empty(),
        "stale schemas {stale:?}: run `KTD_UPDATE_SCHEMAS=1 cargo test -p ktd-model --test schemas` and commit schemas/"
    );
}

#[test]
fn schemas_describe_the_public_contract() {
    let all = ktd_model::schema::all();
    let finding = &all
        .iter()
        .find(|(f, _)| *f == "finding.schema.json")
        .unwrap()
        .1;
    let text = serde_json::to_string(finding).unwrap();
    for kind in ktd_model::FindingKind::ALL {
        assert!(text.contains(kind.as_str()), "finding schema lacks {kind}");
    }
    for field in [
        "reclaimable_bytes",
        "first_seen",
        "remediation",
        "related",
        "subject",
    ] {
        assert!(text.contains(field), "finding schema lacks {field}");
    }
    let event = &all
        .iter()
        .find(|(f, _)| *f == "event.schema.json")
        .unwrap()
        .1;
    let text = serde_json::to_string(event).unwrap();
    for variant in [
        "ObjectApplied",
        "DatasetObserved",
        "PollCompleted",
        "Tick",
        "FindingOpened",
    ] {
        assert!(text.contains(variant), "event schema lacks {variant}");
    }
}
