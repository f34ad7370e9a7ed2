//! GuardDuty's finding criteria as the API and the CLI write them: the attributes it
//! knows, [`Condition`] and [`FindingCriteria`], read from a file ([`parse_criteria`])
//! and combined ([`merge`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// GuardDuty's bound on the values of one `Equals` / `NotEquals` (and their
/// deprecated forms) and on the attributes of one filter.
pub const MAX_VALUES: usize = 50;

pub use crate::attributes::ATTRIBUTES;

/// The attributes GuardDuty compares as epoch milliseconds.
pub const TIMESTAMP_ATTRIBUTES: &[&str] = &["updatedAt"];

/// One attribute's condition, as the API spells it (`equals`, `notEquals`, ...; a file
/// may also use the CLI's `Equals`, `NotEquals`, ...). The deprecated `eq`, `neq`,
/// `gt`, `gte`, `lt`, `lte` mean what `equals` ... `lessThanOrEqual` mean. Every
/// operator present must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Condition {
    /// Equal to any of these.
    #[serde(default, alias = "Equals", skip_serializing_if = "Option::is_none")]
    pub equals: Option<Vec<String>>,
    /// Equal to none of these.
    #[serde(default, alias = "NotEquals", skip_serializing_if = "Option::is_none")]
    pub not_equals: Option<Vec<String>>,
    /// Greater than.
    #[serde(
        default,
        alias = "GreaterThan",
        skip_serializing_if = "Option::is_none"
    )]
    pub greater_than: Option<i64>,
    /// Greater than or equal.
    #[serde(
        default,
        alias = "GreaterThanOrEqual",
        skip_serializing_if = "Option::is_none"
    )]
    pub greater_than_or_equal: Option<i64>,
    /// Less than.
    #[serde(default, alias = "LessThan", skip_serializing_if = "Option::is_none")]
    pub less_than: Option<i64>,
    /// Less than or equal.
    #[serde(
        default,
        alias = "LessThanOrEqual",
        skip_serializing_if = "Option::is_none"
    )]
    pub less_than_or_equal: Option<i64>,
    /// Matches any of these `*` patterns (CreateFilter and UpdateFilter only).
    #[serde(default, alias = "Matches", skip_serializing_if = "Option::is_none")]
    pub matches: Option<Vec<String>>,
    /// Matches none of these `*` patterns (CreateFilter and UpdateFilter only).
    #[serde(default, alias = "NotMatches", skip_serializing_if = "Option::is_none")]
    pub not_matches: Option<Vec<String>>,
    /// Deprecated `equals`.
    #[serde(default, alias = "Eq", skip_serializing_if = "Option::is_none")]
    pub eq: Option<Vec<String>>,
    /// Deprecated `notEquals`.
    #[serde(default, alias = "Neq", skip_serializing_if = "Option::is_none")]
    pub neq: Option<Vec<String>>,
    /// Deprecated `greaterThan`.
    #[serde(default, alias = "Gt", skip_serializing_if = "Option::is_none")]
    pub gt: Option<i64>,
    /// Deprecated `greaterThanOrEqual`.
    #[serde(default, alias = "Gte", skip_serializing_if = "Option::is_none")]
    pub gte: Option<i64>,
    /// Deprecated `lessThan`.
    #[serde(default, alias = "Lt", skip_serializing_if = "Option::is_none")]
    pub lt: Option<i64>,
    /// Deprecated `lessThanOrEqual`.
    #[serde(default, alias = "Lte", skip_serializing_if = "Option::is_none")]
    pub lte: Option<i64>,
}

impl Condition {
    /// True when no operator is set.
    pub fn is_empty(&self) -> bool {
        *self == Condition::default()
    }

    /// The same condition in the current operators only (the deprecated ones folded
    /// in); `Err` names an operator pair that cannot be folded into one (`eq` and
    /// `equals` with different values: both must hold, which one list cannot say).
    pub fn normalized(&self) -> Result<Condition, String> {
        let list = |new: &Option<Vec<String>>,
                    old: &Option<Vec<String>>,
                    names: &str,
                    union: bool|
         -> Result<Option<Vec<String>>, String> {
            match (new, old) {
                (Some(a), Some(b)) if sorted(a) != sorted(b) => {
                    if union {
                        let mut all = a.clone();
                        all.extend(b.iter().cloned());
                        Ok(Some(sorted(&all)))
                    } else {
                        Err(format!("{names} with different values"))
                    }
                }
                (Some(a), _) | (None, Some(a)) => Ok(Some(a.clone())),
                (None, None) => Ok(None),
            }
        };
        let max = |a: Option<i64>, b: Option<i64>| match (a, b) {
            (Some(x), Some(y)) => Some(x.max(y)),
            (x, y) => x.or(y),
        };
        let min = |a: Option<i64>, b: Option<i64>| match (a, b) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        };
        Ok(Condition {
            equals: list(&self.equals, &self.eq, "Eq and Equals", false)?,
            not_equals: list(&self.not_equals, &self.neq, "Neq and NotEquals", true)?,
            greater_than: max(self.greater_than, self.gt),
            greater_than_or_equal: max(self.greater_than_or_equal, self.gte),
            less_than: min(self.less_than, self.lt),
            less_than_or_equal: min(self.less_than_or_equal, self.lte),
            matches: self.matches.clone(),
            not_matches: self.not_matches.clone(),
            ..Condition::default()
        })
    }

    /// True when any number bound, current or deprecated, is set.
    pub(super) fn has_bounds(&self) -> bool {
        self.greater_than.is_some()
            || self.greater_than_or_equal.is_some()
            || self.less_than.is_some()
            || self.less_than_or_equal.is_some()
            || self.gt.is_some()
            || self.gte.is_some()
            || self.lt.is_some()
            || self.lte.is_some()
    }
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v.dedup();
    v
}

/// The API's `findingCriteria`: every attribute's condition must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingCriteria {
    /// Attribute name (`type`, `severity`, `resource.instanceDetails.tags.key`) →
    /// condition.
    #[serde(alias = "Criterion", default)]
    pub criterion: BTreeMap<String, Condition>,
}

impl FindingCriteria {
    /// The criteria without `matches` / `notMatches`, which ListFindings does not
    /// take (a superset: what they filtered must be filtered locally), and whether
    /// any was removed.
    pub fn for_list_findings(&self) -> (FindingCriteria, bool) {
        let mut dropped = false;
        let mut out = BTreeMap::new();
        for (k, c) in &self.criterion {
            let mut c = c.clone();
            dropped |= c.matches.take().is_some() | c.not_matches.take().is_some();
            if !c.is_empty() {
                out.insert(k.clone(), c);
            }
        }
        (FindingCriteria { criterion: out }, dropped)
    }

    /// Adds a condition, merging with one already on the attribute (see [`merge`]).
    pub fn and(&mut self, attribute: &str, condition: Condition) -> Result<(), String> {
        match self.criterion.get_mut(attribute) {
            Some(existing) => {
                *existing = merge(existing, &condition).map_err(|e| format!("{attribute}: {e}"))?;
            }
            None => {
                self.criterion.insert(attribute.to_owned(), condition);
            }
        }
        Ok(())
    }
}

/// Both conditions as one: lists of `notEquals`/`notMatches` unite, bounds tighten;
/// two different `equals` or `matches` lists cannot be one list (an error).
pub fn merge(a: &Condition, b: &Condition) -> Result<Condition, String> {
    let a = a.normalized()?;
    let b = b.normalized()?;
    let same = |x: &Option<Vec<String>>, y: &Option<Vec<String>>, what: &str| match (x, y) {
        (Some(p), Some(q)) if sorted(p) != sorted(q) => Err(format!(
            "two different {what} lists (any of [{}] and any of [{}])",
            p.join(", "),
            q.join(", ")
        )),
        (Some(p), _) | (None, Some(p)) => Ok(Some(p.clone())),
        (None, None) => Ok(None),
    };
    let union = |x: &Option<Vec<String>>, y: &Option<Vec<String>>| match (x, y) {
        (Some(p), Some(q)) => {
            let mut all = p.clone();
            all.extend(q.iter().cloned());
            Some(sorted(&all))
        }
        (p, q) => p.clone().or_else(|| q.clone()),
    };
    let hi = |x: Option<i64>, y: Option<i64>| match (x, y) {
        (Some(p), Some(q)) => Some(p.max(q)),
        (p, q) => p.or(q),
    };
    let lo = |x: Option<i64>, y: Option<i64>| match (x, y) {
        (Some(p), Some(q)) => Some(p.min(q)),
        (p, q) => p.or(q),
    };
    Ok(Condition {
        equals: same(&a.equals, &b.equals, "Equals")?,
        not_equals: union(&a.not_equals, &b.not_equals),
        greater_than: hi(a.greater_than, b.greater_than),
        greater_than_or_equal: hi(a.greater_than_or_equal, b.greater_than_or_equal),
        less_than: lo(a.less_than, b.less_than),
        less_than_or_equal: lo(a.less_than_or_equal, b.less_than_or_equal),
        matches: same(&a.matches, &b.matches, "Matches")?,
        not_matches: union(&a.not_matches, &b.not_matches),
        ..Condition::default()
    })
}

/// Bad criteria: the attribute and what is wrong, on one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CriteriaFileError(pub String);

/// Reads criteria from JSON: `{"Criterion": {...}}` (the CLI's `--finding-criteria`),
/// `{"FindingCriteria": {"Criterion": {...}}}` (a filter as `get-filter` prints it) or
/// the API's camelCase. An attribute GuardDuty does not know, an unknown operator, a
/// condition without an operator or a list longer than [`MAX_VALUES`] is an error
/// naming it.
pub fn parse_criteria(text: &str) -> Result<FindingCriteria, CriteriaFileError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| CriteriaFileError(format!("not JSON criteria: {e}")))?;
    criteria_from_value(&value)
}

/// [`parse_criteria`] of a JSON value.
pub fn criteria_from_value(value: &Value) -> Result<FindingCriteria, CriteriaFileError> {
    let mut v = value;
    if let Some(inner) = v
        .get("FindingCriteria")
        .or_else(|| v.get("findingCriteria"))
    {
        v = inner;
    }
    let Some(map) = v
        .get("Criterion")
        .or_else(|| v.get("criterion"))
        .and_then(Value::as_object)
    else {
        return Err(CriteriaFileError(
            "criteria must be an object with \"Criterion\" (attribute -> condition)".to_owned(),
        ));
    };
    if map.len() > MAX_VALUES {
        return Err(CriteriaFileError(format!(
            "{} attributes: GuardDuty takes at most {MAX_VALUES}",
            map.len()
        )));
    }
    let mut criterion = BTreeMap::new();
    for (attribute, c) in map {
        if !ATTRIBUTES.contains(&attribute.as_str()) {
            return Err(CriteriaFileError(format!(
                "unknown criterion attribute {attribute:?} (not a GuardDuty finding filter attribute)"
            )));
        }
        let condition: Condition = serde_json::from_value(c.clone())
            .map_err(|e| CriteriaFileError(format!("criterion {attribute:?}: {e}")))?;
        check_condition(attribute, &condition).map_err(CriteriaFileError)?;
        criterion.insert(attribute.clone(), condition);
    }
    Ok(FindingCriteria { criterion })
}

fn check_condition(attribute: &str, c: &Condition) -> Result<(), String> {
    if c.is_empty() {
        return Err(format!("criterion {attribute:?}: no operator"));
    }
    for (name, list) in [
        ("Equals", &c.equals),
        ("NotEquals", &c.not_equals),
        ("Matches", &c.matches),
        ("NotMatches", &c.not_matches),
        ("Eq", &c.eq),
        ("Neq", &c.neq),
    ] {
        if let Some(list) = list
            && (list.is_empty() || list.len() > MAX_VALUES)
        {
            return Err(format!(
                "criterion {attribute:?}: {name} takes 1 to {MAX_VALUES} values, not {}",
                list.len()
            ));
        }
    }
    c.normalized()
        .map(|_| ())
        .map_err(|e| format!("criterion {attribute:?}: {e}"))
}
