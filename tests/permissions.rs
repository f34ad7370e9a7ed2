//! The deployment templates' IAM policies against the steps' own declarations
//! (`StepSpec::iam_actions`, `BASE_IAM_ACTIONS`, `steps::iam::DENIES`): the responder
//! function's execution role (infra/template.yaml) and the member-account role
//! (infra/member-role.yaml) grant every declared grant in exactly its declared scope
//! (action, resource, conditions), since the deployment must run any shipped or user
//! playbook; they grant nothing in a form no step declares, and deny exactly what
//! `DENIES` declares.
//!
//! Statements are compared in a normal form: one grant per action and resource, with
//! the statement's conditions. ARNs are written with `Fn::Sub` and the deployment's
//! own partition, account and Region (`*` for the Region in the member role, which
//! serves every Region of its account); template resources and parameters by `Ref` or
//! `Fn::GetAtt`. A write is any action whose name (after `service:`) does not start
//! with `Describe`, `Get` or `List`. Policies whose statements cannot be read here
//! (managed policies, SAM policy templates) fail the test: write their statements out.
//! What SAM adds to the function's role by itself (AWSLambdaBasicExecutionRole for
//! logs, AWSXrayWriteOnlyAccess for `Tracing: Active`, sqs:SendMessage on the
//! dead-letter queue) is not in the template and not checked here.
//!
//! Whether a request is allowed or denied as AWS evaluates it is not judged here: an
//! independent simulator does that (scripts/iam-sim.sh, in CI; docs/security.md), on
//! every call the tests record and every listed attack, and its verdicts win. This
//! file keeps what the simulator cannot judge: that the templates grant exactly the
//! scopes the steps declare (so a new step cannot ship without its grant, and a
//! removed one leaves none behind), that `responder permissions` prints the deployed
//! policy, which services the member role may reach, the trust policy's principals
//! and source identity, the dead-letter queue's policy, and the names the code reads
//! (ledger keys and index, settings, the exempt tag).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};

use responder_aws::accounts::SOURCE_IDENTITY;
use responder_aws::ledger;
use responder_core::steps::iam::{self, Resource};
use responder_core::steps::{ALL, BASE_IAM_ACTIONS, iam_actions, iam_grants};
use responder_core::tags;
use responder_tests::cfn::{
    FUNCTION, MEMBER, MEMBER_ROLE, TEMPLATE, function_role, list, load, member_role, strings,
};
use responder_tests::iam::{Grant, Role, Statement, is_write, matches, normal};
use responder_tests::moto::workspace_root;
use serde_json::{Value, json};

/// Its EventBridge event: SAM names the rule `<function><event>`.
const RULE_EVENT: &str = "GuardDutyFindings";
/// The template condition under which `iam:PassRole` exists at all.
const HAS_INSTANCE_ROLES: &str = "HasInstanceRoles";
/// The template condition under which `kms:CreateGrant` exists at all.
const HAS_EBS_KMS_KEYS: &str = "HasEbsKmsKeys";

/// Write actions a role may grant although no step declares them: `(file, action,
/// reason)`. Each is a permission no playbook accounts for, so each needs a reason
/// that can be checked in the code or the templates. Their scope is not compared.
const NOT_STEPS: &[(&str, &str, &str)] = &[
    (
        TEMPLATE,
        "sts:AssumeRole",
        "the function's role acts in member accounts through the role infra/member-role.yaml \
         deploys there, and only that role (Resource: role/${MemberRoleName})",
    ),
    (
        TEMPLATE,
        "sts:SetSourceIdentity",
        "every member session carries the source identity guardduty-responder \
         (responder_aws::accounts::SOURCE_IDENTITY), on the member role only",
    ),
];

/// The member role's ARN in any account: what the function's role may assume.
const MEMBER_ROLE_ARN: &str = "arn:${AWS::Partition}:iam::*:role/${MemberRoleName}";

/// The services whose calls the code makes through the member role; everything else
/// (GuardDuty, SNS, DynamoDB, STS) stays in the administrator account.
const MEMBER_SERVICES: &[&str] = &["ec2", "autoscaling", "elasticloadbalancing"];

/// Declared actions the member role must NOT grant: they act on the administrator
/// account's own resources, which the function reaches with its own role.
const ADMINISTRATOR_ONLY: &[(&str, &str)] = &[
    (
        "guardduty:ArchiveFindings",
        "only the GuardDuty administrator account can archive findings, its members' \
         included (ArchiveFindings API reference)",
    ),
    (
        "guardduty:GetFindings",
        "verification reads member findings with the administrator's own detector",
    ),
    (
        "guardduty:ListDetectors",
        "the detector verification uses is the administrator's",
    ),
    (
        "guardduty:StartMalwareScan",
        "the scan step starts Malware Protection scans with the administrator's \
         GuardDuty, which scans its members' instances",
    ),
    ("dynamodb:GetItem", LEDGER_IS_CENTRAL),
    ("dynamodb:PutItem", LEDGER_IS_CENTRAL),
    ("dynamodb:UpdateItem", LEDGER_IS_CENTRAL),
    ("dynamodb:ConditionCheckItem", LEDGER_IS_CENTRAL),
    ("dynamodb:Query", LEDGER_IS_CENTRAL),
    (
        "sns:Publish",
        "the report topic is the stack's ReportTopic, in the administrator account",
    ),
    (
        "iam:CreateServiceLinkedRole",
        "the scan step's service-linked role is created where the scan starts: the \
         administrator's GuardDuty",
    ),
];
const LEDGER_IS_CENTRAL: &str =
    "the ledger is the stack's LedgerTable, in the administrator account";

/// Write actions IAM cannot scope: the service authorization reference lists no
/// resource type for them, so a grant names `*` or the call is denied. Each says why
/// the grant is still narrow.
const WRITES_WITHOUT_RESOURCES: &[(&str, &str)] = &[
    (
        "guardduty:StartMalwareScan",
        "no resource type: the scan step starts a Malware Protection scan of an instance \
         named in the request, in the administrator account only (never the member role)",
    ),
    (
        "guardduty:ArchiveFindings",
        "no resource type: archive-finding archives the finding it answered, in the \
         administrator account only (never the member role)",
    ),
];

/// A write action whose grants must name their resources.
fn is_scoped_write(action: &str) -> bool {
    is_write(action)
        && !WRITES_WITHOUT_RESOURCES
            .iter()
            .any(|(a, _)| a.eq_ignore_ascii_case(action))
}

/// Every declared grant in normal form, with the steps that declare it (`(base)` for
/// what every response needs).
fn declared() -> BTreeMap<Grant, Vec<&'static str>> {
    let mut out: BTreeMap<Grant, Vec<&'static str>> = BTreeMap::new();
    for g in BASE_IAM_ACTIONS {
        for n in normal(g) {
            out.entry(n).or_default().push("(base)");
        }
    }
    for spec in ALL {
        for g in spec.iam_actions {
            for n in normal(g) {
                let steps = out.entry(n).or_default();
                if !steps.contains(&spec.name) {
                    steps.push(spec.name);
                }
            }
        }
    }
    let names: BTreeSet<&str> = out.keys().map(|g| g.action.as_str()).collect();
    assert_eq!(
        names,
        iam_actions(ALL.iter().copied()),
        "declared() must agree with steps::iam_actions"
    );
    let from_grants: BTreeSet<Grant> = iam_grants(ALL.iter().copied())
        .iter()
        .flat_map(normal)
        .collect();
    assert_eq!(
        out.keys().cloned().collect::<BTreeSet<_>>(),
        from_grants,
        "declared() must agree with steps::iam_grants"
    );
    out
}

/// `DENIES` in normal form.
fn declared_denies() -> BTreeSet<Grant> {
    iam::DENIES.iter().flat_map(normal).collect()
}

/// Everything wrong with the role, one line each, naming the file, the role and the
/// grant. `exempt`: declared actions the role must not grant, with the reason.
fn problems(role: &Role, exempt: &[(&str, &str)]) -> Vec<String> {
    let who = format!("{}: {}", role.file, role.name);
    let declared = declared();
    let exempted = |action: &str| exempt.iter().find(|(a, _)| a.eq_ignore_ascii_case(action));
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
    let granted = role.normal(true);
    let denied = role.normal(false);

    // (a) Every declared grant, in exactly its declared scope.
    for (grant, steps) in &declared {
        if let Some((_, why)) = exempted(&grant.action) {
            if role.grants(&grant.action) {
                out.push(format!(
                    "{who}: grants {}, which it must not: {why}",
                    grant.action
                ));
            }
            continue;
        }
        if !granted.contains_key(grant) {
            out.push(format!(
                "{who}: does not grant {grant}, which {} declare(s) in StepSpec::iam_actions",
                steps.join(", ")
            ));
        }
    }
    out.sort();
    out.dedup();

    // (b) Nothing granted in a form no step declares.
    for (grant, at) in &granted {
        if excepted(&grant.action) || exempted(&grant.action).is_some() {
            continue;
        }
        if !declared.contains_key(grant) {
            let forms: Vec<String> = declared
                .keys()
                .filter(|d| d.action.eq_ignore_ascii_case(&grant.action))
                .map(ToString::to_string)
                .collect();
            let hint = if forms.is_empty() {
                "no step declares the action: remove it, or (if the code calls it outside a \
                 step) add it to NOT_STEPS in tests/permissions.rs with \
                 the reason"
                    .to_owned()
            } else {
                format!("declared: {}", forms.join("; "))
            };
            out.push(format!(
                "{who}: {at}: grants {grant}, which no step declares in that form ({hint})"
            ));
        }
    }

    // (d) The denies, exactly.
    let denies = declared_denies();
    for d in &denies {
        if !denied.contains_key(d) {
            out.push(format!(
                "{who}: does not deny {d}, which steps::iam::DENIES declares"
            ));
        }
    }
    for (d, at) in &denied {
        if !denies.contains(d) {
            out.push(format!(
                "{who}: {at}: denies {d}, which steps::iam::DENIES does not declare"
            ));
        }
    }

    for s in &role.statements {
        let at = format!("{who}: {}", s.at);
        if let Err(e) = &s.conditions {
            out.push(format!("{at}: {e}"));
        }
        if !s.actions.iter().all(|a| excepted(a)) {
            for e in s.resources.iter().filter_map(|r| r.as_ref().err()) {
                out.push(format!("{at}: {e}"));
            }
        }
        match s.effect.as_str() {
            "Allow" => {}
            "Deny" => {
                if s.not_action {
                    out.push(format!(
                        "{at}: a Deny with NotAction takes away what it does not list: list the denied actions"
                    ));
                }
                if s.conditions.as_ref().is_ok_and(BTreeSet::is_empty) {
                    for (grant, steps) in &declared {
                        if s.covers(&grant.action) {
                            out.push(format!(
                                "{at}: denies {} without condition, which {} need(s)",
                                grant.action,
                                steps.join(", ")
                            ));
                        }
                    }
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
            if s.any_resource && is_scoped_write(action) {
                out.push(format!(
                    "{at}: grants write action {action} on Resource \"*\": name the resources"
                ));
            }
        }
        // iam:PassRole exists only when the deployment lists instance roles.
        if s.covers("iam:PassRole") && s.cfn_condition.as_deref() != Some(HAS_INSTANCE_ROLES) {
            out.push(format!(
                "{at}: grants iam:PassRole unconditionally: put it in a policy resource with \
                 Condition: {HAS_INSTANCE_ROLES}, so that no role is passable by default"
            ));
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
    out.sort();
    out.dedup();
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
fn declared_grants_are_exact_and_scoped() {
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
    let everything = BASE_IAM_ACTIONS
        .iter()
        .map(|g| ("(base)", g))
        .chain(
            ALL.iter()
                .flat_map(|s| s.iam_actions.iter().map(move |g| (s.name, g))),
        )
        .chain(iam::DENIES.iter().map(|g| ("DENIES", g)));
    for (who, g) in everything {
        assert!(
            well_formed(g.action),
            "{who}: {:?} is not an exact `service:Action` (no wildcard)",
            g.action
        );
        assert!(
            !g.resources.is_empty(),
            "{who}: {} names no resource",
            g.action
        );
        if g.resources.contains(&Resource::Any) {
            assert_eq!(
                g.resources,
                &[Resource::Any],
                "{who}: {}: `*` stands alone",
                g.action
            );
            assert!(
                !is_scoped_write(g.action),
                "{who}: write action {} on every resource: name the resources",
                g.action
            );
        }
        for c in g.conditions {
            assert!(
                !c.values.is_empty() && c.values.iter().all(|v| !v.is_empty()),
                "{who}: {}: condition {} without values",
                g.action,
                c.key
            );
        }
    }
    for spec in ALL {
        let mut seen = BTreeSet::new();
        for g in spec.iam_actions {
            assert!(
                seen.insert(g),
                "step {} lists {} twice",
                spec.name,
                g.action
            );
        }
    }
    // Every instance-changing grant is covered by the exempt Deny.
    for (grant, steps) in declared() {
        if grant.resource == Resource::Instance.arn()
            && is_write(&grant.action)
            && !["ec2:RunInstances", "ec2:CreateSnapshots"].contains(&grant.action.as_str())
        {
            assert!(
                iam::EXEMPT_PROTECTED_ACTIONS.contains(&grant.action.as_str()),
                "{} ({}) changes an instance but is not in EXEMPT_PROTECTED_ACTIONS",
                grant.action,
                steps.join(", ")
            );
        }
    }
    for action in iam::EXEMPT_PROTECTED_ACTIONS {
        assert!(
            iam::DENIES
                .iter()
                .any(|d| d.action == *action && d.conditions == [iam::EXEMPT_INSTANCE]),
            "DENIES does not refuse {action} on exempt instances"
        );
    }
}

#[test]
fn the_function_role_grants_every_declared_scope_and_nothing_else() {
    let role = function_role(&load(TEMPLATE), TEMPLATE);
    assert_clean(&role, &[]);
}

#[test]
fn the_member_role_grants_every_declared_scope_and_nothing_else() {
    let role = member_role(&load(MEMBER_ROLE), MEMBER_ROLE);
    assert_clean(&role, ADMINISTRATOR_ONLY);
}

/// The code calls only EC2, Auto Scaling and ELBv2 through the member role: the role
/// grants nothing of another service (no GuardDuty, SNS, DynamoDB or STS), apart from
/// passing the listed instance roles; and `ADMINISTRATOR_ONLY` names exactly the
/// declared actions outside those services, so a step that declares a new one must
/// say on which side it runs.
#[test]
fn the_member_role_grants_only_ec2_auto_scaling_and_elbv2() {
    let role = member_role(&load(MEMBER_ROLE), MEMBER_ROLE);
    assert!(!role.statements.is_empty());
    let service = |a: &str| {
        a.split_once(':')
            .map_or(a, |(service, _)| service)
            .to_ascii_lowercase()
    };
    for s in role.statements.iter().filter(|s| s.allow()) {
        assert!(!s.not_action, "{}: NotAction", s.at);
        for a in &s.actions {
            let passes_listed_roles = a.eq_ignore_ascii_case("iam:PassRole")
                && s.cfn_condition.as_deref() == Some(HAS_INSTANCE_ROLES);
            let grants_listed_keys = a.eq_ignore_ascii_case("kms:CreateGrant")
                && s.cfn_condition.as_deref() == Some(HAS_EBS_KMS_KEYS);
            assert!(
                MEMBER_SERVICES.contains(&service(a).as_str())
                    || passes_listed_roles
                    || grants_listed_keys,
                "{}: grants {a}; the code calls only {MEMBER_SERVICES:?} through the member role",
                s.at
            );
        }
    }
    for (action, why) in ADMINISTRATOR_ONLY {
        assert!(
            !role.grants(action),
            "the member role grants {action}: {why}"
        );
    }
    let outside: BTreeSet<String> = declared()
        .into_keys()
        .map(|g| g.action)
        .filter(|a| {
            !MEMBER_SERVICES.contains(&service(a).as_str())
                && a != "iam:PassRole"
                && a != "kms:CreateGrant"
        })
        .collect();
    let listed: BTreeSet<String> = ADMINISTRATOR_ONLY
        .iter()
        .map(|(a, _)| (*a).to_owned())
        .collect();
    assert_eq!(
        outside, listed,
        "declared actions outside {MEMBER_SERVICES:?} and ADMINISTRATOR_ONLY differ"
    );
}

/// The function's role may assume the member role, by its name, in the accounts
/// `AllowedAccounts` lists (any account when it is empty), with a source identity, and
/// nothing else of STS: exactly `sts:AssumeRole` and `sts:SetSourceIdentity` on
/// `role/${MemberRoleName}`, in a statement of their own.
#[test]
fn the_function_role_assumes_only_the_member_role() {
    let template = load(TEMPLATE);
    let role = function_role(&template, TEMPLATE);
    let mut granted = BTreeSet::new();
    for s in role.statements.iter().filter(|s| s.allow()) {
        let sts: Vec<&String> = s
            .actions
            .iter()
            .filter(|a| a.to_ascii_lowercase().starts_with("sts:"))
            .collect();
        if sts.is_empty() {
            continue;
        }
        assert_eq!(
            s.actions.len(),
            sts.len(),
            "{}: STS actions share the statement with others",
            s.at
        );
        // The `Fn::If` on HasAllowedAccounts: the listed accounts, or (empty) none.
        if let Some(condition) = s.raw.get("Condition") {
            assert_eq!(
                condition,
                &json!({ "StringEquals": { "aws:ResourceAccount": {
                    "Fn::Split": [",", { "Ref": "AllowedAccounts" }] } } }),
                "{}",
                s.at
            );
        }
        assert!(s.raw.get("NotResource").is_none(), "{}", s.at);
        assert_eq!(
            list(&s.raw["Resource"]),
            vec![json!({ "Fn::Sub": MEMBER_ROLE_ARN })],
            "{}: only the member role, by name",
            s.at
        );
        granted.extend(sts.into_iter().cloned());
    }
    assert_eq!(
        granted,
        BTreeSet::from([
            "sts:AssumeRole".to_owned(),
            "sts:SetSourceIdentity".to_owned()
        ])
    );
    let statements =
        list(&template["Resources"][FUNCTION]["Properties"]["Policies"][0]["Statement"]);
    let branches: Vec<&Value> = statements
        .iter()
        .filter_map(|s| s.get("Fn::If"))
        .filter(|f| f.to_string().contains("sts:AssumeRole"))
        .collect();
    assert_eq!(branches.len(), 1, "one Fn::If holds the STS grant");
    assert_eq!(branches[0][0], "HasAllowedAccounts");
    assert!(
        branches[0][1].get("Condition").is_some(),
        "set: the listed accounts"
    );
    assert!(
        branches[0][2].get("Condition").is_none(),
        "empty: any account"
    );
    assert!(
        template["Conditions"]["HasAllowedAccounts"]
            .to_string()
            .contains("AllowedAccounts")
    );
    // The same name on both sides by default, and the member role is named by it.
    let member = load(MEMBER_ROLE);
    let name = &template["Parameters"]["MemberRoleName"];
    assert_eq!(name["Default"], "GuardDutyResponderMember");
    assert_eq!(
        member["Parameters"]["MemberRoleName"]["Default"],
        name["Default"]
    );
    assert_eq!(
        member["Resources"][MEMBER]["Properties"]["RoleName"],
        json!({ "Ref": "MemberRoleName" })
    );
}

/// The function's role, from the policy `responder permissions` prints, matches the
/// template: what is generated and what is deployed are the same grants.
#[test]
fn the_generated_policy_is_the_deployed_one() {
    let doc = iam::policy(&iam_grants(ALL.iter().copied()));
    let mut generated = Role::new(TEMPLATE, "generated".to_owned(), "${AWS::Region}");
    // The generated ARNs use the placeholders themselves: read them back as Fn::Sub.
    let mut statements = Vec::new();
    for s in doc["Statement"].as_array().unwrap() {
        let mut s = s.clone();
        let resources: Vec<Value> = list(&s["Resource"])
            .iter()
            .map(|r| {
                let r = r.as_str().unwrap();
                if r == "*" {
                    json!("*")
                } else {
                    json!({ "Fn::Sub": r
                        .replace("${Partition}", "${AWS::Partition}")
                        .replace("${Region}", "${AWS::Region}")
                        .replace("${Account}", "${AWS::AccountId}") })
                }
            })
            .collect();
        s["Resource"] = Value::Array(resources);
        statements.push(s);
    }
    generated.document(&json!({ "Statement": statements }), "generated", None);
    let deployed = function_role(&load(TEMPLATE), TEMPLATE);
    assert!(generated.opaque.is_empty(), "{:?}", generated.opaque);
    let mine: BTreeSet<Grant> = generated.normal(true).into_keys().collect();
    let theirs: BTreeSet<Grant> = deployed
        .normal(true)
        .into_keys()
        .filter(|g| !NOT_STEPS.iter().any(|(_, a, _)| *a == g.action))
        .collect();
    let missing: Vec<String> = mine.difference(&theirs).map(ToString::to_string).collect();
    let extra: Vec<String> = theirs.difference(&mine).map(ToString::to_string).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "generated but not deployed:\n{}\ndeployed but not generated:\n{}",
        missing.join("\n"),
        extra.join("\n")
    );
    assert_eq!(
        generated.normal(false).keys().collect::<Vec<_>>(),
        deployed.normal(false).keys().collect::<Vec<_>>()
    );
}

#[test]
fn pass_role_is_limited_to_listed_instance_roles_none_by_default() {
    for (file, role) in [
        (TEMPLATE, function_role(&load(TEMPLATE), TEMPLATE)),
        (MEMBER_ROLE, member_role(&load(MEMBER_ROLE), MEMBER_ROLE)),
    ] {
        let template = load(file);
        let parameter = &template["Parameters"]["InstanceRoleArns"];
        assert_eq!(parameter["Type"], "CommaDelimitedList", "{file}");
        assert_eq!(parameter["Default"], "", "{file}: no role by default");
        assert!(
            template["Conditions"].get(HAS_INSTANCE_ROLES).is_some(),
            "{file}: Conditions.{HAS_INSTANCE_ROLES}"
        );
        let passing: Vec<&Statement> = role
            .statements
            .iter()
            .filter(|s| s.allow() && s.covers("iam:PassRole"))
            .collect();
        assert!(!passing.is_empty(), "{file}: no iam:PassRole grant");
        for s in passing {
            assert_eq!(
                s.resources,
                vec![Ok("${InstanceRoleArns}".to_owned())],
                "{file}: {}",
                s.at
            );
        }
    }
}

#[test]
fn the_dead_letter_queue_accepts_only_the_stacks_rule() {
    let template = load(TEMPLATE);
    let function = &template["Resources"][FUNCTION]["Properties"];
    assert_eq!(
        function["Events"][RULE_EVENT]["Type"], "EventBridgeRule",
        "SAM names the rule {FUNCTION}{RULE_EVENT} only for this event"
    );
    let rule = json!({ "Fn::GetAtt": [format!("{FUNCTION}{RULE_EVENT}"), "Arn"] });
    let policy = &template["Resources"]["DeadLetterQueuePolicy"]["Properties"]["PolicyDocument"];
    let statements = list(&policy["Statement"]);
    assert!(!statements.is_empty());
    for s in &statements {
        assert_eq!(s["Effect"], "Allow");
        assert!(
            s["Principal"].get("AWS").is_none() && s["Principal"] != "*",
            "only a service principal: {s}"
        );
        assert_eq!(
            s["Condition"]["ArnEquals"]["aws:SourceArn"], rule,
            "{}: a delivery from any other rule would be accepted",
            s["Sid"]
        );
    }
}

#[test]
fn the_member_role_trusts_exactly_the_function_roles() {
    let template = load(MEMBER_ROLE);
    // A list: one administrator stack, and so one function role, per Region.
    let parameter = &template["Parameters"]["ResponderRoleArns"];
    assert_eq!(parameter["Type"], "CommaDelimitedList");
    assert!(
        parameter.get("Default").is_none(),
        "no default: it must be given"
    );
    let pattern = parameter["AllowedPattern"].as_str().unwrap();
    assert!(
        pattern.starts_with("^arn:") && pattern.contains(":role/") && pattern.ends_with('$'),
        "{pattern}"
    );
    let trust = &template["Resources"][MEMBER]["Properties"]["AssumeRolePolicyDocument"];
    let statements = list(&trust["Statement"]);
    assert!(!statements.is_empty());
    for s in &statements {
        assert_eq!(s["Effect"], "Allow", "{s}");
        assert_eq!(
            s["Principal"],
            json!({ "AWS": { "Ref": "ResponderRoleArns" } }),
            "the principals are the functions' role ARNs themselves, no account root or pattern"
        );
        for action in strings(&s["Action"]).unwrap() {
            assert!(
                ["sts:AssumeRole", "sts:SetSourceIdentity"].contains(&action.as_str()),
                "{action}"
            );
        }
        assert_eq!(
            s["Condition"],
            json!({ "StringEquals": { "sts:SourceIdentity": SOURCE_IDENTITY } }),
            "only sessions that carry the code's source identity"
        );
        assert!(
            !s.to_string().contains('*'),
            "no wildcard in the trust: {s}"
        );
    }
    // The administrator stack says what to pass.
    let admin = load(TEMPLATE);
    assert_eq!(
        admin["Outputs"]["ResponderRoleArn"]["Value"],
        json!({ "Fn::GetAtt": [format!("{FUNCTION}Role"), "Arn"] })
    );
}

/// The names the code reads are fixed: the ledger table, its keys and index, and the
/// function's settings.
#[test]
fn the_ledger_table_and_the_settings_are_what_the_code_reads() {
    let template = load(TEMPLATE);
    let table = &template["Resources"]["LedgerTable"];
    assert_eq!(table["Type"], "AWS::DynamoDB::Table");
    assert_eq!(table["DeletionPolicy"], "Retain", "an audit record");
    assert_eq!(table["UpdateReplacePolicy"], "Retain", "an audit record");
    let p = &table["Properties"];
    assert_eq!(p["BillingMode"], "PAY_PER_REQUEST");
    assert_eq!(p["SSESpecification"]["SSEEnabled"], true);
    assert_eq!(
        p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        true
    );
    assert_eq!(
        p["TimeToLiveSpecification"],
        json!({ "AttributeName": ledger::TTL_ATTRIBUTE, "Enabled": true })
    );
    assert_eq!(
        p["KeySchema"],
        json!([
            { "AttributeName": ledger::PARTITION_KEY, "KeyType": "HASH" },
            { "AttributeName": ledger::SORT_KEY, "KeyType": "RANGE" },
        ])
    );
    let attributes: BTreeMap<&str, &str> = p["AttributeDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["AttributeName"].as_str().unwrap(),
                a["AttributeType"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        attributes,
        BTreeMap::from([
            (ledger::INSTANCE_ATTRIBUTE, "S"),
            (ledger::PARTITION_KEY, "S"),
            (ledger::RECORDED_AT_ATTRIBUTE, "S"),
            (ledger::SORT_KEY, "S"),
        ])
    );
    assert_eq!(
        p["GlobalSecondaryIndexes"],
        json!([{
            "IndexName": ledger::INDEX_BY_INSTANCE,
            "KeySchema": [
                { "AttributeName": ledger::INSTANCE_ATTRIBUTE, "KeyType": "HASH" },
                { "AttributeName": ledger::RECORDED_AT_ATTRIBUTE, "KeyType": "RANGE" },
            ],
            "Projection": { "ProjectionType": "ALL" },
        }])
    );

    let env = &template["Resources"][FUNCTION]["Properties"]["Environment"]["Variables"];
    let parameters = &template["Parameters"];
    assert_eq!(env["LEDGER_TABLE"], json!({ "Ref": "LedgerTable" }));
    for (variable, parameter, default) in [
        ("VERIFY_FINDINGS", "VerifyFindings", json!("on")),
        ("DETECTOR_ID", "DetectorId", json!("")),
        (
            "MAX_DESTRUCTIVE_PER_HOUR",
            "MaxDestructivePerHour",
            json!(10),
        ),
    ] {
        assert_eq!(env[variable], json!({ "Ref": parameter }), "{variable}");
        assert_eq!(parameters[parameter]["Default"], default, "{parameter}");
    }
    assert_eq!(
        parameters["VerifyFindings"]["AllowedValues"],
        json!(["on", "off"])
    );
    // Organization settings: empty by default (no per-account budget, every account,
    // this Region).
    for (variable, parameter) in [
        (
            "MAX_DESTRUCTIVE_PER_HOUR_PER_ACCOUNT",
            "MaxDestructivePerHourPerAccount",
        ),
        ("ALLOWED_ACCOUNTS", "AllowedAccounts"),
        ("REGIONS", "Regions"),
    ] {
        assert_eq!(env[variable], json!({ "Ref": parameter }), "{variable}");
        assert_eq!(parameters[parameter]["Type"], "String", "{parameter}");
        assert_eq!(parameters[parameter]["Default"], "", "{parameter}");
    }
    assert_eq!(env["MEMBER_ROLE_NAME"], json!({ "Ref": "MemberRoleName" }));
    assert_eq!(env["HOME_ACCOUNT_ID"], json!({ "Ref": "AWS::AccountId" }));
}

#[test]
fn the_exempt_tag_key_is_the_playbooks() {
    // The shipped playbooks exclude instances by this key, whatever its value, as the
    // Deny (`Null: false` on the key) refuses them; the Deny must name it.
    let dir = workspace_root().join("playbooks");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(
                !text.contains(&format!("{}=", tags::EXEMPT)),
                "{}: a key=value exemption leaves out what the Deny refuses",
                path.display()
            );
            if text.contains(&format!("\"{}\"", tags::EXEMPT)) {
                seen += 1;
            }
        }
    }
    assert!(seen > 0, "no shipped playbook excludes {}", tags::EXEMPT);
    assert!(
        iam::EXEMPT_INSTANCE.key.ends_with(tags::EXEMPT),
        "{}",
        iam::EXEMPT_INSTANCE.key
    );
}

/// The check itself: each kind of problem is reported, naming file, role and grant.
#[test]
fn the_check_reports_missing_surplus_unscoped_wildcard_and_opaque_grants() {
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
                Fn::Sub: arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:vpc/*
            - Sid: Star
              Effect: Allow
              Action: ec2:CreateTags
              Resource: "*"
            - Sid: TerminateTagged
              Effect: Allow
              Action: ec2:TerminateInstances
              Resource:
                Fn::Sub: arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:instance/*
              Condition:
                "Null":
                  aws:ResourceTag/guardduty-responder:isolated: "false"
            - Sid: AnyAccount
              Effect: Allow
              Action: ec2:StopInstances
              Resource:
                Fn::Sub: arn:${AWS::Partition}:ec2:${AWS::Region}:*:instance/*
            - Sid: UnconditionedEni
              Effect: Allow
              Action: ec2:ModifyNetworkInterfaceAttribute
              Resource:
                Fn::Sub: arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:network-interface/*
            - Sid: AnyRole
              Effect: Allow
              Action: iam:PassRole
              Resource:
                Fn::Sub: arn:${AWS::Partition}:iam::${AWS::AccountId}:role/*
            - Sid: Taken
              Effect: Deny
              Action: ec2:Create*
              Resource: "*"
"#,
    )
    .unwrap();
    let role = function_role(&template, TEMPLATE);
    let reported = problems(&role, &[]).join("\n");
    let instance = Resource::Instance.arn();
    for expected in [
        "infra/template.yaml: ResponderFunction's execution role: Resources.ResponderFunction.Properties.Policies[0]: a managed policy",
        "Sid Wide: grants \"ec2:*\"",
        "Sid Surplus: grants ec2:DeleteVpc on arn:${Partition}:ec2:${Region}:${Account}:vpc/* without condition, which no step declares in that form (no step declares the action",
        "Sid Star: grants write action ec2:CreateTags on Resource \"*\"",
        &format!(
            "Sid TerminateTagged: grants ec2:TerminateInstances on {instance} when Null aws:ResourceTag/guardduty-responder:isolated [\"false\"], which no step declares in that form (declared: ec2:TerminateInstances on {instance} without condition)"
        ),
        &format!(
            "does not grant ec2:TerminateInstances on {instance} without condition, which terminate, relaunch declare(s)"
        ),
        "Sid AnyAccount: \"arn:${AWS::Partition}:ec2:${AWS::Region}:*:instance/*\": account \"*\" is not the deployment's own",
        "Sid UnconditionedEni: grants ec2:ModifyNetworkInterfaceAttribute on arn:${Partition}:ec2:${Region}:${Account}:network-interface/* without condition, which no step declares in that form (declared: ec2:ModifyNetworkInterfaceAttribute on arn:${Partition}:ec2:${Region}:${Account}:network-interface/* when StringEqualsIgnoreCase ec2:Attribute",
        "Sid AnyRole: \"arn:${AWS::Partition}:iam::${AWS::AccountId}:role/*\": an ARN without Region",
        "Sid AnyRole: grants iam:PassRole unconditionally",
        "Sid Taken: denies ec2:CreateSnapshots without condition, which snapshot need(s)",
        "does not grant sns:Publish on ${ReportTopic} without condition, which notify declare(s)",
        "does not deny ec2:TerminateInstances on arn:${Partition}:ec2:${Region}:${Account}:instance/* when Null ec2:ResourceTag/guardduty-responder:exempt [\"false\"], which steps::iam::DENIES declares",
        "NOT_STEPS lists sts:AssumeRole for this role, which no longer grants it",
    ] {
        assert!(
            reported.contains(expected),
            "not reported: {expected}\nreported:\n{reported}"
        );
    }

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
              - Sid: OwnRegionOnly
                Effect: Allow
                Action: ec2:StopInstances
                Resource:
                  Fn::Sub: arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:instance/*
              - Sid: ExtraDeny
                Effect: Deny
                Action: ec2:RunInstances
                Resource:
                  Fn::Sub: arn:${AWS::Partition}:ec2:*:${AWS::AccountId}:instance/*
                Condition:
                  StringEquals:
                    aws:RequestTag/x: "y"
"#,
    )
    .unwrap();
    let role = member_role(&member, MEMBER_ROLE);
    let reported = problems(&role, ADMINISTRATOR_ONLY).join("\n");
    for expected in [
        "infra/member-role.yaml: MemberRole (member-account role): Resources.MemberRole.Properties.ManagedPolicyArns",
        "Policies[0] Statement[0]: Allow with NotAction",
        "grants sns:Publish, which it must not",
        "literal ARN \"arn:aws:sns:eu-west-1:111122223333:reports\"",
        "Sid OwnRegionOnly: \"arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:instance/*\": the Region must be \"*\" in this role",
        "does not grant ec2:DescribeInstances on * without condition, which (base), isolate",
        "Sid ExtraDeny: denies ec2:RunInstances on arn:${Partition}:ec2:${Region}:${Account}:instance/* when StringEquals aws:RequestTag/x [\"y\"], which steps::iam::DENIES does not declare",
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
