//! An IAM policy reader for the deployment templates' tests: statements in a normal
//! form (one grant per action and resource, with the statement's conditions), ARNs as
//! the ARN patterns `responder_core::steps::iam::Resource::arn` writes, and IAM's
//! action matching. What it cannot read is kept as a problem, never dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use responder_core::steps::iam::Iam;
use serde_json::Value;

use crate::cfn::{list, strings};

/// Conditions in normal form: `(operator, key, values)`, values sorted.
pub type Conditions = BTreeSet<(String, String, BTreeSet<String>)>;

/// One action on one resource under a statement's conditions.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Grant {
    /// `service:Action`.
    pub action: String,
    /// An ARN pattern as [`responder_core::steps::iam::Resource::arn`] writes it.
    pub resource: String,
    /// The statement's conditions, all of which must hold.
    pub conditions: Conditions,
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on {}", self.action, self.resource)?;
        if self.conditions.is_empty() {
            return f.write_str(" without condition");
        }
        let parts: Vec<String> = self
            .conditions
            .iter()
            .map(|(op, key, values)| {
                let v: Vec<&str> = values.iter().map(String::as_str).collect();
                format!("{op} {key} {v:?}")
            })
            .collect();
        write!(f, " when {}", parts.join(" and "))
    }
}

/// A declaration in normal form: one grant per resource.
pub fn normal(g: &Iam) -> Vec<Grant> {
    let conditions: Conditions = g
        .conditions
        .iter()
        .map(|c| {
            (
                c.operator.to_owned(),
                c.key.to_owned(),
                c.values.iter().map(|v| (*v).to_owned()).collect(),
            )
        })
        .collect();
    g.resources
        .iter()
        .map(|r| Grant {
            action: g.action.to_owned(),
            resource: r.arn().to_owned(),
            conditions: conditions.clone(),
        })
        .collect()
}

/// One statement of a policy, as far as this test reads it.
#[derive(Debug)]
pub struct Statement {
    /// Where it is, for messages: `Resources.X...Policies[0] Sid Y`.
    pub at: String,
    /// `Allow` or `Deny` (anything else is reported).
    pub effect: String,
    /// `Action`, or `NotAction` when `not_action`.
    pub actions: Vec<String>,
    pub not_action: bool,
    /// The statement uses `NotResource`.
    pub not_resource: bool,
    /// `Resource: "*"` (alone or in the list).
    pub any_resource: bool,
    /// Each resource as an ARN pattern, or why it cannot be read as one.
    pub resources: Vec<Result<String, String>>,
    /// The conditions, or why they cannot be read.
    pub conditions: Result<Conditions, String>,
    /// The CloudFormation condition of the policy resource, if any.
    pub cfn_condition: Option<String>,
    /// The statement as written (after `Fn::If` expansion).
    pub raw: Value,
}

impl Statement {
    /// An `Allow` statement.
    pub fn allow(&self) -> bool {
        self.effect == "Allow"
    }

    /// True when the statement's `Action` covers `action` (never for `NotAction`).
    pub fn covers(&self, action: &str) -> bool {
        !self.not_action && self.actions.iter().any(|p| matches(p, action))
    }

    /// Its grants in normal form, for exact actions (wildcards are reported apart).
    pub fn grants(&self) -> Vec<Grant> {
        let Ok(conditions) = &self.conditions else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for action in self.actions.iter().filter(|a| !a.contains(['*', '?'])) {
            for resource in self.resources.iter().flatten() {
                out.push(Grant {
                    action: action.clone(),
                    resource: resource.clone(),
                    conditions: conditions.clone(),
                });
            }
        }
        out
    }
}

/// A role: its statements, and what could not be read.
#[derive(Debug)]
pub struct Role {
    /// The template it is read from, for messages.
    pub file: &'static str,
    /// What the role is, for messages.
    pub name: String,
    /// How a Region is written in this role's ARNs.
    pub region: &'static str,
    /// Every statement read, `Fn::If` branches expanded.
    pub statements: Vec<Statement>,
    /// Policies whose actions this test cannot see.
    pub opaque: Vec<String>,
}

impl Role {
    /// A role with no statement yet; `region` is how its ARNs write the Region.
    pub fn new(file: &'static str, name: String, region: &'static str) -> Role {
        Role {
            file,
            name,
            region,
            statements: Vec::new(),
            opaque: Vec::new(),
        }
    }

    /// Some `Allow` statement covers `action`.
    pub fn grants(&self, action: &str) -> bool {
        self.statements
            .iter()
            .any(|s| s.allow() && s.covers(action))
    }

    /// Every grant of the given effect, with the statement it comes from.
    pub fn normal(&self, allow: bool) -> BTreeMap<Grant, &str> {
        let mut out = BTreeMap::new();
        for s in self.statements.iter().filter(|s| s.allow() == allow) {
            for g in s.grants() {
                out.entry(g).or_insert(s.at.as_str());
            }
        }
        out
    }

    /// A policy document's statements; `cfn_condition` is the policy resource's.
    pub fn document(&mut self, doc: &Value, at: &str, cfn_condition: Option<&str>) {
        let written = match &doc["Statement"] {
            Value::Array(written) => written.clone(),
            one @ Value::Object(_) => vec![one.clone()],
            _ => {
                self.opaque
                    .push(format!("{at}: a policy without Statement"));
                return;
            }
        };
        // `Fn::If` in the list: both branches may be deployed.
        let mut expanded = Vec::new();
        for s in written {
            match s["Fn::If"].as_array() {
                Some(branches) if branches.len() == 3 => expanded.extend(
                    branches[1..]
                        .iter()
                        .filter(|b| b["Ref"] != "AWS::NoValue")
                        .cloned(),
                ),
                _ => expanded.push(s),
            }
        }
        for (i, s) in expanded.iter().enumerate() {
            let at = match s["Sid"].as_str() {
                Some(sid) => format!("{at} Sid {sid}"),
                None => format!("{at} Statement[{i}]"),
            };
            let not_action = s.get("NotAction").is_some();
            let key = if not_action { "NotAction" } else { "Action" };
            let Some(actions) = strings(&s[key]) else {
                self.opaque
                    .push(format!("{at}: {key} is not a string or a list of strings"));
                continue;
            };
            let resource_list = list(&s["Resource"]);
            self.statements.push(Statement {
                at,
                effect: s["Effect"].as_str().unwrap_or_default().to_owned(),
                actions,
                not_action,
                not_resource: s.get("NotResource").is_some(),
                any_resource: resource_list.iter().any(|r| r == "*"),
                resources: resource_list
                    .iter()
                    .map(|r| arn_pattern(r, self.region))
                    .collect(),
                conditions: conditions(&s["Condition"]),
                cfn_condition: cfn_condition.map(str::to_owned),
                raw: s.clone(),
            });
        }
    }
}

/// A `Resource` entry as the ARN pattern
/// [`responder_core::steps::iam::Resource::arn`] would write it.
pub fn arn_pattern(v: &Value, region: &str) -> Result<String, String> {
    let sub = match v {
        Value::String(s) if s == "*" => return Ok("*".to_owned()),
        Value::String(s) => {
            return Err(format!(
                "literal ARN {s:?}: write it with Fn::Sub and ${{AWS::Partition}}, the Region and ${{AWS::AccountId}}"
            ));
        }
        _ => match (&v["Fn::Sub"], &v["Ref"], &v["Fn::GetAtt"]) {
            (Value::String(s), _, _) => s.clone(),
            (_, Value::String(name), _) => return Ok(format!("${{{name}}}")),
            (_, _, Value::Array(parts)) => {
                let parts: Vec<&str> = parts.iter().filter_map(Value::as_str).collect();
                return Ok(format!("${{{}}}", parts.join(".")));
            }
            (_, _, Value::String(dotted)) => return Ok(format!("${{{dotted}}}")),
            _ => return Err(format!("resource {v} is not an ARN this test can read")),
        },
    };
    // The pseudo parameters hold `::`: name them without colons to split the ARN.
    let token = |s: &str| {
        s.replace("${AWS::Partition}", "{P}")
            .replace("${AWS::Region}", "{R}")
            .replace("${AWS::AccountId}", "{A}")
    };
    let tokenized = token(&sub);
    let Some(rest) = tokenized.strip_prefix("arn:{P}:") else {
        // `${LedgerTable.Arn}/index/*` and the like.
        return if sub.starts_with("arn:") {
            Err(format!(
                "{sub:?}: the partition must be ${{AWS::Partition}}"
            ))
        } else {
            Ok(sub)
        };
    };
    let parts: Vec<&str> = rest.splitn(4, ':').collect();
    let [service, arn_region, account, resource] = parts[..] else {
        return Err(format!("{sub:?} is not an ARN"));
    };
    // IAM ARNs carry no Region: only AWS service-linked roles are declared by ARN
    // (instance roles come from the InstanceRoleArns parameter).
    let service_linked = service == "iam" && resource.starts_with("role/aws-service-role/");
    if arn_region.is_empty() && !service_linked {
        return Err(format!(
            "{sub:?}: an ARN without Region, which no declared resource is (instance roles \
             come from the InstanceRoleArns parameter)"
        ));
    }
    if service_linked && !arn_region.is_empty() {
        return Err(format!("{sub:?}: an IAM ARN with a Region"));
    }
    if !service_linked && arn_region != token(region) {
        return Err(format!(
            "{sub:?}: the Region must be {region:?} in this role"
        ));
    }
    let account = match account {
        "{A}" => "${Account}",
        "" => "",
        other => {
            return Err(format!(
                "{sub:?}: account {other:?} is not the deployment's own (${{AWS::AccountId}})"
            ));
        }
    };
    if resource.contains(['{', '$']) {
        return Err(format!("{sub:?}: a parameter in the resource part"));
    }
    let arn_region = if service_linked { "" } else { "${Region}" };
    Ok(format!(
        "arn:${{Partition}}:{service}:{arn_region}:{account}:{resource}"
    ))
}

/// A statement's `Condition` in normal form (absent: none).
pub fn conditions(v: &Value) -> Result<Conditions, String> {
    let mut out = Conditions::new();
    let operators = match v {
        Value::Null => return Ok(out),
        Value::Object(o) => o,
        other => return Err(format!("Condition {other} is not a map")),
    };
    for (op, keys) in operators {
        let Value::Object(keys) = keys else {
            return Err(format!("Condition {op}: not a map of keys"));
        };
        for (key, values) in keys {
            let values = match split_sub(values) {
                Some(parts) => parts,
                None => list(values)
                    .iter()
                    .map(|x| match x {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect(),
            };
            out.insert((op.clone(), key.clone(), values));
        }
    }
    Ok(out)
}

/// Values written `Fn::Split: [",", {Fn::Sub: "a,${Parameter}"}]` (a fixed list with a
/// comma-separated parameter's), as their parts: `a` and `${Parameter}`.
fn split_sub(v: &Value) -> Option<BTreeSet<String>> {
    let split = v.get("Fn::Split")?.as_array()?;
    let [separator, text] = split.as_slice() else {
        return None;
    };
    let separator = separator.as_str()?;
    let text = text.get("Fn::Sub")?.as_str()?;
    Some(text.split(separator).map(str::to_owned).collect())
}

/// IAM action matching: case-insensitive, `*` any run of characters, `?` one.
pub fn matches(pattern: &str, action: &str) -> bool {
    fn glob(p: &[u8], a: &[u8]) -> bool {
        match (p.split_first(), a.split_first()) {
            (None, None) => true,
            (Some((b'*', rest)), _) => glob(rest, a) || (!a.is_empty() && glob(p, &a[1..])),
            (Some((b'?', rest)), Some((_, a_rest))) => glob(rest, a_rest),
            (Some((pc, rest)), Some((ac, a_rest))) => {
                pc.eq_ignore_ascii_case(ac) && glob(rest, a_rest)
            }
            _ => false,
        }
    }
    glob(pattern.as_bytes(), action.as_bytes())
}

/// Anything but `Describe*`, `Get*` and `List*`.
pub fn is_write(action: &str) -> bool {
    let name = action.split_once(':').map_or(action, |(_, name)| name);
    !["Describe", "Get", "List"]
        .iter()
        .any(|read| name.starts_with(read))
}
