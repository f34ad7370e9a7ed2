//! The JSON Schema of playbook files, generated from the Rust types. The committed
//! copy is `playbooks/schema.json`; a test fails when it is stale.

use crate::playbook::Playbook;

/// The playbook JSON Schema, pretty-printed, ending in a newline.
pub fn playbook_schema() -> String {
    let mut schema = schemars::schema_for!(Playbook);
    schema.insert("title".to_owned(), "guardduty-responder playbook".into());
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}
