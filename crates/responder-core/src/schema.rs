//! The JSON Schema of playbook files, generated from the Rust types. The committed
//! copy is `playbooks/schema.json`; a test fails when it is stale.

use serde_json::{Map, Value};

use crate::playbook::Playbook;

/// The playbook JSON Schema, pretty-printed with sorted keys, ending in a newline.
///
/// Keys are sorted explicitly: with serde_json's `preserve_order` feature (which
/// another crate in a build may switch on) maps keep insertion order instead.
pub fn playbook_schema() -> String {
    let mut schema = schemars::schema_for!(Playbook);
    schema.insert("title".to_owned(), "guardduty-responder playbook".into());
    let value = sorted(schema.to_value());
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}

fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sorted(v)))
                    .collect::<Map<_, _>>(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}
