//! GuardDuty criteria evaluated on a finding's camelCase JSON as GuardDuty decides
//! them (see the [module doc](super)).

use serde_json::Value;

use super::criteria::{Condition, FindingCriteria, TIMESTAMP_ATTRIBUTES};
use crate::timestamp::epoch_millis;

/// Whether `finding` (camelCase JSON) meets every condition of `criteria`.
pub fn criteria_holds(criteria: &FindingCriteria, finding: &Value) -> bool {
    criteria
        .criterion
        .iter()
        .all(|(attribute, c)| condition_holds(attribute, c, finding))
}

/// Whether the values at `attribute` in `finding` meet `c` (see the module doc).
pub fn condition_holds(attribute: &str, c: &Condition, finding: &Value) -> bool {
    let segments: Vec<&str> = attribute.split('.').collect();
    let mut values = Vec::new();
    collect(finding, &segments, &mut values);
    let values: Vec<&Value> = values.into_iter().filter(|v| !v.is_null()).collect();
    let timestamp = TIMESTAMP_ATTRIBUTES.contains(&attribute);
    let equal_any = |list: &[String]| {
        values
            .iter()
            .any(|v| list.iter().any(|e| string_equals(e, v)))
    };
    let match_any = |list: &[String]| {
        values.iter().any(|v| {
            v.as_str()
                .is_some_and(|s| list.iter().any(|p| wildcard(p, s)))
        })
    };
    for list in [&c.equals, &c.eq].into_iter().flatten() {
        if !equal_any(list) {
            return false;
        }
    }
    for list in [&c.not_equals, &c.neq].into_iter().flatten() {
        if equal_any(list) {
            return false;
        }
    }
    if let Some(list) = &c.matches
        && !match_any(list)
    {
        return false;
    }
    if let Some(list) = &c.not_matches
        && match_any(list)
    {
        return false;
    }
    if c.has_bounds() {
        let to_f = |x: Option<i64>| x.map(|n| n as f64);
        let bounds = [
            (to_f(c.greater_than), to_f(c.gt), Ordering::Gt),
            (to_f(c.greater_than_or_equal), to_f(c.gte), Ordering::Ge),
            (to_f(c.less_than), to_f(c.lt), Ordering::Lt),
            (to_f(c.less_than_or_equal), to_f(c.lte), Ordering::Le),
        ];
        let any = values.iter().any(|v| {
            let n = if timestamp {
                v.as_str().and_then(epoch_millis).map(|n| n as f64)
            } else {
                None
            }
            .or_else(|| crate::finding::number(v));
            n.is_some_and(|n| {
                bounds.iter().all(|(a, b, op)| {
                    [a, b].into_iter().flatten().all(|bound| match op {
                        Ordering::Gt => n > *bound,
                        Ordering::Ge => n >= *bound,
                        Ordering::Lt => n < *bound,
                        Ordering::Le => n <= *bound,
                    })
                })
            })
        });
        if !any {
            return false;
        }
    }
    true
}

#[derive(Clone, Copy)]
enum Ordering {
    Gt,
    Ge,
    Lt,
    Le,
}

fn collect<'a>(value: &'a Value, segments: &[&str], out: &mut Vec<&'a Value>) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| collect(v, segments, out)),
        _ => match segments.split_first() {
            None => out.push(value),
            Some((head, rest)) => {
                if let Some(v) = value.get(*head) {
                    collect(v, rest, out);
                }
            }
        },
    }
}

/// A criterion value (always a string) against a finding value: strings exactly,
/// numbers numerically, booleans as `true` / `false`.
fn string_equals(expected: &str, actual: &Value) -> bool {
    match actual {
        Value::String(s) => s == expected,
        Value::Number(_) => expected.trim().parse::<f64>().ok() == crate::finding::number(actual),
        Value::Bool(b) => expected == if *b { "true" } else { "false" },
        _ => false,
    }
}

/// `*` matches any run of characters; everything else itself.
pub fn wildcard(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}
