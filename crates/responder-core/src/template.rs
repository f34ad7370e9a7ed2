//! Placeholders in tag values and subjects: `{finding.id}`, `{finding.type}`,
//! `{finding.severity}`, `{finding.account}`, `{finding.region}`, `{instance.id}`,
//! `{playbook}`.

use crate::finding::Finding;

/// The placeholder names a template may use.
pub const PLACEHOLDERS: &[&str] = &[
    "finding.id",
    "finding.type",
    "finding.severity",
    "finding.account",
    "finding.region",
    "instance.id",
    "playbook",
];

/// Checks a template: every `{...}` must be a known placeholder and braces must pair.
pub fn check(template: &str) -> Result<(), String> {
    render_with(template, |name| {
        PLACEHOLDERS.contains(&name).then(String::new)
    })
    .map(|_| ())
}

/// Fills a template from a finding and the playbook name. Placeholders whose value
/// the finding lacks become empty.
pub fn render(template: &str, finding: &Finding, playbook: &str) -> Result<String, String> {
    render_with(template, |name| {
        Some(match name {
            "finding.id" => finding.id.clone(),
            "finding.type" => finding.finding_type.name.clone(),
            "finding.severity" => finding.severity.map(|s| s.to_string()).unwrap_or_default(),
            "finding.account" => finding.account_id.clone().unwrap_or_default(),
            "finding.region" => finding.region.clone().unwrap_or_default(),
            "instance.id" => finding.instance_id().unwrap_or_default().to_owned(),
            "playbook" => playbook.to_owned(),
            _ => return None,
        })
    })
}

fn render_with(
    template: &str,
    mut value: impl FnMut(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find(['{', '}']) {
        out.push_str(&rest[..start]);
        if rest[start..].starts_with('}') {
            return Err(format!("unmatched `}}` in {template:?}"));
        }
        let Some(len) = rest[start..].find('}') else {
            return Err(format!("unclosed `{{` in {template:?}"));
        };
        let name = &rest[start + 1..start + len];
        match value(name) {
            Some(v) => out.push_str(&v),
            None => {
                return Err(format!(
                    "unknown placeholder {{{name}}}; known: {}",
                    PLACEHOLDERS
                        .iter()
                        .map(|p| format!("{{{p}}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_and_checks() {
        let f = Finding::from_value(json!({"id": "abc", "type": "T:EC2/X", "severity": 8.5,
            "resource": {"instanceDetails": {"instanceId": "i-9"}}}))
        .unwrap();
        assert_eq!(
            render(
                "gd {finding.id} {finding.severity} on {instance.id} by {playbook}",
                &f,
                "pb"
            )
            .unwrap(),
            "gd abc 8.5 on i-9 by pb"
        );
        assert_eq!(render("{finding.region}", &f, "pb").unwrap(), "");
        assert!(
            check("{finding.nope}")
                .unwrap_err()
                .contains("unknown placeholder")
        );
        assert!(check("x {finding.id").is_err());
        assert!(check("x }").is_err());
        assert!(check("plain").is_ok());
    }
}
