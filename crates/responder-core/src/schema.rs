//! The JSON Schemas of playbook files and of their test case files, generated from
//! the Rust types. The committed copies are `playbooks/schema.json` and
//! `playbooks/tests/schema.json`; a test fails when either is stale.

use serde_json::{Map, Value};

use crate::playbook::Playbook;
use crate::testcase::CaseFile;

/// The playbook JSON Schema, pretty-printed with sorted keys, ending in a newline.
pub fn playbook_schema() -> String {
    render(
        schemars::schema_for!(Playbook),
        "guardduty-responder playbook",
    )
}

/// The JSON Schema of a test case file (`playbooks/tests/*.yaml`, run by `responder
/// test`), in the same form.
pub fn test_case_schema() -> String {
    render(
        schemars::schema_for!(CaseFile),
        "guardduty-responder playbook test cases",
    )
}

/// Keys are sorted explicitly: with serde_json's `preserve_order` feature (which
/// another crate in a build may switch on) maps keep insertion order instead.
fn render(mut schema: schemars::Schema, title: &str) -> String {
    schema.insert("title".to_owned(), title.into());
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
