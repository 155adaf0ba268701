//! JSON Schemas of what ktd writes and publishes, generated from the types themselves
//! (schemars) and checked into `schemas/` (a test fails when they are stale).

use schemars::{JsonSchema, Schema, generate::SchemaSettings};

use crate::{Envelope, Event, Finding};

/// `(file name, schema)` for every published schema.
pub fn all() -> Vec<(&'static str, Schema)> {
    vec![
        ("envelope.schema.json", schema_for::<Envelope>()),
        ("event.schema.json", schema_for::<Event>()),
        ("finding.schema.json", schema_for::<Finding>()),
    ]
}

/// The schema of one type, draft 2020-12.
pub fn schema_for<T: JsonSchema>() -> Schema {
    SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<T>()
}

/// Pretty JSON text of a schema, newline-terminated (the checked-in form).
pub fn to_text(schema: &Schema) -> String {
    let mut s = serde_json::to_string_pretty(schema).expect("schemas serialize");
    s.push('\n');
    s
}
