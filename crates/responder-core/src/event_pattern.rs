//! The EventBridge rule pattern that delivers exactly the findings some playbook can
//! answer, generated from the playbooks' finding-type patterns, so that findings no
//! playbook handles never invoke the function.

use serde_json::{Value, json};

use crate::event::{DETAIL_TYPE, SOURCE};
use crate::playbook::LoadedPlaybook;

/// The rule's event pattern. Type patterns become exact strings, `prefix` matchers
/// (one trailing `*`) or `wildcard` matchers; a playbook without a type criterion
/// makes the rule take every GuardDuty finding.
pub fn event_pattern(playbooks: &[LoadedPlaybook]) -> Value {
    let mut matchers: Vec<Value> = Vec::new();
    let mut every_type = false;
    for p in playbooks {
        match p.matches.type_patterns() {
            None => every_type = true,
            Some(patterns) => {
                for pattern in patterns {
                    let m = matcher(pattern);
                    if !matchers.contains(&m) {
                        matchers.push(m);
                    }
                }
            }
        }
    }
    matchers.sort_by_key(|m| m.to_string());
    let mut pattern = json!({
        "source": [SOURCE],
        "detail-type": [DETAIL_TYPE],
    });
    if !every_type && !matchers.is_empty() {
        pattern["detail"] = json!({ "type": matchers });
    }
    pattern
}

fn matcher(pattern: &str) -> Value {
    let stars = pattern.matches('*').count();
    let other_glob = pattern.contains(['?', '[', '{', '\\']);
    match (stars, other_glob) {
        (0, false) => json!(pattern),
        (1, false) if pattern.ends_with('*') => json!({ "prefix": &pattern[..pattern.len() - 1] }),
        // EventBridge wildcards know only `*`; anything richer falls back to the
        // widest safe filter: the text before the first special character.
        (_, false) => json!({ "wildcard": pattern }),
        (_, true) => {
            let cut = pattern
                .find(['*', '?', '[', '{', '\\'])
                .unwrap_or(pattern.len());
            json!({ "prefix": &pattern[..cut] })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::load_str;
    use std::path::Path;

    fn pb(name: &str, types: &str) -> LoadedPlaybook {
        let text = format!("name: {name}\nmatch:\n  {types}\nsteps:\n  - tag: {{}}\n");
        load_str(Path::new("p.yaml"), &text).unwrap()
    }

    #[test]
    fn pattern_from_type_globs() {
        let p = event_pattern(&[
            pb(
                "a",
                "finding_types: ['CryptoCurrency:EC2/*', 'Behavior:EC2/NetworkPortUnusual']",
            ),
            pb(
                "b",
                "finding_types: ['*!DNS', 'Recon:EC2/PortProbe?', 'CryptoCurrency:EC2/*']",
            ),
        ]);
        assert_eq!(
            p,
            json!({
                "source": ["aws.guardduty"],
                "detail-type": ["GuardDuty Finding"],
                "detail": {"type": [
                    "Behavior:EC2/NetworkPortUnusual",
                    {"prefix": "CryptoCurrency:EC2/"},
                    {"prefix": "Recon:EC2/PortProbe"},
                    {"wildcard": "*!DNS"},
                ]}
            })
        );
    }

    #[test]
    fn a_playbook_without_types_takes_every_finding() {
        let p = event_pattern(&[
            pb("a", "finding_types: 'X:EC2/Y'"),
            pb("b", "severity: high"),
        ]);
        assert_eq!(p.get("detail"), None);
    }
}
