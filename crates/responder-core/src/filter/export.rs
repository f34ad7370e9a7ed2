//! A playbook's criteria as GuardDuty criteria ([`export`]), naming each part that
//! cannot be said.

use super::criteria::{ATTRIBUTES, Condition, FindingCriteria, MAX_VALUES};
use super::{Inexpressible, Inexpressibles};
use crate::matcher::criteria::{Criteria, FieldCondition, NumberRange, Scalar, SeverityCriterion};
use crate::playbook::load::LoadedPlaybook;
use crate::severity::SeverityLevel;

/// How strictly [`export`] treats what it cannot express.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportMode {
    /// Any inexpressible part is an error: the criteria select exactly the findings
    /// the playbook's criteria select.
    Exact,
    /// Inexpressible `exclude` blocks are left out (the criteria also select the
    /// findings they would exclude); inexpressible `match` parts are errors.
    DropExcludes,
    /// Every inexpressible part is left out: the criteria select a superset, to be
    /// narrowed locally by the playbook's matcher (`responder findings --playbook`).
    Superset,
}

/// Criteria from a playbook, and the parts left out (only outside [`ExportMode::Exact`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    /// The criteria.
    pub criteria: FindingCriteria,
    /// What was left out, so the criteria select more than the playbook.
    pub dropped: Vec<Inexpressible>,
}

/// A playbook's `match`, `exclude` blocks and archived rule (a destructive playbook
/// without `include_archived` does not answer archived findings:
/// `service.archived NotEquals ["true"]`) as GuardDuty criteria.
pub fn export(p: &LoadedPlaybook, mode: ExportMode) -> Result<Exported, Inexpressibles> {
    let mut out = FindingCriteria::default();
    let mut dropped = Vec::new();
    let mut errors = Vec::new();
    for (attribute, condition, part) in match_conditions(&p.playbook.matches.value, "match")
        .unwrap_or_else(|e| {
            errors.extend(e.iter().cloned());
            Vec::new()
        })
    {
        if let Err(why) = out.and(&attribute, condition) {
            errors.push(Inexpressible { part, why });
        }
    }
    // Inexpressible match parts: in superset mode, each criterion left out broadens.
    if !errors.is_empty() {
        if mode == ExportMode::Superset {
            out = FindingCriteria::default();
            let (kept, left_out) = match_conditions_lenient(&p.playbook.matches.value);
            dropped.extend(left_out);
            for (attribute, condition, part) in kept {
                if let Err(why) = out.and(&attribute, condition) {
                    dropped.push(Inexpressible { part, why });
                }
            }
            errors.clear();
        } else {
            return Err(Inexpressibles(errors));
        }
    }
    for (i, block) in p.playbook.exclude.iter().enumerate() {
        let part = format!("exclude[{i}]");
        match exclude_condition(&block.value, &part) {
            Ok((attribute, condition)) => {
                if let Err(why) = out.and(&attribute, condition) {
                    errors.push(Inexpressible { part, why });
                }
            }
            Err(e) => errors.push(e),
        }
    }
    if p.playbook.is_destructive() && !p.playbook.include_archived {
        let archived = Condition {
            not_equals: Some(vec!["true".to_owned()]),
            ..Condition::default()
        };
        if let Err(why) = out.and("service.archived", archived) {
            errors.push(Inexpressible {
                part: "the archived rule".to_owned(),
                why,
            });
        }
    }
    if !errors.is_empty() {
        if mode == ExportMode::Exact {
            return Err(Inexpressibles(errors));
        }
        dropped.extend(errors);
    }
    if out.criterion.is_empty() {
        return Err(Inexpressibles(vec![Inexpressible {
            part: "match".to_owned(),
            why: "nothing left to filter on (GuardDuty needs at least one attribute)".to_owned(),
        }]));
    }
    if out.criterion.len() > MAX_VALUES {
        return Err(Inexpressibles(vec![Inexpressible {
            part: "match".to_owned(),
            why: format!(
                "{} attributes, GuardDuty takes {MAX_VALUES}",
                out.criterion.len()
            ),
        }]));
    }
    Ok(Exported {
        criteria: out,
        dropped,
    })
}

type Conditions = Vec<(String, Condition, String)>;

fn match_conditions(c: &Criteria, at: &str) -> Result<Conditions, Vec<Inexpressible>> {
    let (kept, left_out) = match_conditions_lenient_at(c, at);
    if left_out.is_empty() {
        Ok(kept)
    } else {
        Err(left_out)
    }
}

fn match_conditions_lenient(c: &Criteria) -> (Conditions, Vec<Inexpressible>) {
    match_conditions_lenient_at(c, "match")
}

fn values_condition(values: &[String], part: &str) -> Result<Condition, Inexpressible> {
    if values.is_empty() || values.len() > MAX_VALUES {
        return Err(Inexpressible {
            part: part.to_owned(),
            why: format!("{} values, GuardDuty takes 1 to {MAX_VALUES}", values.len()),
        });
    }
    Ok(Condition {
        equals: Some(values.to_vec()),
        ..Condition::default()
    })
}

/// Every criterion of a `match` block as conditions, and the criteria that cannot be
/// (each left out whole, so what is kept selects a superset).
fn match_conditions_lenient_at(c: &Criteria, at: &str) -> (Conditions, Vec<Inexpressible>) {
    let mut kept: Conditions = Vec::new();
    let mut left = Vec::new();
    let mut push = |r: Result<(String, Condition), Inexpressible>, part: String| match r {
        Ok((a, cond)) => kept.push((a, cond, part)),
        Err(e) => left.push(e),
    };
    if let Some(types) = &c.finding_types {
        let part = format!("{at}.finding_types");
        push(
            types_condition(types, &part).map(|c| ("type".to_owned(), c)),
            part,
        );
    }
    if let Some(s) = &c.severity {
        let part = format!("{at}.severity");
        push(
            severity_condition(s, &part).map(|c| ("severity".to_owned(), c)),
            part,
        );
    }
    let simple: [(&str, &str, Option<Vec<String>>); 5] = [
        ("accounts", "accountId", c.accounts.clone()),
        ("regions", "region", c.regions.clone()),
        (
            "resource_types",
            "resource.resourceType",
            c.resource_types.clone(),
        ),
        (
            "resource_roles",
            "service.resourceRole",
            c.resource_roles
                .as_ref()
                .map(|r| r.iter().map(|x| x.as_str().to_owned()).collect()),
        ),
        (
            "action_types",
            "service.action.actionType",
            c.action_types.clone(),
        ),
    ];
    for (name, attribute, values) in simple {
        if let Some(values) = values {
            let part = format!("{at}.{name}");
            push(
                values_condition(&values, &part).map(|c| (attribute.to_owned(), c)),
                part,
            );
        }
    }
    if let Some(tags) = &c.tags {
        let part = format!("{at}.tags");
        push(
            tag_keys(tags, &part).and_then(|keys| {
                values_condition(&keys, &part)
                    .map(|c| ("resource.instanceDetails.tags.key".to_owned(), c))
            }),
            part,
        );
    }
    for (path, fc) in &c.fields {
        let part = format!("{at}.fields.{path}");
        push(
            field_condition(path, fc, &part).map(|c| (path.clone(), c)),
            part,
        );
    }
    (kept, left)
}

/// Tag selectors as keys, when every selector is a bare key (`key` present with any
/// value). `key=value` cannot be said: GuardDuty's criteria test tag keys and tag
/// values separately, so "one tag with this key and this value" is lost.
fn tag_keys(tags: &[String], part: &str) -> Result<Vec<String>, Inexpressible> {
    let pairs: Vec<&String> = tags.iter().filter(|t| t.contains('=')).collect();
    if !pairs.is_empty() {
        return Err(Inexpressible {
            part: part.to_owned(),
            why: format!(
                "{} (GuardDuty criteria test tag keys and tag values separately, so one tag with this key and this value cannot be asked for; a bare key can)",
                pairs
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    Ok(tags.to_vec())
}

/// A glob the matcher compiles that means the same as a GuardDuty `*` pattern: only
/// `*` may be special.
fn plain_wildcard(pattern: &str) -> bool {
    !pattern.contains(['?', '[', ']', '{', '}', '\\'])
}

fn types_condition(types: &[String], part: &str) -> Result<Condition, Inexpressible> {
    if let Some(bad) = types.iter().find(|t| !plain_wildcard(t)) {
        return Err(Inexpressible {
            part: part.to_owned(),
            why: format!(
                "pattern {bad:?} uses ?, [], {{}} or \\, which GuardDuty's Matches has no equivalent for"
            ),
        });
    }
    let equals = values_condition(types, part)?;
    if types.iter().any(|t| t.contains('*')) {
        Ok(Condition {
            matches: equals.equals,
            ..Condition::default()
        })
    } else {
        Ok(equals)
    }
}

fn integral(x: f64, part: &str) -> Result<i64, Inexpressible> {
    if x.is_finite() && x.fract() == 0.0 && x.abs() < 9.0e15 {
        Ok(x as i64)
    } else {
        Err(Inexpressible {
            part: part.to_owned(),
            why: format!("bound {x} is not a whole number (GuardDuty compares with integers)"),
        })
    }
}

fn range_condition(r: &NumberRange, part: &str) -> Result<Condition, Inexpressible> {
    let b = |x: Option<f64>| x.map(|x| integral(x, part)).transpose();
    Ok(Condition {
        greater_than: b(r.gt)?,
        greater_than_or_equal: b(r.gte)?,
        less_than: b(r.lt)?,
        less_than_or_equal: b(r.lte)?,
        ..Condition::default()
    })
}

/// Severity levels as one range `[low, high)` when they are contiguous.
fn level_span(
    levels: &[SeverityLevel],
    part: &str,
) -> Result<(SeverityLevel, SeverityLevel), Inexpressible> {
    let mut l = levels.to_vec();
    l.sort();
    l.dedup();
    let all = [
        SeverityLevel::Low,
        SeverityLevel::Medium,
        SeverityLevel::High,
        SeverityLevel::Critical,
    ];
    let (Some(first), Some(last)) = (l.first().copied(), l.last().copied()) else {
        return Err(Inexpressible {
            part: part.to_owned(),
            why: "no level".to_owned(),
        });
    };
    let span: Vec<SeverityLevel> = all
        .into_iter()
        .filter(|x| *x >= first && *x <= last)
        .collect();
    if span != l {
        return Err(Inexpressible {
            part: part.to_owned(),
            why: format!(
                "levels [{}] are not one range of severity numbers",
                l.iter().map(|x| x.as_str()).collect::<Vec<_>>().join(", ")
            ),
        });
    }
    Ok((first, last))
}

fn severity_condition(s: &SeverityCriterion, part: &str) -> Result<Condition, Inexpressible> {
    match s {
        SeverityCriterion::Range(r) => range_condition(r, part),
        SeverityCriterion::Levels(levels) => {
            let (first, last) = level_span(levels, part)?;
            Ok(Condition {
                greater_than_or_equal: (first != SeverityLevel::Low)
                    .then(|| first.range().0 as i64),
                less_than: (last != SeverityLevel::Critical).then(|| last.range().1 as i64),
                ..Condition::default()
            })
            .and_then(|c| {
                if c.is_empty() {
                    Err(Inexpressible {
                        part: part.to_owned(),
                        why: "every level: no condition to send (leave severity out)".to_owned(),
                    })
                } else {
                    Ok(c)
                }
            })
        }
    }
}

fn scalar_string(s: &Scalar) -> String {
    match s {
        Scalar::Bool(b) => b.to_string(),
        Scalar::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => format!("{}", *n as i64),
        Scalar::Number(n) => n.to_string(),
        Scalar::String(s) => s.clone(),
    }
}

fn check_attribute(path: &str, part: &str) -> Result<(), Inexpressible> {
    if ATTRIBUTES.contains(&path) {
        Ok(())
    } else {
        Err(Inexpressible {
            part: part.to_owned(),
            why: format!("{path:?} is not a GuardDuty filter attribute"),
        })
    }
}

fn field_condition(
    path: &str,
    fc: &FieldCondition,
    part: &str,
) -> Result<Condition, Inexpressible> {
    check_attribute(path, part)?;
    if fc.exists.is_some() {
        return Err(Inexpressible {
            part: format!("{part}.exists"),
            why: "GuardDuty criteria have no presence test".to_owned(),
        });
    }
    let strings =
        |v: &Option<Vec<Scalar>>, op: &str| -> Result<Option<Vec<String>>, Inexpressible> {
            match v {
                None => Ok(None),
                Some(v) if v.is_empty() || v.len() > MAX_VALUES => Err(Inexpressible {
                    part: format!("{part}.{op}"),
                    why: format!("{} values, GuardDuty takes 1 to {MAX_VALUES}", v.len()),
                }),
                Some(v) => Ok(Some(v.iter().map(scalar_string).collect())),
            }
        };
    if let Some(bad) = fc.glob.iter().flatten().find(|g| !plain_wildcard(g)) {
        return Err(Inexpressible {
            part: format!("{part}.glob"),
            why: format!(
                "pattern {bad:?} uses ?, [], {{}} or \\, which GuardDuty's Matches has no equivalent for"
            ),
        });
    }
    let range = range_condition(&fc.range(), part)?;
    Ok(Condition {
        equals: strings(&fc.eq, "eq")?,
        not_equals: strings(&fc.neq, "neq")?,
        matches: fc.glob.clone(),
        ..range
    })
}

/// One `exclude` block as the condition that keeps the findings it does not exclude.
/// Only a block of one criterion can be negated into one condition (`not (a and b)` is
/// `not a or not b`, and criteria have no "or" across attributes).
fn exclude_condition(c: &Criteria, part: &str) -> Result<(String, Condition), Inexpressible> {
    let (conditions, left_out) = match_conditions_lenient_at(c, part);
    if let Some(first) = left_out.into_iter().next() {
        return Err(first);
    }
    let [(attribute, condition, at)] = conditions.as_slice() else {
        return Err(Inexpressible {
            part: part.to_owned(),
            why: format!(
                "{} criteria in one exclude block: excluding \"a and b\" keeps \"not a or not b\", which criteria cannot say (one criterion per block can be)",
                conditions.len()
            ),
        });
    };
    let n = condition.normalized().map_err(|why| Inexpressible {
        part: at.clone(),
        why,
    })?;
    let negated = match n {
        Condition {
            equals: Some(v),
            not_equals: None,
            matches: None,
            not_matches: None,
            greater_than: None,
            greater_than_or_equal: None,
            less_than: None,
            less_than_or_equal: None,
            ..
        } => Some(Condition {
            not_equals: Some(v),
            ..Condition::default()
        }),
        Condition {
            equals: None,
            not_equals: Some(v),
            matches: None,
            not_matches: None,
            greater_than: None,
            greater_than_or_equal: None,
            less_than: None,
            less_than_or_equal: None,
            ..
        } => Some(Condition {
            equals: Some(v),
            ..Condition::default()
        }),
        Condition {
            equals: None,
            not_equals: None,
            matches: Some(v),
            not_matches: None,
            greater_than: None,
            greater_than_or_equal: None,
            less_than: None,
            less_than_or_equal: None,
            ..
        } => Some(Condition {
            not_matches: Some(v),
            ..Condition::default()
        }),
        // Severity is on every finding, so one bound negates into the other side.
        Condition {
            equals: None,
            not_equals: None,
            matches: None,
            not_matches: None,
            greater_than,
            greater_than_or_equal,
            less_than,
            less_than_or_equal,
            ..
        } if attribute == "severity" => {
            match (
                greater_than,
                greater_than_or_equal,
                less_than,
                less_than_or_equal,
            ) {
                (Some(b), None, None, None) => Some(Condition {
                    less_than_or_equal: Some(b),
                    ..Condition::default()
                }),
                (None, Some(b), None, None) => Some(Condition {
                    less_than: Some(b),
                    ..Condition::default()
                }),
                (None, None, Some(b), None) => Some(Condition {
                    greater_than_or_equal: Some(b),
                    ..Condition::default()
                }),
                (None, None, None, Some(b)) => Some(Condition {
                    greater_than: Some(b),
                    ..Condition::default()
                }),
                _ => None,
            }
        }
        _ => None,
    };
    match negated {
        Some(c) => Ok((attribute.clone(), c)),
        None => Err(Inexpressible {
            part: at.clone(),
            why: "its negation is not one GuardDuty condition (only Equals, NotEquals, Matches, or one severity bound negate into one)".to_owned(),
        }),
    }
}
