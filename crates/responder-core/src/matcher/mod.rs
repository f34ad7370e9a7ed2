//! Matching a finding against a playbook's criteria, with the reasons why or why not.
//!
//! Criteria are compiled once when playbooks load (globs, tag selectors, field paths);
//! evaluation allocates only when asked to explain.

use globset::{Glob, GlobBuilder, GlobMatcher, GlobSet, GlobSetBuilder};
use serde_json::Value;

use crate::finding::{Finding, number};
pub mod criteria;

use self::criteria::{
    Criteria, FieldCondition, NumberRange, ResourceRole, Scalar, SeverityCriterion,
};
use crate::severity::SeverityLevel;

/// Criteria compiled for fast evaluation.
#[derive(Debug, Clone)]
pub struct CompiledCriteria {
    types: Option<(GlobSet, Vec<String>)>,
    severity: Option<SeverityCriterion>,
    accounts: Option<Vec<String>>,
    regions: Option<Vec<String>>,
    resource_types: Option<Vec<String>>,
    resource_roles: Option<Vec<ResourceRole>>,
    action_types: Option<Vec<String>>,
    tags: Option<Vec<TagSelector>>,
    fields: Vec<CompiledField>,
}

#[derive(Debug, Clone)]
struct TagSelector {
    key: String,
    value: Option<String>,
}

#[derive(Debug, Clone)]
struct CompiledField {
    path: String,
    segments: Vec<String>,
    condition: FieldCondition,
    globs: Option<Vec<GlobMatcher>>,
}

/// A criterion that cannot be compiled, named by its field path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct CriteriaError {
    /// Where in the criteria block (`finding_types`, `fields.<path>.glob`).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl CriteriaError {
    fn new(field: impl Into<String>, message: impl std::fmt::Display) -> CriteriaError {
        CriteriaError {
            field: field.into(),
            message: message.to_string(),
        }
    }
}

/// Compiles a glob pattern where `*` matches any run of characters, `/` included.
/// The error says which pattern and why.
pub fn compile_glob(pattern: &str) -> Result<Glob, String> {
    GlobBuilder::new(pattern)
        .literal_separator(false)
        .backslash_escape(true)
        .build()
        .map_err(|e| format!("invalid pattern {pattern:?}: {}", e.kind()))
}

impl CompiledCriteria {
    /// Compiles criteria; the error names the offending pattern or field.
    pub fn compile(criteria: &Criteria) -> Result<CompiledCriteria, CriteriaError> {
        let types = match &criteria.finding_types {
            Some(patterns) => {
                let mut set = GlobSetBuilder::new();
                for p in patterns {
                    set.add(compile_glob(p).map_err(|e| CriteriaError::new("finding_types", e))?);
                }
                let set = set
                    .build()
                    .map_err(|e| CriteriaError::new("finding_types", e))?;
                Some((set, patterns.clone()))
            }
            None => None,
        };
        let tags = criteria.tags.as_ref().map(|tags| {
            tags.iter()
                .map(|t| match t.split_once('=') {
                    Some((k, v)) => TagSelector {
                        key: k.to_owned(),
                        value: Some(v.to_owned()),
                    },
                    None => TagSelector {
                        key: t.clone(),
                        value: None,
                    },
                })
                .collect()
        });
        let mut fields = Vec::with_capacity(criteria.fields.len());
        for (path, condition) in &criteria.fields {
            if path.is_empty() || path.split('.').any(str::is_empty) {
                return Err(CriteriaError::new(
                    "fields",
                    format!("{path:?} is not a dotted field name"),
                ));
            }
            if condition.is_empty() {
                return Err(CriteriaError::new(
                    format!("fields.{path}"),
                    "no operator (eq, neq, gt, gte, lt, lte, exists, glob)",
                ));
            }
            let globs = match &condition.glob {
                Some(patterns) => Some(
                    patterns
                        .iter()
                        .map(|p| compile_glob(p).map(|g| g.compile_matcher()))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| CriteriaError::new(format!("fields.{path}.glob"), e))?,
                ),
                None => None,
            };
            fields.push(CompiledField {
                path: path.clone(),
                segments: path.split('.').map(str::to_owned).collect(),
                condition: condition.clone(),
                globs,
            });
        }
        Ok(CompiledCriteria {
            types,
            severity: criteria.severity.clone(),
            accounts: criteria.accounts.clone(),
            regions: criteria.regions.clone(),
            resource_types: criteria.resource_types.clone(),
            resource_roles: criteria.resource_roles.clone(),
            action_types: criteria.action_types.clone(),
            tags,
            fields,
        })
    }

    /// True when the finding type could match (no type criterion, or a pattern matches).
    pub fn matches_type(&self, finding_type: &str) -> bool {
        self.types
            .as_ref()
            .is_none_or(|(set, _)| set.is_match(finding_type))
    }

    /// The type patterns, if any.
    pub fn type_patterns(&self) -> Option<&[String]> {
        self.types.as_ref().map(|(_, p)| p.as_slice())
    }

    /// Evaluates every criterion. `Ok` holds the reasons it matched (empty unless
    /// `explain`); `Err` holds why not (a short word unless `explain`).
    pub fn evaluate(&self, f: &Finding, explain: bool) -> Result<Vec<String>, String> {
        let mut reasons = Vec::new();
        let mut ok = |hit: bool, why: &dyn Fn() -> String| -> Result<(), String> {
            match (hit, explain) {
                (true, true) => {
                    reasons.push(why());
                    Ok(())
                }
                (true, false) => Ok(()),
                (false, true) => Err(why()),
                (false, false) => Err(String::new()),
            }
        };
        if let Some((set, patterns)) = &self.types {
            let name = &f.finding_type.name;
            let hit = set.is_match(name);
            ok(hit, &|| {
                if hit {
                    let which: Vec<&String> = set
                        .matches(name)
                        .into_iter()
                        .map(|i| &patterns[i])
                        .collect();
                    format!("type {name} matches {}", list(&which))
                } else {
                    format!("type {name} matches none of {}", list(patterns))
                }
            })?;
        }
        if let Some(criterion) = &self.severity {
            let hit = severity_holds(criterion, f.severity);
            ok(hit, &|| describe_severity(criterion, f.severity, hit))?;
        }
        one_of(
            &mut ok,
            "account",
            f.account_id.as_deref(),
            self.accounts.as_deref(),
        )?;
        one_of(
            &mut ok,
            "region",
            f.region.as_deref(),
            self.regions.as_deref(),
        )?;
        one_of(
            &mut ok,
            "resource type",
            f.resource_type.as_deref(),
            self.resource_types.as_deref(),
        )?;
        if let Some(roles) = &self.resource_roles {
            let role = f.resource_role.as_deref();
            let hit = role.is_some_and(|r| roles.iter().any(|x| x.as_str() == r));
            ok(hit, &|| {
                let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
                verdict("resource role", role, hit, &names)
            })?;
        }
        one_of(
            &mut ok,
            "action type",
            f.action_type.as_deref(),
            self.action_types.as_deref(),
        )?;
        if let Some(selectors) = &self.tags {
            let tags = f.instance_tags();
            let hit = selectors.iter().find(|s| {
                tags.iter()
                    .any(|t| t.key == s.key && s.value.as_ref().is_none_or(|v| *v == t.value))
            });
            ok(hit.is_some(), &|| match hit {
                Some(s) => format!("instance has tag {}", describe_tag(s)),
                None => format!(
                    "instance has none of the tags {}",
                    list(&selectors.iter().map(describe_tag).collect::<Vec<_>>())
                ),
            })?;
        }
        for field in &self.fields {
            let hit = field_holds(field, f.raw());
            ok(hit, &|| describe_field(field, f.raw(), hit))?;
        }
        Ok(reasons)
    }
}

fn one_of(
    ok: &mut impl FnMut(bool, &dyn Fn() -> String) -> Result<(), String>,
    what: &str,
    actual: Option<&str>,
    allowed: Option<&[String]>,
) -> Result<(), String> {
    let Some(allowed) = allowed else {
        return Ok(());
    };
    let hit = actual.is_some_and(|a| allowed.iter().any(|x| x == a));
    ok(hit, &|| verdict(what, actual, hit, allowed))
}

fn verdict<S: AsRef<str>>(what: &str, actual: Option<&str>, hit: bool, allowed: &[S]) -> String {
    match (actual, hit) {
        (Some(a), true) => format!("{what} {a} is one of {}", list(allowed)),
        (Some(a), false) => format!("{what} {a} is not one of {}", list(allowed)),
        (None, _) => format!("finding has no {what} (wanted one of {})", list(allowed)),
    }
}

fn list<S: AsRef<str>>(items: &[S]) -> String {
    let inner: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    format!("[{}]", inner.join(", "))
}

fn describe_tag(s: &TagSelector) -> String {
    match &s.value {
        Some(v) => format!("{}={v}", s.key),
        None => s.key.clone(),
    }
}

fn severity_holds(criterion: &SeverityCriterion, severity: Option<f64>) -> bool {
    let Some(s) = severity else { return false };
    match criterion {
        SeverityCriterion::Levels(levels) => levels.contains(&SeverityLevel::of(s)),
        SeverityCriterion::Range(range) => range.contains(s),
    }
}

fn describe_severity(criterion: &SeverityCriterion, severity: Option<f64>, hit: bool) -> String {
    let Some(s) = severity else {
        return "finding has no severity".to_owned();
    };
    let not = if hit { "" } else { "not " };
    match criterion {
        SeverityCriterion::Levels(levels) => {
            let names: Vec<&str> = levels.iter().map(|l| l.as_str()).collect();
            format!(
                "severity {s} ({}) is {not}one of {}",
                SeverityLevel::of(s),
                list(&names)
            )
        }
        SeverityCriterion::Range(range) => {
            format!("severity {s} is {not}{}", describe_range(range))
        }
    }
}

fn describe_range(range: &NumberRange) -> String {
    let mut parts = Vec::new();
    for (op, bound) in [
        (">", range.gt),
        (">=", range.gte),
        ("<", range.lt),
        ("<=", range.lte),
    ] {
        if let Some(b) = bound {
            parts.push(format!("{op} {b}"));
        }
    }
    parts.join(" and ")
}

/// Calls `visit` on every value at `segments`, descending into arrays; stops early
/// when `visit` returns true. Returns whether it did.
fn any_at(value: &Value, segments: &[String], visit: &mut impl FnMut(&Value) -> bool) -> bool {
    match value {
        Value::Array(items) => items.iter().any(|v| any_at(v, segments, visit)),
        _ => match segments.split_first() {
            None => visit(value),
            Some((head, rest)) => value.get(head).is_some_and(|v| any_at(v, rest, visit)),
        },
    }
}

fn scalar_eq(expected: &Scalar, actual: &Value) -> bool {
    match (expected, actual) {
        (Scalar::String(e), Value::String(a)) => e == a,
        (Scalar::Number(e), a @ (Value::Number(_) | Value::String(_))) => number(a) == Some(*e),
        (Scalar::String(e), a @ Value::Number(_)) => e.trim().parse::<f64>().ok() == number(a),
        (Scalar::Bool(e), Value::Bool(a)) => e == a,
        (Scalar::Bool(e), Value::String(a)) => a == if *e { "true" } else { "false" },
        (Scalar::String(e), Value::Bool(a)) => e == if *a { "true" } else { "false" },
        _ => false,
    }
}

/// A value as a number to compare with bounds: a number, a numeric string, or an
/// RFC 3339 timestamp as epoch milliseconds (how GuardDuty's criteria compare
/// `updatedAt`, so a saved filter's bounds import unchanged).
fn comparable(v: &Value) -> Option<f64> {
    number(v).or_else(|| {
        v.as_str()
            .and_then(crate::timestamp::epoch_millis)
            .map(|ms| ms as f64)
    })
}

fn field_holds(field: &CompiledField, raw: &Value) -> bool {
    let c = &field.condition;
    let segs = &field.segments;
    if let Some(want) = c.exists
        && any_at(raw, segs, &mut |v| !v.is_null()) != want
    {
        return false;
    }
    if let Some(eq) = &c.eq
        && !any_at(raw, segs, &mut |v| eq.iter().any(|e| scalar_eq(e, v)))
    {
        return false;
    }
    if let Some(neq) = &c.neq
        && any_at(raw, segs, &mut |v| neq.iter().any(|e| scalar_eq(e, v)))
    {
        return false;
    }
    let range = c.range();
    if !range.is_empty()
        && !any_at(raw, segs, &mut |v| {
            comparable(v).is_some_and(|n| range.contains(n))
        })
    {
        return false;
    }
    if let Some(globs) = &field.globs
        && !any_at(raw, segs, &mut |v| {
            v.as_str()
                .is_some_and(|s| globs.iter().any(|g| g.is_match(s)))
        })
    {
        return false;
    }
    true
}

fn describe_field(field: &CompiledField, raw: &Value, hit: bool) -> String {
    let mut values = Vec::new();
    any_at(raw, &field.segments, &mut |v| {
        values.push(v.to_string());
        values.len() >= 5
    });
    let c = &field.condition;
    let mut ops = Vec::new();
    if let Some(e) = c.exists {
        ops.push(format!("exists {e}"));
    }
    if let Some(eq) = &c.eq {
        ops.push(format!(
            "eq {}",
            list(&eq.iter().map(Scalar::to_string).collect::<Vec<_>>())
        ));
    }
    if let Some(neq) = &c.neq {
        ops.push(format!(
            "neq {}",
            list(&neq.iter().map(Scalar::to_string).collect::<Vec<_>>())
        ));
    }
    let range = c.range();
    if !range.is_empty() {
        ops.push(describe_range(&range));
    }
    if let Some(g) = &c.glob {
        ops.push(format!("glob {}", list(g)));
    }
    let seen = if values.is_empty() {
        "absent".to_owned()
    } else {
        values.join(", ")
    };
    let verb = if hit { "meets" } else { "does not meet" };
    format!("field {} ({seen}) {verb} {}", field.path, ops.join(" and "))
}

#[cfg(test)]
mod tests {
    use super::criteria::Criteria;
    use super::*;
    use serde_json::json;

    fn finding() -> Finding {
        Finding::from_value(json!({
            "id": "f", "type": "CryptoCurrency:EC2/BitcoinTool.B!DNS", "severity": 8,
            "accountId": "111122223333", "region": "us-east-1",
            "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": "i-1",
                "tags": [{"key": "env", "value": "prod"}, {"key": "team", "value": "web"}],
                "networkInterfaces": [{"networkInterfaceId": "eni-1", "securityGroups": [{"groupId": "sg-a"}, {"groupId": "sg-b"}]}]}},
            "service": {"resourceRole": "TARGET", "archived": false, "count": 4,
                "action": {"actionType": "DNS_REQUEST", "dnsRequestAction": {"domain": "pool.bitcoin.com", "protocol": "0"}}}
        }))
        .unwrap()
    }

    fn criteria(yaml: &str) -> CompiledCriteria {
        let c: Criteria = serde_saphyr::from_str(yaml).unwrap();
        CompiledCriteria::compile(&c).unwrap()
    }

    fn hits(yaml: &str) -> bool {
        let c = criteria(yaml);
        let quick = c.evaluate(&finding(), false).is_ok();
        let explained = c.evaluate(&finding(), true);
        assert_eq!(
            quick,
            explained.is_ok(),
            "explain changes the verdict for {yaml}"
        );
        quick
    }

    #[test]
    fn finding_type_globs() {
        assert!(hits("finding_types: 'CryptoCurrency:EC2/*'"));
        assert!(hits("finding_types: ['*!DNS']"));
        assert!(hits(
            "finding_types: ['CryptoCurrency:EC2/BitcoinTool.B!DNS']"
        ));
        assert!(!hits("finding_types: ['CryptoCurrency:EC2/BitcoinTool.B']"));
        assert!(!hits("finding_types: ['Backdoor:*']"));
        assert!(!hits("finding_types: ['cryptocurrency:ec2/*']"));
    }

    #[test]
    fn severity_levels_and_numbers() {
        assert!(hits("severity: high"));
        assert!(hits("severity: [medium, high]"));
        assert!(!hits("severity: critical"));
        assert!(hits("severity: {gte: 8}"));
        assert!(!hits("severity: {gt: 8}"));
        assert!(hits("severity: {lt: 8.5, gte: 7}"));
        assert!(!hits("severity: {lte: 7.9}"));
    }

    #[test]
    fn lists_of_scalars() {
        assert!(hits("accounts: ['111122223333']"));
        assert!(!hits("accounts: '999999999999'"));
        assert!(hits("regions: [eu-west-1, us-east-1]"));
        assert!(hits("resource_types: Instance"));
        assert!(!hits("resource_types: AccessKey"));
        assert!(hits("resource_roles: TARGET"));
        assert!(!hits("resource_roles: [ACTOR]"));
        assert!(hits("action_types: [DNS_REQUEST]"));
        assert!(!hits("action_types: NETWORK_CONNECTION"));
    }

    #[test]
    fn tags() {
        assert!(hits("tags: env"));
        assert!(hits("tags: [env=prod]"));
        assert!(!hits("tags: [env=dev]"));
        assert!(hits("tags: [missing, team=web]"));
        assert!(!hits("tags: [Env]"));
    }

    #[test]
    fn field_operators() {
        assert!(hits("fields: {service.count: {eq: 4}}"));
        assert!(hits("fields: {service.count: {eq: '4'}}"));
        assert!(!hits("fields: {service.count: {neq: [4, 5]}}"));
        assert!(hits("fields: {service.count: {neq: 5}}"));
        assert!(hits("fields: {service.count: {gt: 3, lte: 4}}"));
        assert!(!hits("fields: {service.count: {gte: 5}}"));
        assert!(!hits("fields: {service.count: {lt: 4}}"));
        assert!(hits(
            "fields: {service.action.dnsRequestAction.protocol: {eq: 0}}"
        ));
        assert!(hits(
            "fields: {service.action.dnsRequestAction.domain: {glob: '*.bitcoin.com'}}"
        ));
        assert!(!hits(
            "fields: {service.action.dnsRequestAction.domain: {glob: '*.example'}}"
        ));
        assert!(hits(
            "fields: {resource.instanceDetails.tags.key: {eq: team}}"
        ));
        assert!(hits(
            "fields: {resource.instanceDetails.networkInterfaces.securityGroups.groupId: {eq: sg-b}}"
        ));
        assert!(!hits(
            "fields: {resource.instanceDetails.networkInterfaces.securityGroups.groupId: {neq: sg-b}}"
        ));
        assert!(hits("fields: {service.archived: {eq: false}}"));
        assert!(hits(
            "fields: {service.action.dnsRequestAction: {exists: true}}"
        ));
        assert!(!hits(
            "fields: {service.action.networkConnectionAction: {exists: true}}"
        ));
        assert!(hits(
            "fields: {service.action.networkConnectionAction.remotePortDetails.port: {exists: false}}"
        ));
        assert!(!hits(
            "fields: {service.action.networkConnectionAction.remotePortDetails.port: {eq: 22}}"
        ));
    }

    #[test]
    fn all_criteria_must_hold_and_reasons_say_why() {
        let c = criteria("finding_types: 'CryptoCurrency:*'\nseverity: high\nregions: us-west-2");
        let why = c.evaluate(&finding(), true).err().unwrap();
        assert_eq!(why, "region us-east-1 is not one of [us-west-2]");
        let c = criteria("finding_types: 'CryptoCurrency:*'\nseverity: high");
        let reasons = c.evaluate(&finding(), true).unwrap();
        assert_eq!(
            reasons,
            vec![
                "type CryptoCurrency:EC2/BitcoinTool.B!DNS matches [CryptoCurrency:*]".to_owned(),
                "severity 8 (high) is one of [high]".to_owned()
            ]
        );
    }

    #[test]
    fn bad_patterns_and_fields_are_compile_errors() {
        let c: Criteria = serde_saphyr::from_str("finding_types: ['Backdoor:[EC2']").unwrap();
        assert!(
            CompiledCriteria::compile(&c)
                .unwrap_err()
                .to_string()
                .starts_with("finding_types: invalid pattern")
        );
        let c: Criteria = serde_saphyr::from_str("fields: {'service..count': {eq: 1}}").unwrap();
        assert!(CompiledCriteria::compile(&c).is_err());
        let c: Criteria = serde_saphyr::from_str("fields: {service.count: {}}").unwrap();
        let e = CompiledCriteria::compile(&c).unwrap_err();
        assert_eq!(e.field, "fields.service.count");
        assert!(e.message.contains("no operator"));
    }
}
