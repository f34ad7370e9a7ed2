//! GuardDuty finding criteria (saved filters, ListFindings) and playbook criteria, both
//! ways, and a local evaluator of GuardDuty criteria.
//!
//! - [`FindingCriteria`]: the API's `findingCriteria` (`criterion`: attribute name →
//!   [`Condition`]), read from a file in the CLI's or the API's casing
//!   ([`parse_criteria`]: unknown attributes and operators are errors naming them).
//! - [`criteria_holds`]: whether a finding (camelCase JSON) meets criteria, as
//!   GuardDuty decides it: a condition on a list field holds when any element meets
//!   it (`NotEquals`, `NotMatches`: when no element does, absent included); the
//!   number bounds of one condition must hold on one element; `updatedAt` compares in
//!   epoch milliseconds; `Matches` patterns take `*` for any run of characters.
//! - [`export`]: a playbook's `match` (and `exclude`, and its archived rule) as
//!   criteria; what GuardDuty cannot express is an [`Inexpressible`] naming the part.
//! - [`import`]: criteria as a playbook `match` and `exclude` ([`Imported::to_yaml`]).
//!
//! Export then import selects the same findings as the playbook: tested over the
//! whole corpus for every shipped playbook (`tests/filter_roundtrip.rs`).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::playbook::load::LoadedPlaybook;
use crate::playbook::model::{
    Criteria, FieldCondition, NumberRange, ResourceRole, Scalar, SeverityCriterion,
};
use crate::severity::SeverityLevel;
use crate::timestamp::epoch_millis;

/// GuardDuty's bound on the values of one `Equals` / `NotEquals` (and their
/// deprecated forms) and on the attributes of one filter.
pub const MAX_VALUES: usize = 50;

/// The attributes GuardDuty accepts in finding criteria (the API reference's list
/// for CreateFilter and ListFindings).
pub const ATTRIBUTES: &[&str] = &[
    "accountId",
    "confidence",
    "id",
    "region",
    "severity",
    "type",
    "updatedAt",
    "resource.accessKeyDetails.accessKeyId",
    "resource.accessKeyDetails.principalId",
    "resource.accessKeyDetails.userName",
    "resource.accessKeyDetails.userType",
    "resource.containerDetails.image",
    "resource.ecsClusterDetails.name",
    "resource.ecsClusterDetails.taskDetails.containers.image",
    "resource.ecsClusterDetails.taskDetails.definitionArn",
    "resource.eksClusterDetails.name",
    "resource.instanceDetails.iamInstanceProfile.id",
    "resource.instanceDetails.imageId",
    "resource.instanceDetails.instanceId",
    "resource.instanceDetails.networkInterfaces.ipv6Addresses",
    "resource.instanceDetails.networkInterfaces.privateIpAddresses.privateIpAddress",
    "resource.instanceDetails.networkInterfaces.publicDnsName",
    "resource.instanceDetails.networkInterfaces.publicIp",
    "resource.instanceDetails.networkInterfaces.securityGroups.groupId",
    "resource.instanceDetails.networkInterfaces.securityGroups.groupName",
    "resource.instanceDetails.networkInterfaces.subnetId",
    "resource.instanceDetails.networkInterfaces.vpcId",
    "resource.instanceDetails.outpostArn",
    "resource.instanceDetails.tags.key",
    "resource.instanceDetails.tags.value",
    "resource.kubernetesDetails.kubernetesUserDetails.username",
    "resource.kubernetesDetails.kubernetesWorkloadDetails.containers.image",
    "resource.kubernetesDetails.kubernetesWorkloadDetails.containers.imagePrefix",
    "resource.kubernetesDetails.kubernetesWorkloadDetails.name",
    "resource.kubernetesDetails.kubernetesWorkloadDetails.namespace",
    "resource.lambdaDetails.functionArn",
    "resource.lambdaDetails.functionName",
    "resource.lambdaDetails.tags.key",
    "resource.lambdaDetails.tags.value",
    "resource.rdsDbInstanceDetails.dbClusterIdentifier",
    "resource.rdsDbInstanceDetails.dbInstanceIdentifier",
    "resource.rdsDbInstanceDetails.engine",
    "resource.rdsDbInstanceDetails.tags.key",
    "resource.rdsDbInstanceDetails.tags.value",
    "resource.rdsDbUserDetails.user",
    "resource.resourceType",
    "resource.s3BucketDetails.name",
    "resource.s3BucketDetails.publicAccess.effectivePermission",
    "resource.s3BucketDetails.tags.key",
    "resource.s3BucketDetails.tags.value",
    "resource.s3BucketDetails.type",
    "service.action.actionType",
    "service.action.awsApiCallAction.api",
    "service.action.awsApiCallAction.callerType",
    "service.action.awsApiCallAction.errorCode",
    "service.action.awsApiCallAction.remoteAccountDetails.affiliated",
    "service.action.awsApiCallAction.remoteIpDetails.city.cityName",
    "service.action.awsApiCallAction.remoteIpDetails.country.countryName",
    "service.action.awsApiCallAction.remoteIpDetails.ipAddressV4",
    "service.action.awsApiCallAction.remoteIpDetails.ipAddressV6",
    "service.action.awsApiCallAction.remoteIpDetails.organization.asn",
    "service.action.awsApiCallAction.remoteIpDetails.organization.asnOrg",
    "service.action.awsApiCallAction.serviceName",
    "service.action.dnsRequestAction.domain",
    "service.action.dnsRequestAction.domainWithSuffix",
    "service.action.kubernetesApiCallAction.namespace",
    "service.action.kubernetesApiCallAction.remoteIpDetails.ipAddressV4",
    "service.action.kubernetesApiCallAction.requestUri",
    "service.action.kubernetesApiCallAction.statusCode",
    "service.action.networkConnectionAction.blocked",
    "service.action.networkConnectionAction.connectionDirection",
    "service.action.networkConnectionAction.localIpDetails.ipAddressV4",
    "service.action.networkConnectionAction.localIpDetails.ipAddressV6",
    "service.action.networkConnectionAction.localPortDetails.port",
    "service.action.networkConnectionAction.protocol",
    "service.action.networkConnectionAction.remoteIpDetails.city.cityName",
    "service.action.networkConnectionAction.remoteIpDetails.country.countryName",
    "service.action.networkConnectionAction.remoteIpDetails.ipAddressV4",
    "service.action.networkConnectionAction.remoteIpDetails.ipAddressV6",
    "service.action.networkConnectionAction.remoteIpDetails.organization.asn",
    "service.action.networkConnectionAction.remoteIpDetails.organization.asnOrg",
    "service.action.networkConnectionAction.remotePortDetails.port",
    "service.additionalInfo.threatListName",
    "service.archived",
    "service.ebsVolumeScanDetails.scanDetections.threatDetectedByName.threatNames.filePaths.hash",
    "service.ebsVolumeScanDetails.scanDetections.threatDetectedByName.threatNames.name",
    "service.ebsVolumeScanDetails.scanDetections.threatDetectedByName.threatNames.severity",
    "service.ebsVolumeScanDetails.scanId",
    "service.resourceRole",
    "service.runtimeDetails.process.executablePath",
    "service.runtimeDetails.process.executableSha256",
    "service.runtimeDetails.process.name",
];

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

    fn has_bounds(&self) -> bool {
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

// ---------------------------------------------------------------- evaluation

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

// ---------------------------------------------------------------- export

/// A part of a playbook GuardDuty criteria cannot say, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inexpressible {
    /// Where: `match.tags`, `exclude[0]`, `match.fields.<path>.exists`.
    pub part: String,
    /// Why not.
    pub why: String,
}

impl fmt::Display for Inexpressible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.part, self.why)
    }
}

/// The parts that cannot be expressed, all of them, on one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct Inexpressibles(pub Vec<Inexpressible>);

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

// ---------------------------------------------------------------- import

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

fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Finding;
    use crate::matcher::CompiledCriteria;
    use serde_json::json;

    fn finding() -> Value {
        json!({
            "id": "f", "type": "CryptoCurrency:EC2/BitcoinTool.B!DNS", "severity": 8,
            "accountId": "111122223333", "region": "us-east-1",
            "updatedAt": "2024-01-02T03:04:05.678Z",
            "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": "i-1",
                "tags": [{"key": "env", "value": "prod"}, {"key": "team", "value": "web"}]}},
            "service": {"resourceRole": "TARGET", "archived": false, "count": 4,
                "action": {"actionType": "DNS_REQUEST", "dnsRequestAction": {"domain": "pool.bitcoin.com"}},
                "additionalInfo": {"threatListName": "ProofPoint"}}
        })
    }

    fn c(json: &str) -> FindingCriteria {
        parse_criteria(json).unwrap()
    }

    fn holds(json: &str) -> bool {
        criteria_holds(&c(json), &finding())
    }

    #[test]
    fn every_operator_in_both_casings() {
        assert!(holds(
            r#"{"Criterion": {"type": {"Equals": ["CryptoCurrency:EC2/BitcoinTool.B!DNS"]}}}"#
        ));
        assert!(holds(
            r#"{"criterion": {"type": {"equals": ["x", "CryptoCurrency:EC2/BitcoinTool.B!DNS"]}}}"#
        ));
        assert!(!holds(
            r#"{"Criterion": {"type": {"NotEquals": ["CryptoCurrency:EC2/BitcoinTool.B!DNS"]}}}"#
        ));
        assert!(holds(
            r#"{"Criterion": {"severity": {"GreaterThanOrEqual": 8, "LessThan": 9}}}"#
        ));
        assert!(!holds(r#"{"Criterion": {"severity": {"GreaterThan": 8}}}"#));
        assert!(holds(
            r#"{"Criterion": {"severity": {"LessThanOrEqual": 8}}}"#
        ));
        assert!(holds(r#"{"Criterion": {"severity": {"Gte": 7, "Lt": 9}}}"#));
        assert!(!holds(r#"{"Criterion": {"severity": {"Gt": 8}}}"#));
        assert!(holds(r#"{"Criterion": {"severity": {"Lte": 8}}}"#));
        assert!(holds(r#"{"Criterion": {"region": {"Eq": ["us-east-1"]}}}"#));
        assert!(!holds(
            r#"{"Criterion": {"region": {"Neq": ["us-east-1"]}}}"#
        ));
        assert!(holds(
            r#"{"Criterion": {"type": {"Matches": ["CryptoCurrency:*"]}}}"#
        ));
        assert!(!holds(
            r#"{"Criterion": {"type": {"NotMatches": ["*!DNS"]}}}"#
        ));
        assert!(holds(
            r#"{"Criterion": {"resource.instanceDetails.tags.value": {"Equals": ["web"]}}}"#
        ));
        assert!(!holds(
            r#"{"Criterion": {"resource.instanceDetails.tags.key": {"NotEquals": ["team"]}}}"#
        ));
        assert!(holds(
            r#"{"Criterion": {"service.archived": {"Equals": ["false"]}}}"#
        ));
        assert!(holds(
            r#"{"Criterion": {"updatedAt": {"GreaterThanOrEqual": 1704164645678}}}"#
        ));
        assert!(!holds(
            r#"{"Criterion": {"updatedAt": {"GreaterThan": 1704164645678}}}"#
        ));
        // Absent: NotEquals holds, Equals does not.
        assert!(holds(
            r#"{"Criterion": {"resource.instanceDetails.imageId": {"NotEquals": ["ami-1"]}}}"#
        ));
        assert!(!holds(
            r#"{"Criterion": {"resource.instanceDetails.imageId": {"Equals": ["ami-1"]}}}"#
        ));
    }

    #[test]
    fn bad_files_name_what_is_wrong() {
        let e = parse_criteria(r#"{"Criterion": {"nope.field": {"Equals": ["x"]}}}"#).unwrap_err();
        assert!(e.0.contains("\"nope.field\""), "{e}");
        let e = parse_criteria(r#"{"Criterion": {"type": {"Like": ["x"]}}}"#).unwrap_err();
        assert!(e.0.contains("Like") && e.0.contains("\"type\""), "{e}");
        let e = parse_criteria(r#"{"Criterion": {"type": {}}}"#).unwrap_err();
        assert!(e.0.contains("no operator"), "{e}");
        let e = parse_criteria(r#"{"Criterion": {"type": {"Equals": []}}}"#).unwrap_err();
        assert!(e.0.contains("Equals takes 1 to 50"), "{e}");
        assert!(parse_criteria("[1]").is_err());
        assert!(parse_criteria("{").is_err());
        let e = parse_criteria(r#"{"Criterion": {"type": {"Eq": ["a"], "Equals": ["b"]}}}"#)
            .unwrap_err();
        assert!(e.0.contains("Eq and Equals"), "{e}");
    }

    #[test]
    fn wildcards() {
        assert!(wildcard("a*c", "abbbc"));
        assert!(wildcard("*", ""));
        assert!(wildcard("Backdoor:EC2/*", "Backdoor:EC2/C&CActivity.B!DNS"));
        assert!(!wildcard("a*c", "abd"));
        assert!(wildcard("a?c", "a?c"));
        assert!(!wildcard("a?c", "abc"));
    }

    fn imported_holds(criteria: &FindingCriteria, f: &Value) -> bool {
        let i = import(criteria).unwrap();
        let yaml = i.to_yaml();
        #[derive(serde::Deserialize)]
        struct Doc {
            #[serde(rename = "match")]
            m: Criteria,
            #[serde(default)]
            exclude: Vec<Criteria>,
        }
        let doc: Doc = serde_saphyr::from_str(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        let finding = Finding::from_value(f.clone()).unwrap();
        CompiledCriteria::compile(&doc.m)
            .unwrap()
            .evaluate(&finding, false)
            .is_ok()
            && doc.exclude.iter().all(|e| {
                CompiledCriteria::compile(e)
                    .unwrap()
                    .evaluate(&finding, false)
                    .is_err()
            })
    }

    #[test]
    fn import_selects_what_the_criteria_select() {
        let cases = [
            r#"{"Criterion": {"type": {"Equals": ["CryptoCurrency:EC2/BitcoinTool.B!DNS"]}, "severity": {"Gte": 7}}}"#,
            r#"{"Criterion": {"type": {"Matches": ["Backdoor:*"]}}}"#,
            r#"{"Criterion": {"type": {"NotMatches": ["*!DNS"]}, "region": {"Equals": ["us-east-1"]}}}"#,
            r#"{"Criterion": {"accountId": {"Equals": ["111122223333"]}, "service.resourceRole": {"Eq": ["TARGET"]}}}"#,
            r#"{"Criterion": {"service.action.actionType": {"Equals": ["NETWORK_CONNECTION"]}}}"#,
            r#"{"Criterion": {"resource.resourceType": {"Equals": ["Instance"]}, "service.archived": {"Equals": ["false"]}}}"#,
            r#"{"Criterion": {"updatedAt": {"GreaterThanOrEqual": 1704164645678, "LessThan": 1704164645679}}}"#,
            r#"{"Criterion": {"updatedAt": {"GreaterThan": 1704164645678}}}"#,
            r#"{"Criterion": {"resource.instanceDetails.tags.key": {"NotEquals": ["team"]}}}"#,
            r#"{"Criterion": {"resource.instanceDetails.tags.value": {"Equals": ["prod"]}, "severity": {"Lt": 9, "GreaterThan": 7}}}"#,
            r#"{"Criterion": {"service.additionalInfo.threatListName": {"NotEquals": ["x"], "Matches": ["Proof*"]}}}"#,
            r#"{"Criterion": {"service.action.dnsRequestAction.domain": {"Matches": ["*.bitcoin.com"], "NotMatches": ["pool.*"]}}}"#,
            r#"{"Criterion": {"type": {"Equals": ["CryptoCurrency:EC2/BitcoinTool.B!DNS"], "Matches": ["Crypto*"]}}}"#,
        ];
        let mut variants = vec![finding()];
        let mut v = finding();
        v["type"] = json!("Backdoor:EC2/C&CActivity.B");
        v["severity"] = json!(2);
        v["updatedAt"] = json!("2024-01-02T03:04:05.679Z");
        v["service"]["resourceRole"] = json!("ACTOR");
        v["service"]["archived"] = json!(true);
        v["resource"]["instanceDetails"]["tags"] = json!([]);
        variants.push(v);
        let mut seen = [false, false];
        for case in cases {
            let criteria = c(case);
            for f in &variants {
                let want = criteria_holds(&criteria, f);
                seen[usize::from(want)] = true;
                assert_eq!(
                    imported_holds(&criteria, f),
                    want,
                    "{case} on {}",
                    f["type"]
                );
            }
        }
        assert_eq!(seen, [true, true], "the cases select and reject");
    }

    #[test]
    fn import_refuses_what_it_cannot_say() {
        let criteria = FindingCriteria {
            criterion: BTreeMap::from([(
                "region".to_owned(),
                Condition {
                    eq: Some(vec!["a".to_owned()]),
                    equals: Some(vec!["b".to_owned()]),
                    ..Condition::default()
                },
            )]),
        };
        let e = import(&criteria).unwrap_err().to_string();
        assert!(
            e.contains("criterion \"region\"") && e.contains("Eq and Equals"),
            "{e}"
        );
    }
}
