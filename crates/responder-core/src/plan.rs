//! Plans: the ordered steps of the chosen playbook with every parameter resolved
//! against the finding. A plan is the program the executor runs, field for field.
//! Pure: no I/O, no clock, no environment, so the same finding, playbooks and
//! settings always give the same bytes.

use serde::{Deserialize, Serialize};

use crate::finding::{Finding, Instance};
use crate::playbook::model::{Mode, Playbook};
use crate::sequence::{Dropped, SequenceView, SharedResource, member_finding};
use crate::steps::{OnFailure, PlanError, PlanInput, PlannedStep, Settings, Step};
use crate::tags;

/// The plan for one finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// The finding's id.
    pub finding_id: String,
    /// The finding's type.
    pub finding_type: String,
    /// Severity number.
    pub severity: Option<f64>,
    /// Console level of the severity (Low, Medium, High, Critical).
    pub severity_level: Option<&'static str>,
    /// The account the finding is about.
    pub account_id: Option<String>,
    /// The region the finding is about.
    pub region: Option<String>,
    /// The EC2 instance the finding is about, if any.
    pub instance_id: Option<String>,
    /// The playbook that answers, or null.
    pub playbook: Option<String>,
    /// The playbook's file.
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
    /// The instructions, isolation first. The executor carries out exactly these.
    pub steps: Vec<PlannedStep>,
    /// The playbook's `limits.max_per_hour`, when it sets one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_per_hour: Option<u32>,
    /// The instance as the finding saw it at detection time: shown for people, never
    /// an instruction. Where the executor needs these facts it reads them live
    /// (see each field), because the instance may have changed since.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed: Option<Observed>,
    /// An attack sequence answered per instance: `steps` are then the steps run once
    /// for the whole sequence (those that act on no instance, such as `notify`), and
    /// each section holds the instance steps resolved for one member. Absent for
    /// every other finding, whose JSON is unchanged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence: Option<SequencePlan>,
}

/// The fan-out of an attack sequence over its instances.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SequencePlan {
    /// The sequence's uid, escaped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// The playbook's `limits.max_instances` (or its default).
    pub max_instances: u32,
    /// One section per answered instance, in instance id order.
    pub sections: Vec<InstanceSection>,
    /// Instances of the sequence that are not answered, and why (past
    /// `max_instances`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_answered: Vec<NotAnswered>,
    /// The resources the members share, the likely common cause: named once for the
    /// whole sequence (in the plan, the report and the notification).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shared: Vec<SharedResource>,
    /// Instance ids of the sequence that were not of an instance id's shape:
    /// dropped, never acted on.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<Dropped>,
}

/// The steps for one instance of an attack sequence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstanceSection {
    /// The member instance.
    pub instance_id: String,
    /// Its steps, isolation first, resolved for this instance
    /// ([`crate::sequence::member_finding`]).
    pub steps: Vec<PlannedStep>,
}

/// An instance of a sequence the plan does not answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotAnswered {
    /// The instance.
    pub instance_id: String,
    /// Why not.
    pub reason: String,
}

/// Why one playbook did not answer a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotChosen {
    /// The playbook.
    pub playbook: String,
    /// Why not.
    pub reason: String,
}

/// The finding's copy of the instance (at detection time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Observed {
    /// The network interfaces the finding lists (GuardDuty's copy once verified).
    /// The executor moves only the ENIs a live describe shows attached to the
    /// instance, never these; their groups are the last resort for what `release` and
    /// `relaunch` restore, after the live groups and the ledger's record.
    pub network_interfaces: Vec<ObservedEni>,
    /// Subnets of those ENIs: a network ACL would affect every instance in them.
    /// The executor replaces the ACL of the subnets the live describe shows.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subnets: Vec<String>,
    /// The instance profile. `revoke-instance-profile` removes the live association.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_profile_arn: Option<String>,
    /// The Auto Scaling group from the instance's tags. `detach-from-asg` detaches
    /// from the group Auto Scaling reports now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_scaling_group: Option<String>,
    /// The AMI. A `clone` relaunch copies the live instance's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    /// The instance type. A `clone` relaunch copies the live instance's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
}

/// One network interface as the finding lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObservedEni {
    /// ENI id.
    pub network_interface_id: String,
    /// Its VPC.
    pub vpc_id: Option<String>,
    /// Its subnet.
    pub subnet_id: Option<String>,
    /// Its security groups at detection time.
    pub security_groups: Vec<String>,
}

impl Observed {
    /// The finding's view of its instance.
    pub fn of(instance: &Instance) -> Observed {
        let network_interfaces: Vec<ObservedEni> = instance
            .network_interfaces
            .iter()
            .map(|n| ObservedEni {
                network_interface_id: n.network_interface_id.clone(),
                vpc_id: n.vpc_id.clone(),
                subnet_id: n.subnet_id.clone(),
                security_groups: n
                    .security_groups
                    .iter()
                    .map(|g| g.group_id.clone())
                    .collect(),
            })
            .collect();
        let mut subnets: Vec<String> = network_interfaces
            .iter()
            .filter_map(|e| e.subnet_id.clone())
            .collect();
        subnets.sort();
        subnets.dedup();
        Observed {
            network_interfaces,
            subnets,
            instance_profile_arn: instance
                .iam_instance_profile
                .as_ref()
                .and_then(|p| p.arn.clone()),
            auto_scaling_group: instance.tag(tags::AUTO_SCALING_GROUP),
            image_id: instance.image_id.clone(),
            instance_type: instance.instance_type.clone(),
        }
    }
}

/// Resolves the playbook's steps against the finding. `isolate` moves to the front.
pub fn steps(
    finding: &Finding,
    playbook: &Playbook,
    settings: &Settings,
) -> Result<Vec<PlannedStep>, PlanError> {
    steps_where(finding, playbook, settings, |_| true)
}

/// The fan-out of a sequence: the steps run once (those that need no instance,
/// resolved against the sequence's finding) and one section per instance, in
/// instance id order, up to the playbook's `limits.max_instances`; the instances
/// past it are listed as not answered.
pub fn fan_out(
    finding: &Finding,
    playbook: &Playbook,
    settings: &Settings,
    view: SequenceView,
) -> Result<(Vec<PlannedStep>, SequencePlan), PlanError> {
    let shared_steps = steps_where(finding, playbook, settings, |s| !s.spec().needs_instance)?;
    let max = playbook.limits.max_instances();
    let cap = usize::try_from(max).unwrap_or(usize::MAX);
    let mut sections = Vec::new();
    let mut not_answered = Vec::new();
    for (i, id) in view.instances.into_iter().enumerate() {
        if i >= cap {
            not_answered.push(NotAnswered {
                reason: format!(
                    "past the playbook's max_instances ({max}): the first {max} instances in id order are answered"
                ),
                instance_id: id,
            });
            continue;
        }
        let member = member_finding(finding, &id);
        let steps = steps_where(&member, playbook, settings, |s| s.spec().needs_instance)?;
        sections.push(InstanceSection {
            instance_id: id,
            steps,
        });
    }
    Ok((
        shared_steps,
        SequencePlan {
            uid: view.uid,
            max_instances: max,
            sections,
            not_answered,
            shared: view.shared,
            dropped: view.dropped,
        },
    ))
}

/// [`steps`] for the playbook's steps that `keep` accepts.
fn steps_where(
    finding: &Finding,
    playbook: &Playbook,
    settings: &Settings,
    keep: impl Fn(&Step) -> bool,
) -> Result<Vec<PlannedStep>, PlanError> {
    let mut ordered: Vec<&Step> = playbook
        .steps
        .value
        .iter()
        .map(|s| &s.value)
        .filter(|s| keep(s))
        .collect();
    ordered.sort_by_key(|s| !matches!(s, Step::Isolate(_)));
    // The replacement is launched before the instance is terminated, and a failed
    // launch stops the response: the isolated instance is still there, and a service
    // never has fewer instances than before (terminating first left an outage
    // whenever the launch template was gone, on every retry).
    let terminate = ordered.iter().position(|s| matches!(s, Step::Terminate(_)));
    let relaunch = ordered.iter().position(|s| matches!(s, Step::Relaunch(_)));
    let replaces_first = match (terminate, relaunch) {
        (Some(t), Some(r)) => {
            if r > t {
                let step = ordered.remove(r);
                ordered.insert(t, step);
            }
            true
        }
        _ => false,
    };
    let input = PlanInput {
        finding,
        playbook: playbook.name(),
        instance: finding.instance.as_ref(),
        settings,
    };
    ordered
        .into_iter()
        .map(|step| {
            if step.spec().needs_instance && finding.instance.is_none() {
                return Err(PlanError::NoInstance {
                    step: step.name(),
                    resource_type: finding
                        .resource_type
                        .clone()
                        .unwrap_or_else(|| "unknown".to_owned()),
                });
            }
            let mut planned = step.plan(&input)?;
            if replaces_first && matches!(step, Step::Relaunch(_)) {
                planned.on_failure = OnFailure::Abort;
            }
            Ok(planned)
        })
        .collect()
}
