//! The deployment templates' IAM policies against the steps' own declarations
//! (`StepSpec::iam_actions`): the responder function's execution role
//! (infra/template.yaml) and the member-account role (infra/member-role.yaml) grant
//! every action any step may call, since the deployment must run any shipped or user
//! playbook, and no write action that no step needs.
//!
//! A write is any action whose name (after `service:`) does not start with
//! `Describe`, `Get` or `List`. Policies whose actions cannot be read here (managed
//! policies, SAM policy templates) fail the test: write their statements out. What
//! SAM adds to the function's role by itself (AWSLambdaBasicExecutionRole for logs,
//! AWSXrayWriteOnlyAccess for `Tracing: Active`, sqs:SendMessage on the dead-letter
//! queue) is not in the template and not checked here.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use responder_core::steps::{ALL, BASE_IAM_ACTIONS, iam_actions};
use serde_json::Value;

const TEMPLATE: &str = "infra/template.yaml";
const MEMBER_ROLE: &str = "infra/member-role.yaml";

/// The function in infra/template.yaml whose execution role is checked.
const FUNCTION: &str = "ResponderFunction";
/// The role in infra/member-role.yaml.
const MEMBER: &str = "MemberRole";

/// Write actions a role may grant although no step declares them: `(file, action,
/// reason)`. Each is a permission no playbook accounts for, so each needs a reason
/// that can be checked in the code or the templates. Reads need no entry
/// (`guardduty:GetFindings`, granted to the function, is one).
const NOT_STEPS: &[(&str, &str, &str)] = &[(
    TEMPLATE,
    "sts:AssumeRole",
    "the function's role acts in member accounts through the role infra/member-role.yaml \
     deploys there, and only that role (Resource: role/${MemberRoleName})",
)];

/// Step actions the member role must NOT grant: they act on the administrator
/// account's own resources, which the function reaches with its own role.
const ADMINISTRATOR_ONLY: &[(&str, &str)] = &[
    (
        "guardduty:ArchiveFindings",
        "only the GuardDuty administrator account can archive findings, its members' \
         included (ArchiveFindings API reference)",
    ),
    (
        "sns:Publish",
        "the report topic is the stack's ReportTopic, in the administrator account",
    ),
];

fn load(file: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{file}: cannot read {}: {e}", path.display()));
    serde_saphyr::from_str::<Value>(&text)
        .unwrap_or_else(|e| panic!("{file}: not plain YAML (long-form intrinsics only): {e}"))
}

/// One statement of a policy, as far as this test reads it.
#[derive(Debug)]
struct Statement {
    /// Where it is, for messages: `Resources.X...Policies[0] Sid Y`.
    at: String,
    effect: String,
    /// `Action`, or `NotAction` when `not_action`.
    actions: Vec<String>,
    not_action: bool,
    not_resource: bool,
    /// `Resource: "*"` (alone or in the list).
    any_resource: bool,
}

impl Statement {
    fn allow(&self) -> bool {
        self.effect == "Allow"
    }

    /// True when the statement's `Action` covers `action` (never for `NotAction`).
    fn covers(&self, action: &str) -> bool {
        !self.not_action && self.actions.iter().any(|p| matches(p, action))
    }
}

/// A role: its statements, and what could not be read.
#[derive(Debug)]
struct Role {
    file: &'static str,
    name: String,
    statements: Vec<Statement>,
    /// Policies whose actions this test cannot see.
    opaque: Vec<String>,
}

impl Role {
    fn new(file: &'static str, name: String) -> Role {
        Role {
            file,
            name,
            statements: Vec::new(),
            opaque: Vec::new(),
        }
    }

    fn grants(&self, action: &str) -> bool {
        self.statements
            .iter()
            .any(|s| s.allow() && s.covers(action))
    }

    /// A policy document's statements.
    fn document(&mut self, doc: &Value, at: &str) {
        let list = match &doc["Statement"] {
            Value::Array(list) => list.clone(),
            one @ Value::Object(_) => vec![one.clone()],
            _ => {
                self.opaque
                    .push(format!("{at}: a policy without Statement"));
                return;
            }
        };
        for (i, s) in list.iter().enumerate() {
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
            let any_resource = match &s["Resource"] {
                Value::String(r) => r == "*",
                Value::Array(list) => list.iter().any(|r| r == "*"),
                _ => false,
            };
            self.statements.push(Statement {
                at,
                effect: s["Effect"].as_str().unwrap_or_default().to_owned(),
                actions,
                not_action,
                not_resource: s.get("NotResource").is_some(),
                any_resource,
            });
        }
    }

    /// The inline policies of an `AWS::IAM::Role` resource.
    fn iam_role(&mut self, template: &Value, id: &str) {
        let resource = &template["Resources"][id];
        if resource["Type"] != "AWS::IAM::Role" {
            self.opaque.push(format!(
                "Resources.{id} is not an AWS::IAM::Role (Type {})",
                resource["Type"]
            ));
            return;
        }
        let props = &resource["Properties"];
        if props.get("ManagedPolicyArns").is_some() {
            self.opaque.push(format!(
                "Resources.{id}.Properties.ManagedPolicyArns: managed policies; write their statements out"
            ));
        }
        for (i, p) in list(&props["Policies"]).iter().enumerate() {
            self.document(
                &p["PolicyDocument"],
                &format!("Resources.{id}.Properties.Policies[{i}]"),
            );
        }
    }

    /// Policy resources attached to the role `id` (a role of this template, or the
    /// one SAM creates).
    fn attached(&mut self, template: &Value, id: &str) {
        let Some(resources) = template["Resources"].as_object() else {
            return;
        };
        let reference = serde_json::json!({ "Ref": id });
        for (name, r) in resources {
            let props = &r["Properties"];
            let attached = match r["Type"].as_str() {
                Some("AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy") => {
                    list(&props["Roles"]).contains(&reference)
                }
                Some("AWS::IAM::RolePolicy") => props["RoleName"] == reference,
                _ => false,
            };
            if attached {
                self.document(
                    &props["PolicyDocument"],
                    &format!("Resources.{name}.Properties.PolicyDocument"),
                );
            }
        }
    }
}

/// The function's execution role: SAM's `Policies` (or the role `Role` names) and
/// any policy resource attached to it.
fn function_role(template: &Value, file: &'static str) -> Role {
    let function = &template["Resources"][FUNCTION];
    assert_eq!(
        function["Type"], "AWS::Serverless::Function",
        "{file}: Resources.{FUNCTION} is not the responder function"
    );
    let mut role = Role::new(file, format!("{FUNCTION}'s execution role"));
    let props = &function["Properties"];
    let role_id = match props.get("Role") {
        Some(r) => match referenced(template, r) {
            Some(id) => {
                role.iam_role(template, &id);
                id
            }
            None => {
                role.opaque.push(format!(
                    "Resources.{FUNCTION}.Properties.Role names a role outside this template"
                ));
                return role;
            }
        },
        None => {
            for (i, p) in list(&props["Policies"]).iter().enumerate() {
                let at = format!("Resources.{FUNCTION}.Properties.Policies[{i}]");
                if p.get("Statement").is_some() {
                    role.document(p, &at);
                } else {
                    role.opaque.push(format!(
                        "{at}: a managed policy or SAM policy template ({p}); write its statements out"
                    ));
                }
            }
            // The role SAM creates from `Policies`.
            format!("{FUNCTION}Role")
        }
    };
    role.attached(template, &role_id);
    role
}

/// The member-account role and the policy resources attached to it.
fn member_role(template: &Value, file: &'static str) -> Role {
    let mut role = Role::new(file, format!("{MEMBER} (member-account role)"));
    role.iam_role(template, MEMBER);
    role.attached(template, MEMBER);
    role
}

/// The logical id a `Ref` or `Fn::GetAtt` names, if it is a resource of the template.
fn referenced(template: &Value, v: &Value) -> Option<String> {
    let id = match (&v["Ref"], &v["Fn::GetAtt"]) {
        (Value::String(id), _) => id.clone(),
        (_, Value::Array(parts)) => parts.first()?.as_str()?.to_owned(),
        (_, Value::String(dotted)) => dotted.split('.').next()?.to_owned(),
        _ => return None,
    };
    template["Resources"].get(&id).map(|_| id)
}

/// A list, a single value as a one-element list, nothing as empty.
fn list(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(list) => list.clone(),
        Value::Null => Vec::new(),
        one => vec![one.clone()],
    }
}

/// A string or a list of strings.
fn strings(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(list) => list.iter().map(|x| x.as_str().map(str::to_owned)).collect(),
        _ => None,
    }
}

/// IAM action matching: case-insensitive, `*` any run of characters, `?` one.
fn matches(pattern: &str, action: &str) -> bool {
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
fn is_write(action: &str) -> bool {
    let name = action.split_once(':').map_or(action, |(_, name)| name);
    !["Describe", "Get", "List"]
        .iter()
        .any(|read| name.starts_with(read))
}

/// Every step action, with the steps that declare it (`(base)` for the actions every
/// response needs).
fn declared() -> BTreeMap<&'static str, Vec<&'static str>> {
    let mut out: BTreeMap<&'static str, Vec<&'static str>> = BTreeMap::new();
    for action in BASE_IAM_ACTIONS {
        out.entry(action).or_default().push("(base)");
    }
    for spec in ALL {
        for action in spec.iam_actions {
            out.entry(action).or_default().push(spec.name);
        }
    }
    assert_eq!(
        out.keys().copied().collect::<BTreeSet<_>>(),
        iam_actions(ALL.iter().copied()),
        "declared() must agree with steps::iam_actions"
    );
    out
}

/// Everything wrong with the role, one line each, naming the file, the role and the
/// action. `exempt`: step actions the role must not grant, with the reason.
fn problems(role: &Role, exempt: &[(&str, &str)]) -> Vec<String> {
    let who = format!("{}: {}", role.file, role.name);
    let declared = declared();
    let needed_by_a_step = |action: &str| declared.keys().any(|d| d.eq_ignore_ascii_case(action));
    let excepted = |action: &str| {
        NOT_STEPS
            .iter()
            .any(|(file, a, _)| *file == role.file && a.eq_ignore_ascii_case(action))
    };
    let mut out: Vec<String> = role
        .opaque
        .iter()
        .map(|o| format!("{who}: {o}: its actions cannot be checked"))
        .collect();

    // (a) Every step action is granted, and no Deny takes it away.
    for (action, steps) in &declared {
        if let Some((_, why)) = exempt.iter().find(|(a, _)| a == action) {
            if role.grants(action) {
                out.push(format!("{who}: grants {action}, which it must not: {why}"));
            }
            continue;
        }
        if !role.grants(action) {
            out.push(format!(
                "{who}: does not grant {action}, which {} declare(s) in StepSpec::iam_actions",
                steps.join(", ")
            ));
        }
        for s in role
            .statements
            .iter()
            .filter(|s| !s.allow() && s.covers(action))
        {
            out.push(format!(
                "{who}: {}: denies {action}, which {} need(s)",
                s.at,
                steps.join(", ")
            ));
        }
    }

    for s in &role.statements {
        let at = format!("{who}: {}", s.at);
        match s.effect.as_str() {
            "Allow" => {}
            "Deny" => {
                if s.not_action {
                    out.push(format!(
                        "{at}: a Deny with NotAction takes away what it does not list: list the denied actions"
                    ));
                }
                continue;
            }
            other => {
                out.push(format!("{at}: Effect {other:?} is neither Allow nor Deny"));
                continue;
            }
        }
        // (c) Nothing granted by exclusion or by wildcard.
        if s.not_action {
            out.push(format!(
                "{at}: Allow with NotAction grants every action it does not list"
            ));
            continue;
        }
        if s.not_resource {
            out.push(format!(
                "{at}: Allow with NotResource grants on every resource it does not list"
            ));
        }
        for action in &s.actions {
            if action == "*" || action.ends_with(":*") {
                out.push(format!(
                    "{at}: grants {action:?}: every action of a service; list the actions"
                ));
                continue;
            }
            if !is_write(action) {
                continue;
            }
            if action.contains(['*', '?']) {
                out.push(format!(
                    "{at}: grants {action:?}: a wildcard over write actions; list the actions"
                ));
                continue;
            }
            // (b) Every write is needed by a step, or is an exception with its reason.
            if !needed_by_a_step(action) && !excepted(action) {
                out.push(format!(
                    "{at}: grants write action {action}, which no step declares: remove it, \
                     or (if the code calls it outside a step) add it to NOT_STEPS in \
                     crates/responder-core/tests/permissions.rs with the reason"
                ));
            }
            if s.any_resource {
                out.push(format!(
                    "{at}: grants write action {action} on Resource \"*\": name the resources"
                ));
            }
        }
    }

    // An exception that no longer matches a grant is stale.
    for (file, action, _) in NOT_STEPS {
        if *file == role.file && !role.grants(action) {
            out.push(format!(
                "{who}: NOT_STEPS lists {action} for this role, which no longer grants it: remove the entry"
            ));
        }
    }
    out
}

fn assert_clean(role: &Role, exempt: &[(&str, &str)]) {
    assert!(
        !role.statements.is_empty(),
        "{}: {}: no policy statement found",
        role.file,
        role.name
    );
    let found = problems(role, exempt);
    assert!(
        found.is_empty(),
        "{} problem(s) with the IAM permissions:\n{}",
        found.len(),
        found.join("\n")
    );
}

#[test]
fn step_names_are_unique_and_every_step_declares_its_actions() {
    let mut seen = BTreeSet::new();
    for spec in ALL {
        assert!(seen.insert(spec.name), "two steps are named {}", spec.name);
        assert!(
            !spec.iam_actions.is_empty(),
            "step {} declares no IAM action",
            spec.name
        );
    }
    assert!(!ALL.is_empty());
}

#[test]
fn declared_actions_are_exact_action_names() {
    let well_formed = |a: &str| {
        a.split_once(':').is_some_and(|(service, name)| {
            !service.is_empty()
                && service
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && name.starts_with(|c: char| c.is_ascii_uppercase())
                && name.bytes().all(|b| b.is_ascii_alphanumeric())
        })
    };
    for spec in ALL {
        let mut seen = BTreeSet::new();
        for action in spec.iam_actions {
            assert!(
                well_formed(action),
                "step {}: {action:?} is not an exact `service:Action` (no wildcard)",
                spec.name
            );
            assert!(
                seen.insert(action),
                "step {} lists {action} twice",
                spec.name
            );
        }
    }
    for action in BASE_IAM_ACTIONS {
        assert!(well_formed(action), "BASE_IAM_ACTIONS: {action:?}");
        assert!(
            !is_write(action),
            "BASE_IAM_ACTIONS holds what every response does, reads only: {action}"
        );
    }
}

#[test]
fn the_function_role_grants_every_step_action_and_no_other_write() {
    let role = function_role(&load(TEMPLATE), TEMPLATE);
    assert_clean(&role, &[]);
}

#[test]
fn the_member_role_grants_every_step_action_and_no_other_write() {
    let role = member_role(&load(MEMBER_ROLE), MEMBER_ROLE);
    assert_clean(&role, ADMINISTRATOR_ONLY);
}

/// The check itself: each kind of problem is reported, naming file, role and action.
#[test]
fn the_check_reports_missing_surplus_wildcard_and_opaque_grants() {
    let template: Value = serde_saphyr::from_str(
        r#"
Resources:
  ResponderFunction:
    Type: AWS::Serverless::Function
    Properties:
      Policies:
        - AWSLambdaBasicExecutionRole
        - Version: "2012-10-17"
          Statement:
            - Sid: Wide
              Effect: Allow
              Action: ec2:*
              Resource: "*"
            - Sid: Surplus
              Effect: Allow
              Action: [ec2:DescribeInstances, ec2:DeleteVpc]
              Resource:
                Fn::Sub: arn:${AWS::Partition}:ec2:*:${AWS::AccountId}:vpc/*
            - Sid: Star
              Effect: Allow
              Action: ec2:CreateTags
              Resource: "*"
            - Sid: Taken
              Effect: Deny
              Action: ec2:Create*
              Resource: "*"
"#,
    )
    .unwrap();
    let role = function_role(&template, TEMPLATE);
    let reported = problems(&role, &[]).join("\n");
    for expected in [
        "infra/template.yaml: ResponderFunction's execution role: Resources.ResponderFunction.Properties.Policies[0]: a managed policy",
        "Sid Wide: grants \"ec2:*\"",
        "Sid Surplus: grants write action ec2:DeleteVpc, which no step declares",
        "Sid Star: grants write action ec2:CreateTags on Resource \"*\"",
        "Sid Taken: denies ec2:CreateSnapshots",
        "does not grant sns:Publish, which notify declare(s)",
        "NOT_STEPS lists sts:AssumeRole for this role, which no longer grants it",
    ] {
        assert!(
            reported.contains(expected),
            "not reported: {expected}\nreported:\n{reported}"
        );
    }
    assert!(
        !reported.contains("does not grant ec2:CreateSecurityGroup"),
        "ec2:* grants it (and is reported as too wide):\n{reported}"
    );

    let member: Value = serde_saphyr::from_str(
        r#"
Resources:
  MemberRole:
    Type: AWS::IAM::Role
    Properties:
      ManagedPolicyArns: [arn:aws:iam::aws:policy/AmazonEC2FullAccess]
      Policies:
        - PolicyName: p
          PolicyDocument:
            Statement:
              Effect: Allow
              NotAction: iam:*
              Resource: "*"
        - PolicyName: q
          PolicyDocument:
            Statement:
              - Effect: Allow
                Action: sns:Publish
                Resource: arn:aws:sns:eu-west-1:111122223333:reports
"#,
    )
    .unwrap();
    let role = member_role(&member, MEMBER_ROLE);
    let reported = problems(&role, ADMINISTRATOR_ONLY).join("\n");
    for expected in [
        "infra/member-role.yaml: MemberRole (member-account role): Resources.MemberRole.Properties.ManagedPolicyArns",
        "Policies[0] Statement[0]: Allow with NotAction",
        "grants sns:Publish, which it must not",
        "does not grant ec2:DescribeInstances, which (base), isolate",
    ] {
        assert!(
            reported.contains(expected),
            "not reported: {expected}\nreported:\n{reported}"
        );
    }
}

#[test]
fn matching_is_case_insensitive_and_globbing() {
    assert!(matches("ec2:Describe*", "ec2:DescribeInstances"));
    assert!(matches("EC2:describeinstances", "ec2:DescribeInstances"));
    assert!(matches("ec2:?escribeInstances", "ec2:DescribeInstances"));
    assert!(!matches("ec2:Describe*", "ec2:CreateTags"));
    assert!(!matches("ec2:CreateTag", "ec2:CreateTags"));
    assert!(is_write("ec2:CreateTags"));
    assert!(!is_write("ec2:GetConsoleOutput"));
    assert!(!is_write("ec2:Describe*"));
    assert!(is_write("ec2:De*"));
}
