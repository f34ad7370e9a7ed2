//! The IAM grants the steps declare: each action with the resources it may act on and
//! the conditions every grant of it carries.
//!
//! A step lists what it calls in its `SPEC` ([`super::StepSpec::iam_actions`]);
//! [`super::BASE_IAM_ACTIONS`] holds what every response needs and [`DENIES`] what the
//! deployment refuses whatever the grants. The deployment templates' roles are tested
//! against these, statement by statement (tests/permissions.rs),
//! and `responder permissions --format json` prints the policy [`policy`] builds from
//! them.
//!
//! Tag keys in condition keys are the constants of [`crate::tags`] spelled out
//! (`const` strings cannot be concatenated); a unit test keeps them equal.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

/// What a grant acts on, written as the ARN pattern the templates use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    /// `*`: the action has no resource-level permission (describes, `ListDetectors`).
    Any,
    /// EC2 instances of the deployment's account and Region.
    Instance,
    /// EBS volumes.
    Volume,
    /// EBS snapshots (their ARNs carry no account).
    Snapshot,
    /// AMIs (their ARNs carry no account).
    Image,
    /// Network interfaces.
    NetworkInterface,
    /// Security groups.
    SecurityGroup,
    /// Network ACLs.
    NetworkAcl,
    /// Subnets.
    Subnet,
    /// VPCs.
    Vpc,
    /// Launch templates.
    LaunchTemplate,
    /// Key pairs.
    KeyPair,
    /// Auto Scaling groups.
    AutoScalingGroup,
    /// ELBv2 target groups.
    TargetGroup,
    /// The stack's report topic (`ReportTopic`).
    ReportTopic,
    /// The stack's ledger table (`LedgerTable`).
    LedgerTable,
    /// The ledger table's indexes.
    LedgerIndex,
    /// The instance roles the deployment lists (`InstanceRoleArns`): the only roles
    /// a replacement or a restored profile may carry. None by default.
    InstanceRole,
    /// GuardDuty Malware Protection's service-linked role (IAM ARNs carry no Region).
    MalwareScanServiceLinkedRole,
    /// The customer managed KMS keys of EBS volumes the deployment lists
    /// (`EbsKmsKeyArns`). None by default.
    EbsKey,
}

impl Resource {
    /// The ARN pattern: `${Partition}`, `${Region}` and `${Account}` are the
    /// deployment's own; `${Name}` is the template's resource or parameter `Name`.
    pub const fn arn(self) -> &'static str {
        match self {
            Resource::Any => "*",
            Resource::Instance => "arn:${Partition}:ec2:${Region}:${Account}:instance/*",
            Resource::Volume => "arn:${Partition}:ec2:${Region}:${Account}:volume/*",
            Resource::Snapshot => "arn:${Partition}:ec2:${Region}::snapshot/*",
            Resource::Image => "arn:${Partition}:ec2:${Region}::image/*",
            Resource::NetworkInterface => {
                "arn:${Partition}:ec2:${Region}:${Account}:network-interface/*"
            }
            Resource::SecurityGroup => "arn:${Partition}:ec2:${Region}:${Account}:security-group/*",
            Resource::NetworkAcl => "arn:${Partition}:ec2:${Region}:${Account}:network-acl/*",
            Resource::Subnet => "arn:${Partition}:ec2:${Region}:${Account}:subnet/*",
            Resource::Vpc => "arn:${Partition}:ec2:${Region}:${Account}:vpc/*",
            Resource::LaunchTemplate => {
                "arn:${Partition}:ec2:${Region}:${Account}:launch-template/*"
            }
            Resource::KeyPair => "arn:${Partition}:ec2:${Region}:${Account}:key-pair/*",
            Resource::AutoScalingGroup => {
                "arn:${Partition}:autoscaling:${Region}:${Account}:autoScalingGroup:*:autoScalingGroupName/*"
            }
            Resource::TargetGroup => {
                "arn:${Partition}:elasticloadbalancing:${Region}:${Account}:targetgroup/*/*"
            }
            Resource::ReportTopic => "${ReportTopic}",
            Resource::LedgerTable => "${LedgerTable.Arn}",
            Resource::LedgerIndex => "${LedgerTable.Arn}/index/*",
            Resource::InstanceRole => "${InstanceRoleArns}",
            Resource::MalwareScanServiceLinkedRole => {
                "arn:${Partition}:iam::${Account}:role/aws-service-role/malware-protection.guardduty.amazonaws.com/*"
            }
            Resource::EbsKey => "${EbsKmsKeyArns}",
        }
    }
}

/// One condition of a grant: `{operator: {key: values}}` in policy JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Condition {
    /// `StringEquals`, `Null`, `ForAllValues:StringLike`...
    pub operator: &'static str,
    /// `aws:ResourceTag/guardduty-responder:role`, `ec2:Attribute`...
    pub key: &'static str,
    /// Any of these values satisfies the condition.
    pub values: &'static [&'static str],
}

impl Condition {
    /// `{operator: {key: values}}`.
    pub const fn new(
        operator: &'static str,
        key: &'static str,
        values: &'static [&'static str],
    ) -> Condition {
        Condition {
            operator,
            key,
            values,
        }
    }
}

/// One IAM action a step may call, on which resources, under which conditions. A
/// step lists an action once per distinct scope (tagging instances and tagging the
/// groups it creates are two entries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Iam {
    /// `service:Action`, exact.
    pub action: &'static str,
    /// What it acts on; [`Resource::Any`] alone for actions without resource-level
    /// permissions.
    pub resources: &'static [Resource],
    /// Conditions the grant carries (all must hold).
    pub conditions: &'static [Condition],
}

impl Iam {
    /// The action on these resources, without condition.
    pub const fn on(action: &'static str, resources: &'static [Resource]) -> Iam {
        Iam {
            action,
            resources,
            conditions: &[],
        }
    }

    /// A read without resource-level permission: `Resource: "*"`.
    pub const fn read(action: &'static str) -> Iam {
        Iam::on(action, &[Resource::Any])
    }

    /// The same grant under these conditions.
    pub const fn when(self, conditions: &'static [Condition]) -> Iam {
        Iam {
            action: self.action,
            resources: self.resources,
            conditions,
        }
    }

    /// The conditions as policy JSON: `{operator: {key: [values]}}`.
    pub fn condition_json(&self) -> Value {
        conditions_json(self.conditions)
    }
}

/// Conditions as policy JSON: `{operator: {key: [values]}}`.
pub fn conditions_json(conditions: &[Condition]) -> Value {
    let mut by_operator: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
    for c in conditions {
        by_operator
            .entry(c.operator)
            .or_default()
            .insert(c.key.to_owned(), json!(c.values));
    }
    Value::Object(
        by_operator
            .into_iter()
            .map(|(op, keys)| (op.to_owned(), Value::Object(keys)))
            .collect(),
    )
}

// Tag keys as IAM condition keys (see `crate::tags`; a test keeps them equal).
const ROLE_REQUEST: &str = "aws:RequestTag/guardduty-responder:role";
const ROLE_RESOURCE: &str = "aws:ResourceTag/guardduty-responder:role";
const FINDING_ID_REQUEST: &str = "aws:RequestTag/guardduty-responder:finding-id";
const FINDING_ID_RESOURCE: &str = "aws:ResourceTag/guardduty-responder:finding-id";
const REPLACES_REQUEST: &str = "aws:RequestTag/guardduty-responder:replaces";
const EXEMPT_RESOURCE: &str = "ec2:ResourceTag/guardduty-responder:exempt";
const EXEMPT_KEY: &str = "guardduty-responder:exempt";
const OWN_KEYS: &str = "guardduty-responder:*";

/// Tag keys are sent (`aws:TagKeys` present): `DeleteTags` without keys deletes every
/// tag, and `ForAllValues` holds for an absent key.
pub const TAG_KEYS_SENT: Condition = Condition::new("Null", "aws:TagKeys", &["false"]);
/// Only the responder's own tag keys.
pub const ONLY_OWN_TAG_KEYS: Condition =
    Condition::new("ForAllValues:StringLike", "aws:TagKeys", &[OWN_KEYS]);
/// Only the responder's own tag keys and the playbooks' (`${PlaybookTagKeys}`: the
/// template parameter, a comma-separated list that `responder permissions` prints).
pub const ONLY_PLAYBOOK_TAG_KEYS: Condition = Condition::new(
    "ForAllValues:StringLike",
    "aws:TagKeys",
    &[OWN_KEYS, PLAYBOOK_TAG_KEYS],
);
/// The template parameter listing the playbooks' tag keys.
pub const PLAYBOOK_TAG_KEYS: &str = "${PlaybookTagKeys}";
/// The service-linked role of GuardDuty Malware Protection, and no other.
pub const MALWARE_SCAN_SERVICE: Condition = Condition::new(
    "StringEquals",
    "iam:AWSServiceName",
    &["malware-protection.guardduty.amazonaws.com"],
);
/// A KMS grant that an AWS service (EC2) creates for its own use.
pub const GRANT_FOR_AWS_RESOURCE: Condition =
    Condition::new("Bool", "kms:GrantIsForAWSResource", &["true"]);
/// Groups created as the quarantine or the untrack group, and nothing else.
pub const CREATES_OWN_GROUP: Condition =
    Condition::new("StringEquals", ROLE_REQUEST, &["quarantine", "untrack"]);
/// A group the responder created (its role tag, set only at creation).
pub const OWN_GROUP: Condition =
    Condition::new("StringEquals", ROLE_RESOURCE, &["quarantine", "untrack"]);
/// A network ACL created as the deny-all ACL.
pub const CREATES_DENY_ALL_ACL: Condition =
    Condition::new("StringEquals", ROLE_REQUEST, &["deny-all"]);
/// The responder's deny-all ACL (its role tag, set only at creation).
pub const OWN_DENY_ALL_ACL: Condition =
    Condition::new("StringEquals", ROLE_RESOURCE, &["deny-all"]);
/// Tags written only as part of creating the resource (`ec2:CreateAction`).
pub const fn created_by(action: &'static [&'static str]) -> Condition {
    Condition::new("StringEquals", "ec2:CreateAction", action)
}
/// Snapshots created with the finding marker.
pub const SNAPSHOT_MARKED: Condition = Condition::new("Null", FINDING_ID_REQUEST, &["false"]);
/// A snapshot carrying the finding marker (set only at creation).
pub const MARKED_SNAPSHOT: Condition = Condition::new("Null", FINDING_ID_RESOURCE, &["false"]);
/// Instances launched as replacements (the `replaces` marker in the request).
pub const LAUNCHES_REPLACEMENT: Condition = Condition::new("Null", REPLACES_REQUEST, &["false"]);
/// Roles passed to EC2 only.
pub const PASSED_TO_EC2: Condition = Condition::new(
    "StringEquals",
    "iam:PassedToService",
    &["ec2.amazonaws.com"],
);
/// `ModifyNetworkInterfaceAttribute` changing the groups only (the attribute's name
/// as the API and the query parameter spell it, compared ignoring case).
pub const ENI_GROUPS_ONLY: Condition = Condition::new(
    "StringEqualsIgnoreCase",
    "ec2:Attribute",
    &["groupSet", "SecurityGroupId"],
);
/// `ModifyNetworkInterfaceAttribute` changing the groups or the connection tracking
/// timeouts (isolation shortens them), never source/destination checks, attachments
/// or descriptions.
pub const ENI_GROUPS_AND_TRACKING: Condition = Condition::new(
    "StringEqualsIgnoreCase",
    "ec2:Attribute",
    &[
        "groupSet",
        "SecurityGroupId",
        "connectionTrackingSpecification",
    ],
);
/// The instance carries the exempt tag (any value).
pub const EXEMPT_INSTANCE: Condition = Condition::new("Null", EXEMPT_RESOURCE, &["false"]);
/// The request writes or removes the exempt tag.
pub const TOUCHES_EXEMPT_KEY: Condition = Condition::new(
    "ForAnyValue:StringEqualsIgnoreCase",
    "aws:TagKeys",
    &[EXEMPT_KEY],
);

/// `ec2:ModifyInstanceAttribute` (or any action with `ec2:Attribute`) limited to these
/// attributes, named as the API's attribute enumeration spells them; compared ignoring
/// case, since the structured request form names them as its query parameters do
/// (`DisableApiTermination`, `BlockDeviceMapping`).
pub const fn attributes(names: &'static [&'static str]) -> Condition {
    Condition::new("StringEqualsIgnoreCase", "ec2:Attribute", names)
}

/// `ec2:ModifyInstanceAttribute` limited to the named attributes.
pub const fn modify_instance(attributes: &'static [Condition]) -> Iam {
    Iam::on("ec2:ModifyInstanceAttribute", &[Resource::Instance]).when(attributes)
}

/// Instance-changing actions refused on an instance whose live tag says exempt.
pub const EXEMPT_PROTECTED_ACTIONS: &[&str] = &[
    "ec2:ModifyInstanceAttribute",
    "ec2:TerminateInstances",
    "ec2:StopInstances",
    "ec2:CreateTags",
    "ec2:DeleteTags",
    "ec2:AssociateIamInstanceProfile",
    "ec2:DisassociateIamInstanceProfile",
];

/// What the deployment refuses whatever the grants: explicit `Deny` statements.
pub const DENIES: &[Iam] = &[
    Iam::on("ec2:ModifyInstanceAttribute", &[Resource::Instance]).when(&[EXEMPT_INSTANCE]),
    Iam::on("ec2:TerminateInstances", &[Resource::Instance]).when(&[EXEMPT_INSTANCE]),
    Iam::on("ec2:StopInstances", &[Resource::Instance]).when(&[EXEMPT_INSTANCE]),
    Iam::on("ec2:CreateTags", &[Resource::Instance]).when(&[EXEMPT_INSTANCE]),
    Iam::on("ec2:DeleteTags", &[Resource::Instance]).when(&[EXEMPT_INSTANCE]),
    Iam::on("ec2:AssociateIamInstanceProfile", &[Resource::Instance]).when(&[EXEMPT_INSTANCE]),
    Iam::on("ec2:DisassociateIamInstanceProfile", &[Resource::Instance]).when(&[EXEMPT_INSTANCE]),
    Iam::on("ec2:CreateTags", &[Resource::Instance]).when(&[TOUCHES_EXEMPT_KEY]),
    Iam::on("ec2:DeleteTags", &[Resource::Instance]).when(&[TOUCHES_EXEMPT_KEY]),
];

/// Grants with the same resources and conditions, merged into one statement each;
/// `Effect` as given. Deterministic: sorted by resources, then conditions.
fn statements(effect: &str, grants: &[Iam]) -> Vec<Value> {
    type Scope = (Vec<Resource>, Vec<Condition>);
    let mut merged: BTreeMap<Scope, Vec<&'static str>> = BTreeMap::new();
    for g in grants {
        let mut resources = g.resources.to_vec();
        resources.sort();
        let mut conditions = g.conditions.to_vec();
        conditions.sort();
        let actions = merged.entry((resources, conditions)).or_default();
        if !actions.contains(&g.action) {
            actions.push(g.action);
        }
    }
    merged
        .into_iter()
        .map(|((resources, conditions), mut actions)| {
            actions.sort_unstable();
            let mut s = Map::new();
            s.insert("Effect".to_owned(), effect.into());
            s.insert("Action".to_owned(), json!(actions));
            s.insert(
                "Resource".to_owned(),
                json!(resources.iter().map(|r| r.arn()).collect::<Vec<_>>()),
            );
            if !conditions.is_empty() {
                s.insert("Condition".to_owned(), conditions_json(&conditions));
            }
            Value::Object(s)
        })
        .collect()
}

/// A policy document granting `grants` and refusing [`DENIES`], one statement per
/// distinct scope. ARNs keep the placeholders of [`Resource::arn`].
pub fn policy(grants: &[Iam]) -> Value {
    let mut all = statements("Allow", grants);
    all.extend(statements("Deny", DENIES));
    json!({ "Version": "2012-10-17", "Statement": all })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tags;

    #[test]
    fn condition_keys_spell_the_tag_constants() {
        assert_eq!(ROLE_REQUEST, format!("aws:RequestTag/{}", tags::ROLE));
        assert_eq!(ROLE_RESOURCE, format!("aws:ResourceTag/{}", tags::ROLE));
        assert_eq!(
            FINDING_ID_REQUEST,
            format!("aws:RequestTag/{}", tags::FINDING_ID)
        );
        assert_eq!(
            FINDING_ID_RESOURCE,
            format!("aws:ResourceTag/{}", tags::FINDING_ID)
        );
        assert_eq!(
            REPLACES_REQUEST,
            format!("aws:RequestTag/{}", tags::REPLACES)
        );
        assert_eq!(EXEMPT_KEY, tags::EXEMPT);
        assert_eq!(EXEMPT_RESOURCE, format!("ec2:ResourceTag/{}", tags::EXEMPT));
        assert_eq!(OWN_KEYS, format!("{}*", tags::PREFIX));
        for role in CREATES_OWN_GROUP
            .values
            .iter()
            .chain(CREATES_DENY_ALL_ACL.values)
        {
            assert!(!role.is_empty());
        }
    }

    const GROUP_CREATION: &[Condition] = &[created_by(&["CreateSecurityGroup"])];

    #[test]
    fn the_policy_merges_equal_scopes_and_keeps_denies() {
        let grants = [
            Iam::read("ec2:DescribeInstances"),
            Iam::read("ec2:DescribeSnapshots"),
            Iam::on("ec2:CreateTags", &[Resource::Instance]),
            Iam::on("ec2:CreateTags", &[Resource::SecurityGroup]).when(GROUP_CREATION),
        ];
        let doc = policy(&grants);
        let statements = doc["Statement"].as_array().unwrap();
        let allows: Vec<&Value> = statements
            .iter()
            .filter(|s| s["Effect"] == "Allow")
            .collect();
        assert_eq!(allows.len(), 3, "{doc:#}");
        assert!(allows.iter().any(|s| s["Action"]
            == json!(["ec2:DescribeInstances", "ec2:DescribeSnapshots"])
            && s["Resource"] == json!(["*"])));
        assert!(
            allows
                .iter()
                .any(|s| s["Condition"]["StringEquals"]["ec2:CreateAction"]
                    == json!(["CreateSecurityGroup"]))
        );
        assert!(statements.iter().any(|s| s["Effect"] == "Deny"
            && s["Condition"]["Null"][EXEMPT_RESOURCE] == json!(["false"])));
    }
}
