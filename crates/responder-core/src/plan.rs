//! Plans: the ordered steps of the chosen playbook with every parameter resolved
//! against the finding. Pure: no I/O and no clock, so the same finding and playbooks
//! always give the same bytes.

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::finding::{Finding, Instance};
use crate::playbook::model::{Mode, Playbook};
use crate::playbook::steps::{
    ConnectionTracking, ForensicsIngress, MetadataTokens, OnFailure, RelaunchParams,
    RelaunchSource, Step,
};
use crate::template;

/// Tag key prefix of everything the responder writes.
pub const TAG_PREFIX: &str = "guardduty-responder:";
/// Instance tag naming its launch template (set by EC2).
pub const LAUNCH_TEMPLATE_TAG: &str = "aws:ec2launchtemplate:id";
/// Instance tag naming its Auto Scaling group (set by Auto Scaling).
pub const ASG_TAG: &str = "aws:autoscaling:groupName";
/// SNS subjects are at most this long.
pub const MAX_SUBJECT_CHARS: usize = 100;

/// The plan for one finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// Finding id.
    pub finding_id: String,
    /// Finding type.
    pub finding_type: String,
    /// Severity number.
    pub severity: Option<f64>,
    /// Console level of the severity.
    pub severity_level: Option<&'static str>,
    /// Account of the finding.
    pub account_id: Option<String>,
    /// Region of the finding.
    pub region: Option<String>,
    /// Instance the finding is about.
    pub instance_id: Option<String>,
    /// The playbook that answers, or null.
    pub playbook: Option<String>,
    /// Its file.
    pub playbook_file: Option<String>,
    /// `enforce` or `dry-run`; null when no playbook matched.
    pub mode: Option<Mode>,
    /// Why the playbook matched, criterion by criterion.
    pub matched_because: Vec<String>,
    /// Why it won over the other matching playbooks, or why none matched.
    pub decision: String,
    /// Why each other playbook did not answer (only when asked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_chosen: Option<Vec<NotChosen>>,
    /// The steps, isolation first.
    pub steps: Vec<PlannedStep>,
}

/// Why one playbook did not answer a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotChosen {
    /// The playbook.
    pub playbook: String,
    /// Why not.
    pub reason: String,
}

/// One resolved step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedStep {
    /// The action and its resolved parameters.
    #[serde(flatten)]
    pub action: Action,
    /// What a failure of this step does to the rest.
    pub on_failure: OnFailure,
}

/// A step's action with every parameter resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Move every ENI into the quarantine group of its VPC.
    Isolate {
        /// The instance.
        instance_id: String,
        /// ENIs the finding lists, with their groups at detection time. The executor
        /// also isolates any ENI the instance has that the finding did not list.
        network_interfaces: Vec<PlannedEni>,
        /// Quarantine group per VPC (found by name, or created).
        quarantine_groups: Vec<VpcGroup>,
        /// Untrack group per VPC, when connections are cut.
        untrack_groups: Vec<VpcGroup>,
        /// Shorter connection-tracking timeouts, if asked.
        #[serde(skip_serializing_if = "Option::is_none")]
        connection_tracking: Option<ConnectionTracking>,
        /// Also deny all traffic on the subnets' network ACLs.
        network_acl: bool,
        /// Subnets a network ACL would affect (every instance in them).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        network_acl_subnets: Vec<String>,
        /// Forensics access to the quarantine group.
        #[serde(skip_serializing_if = "Option::is_none")]
        forensics_ingress: Option<ForensicsIngress>,
        /// Tag recording the original groups, for `release`.
        record_tag: String,
    },
    /// Snapshot every volume.
    Snapshot {
        /// The instance.
        instance_id: String,
        /// Tags on each snapshot.
        tags: BTreeMap<String, String>,
        /// Wait for completion.
        wait: bool,
        /// Bound on the wait.
        wait_timeout_seconds: u32,
        /// Set DeleteOnTermination=false first.
        preserve_volumes: bool,
    },
    /// Terminate the instance.
    Terminate {
        /// The instance.
        instance_id: String,
        /// Lift termination protection first.
        lift_termination_protection: bool,
    },
    /// Launch a replacement.
    Relaunch {
        /// The instance being replaced.
        instance_id: String,
        /// Where the configuration comes from.
        source: ReplacementSource,
        /// Idempotency token: the same finding and instance never launch twice.
        client_token: String,
        /// IMDS token setting.
        metadata_tokens: MetadataTokens,
        /// Public IP or not.
        associate_public_ip: bool,
        /// Instance type override.
        #[serde(skip_serializing_if = "Option::is_none")]
        instance_type: Option<String>,
        /// Copy the instance's own tags.
        copy_tags: bool,
        /// Tags on the replacement.
        tags: BTreeMap<String, String>,
    },
    /// Tag the instance.
    Tag {
        /// The instance.
        instance_id: String,
        /// Tags to set.
        tags: BTreeMap<String, String>,
    },
    /// Termination protection and shutdown behaviour.
    Protect {
        /// The instance.
        instance_id: String,
        /// Enable termination protection.
        termination: bool,
        /// Shutdown behaviour `stop`.
        shutdown_behavior_stop: bool,
    },
    /// Detach from the Auto Scaling group.
    DetachFromAsg {
        /// The instance.
        instance_id: String,
        /// The group, when the finding's tags name it.
        #[serde(skip_serializing_if = "Option::is_none")]
        auto_scaling_group: Option<String>,
        /// Lower desired capacity.
        decrement_desired_capacity: bool,
    },
    /// Deregister from target groups.
    DeregisterFromTargetGroups {
        /// The instance.
        instance_id: String,
    },
    /// Remove the instance profile.
    RevokeInstanceProfile {
        /// The instance.
        instance_id: String,
        /// The profile at detection time.
        #[serde(skip_serializing_if = "Option::is_none")]
        instance_profile_arn: Option<String>,
    },
    /// Keep the console output.
    CaptureConsoleOutput {
        /// The instance.
        instance_id: String,
        /// Latest output.
        latest: bool,
    },
    /// Stop the instance.
    Stop {
        /// The instance.
        instance_id: String,
        /// Force.
        force: bool,
    },
    /// Undo isolation and profile revocation.
    Release {
        /// The instance.
        instance_id: String,
        /// Tag holding the recorded state.
        record_tag: String,
    },
    /// Archive the finding.
    ArchiveFinding {
        /// Detector id (from the finding).
        #[serde(skip_serializing_if = "Option::is_none")]
        detector_id: Option<String>,
        /// Finding id.
        finding_id: String,
    },
    /// Publish the report.
    Notify {
        /// Topic; null means the deployment's configured topic.
        topic_arn: Option<String>,
        /// Subject.
        subject: String,
    },
}

impl Action {
    /// The action's name, as in playbooks.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Isolate { .. } => "isolate",
            Action::Snapshot { .. } => "snapshot",
            Action::Terminate { .. } => "terminate",
            Action::Relaunch { .. } => "relaunch",
            Action::Tag { .. } => "tag",
            Action::Protect { .. } => "protect",
            Action::DetachFromAsg { .. } => "detach-from-asg",
            Action::DeregisterFromTargetGroups { .. } => "deregister-from-target-groups",
            Action::RevokeInstanceProfile { .. } => "revoke-instance-profile",
            Action::CaptureConsoleOutput { .. } => "capture-console-output",
            Action::Stop { .. } => "stop",
            Action::Release { .. } => "release",
            Action::ArchiveFinding { .. } => "archive-finding",
            Action::Notify { .. } => "notify",
        }
    }
}

/// An ENI to isolate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedEni {
    /// ENI id.
    pub network_interface_id: String,
    /// Its VPC.
    pub vpc_id: Option<String>,
    /// Its subnet.
    pub subnet_id: Option<String>,
    /// Its groups at detection time.
    pub current_groups: Vec<String>,
}

/// A group name in one VPC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VpcGroup {
    /// The VPC.
    pub vpc_id: String,
    /// The group's name.
    pub group_name: String,
}

/// Where a replacement comes from, resolved as far as the finding allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ReplacementSource {
    /// The instance's launch template.
    LaunchTemplate {
        /// Template id, from the instance's tag; null means "look it up".
        launch_template_id: Option<String>,
    },
    /// The Auto Scaling group launches the replacement.
    AutoScalingGroup {
        /// Group name, from the instance's tag; null means "look it up".
        auto_scaling_group: Option<String>,
    },
    /// A copy of the instance's configuration.
    Clone {
        /// AMI.
        image_id: Option<String>,
        /// Instance type.
        instance_type: Option<String>,
        /// Subnet of the primary ENI.
        subnet_id: Option<String>,
        /// The primary ENI's original groups (never the quarantine group).
        security_group_ids: Vec<String>,
        /// Instance profile.
        instance_profile_arn: Option<String>,
    },
    /// Decided at run time from the instance (launch template, group, or clone).
    Auto,
}

/// Why a matched playbook could not be planned for a finding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// An instance step, and the finding names no instance.
    #[error(
        "step {step} needs an EC2 instance and the finding has none (resource type {resource_type})"
    )]
    NoInstance {
        /// The step.
        step: &'static str,
        /// The finding's resource type.
        resource_type: String,
    },
    /// A template could not be filled.
    #[error("step {step}: {message}")]
    Template {
        /// The step.
        step: &'static str,
        /// What went wrong.
        message: String,
    },
}

/// Tag on the instance recording its groups per ENI before isolation.
pub fn record_tag() -> String {
    format!("{TAG_PREFIX}original-groups")
}

/// The idempotency token of a replacement: the same finding and instance always
/// give the same token (at most 64 ASCII characters, as EC2 requires).
pub fn client_token(finding_id: &str, instance_id: &str) -> String {
    let digest = Sha256::digest(format!("{finding_id}\n{instance_id}").as_bytes());
    let hex: String = digest.iter().take(24).map(|b| format!("{b:02x}")).collect();
    format!("gdr-{hex}")
}

/// The response's own marker tags, written on everything it touches.
pub fn marker_tags(finding: &Finding, playbook: &str) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::new();
    tags.insert(format!("{TAG_PREFIX}finding-id"), finding.id.clone());
    tags.insert(
        format!("{TAG_PREFIX}finding-type"),
        truncate(&finding.finding_type.name, 256),
    );
    if let Some(s) = finding.severity {
        tags.insert(format!("{TAG_PREFIX}severity"), s.to_string());
    }
    tags.insert(format!("{TAG_PREFIX}playbook"), playbook.to_owned());
    tags
}

/// Resolves the playbook's steps against the finding. `isolate` moves to the front.
pub fn steps(finding: &Finding, playbook: &Playbook) -> Result<Vec<PlannedStep>, PlanError> {
    let name = playbook.name();
    let mut ordered: Vec<&Step> = playbook.steps.iter().map(|s| &s.value).collect();
    ordered.sort_by_key(|s| !matches!(s, Step::Isolate(_)));
    ordered
        .into_iter()
        .map(|step| {
            Ok(PlannedStep {
                action: action(step, finding, name)?,
                on_failure: step.on_failure(),
            })
        })
        .collect()
}

fn action(step: &Step, f: &Finding, playbook: &str) -> Result<Action, PlanError> {
    let fill = |t: &BTreeMap<String, String>| -> Result<BTreeMap<String, String>, PlanError> {
        t.iter()
            .map(|(k, v)| {
                template::render(v, f, playbook)
                    .map(|v| (k.clone(), v))
                    .map_err(|message| PlanError::Template {
                        step: step.name(),
                        message,
                    })
            })
            .collect()
    };
    let instance = match (step.needs_instance(), &f.instance) {
        (true, None) => {
            return Err(PlanError::NoInstance {
                step: step.name(),
                resource_type: f
                    .resource_type
                    .clone()
                    .unwrap_or_else(|| "unknown".to_owned()),
            });
        }
        (_, i) => i.as_ref(),
    };
    let id = instance.map(|i| i.instance_id.clone()).unwrap_or_default();
    Ok(match step {
        Step::Isolate(p) => {
            let enis: Vec<PlannedEni> = instance
                .map(|i| {
                    i.network_interfaces
                        .iter()
                        .map(|n| PlannedEni {
                            network_interface_id: n.network_interface_id.clone(),
                            vpc_id: n.vpc_id.clone(),
                            subnet_id: n.subnet_id.clone(),
                            current_groups: n
                                .security_groups
                                .iter()
                                .map(|g| g.group_id.clone())
                                .collect(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let vpcs = distinct(enis.iter().filter_map(|e| e.vpc_id.clone()));
            let per_vpc = |name: &str| -> Vec<VpcGroup> {
                vpcs.iter()
                    .map(|v| VpcGroup {
                        vpc_id: v.clone(),
                        group_name: name.to_owned(),
                    })
                    .collect()
            };
            Action::Isolate {
                instance_id: id,
                quarantine_groups: per_vpc(&p.quarantine_group),
                untrack_groups: if p.cut_connections {
                    per_vpc(&p.untrack_group)
                } else {
                    Vec::new()
                },
                connection_tracking: p.connection_tracking.clone(),
                network_acl: p.network_acl,
                network_acl_subnets: if p.network_acl {
                    distinct(enis.iter().filter_map(|e| e.subnet_id.clone()))
                } else {
                    Vec::new()
                },
                forensics_ingress: p.forensics_ingress.clone(),
                network_interfaces: enis,
                record_tag: record_tag(),
            }
        }
        Step::Snapshot(p) => {
            let mut tags = marker_tags(f, playbook);
            tags.insert(format!("{TAG_PREFIX}instance-id"), id.clone());
            tags.extend(fill(&p.tags)?);
            Action::Snapshot {
                instance_id: id,
                tags,
                wait: p.wait,
                wait_timeout_seconds: p.wait_timeout_seconds,
                preserve_volumes: p.preserve_volumes,
            }
        }
        Step::Terminate(p) => Action::Terminate {
            instance_id: id,
            lift_termination_protection: p.lift_termination_protection,
        },
        Step::Relaunch(p) => relaunch(p, f, instance, playbook, fill(&p.tags)?),
        Step::Tag(p) => {
            let mut tags = marker_tags(f, playbook);
            tags.extend(fill(&p.tags)?);
            Action::Tag {
                instance_id: id,
                tags,
            }
        }
        Step::Protect(p) => Action::Protect {
            instance_id: id,
            termination: p.termination,
            shutdown_behavior_stop: p.shutdown_behavior_stop,
        },
        Step::DetachFromAsg(p) => Action::DetachFromAsg {
            instance_id: id,
            auto_scaling_group: tag_value(instance, ASG_TAG),
            decrement_desired_capacity: p.decrement_desired_capacity,
        },
        Step::DeregisterFromTargetGroups(_) => {
            Action::DeregisterFromTargetGroups { instance_id: id }
        }
        Step::RevokeInstanceProfile(_) => Action::RevokeInstanceProfile {
            instance_id: id,
            instance_profile_arn: instance
                .and_then(|i| i.iam_instance_profile.as_ref())
                .and_then(|p| p.arn.clone()),
        },
        Step::CaptureConsoleOutput(p) => Action::CaptureConsoleOutput {
            instance_id: id,
            latest: p.latest,
        },
        Step::Stop(p) => Action::Stop {
            instance_id: id,
            force: p.force,
        },
        Step::Release(_) => Action::Release {
            instance_id: id,
            record_tag: record_tag(),
        },
        Step::ArchiveFinding(_) => Action::ArchiveFinding {
            detector_id: detector_id(f),
            finding_id: f.id.clone(),
        },
        Step::Notify(p) => {
            let default_subject = match f.instance_id() {
                Some(i) => format!("GuardDuty {} on {i}: {playbook}", f.finding_type.name),
                None => format!("GuardDuty {}: {playbook}", f.finding_type.name),
            };
            let subject = match &p.subject {
                Some(s) => {
                    template::render(s, f, playbook).map_err(|message| PlanError::Template {
                        step: "notify",
                        message,
                    })?
                }
                None => default_subject,
            };
            Action::Notify {
                topic_arn: p.topic_arn.clone(),
                subject: truncate(&subject, MAX_SUBJECT_CHARS),
            }
        }
    })
}

fn relaunch(
    p: &RelaunchParams,
    f: &Finding,
    instance: Option<&Instance>,
    playbook: &str,
    extra_tags: BTreeMap<String, String>,
) -> Action {
    let id = instance.map(|i| i.instance_id.clone()).unwrap_or_default();
    let template_id = tag_value(instance, LAUNCH_TEMPLATE_TAG);
    let asg = tag_value(instance, ASG_TAG);
    let clone = || {
        let primary = instance.and_then(|i| i.network_interfaces.first());
        ReplacementSource::Clone {
            image_id: instance.and_then(|i| i.image_id.clone()),
            instance_type: instance.and_then(|i| i.instance_type.clone()),
            subnet_id: primary.and_then(|n| n.subnet_id.clone()),
            security_group_ids: primary
                .map(|n| {
                    n.security_groups
                        .iter()
                        .map(|g| g.group_id.clone())
                        .collect()
                })
                .unwrap_or_default(),
            instance_profile_arn: instance
                .and_then(|i| i.iam_instance_profile.as_ref())
                .and_then(|p| p.arn.clone()),
        }
    };
    let source = match p.source {
        RelaunchSource::LaunchTemplate => ReplacementSource::LaunchTemplate {
            launch_template_id: template_id,
        },
        RelaunchSource::AutoScalingGroup => ReplacementSource::AutoScalingGroup {
            auto_scaling_group: asg,
        },
        RelaunchSource::Clone => clone(),
        RelaunchSource::Auto => match (template_id, asg) {
            (Some(t), _) => ReplacementSource::LaunchTemplate {
                launch_template_id: Some(t),
            },
            (None, Some(g)) => ReplacementSource::AutoScalingGroup {
                auto_scaling_group: Some(g),
            },
            (None, None) => ReplacementSource::Auto,
        },
    };
    let mut tags = marker_tags(f, playbook);
    tags.insert(format!("{TAG_PREFIX}replaces"), id.clone());
    tags.extend(extra_tags);
    Action::Relaunch {
        client_token: client_token(&f.id, &id),
        instance_id: id,
        source,
        metadata_tokens: p.metadata_tokens,
        associate_public_ip: p.associate_public_ip,
        instance_type: p.instance_type.clone(),
        copy_tags: p.copy_tags,
        tags,
    }
}

fn tag_value(instance: Option<&Instance>, key: &str) -> Option<String> {
    instance?
        .tags
        .iter()
        .find(|t| t.key == key)
        .map(|t| t.value.clone())
}

/// The detector id: `service.detectorId`, or the ARN's `detector/<id>/finding/...`.
fn detector_id(f: &Finding) -> Option<String> {
    if let Some(id) = f
        .raw
        .get("service")
        .and_then(|s| s.get("detectorId"))
        .and_then(|v| v.as_str())
    {
        return Some(id.to_owned());
    }
    let arn = f.arn.as_deref()?;
    let rest = &arn[arn.find("detector/")? + "detector/".len()..];
    rest.split('/').next().map(str::to_owned)
}

fn distinct(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_token_is_stable_and_short() {
        let a = client_token("f1", "i-1");
        assert_eq!(a, client_token("f1", "i-1"));
        assert_ne!(a, client_token("f1", "i-2"));
        assert_ne!(a, client_token("f2", "i-1"));
        assert!(a.len() <= 64 && a.is_ascii());
    }
}
