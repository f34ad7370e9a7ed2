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

/// What is wrong with a template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A `}` with no `{` before it.
    #[error("unmatched `}}` in {0:?}")]
    Unmatched(String),
    /// A `{` with no `}` after it.
    #[error("unclosed `{{` in {0:?}")]
    Unclosed(String),
    /// A name that is not one of [`PLACEHOLDERS`].
    #[error("unknown placeholder {{{0}}}; known: {known}", known = known())]
    Unknown(String),
}

fn known() -> String {
    PLACEHOLDERS
        .iter()
        .map(|p| format!("{{{p}}}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks a template: every `{...}` must be a known placeholder and braces must pair.
pub fn check(template: &str) -> Result<(), TemplateError> {
    render_with(template, |name| {
        PLACEHOLDERS.contains(&name).then(String::new)
    })
    .map(|_| ())
}

/// Fills a template from a finding and the playbook name. Placeholders whose value
/// the finding lacks become empty.
pub fn render(template: &str, finding: &Finding, playbook: &str) -> Result<String, TemplateError> {
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
) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find(['{', '}']) {
        out.push_str(&rest[..start]);
        if rest[start..].starts_with('}') {
            return Err(TemplateError::Unmatched(template.to_owned()));
        }
        let Some(len) = rest[start..].find('}') else {
            return Err(TemplateError::Unclosed(template.to_owned()));
        };
        let name = &rest[start + 1..start + len];
        match value(name) {
            Some(v) => out.push_str(&v),
            None => return Err(TemplateError::Unknown(name.to_owned())),
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
                .to_string()
                .contains("unknown placeholder")
        );
        assert!(check("x {finding.id").is_err());
        assert!(check("x }").is_err());
        assert!(check("plain").is_ok());
    }
}
