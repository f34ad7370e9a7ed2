//! The typed view of an attack sequence (`service.detection.sequence`, GuardDuty
//! Extended Threat Detection): which EC2 instances it names, and the resources they
//! share (the likely common cause: instance profile, launch template, AMI, Auto
//! Scaling group, VPC, CloudFormation stack).
//!
//! The shape is the GuardDuty API's `Detection` → `Sequence` (`resources[]` of
//! `ResourceV2`, `signals[]` of `Signal` with `resourceUids`); the group resources'
//! `data` (`ResourceData`) carry `ec2InstanceUids` in `autoscalingAutoScalingGroup`,
//! `iamInstanceProfile`, `ec2LaunchTemplate`, `ec2Vpc`, `ec2Image` and
//! `cloudformationStack` (API reference, ResourceData; the vendored model in
//! `tests/corpus/` predates those members).
//!
//! An instance id reaches EC2 filters, ledger keys and tag values, so every candidate
//! is checked with [`crate::ids::is_instance_id`]: one that is not of that shape is
//! dropped and reported ([`Dropped`]), never used. Extraction is tolerant like the
//! rest of the typed view: a member of the wrong type reads as absent.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::finding::{Finding, Instance};

/// Most characters of a shared resource's uid or name kept (longer ones are cut):
/// they are only named in plans and reports, never sent to an API.
const MAX_NAME_CHARS: usize = 512;

/// The instances and shared resources of an attack sequence.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SequenceView {
    /// The sequence's uid (`sequence.uid`), escaped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Every valid instance id the sequence names, sorted and without duplicates.
    pub instances: Vec<String>,
    /// The resources the instances share (the likely common cause), sorted by kind
    /// then uid, without duplicates.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shared: Vec<SharedResource>,
    /// Instance ids that were not of an instance id's shape: dropped, never used.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<Dropped>,
}

/// A resource several members of the sequence have in common.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SharedResource {
    /// What it is.
    pub kind: SharedKind,
    /// Its uid as GuardDuty gives it (an ARN, a name or an id), escaped.
    pub uid: String,
    /// The member instances GuardDuty lists for it (valid ids only, sorted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<String>,
}

/// The kinds of shared resource a sequence on EC2 can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SharedKind {
    /// An IAM instance profile (`iamInstanceProfile`).
    InstanceProfile,
    /// An EC2 launch template (`ec2LaunchTemplate`).
    LaunchTemplate,
    /// An AMI (`ec2Image`).
    Image,
    /// An Auto Scaling group (`autoscalingAutoScalingGroup`).
    AutoScalingGroup,
    /// A CloudFormation stack (`cloudformationStack`).
    CloudformationStack,
    /// A VPC (`ec2Vpc`).
    Vpc,
}

impl SharedKind {
    /// The kind for people: "instance profile", "AMI".
    pub fn label(self) -> &'static str {
        match self {
            SharedKind::InstanceProfile => "instance profile",
            SharedKind::LaunchTemplate => "launch template",
            SharedKind::Image => "AMI",
            SharedKind::AutoScalingGroup => "Auto Scaling group",
            SharedKind::CloudformationStack => "CloudFormation stack",
            SharedKind::Vpc => "VPC",
        }
    }

    /// The `ResourceData` member and the `resourceType` of each kind.
    const ALL: [(SharedKind, &'static str, &'static str); 6] = [
        (
            SharedKind::InstanceProfile,
            "iamInstanceProfile",
            "IAM_INSTANCE_PROFILE",
        ),
        (
            SharedKind::LaunchTemplate,
            "ec2LaunchTemplate",
            "EC2_LAUNCH_TEMPLATE",
        ),
        (SharedKind::Image, "ec2Image", "EC2_IMAGE"),
        (
            SharedKind::AutoScalingGroup,
            "autoscalingAutoScalingGroup",
            "AUTOSCALING_AUTO_SCALING_GROUP",
        ),
        (
            SharedKind::CloudformationStack,
            "cloudformationStack",
            "CLOUDFORMATION_STACK",
        ),
        (SharedKind::Vpc, "ec2Vpc", "EC2_VPC"),
    ];
}

/// An id dropped because it is not an instance id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Dropped {
    /// The value, escaped and cut to 80 characters.
    pub value: String,
    /// Where the sequence had it (`resources[2].uid`, `signals[0].resourceUids`).
    pub source: String,
}

/// The finding's `service.detection.sequence`: the one place the raw JSON is read.
fn sequence_json(finding: &Finding) -> Option<&Value> {
    finding
        .raw()
        .get("service")?
        .get("detection")?
        .get("sequence")
        .filter(|s| s.is_object())
}

impl SequenceView {
    /// The sequence of an attack-sequence finding; `None` when the finding has no
    /// `service.detection.sequence` object.
    pub fn of(finding: &Finding) -> Option<SequenceView> {
        sequence_json(finding).map(SequenceView::from_sequence)
    }

    /// The view of one `Sequence` object.
    pub fn from_sequence(sequence: &Value) -> SequenceView {
        let mut ids = Candidates::default();
        // Grouped by (kind, uid) as they come: a sequence may name one resource many
        // times, and merging sorted lists afterwards was quadratic in the repeats.
        let mut shared: BTreeMap<(SharedKind, String), BTreeSet<String>> = BTreeMap::new();
        for (i, resource) in array(sequence.get("resources")).iter().enumerate() {
            let resource_type = text(resource.get("resourceType"));
            let uid = text(resource.get("uid"));
            if resource_type.as_deref() == Some("EC2_INSTANCE") {
                if let Some(uid) = &uid {
                    ids.push(uid, || format!("resources[{i}].uid"));
                }
                continue;
            }
            let data = resource.get("data");
            let kind = SharedKind::ALL.iter().find(|(_, member, rtype)| {
                data.and_then(|d| d.get(*member)).is_some()
                    || resource_type.as_deref() == Some(*rtype)
            });
            let Some(&(kind, member, _)) = kind else {
                continue;
            };
            let mut members = BTreeSet::new();
            let uids = data
                .and_then(|d| d.get(member))
                .and_then(|m| m.get("ec2InstanceUids"));
            for (j, id) in array(uids).iter().enumerate() {
                if let Some(id) = id.as_str()
                    && ids.push(id, || {
                        format!("resources[{i}].data.{member}.ec2InstanceUids[{j}]")
                    })
                {
                    members.insert(id.to_owned());
                }
            }
            let name = uid.or_else(|| text(resource.get("name")));
            if let Some(name) = name {
                shared
                    .entry((kind, cut(&name, MAX_NAME_CHARS)))
                    .or_default()
                    .extend(members);
            }
        }
        for (i, signal) in array(sequence.get("signals")).iter().enumerate() {
            for (j, id) in array(signal.get("resourceUids")).iter().enumerate() {
                // Signals name every kind of resource (buckets, keys, ARNs): only
                // the ones that look like instance ids at all are candidates.
                if let Some(id) = id.as_str().filter(|s| s.starts_with("i-")) {
                    ids.push(id, || format!("signals[{i}].resourceUids[{j}]"));
                }
            }
        }
        let shared = shared
            .into_iter()
            .map(|((kind, uid), instances)| SharedResource {
                kind,
                uid,
                instances: instances.into_iter().collect(),
            })
            .collect();
        let mut dropped = ids.dropped;
        dropped.sort();
        dropped.dedup();
        SequenceView {
            uid: text(sequence.get("uid")).map(|u| cut(&u, MAX_NAME_CHARS)),
            instances: ids.valid.into_iter().collect(),
            shared,
            dropped,
        }
    }

    /// The resources of one kind.
    pub fn shared_of(&self, kind: SharedKind) -> impl Iterator<Item = &SharedResource> {
        self.shared.iter().filter(move |s| s.kind == kind)
    }
}

/// The finding as one member of its sequence sees it: the same finding, with this
/// instance as its instance (type and AZ from the sequence's resource when it gives
/// them). Planning and executing a member use this, so that every step, ledger key
/// and budget decision is the instance's, exactly as for a single-instance finding.
pub fn member_finding(finding: &Finding, instance_id: &str) -> Finding {
    let mut member = finding.clone();
    let data = sequence_json(finding).and_then(|s| {
        array(s.get("resources"))
            .iter()
            .find(|r| {
                text(r.get("resourceType")).as_deref() == Some("EC2_INSTANCE")
                    && text(r.get("uid")).as_deref() == Some(instance_id)
            })
            .and_then(|r| r.get("data")?.get("ec2Instance"))
    });
    member.instance = Some(Instance {
        instance_id: instance_id.to_owned(),
        instance_type: data.and_then(|d| text(d.get("instanceType"))),
        availability_zone: data.and_then(|d| text(d.get("availabilityZone"))),
        state: data.and_then(|d| text(d.get("instanceState"))),
        platform: data.and_then(|d| text(d.get("platform"))),
        ..Instance::default()
    });
    member
}

/// Instance ids seen so far: the valid ones (sorted set) and the dropped ones.
#[derive(Default)]
struct Candidates {
    valid: BTreeSet<String>,
    dropped: Vec<Dropped>,
}

impl Candidates {
    /// Keeps `id` when it is an instance id (true), else records it as dropped.
    fn push(&mut self, id: &str, source: impl FnOnce() -> String) -> bool {
        if crate::ids::is_instance_id(id) {
            self.valid.insert(id.to_owned());
            true
        } else {
            self.dropped.push(Dropped {
                value: cut(id, 80),
                source: source(),
            });
            false
        }
    }
}

fn array(value: Option<&Value>) -> &[Value] {
    value.and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// Escaped, and at most `max` characters.
fn cut(s: &str, max: usize) -> String {
    crate::text::escape_truncated(s, max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn instances_from_every_place_sorted_and_checked() {
        let v = SequenceView::from_sequence(&json!({
            "uid": "seq-1",
            "resources": [
                {"uid": "i-0000000000000000b", "resourceType": "EC2_INSTANCE"},
                {"uid": "i-*", "resourceType": "EC2_INSTANCE"},
                {"uid": "arn:aws:iam::1:instance-profile/web", "resourceType": "IAM_INSTANCE_PROFILE",
                 "data": {"iamInstanceProfile": {"ec2InstanceUids": ["i-0000000000000000c", "i-0000000000000000b", 5]}}},
                {"uid": "web-asg", "resourceType": "AUTOSCALING_AUTO_SCALING_GROUP",
                 "data": {"autoscalingAutoScalingGroup": {"ec2InstanceUids": ["i-0000000000000000a"]}}},
                {"uid": "bucket", "resourceType": "S3_BUCKET"},
                "not an object"
            ],
            "signals": [{"resourceUids": ["i-0000000000000000a", "i-0000000000000000d", "arn:aws:s3:::b", "i-bad id"]}, {"resourceUids": 7}]
        }));
        assert_eq!(
            v.instances,
            [
                "i-0000000000000000a",
                "i-0000000000000000b",
                "i-0000000000000000c",
                "i-0000000000000000d"
            ]
        );
        assert_eq!(v.dropped.len(), 2, "{:?}", v.dropped);
        assert!(v.dropped.iter().any(|d| d.value == "i-*"));
        assert_eq!(v.shared.len(), 2);
        assert_eq!(v.shared[0].kind, SharedKind::InstanceProfile);
        assert_eq!(
            v.shared[0].instances,
            ["i-0000000000000000b", "i-0000000000000000c"]
        );
        assert_eq!(v.shared[1].uid, "web-asg");
        assert_eq!(v.uid.as_deref(), Some("seq-1"));
    }

    #[test]
    fn tolerant_of_wrong_types() {
        let v =
            SequenceView::from_sequence(&json!({"resources": {"a": 1}, "signals": "x", "uid": 3}));
        assert_eq!(v, SequenceView::default());
        let f = Finding::from_value(
            json!({"id": "1", "type": "X:EC2/Y", "service": {"detection": {"sequence": []}}}),
        )
        .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(SequenceView::of(&f), None);
    }
}
