//! GuardDuty criteria as a playbook's `match` and `exclude` blocks ([`import`]), and
//! those blocks as YAML ([`Imported::to_yaml`]).

use std::collections::BTreeMap;

use super::criteria::{Condition, FindingCriteria};
use super::{Inexpressible, Inexpressibles};
use crate::matcher::criteria::{
    Criteria, FieldCondition, NumberRange, ResourceRole, Scalar, SeverityCriterion,
};

/// Criteria as a playbook's `match` and `exclude` blocks.
#[derive(Debug, Clone, Default)]
pub struct Imported {
    /// The `match` block.
    pub matches: Criteria,
    /// The `exclude` blocks (one per `NotMatches`).
    pub excludes: Vec<Criteria>,
}

/// Escapes a GuardDuty `*` pattern into a glob of the matcher: `*` stays, the
/// characters the glob syntax gives a meaning to are backslash-escaped.
fn glob_of(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    for c in pattern.chars() {
        if matches!(c, '?' | '[' | ']' | '{' | '}' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Saved-filter criteria as a playbook `match` and `exclude` that select the same
/// findings: `type` → `finding_types`, `severity` bounds → `severity`, `accountId`,
/// `region`, `resource.resourceType`, `service.resourceRole` and
/// `service.action.actionType` equalities → their criteria; everything else →
/// `fields` (`updatedAt` bounds stay epoch milliseconds, which the matcher compares
/// timestamps in); `NotMatches` → an `exclude` block. What cannot be said (two
/// different `Eq`/`Equals` lists on one attribute, a condition without operator) is an
/// error naming the attribute.
pub fn import(criteria: &FindingCriteria) -> Result<Imported, Inexpressibles> {
    let mut out = Imported::default();
    let mut errors = Vec::new();
    for (attribute, raw) in &criteria.criterion {
        if attribute.is_empty() || attribute.split('.').any(str::is_empty) {
            errors.push(Inexpressible {
                part: format!("criterion {attribute:?}"),
                why: "not a dotted attribute name".to_owned(),
            });
            continue;
        }
        if raw.is_empty() {
            errors.push(Inexpressible {
                part: format!("criterion {attribute:?}"),
                why: "no operator".to_owned(),
            });
            continue;
        }
        let c = match raw.normalized() {
            Ok(c) => c,
            Err(why) => {
                errors.push(Inexpressible {
                    part: format!("criterion {attribute:?}"),
                    why,
                });
                continue;
            }
        };
        let only_equals = c.not_equals.is_none()
            && c.matches.is_none()
            && c.not_matches.is_none()
            && !c.has_bounds();
        let m = &mut out.matches;
        match (attribute.as_str(), &c.equals) {
            ("type", _) if c.not_equals.is_none() && !c.has_bounds() && c.not_matches.is_none() => {
                let mut patterns: Vec<String> = Vec::new();
                match (&c.equals, &c.matches) {
                    (Some(e), None) => patterns.extend(e.iter().map(|t| glob_of(t))),
                    (None, Some(p)) => patterns.extend(p.iter().map(|t| glob_of(t))),
                    _ => {
                        // Both: the names must also match a pattern; as fields.
                        generic(m, attribute, &c);
                        continue;
                    }
                }
                m.finding_types = Some(patterns);
            }
            ("accountId", Some(e))
                if only_equals
                    && e.iter()
                        .all(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit())) =>
            {
                m.accounts = Some(e.clone());
            }
            ("region", Some(e)) if only_equals => m.regions = Some(e.clone()),
            ("resource.resourceType", Some(e)) if only_equals => {
                m.resource_types = Some(e.clone());
            }
            ("service.action.actionType", Some(e)) if only_equals => {
                m.action_types = Some(e.clone());
            }
            ("service.resourceRole", Some(e))
                if only_equals && e.iter().all(|r| r == "TARGET" || r == "ACTOR") =>
            {
                m.resource_roles = Some(
                    e.iter()
                        .map(|r| {
                            if r == "ACTOR" {
                                ResourceRole::Actor
                            } else {
                                ResourceRole::Target
                            }
                        })
                        .collect(),
                );
            }
            ("severity", None)
                if c.has_bounds()
                    && c.not_equals.is_none()
                    && c.matches.is_none()
                    && c.not_matches.is_none() =>
            {
                m.severity = Some(SeverityCriterion::Range(NumberRange {
                    gt: c.greater_than.map(|n| n as f64),
                    gte: c.greater_than_or_equal.map(|n| n as f64),
                    lt: c.less_than.map(|n| n as f64),
                    lte: c.less_than_or_equal.map(|n| n as f64),
                }));
            }
            _ => {
                let mut rest = c.clone();
                if let Some(nm) = rest.not_matches.take() {
                    out.excludes.push(Criteria {
                        fields: BTreeMap::from([(
                            attribute.clone(),
                            FieldCondition {
                                glob: Some(nm.iter().map(|p| glob_of(p)).collect()),
                                ..FieldCondition::default()
                            },
                        )]),
                        ..Criteria::default()
                    });
                }
                if !rest.is_empty() {
                    generic(&mut out.matches, attribute, &rest);
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(Inexpressibles(errors));
    }
    Ok(out)
}

/// A condition as a `fields` entry of the same name (everything but `notMatches`).
fn generic(m: &mut Criteria, attribute: &str, c: &Condition) {
    let strings = |v: &Option<Vec<String>>| {
        v.as_ref()
            .map(|v| v.iter().cloned().map(Scalar::String).collect())
    };
    m.fields.insert(
        attribute.to_owned(),
        FieldCondition {
            eq: strings(&c.equals),
            neq: strings(&c.not_equals),
            gt: c.greater_than.map(|n| n as f64),
            gte: c.greater_than_or_equal.map(|n| n as f64),
            lt: c.less_than.map(|n| n as f64),
            lte: c.less_than_or_equal.map(|n| n as f64),
            exists: None,
            glob: c
                .matches
                .as_ref()
                .map(|p| p.iter().map(|x| glob_of(x)).collect()),
        },
    );
}

impl Imported {
    /// The playbook YAML: `match:` and, when any, `exclude:`; every string quoted.
    pub fn to_yaml(&self) -> String {
        let mut out = String::from("match:\n");
        criteria_yaml(&self.matches, "  ", &mut out);
        if !self.excludes.is_empty() {
            out.push_str("exclude:\n");
            for e in &self.excludes {
                let mut block = String::new();
                criteria_yaml(e, "    ", &mut block);
                out.push_str("  - ");
                out.push_str(block.trim_start());
            }
        }
        out
    }
}

/// A YAML double-quoted scalar holding exactly `s`, every character that is not
/// plain visible text escaped (`\uXXXX`, `\UXXXXXXXX`): YAML's non-printable
/// characters (C0 and C1 controls, DEL, U+FFFE, U+FFFF), which make the document
/// invalid, and what [`crate::text::needs_escape`] names (line separators, bidi,
/// zero-width and other invisible characters), which a parser reads but a person
/// cannot see in the printed playbook.
fn q(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if crate::text::needs_escape(c) || matches!(c, '\u{fffe}' | '\u{ffff}') => {
                let n = u32::from(c);
                if n <= 0xffff {
                    out.push_str(&format!("\\u{n:04X}"));
                } else {
                    out.push_str(&format!("\\U{n:08X}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn qlist<S: AsRef<str>>(items: &[S]) -> String {
    format!(
        "[{}]",
        items
            .iter()
            .map(|s| q(s.as_ref()))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn num(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

fn range_yaml(r: &NumberRange) -> String {
    let mut parts = Vec::new();
    for (k, v) in [("gt", r.gt), ("gte", r.gte), ("lt", r.lt), ("lte", r.lte)] {
        if let Some(v) = v {
            parts.push(format!("{k}: {}", num(v)));
        }
    }
    format!("{{{}}}", parts.join(", "))
}

fn criteria_yaml(c: &Criteria, indent: &str, out: &mut String) {
    let mut line = |k: &str, v: String| {
        out.push_str(&format!("{indent}{k}: {v}\n"));
    };
    if let Some(t) = &c.finding_types {
        line("finding_types", qlist(t));
    }
    if let Some(s) = &c.severity {
        match s {
            SeverityCriterion::Levels(l) => line(
                "severity",
                format!(
                    "[{}]",
                    l.iter().map(|x| x.as_str()).collect::<Vec<_>>().join(", ")
                ),
            ),
            SeverityCriterion::Range(r) => line("severity", range_yaml(r)),
        }
    }
    for (k, v) in [
        ("accounts", &c.accounts),
        ("regions", &c.regions),
        ("resource_types", &c.resource_types),
        ("action_types", &c.action_types),
        ("tags", &c.tags),
    ] {
        if let Some(v) = v {
            line(k, qlist(v));
        }
    }
    if let Some(r) = &c.resource_roles {
        line(
            "resource_roles",
            format!(
                "[{}]",
                r.iter().map(|x| x.as_str()).collect::<Vec<_>>().join(", ")
            ),
        );
    }
    if !c.fields.is_empty() {
        out.push_str(&format!("{indent}fields:\n"));
        for (path, f) in &c.fields {
            let mut ops = Vec::new();
            let scalars = |v: &[Scalar]| {
                format!(
                    "[{}]",
                    v.iter()
                        .map(|s| match s {
                            Scalar::Bool(b) => b.to_string(),
                            Scalar::Number(n) => num(*n),
                            Scalar::String(s) => q(s),
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            if let Some(v) = &f.eq {
                ops.push(format!("eq: {}", scalars(v)));
            }
            if let Some(v) = &f.neq {
                ops.push(format!("neq: {}", scalars(v)));
            }
            let r = range_yaml(&f.range());
            if r != "{}" {
                ops.push(r.trim_matches(['{', '}']).to_owned());
            }
            if let Some(e) = f.exists {
                ops.push(format!("exists: {e}"));
            }
            if let Some(g) = &f.glob {
                ops.push(format!("glob: {}", qlist(g)));
            }
            out.push_str(&format!("{indent}  {}: {{{}}}\n", q(path), ops.join(", ")));
        }
    }
}
