//! `snapshot`: crash-consistent snapshots of every EBS volume of the instance, tagged
//! with the finding, as evidence.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Check, Context, Declare, OnFailure, PlanError, PlanInput, StepSpec, check_tags};
use crate::tags;

/// `snapshot` as playbooks write it.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[schemars(rename = "SnapshotParams")]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Wait until the snapshots complete before the next step.
    pub wait: bool,
    /// Upper bound on that wait, in seconds.
    #[schemars(range(min = 1, max = 3600))]
    pub wait_timeout_seconds: u32,
    /// Set `DeleteOnTermination=false` on every volume first, so a terminate keeps them.
    pub preserve_volumes: bool,
    /// Extra tags on the snapshots (values may use `{finding.id}` and other placeholders).
    pub tags: BTreeMap<String, String>,
    /// What to do when this step fails (default: abort).
    pub on_failure: Option<OnFailure>,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            wait: false,
            wait_timeout_seconds: 600,
            preserve_volumes: true,
            tags: BTreeMap::new(),
            on_failure: None,
        }
    }
}

/// The snapshots the executor takes: one `CreateSnapshots` call with the instance
/// as source, unless snapshots tagged with this finding and instance exist.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Planned {
    /// The instance whose volumes are snapshotted.
    pub instance_id: String,
    /// Tags on every snapshot: the markers, the instance id, and the playbook's own.
    pub tags: BTreeMap<String, String>,
    /// Wait for the snapshots to complete.
    pub wait: bool,
    /// Bound on that wait, in seconds.
    pub wait_timeout_seconds: u32,
    /// Set `DeleteOnTermination=false` on every volume first.
    pub preserve_volumes: bool,
}

impl super::Instruction for Planned {
    fn instance(&self) -> &str {
        &self.instance_id
    }
}

impl Declare for Params {
    const SPEC: StepSpec = StepSpec {
        name: "snapshot",
        summary: "Snapshot every EBS volume of the instance (evidence).",
        destructive: false,
        reversible: true,
        once: true,
        needs_instance: true,
        needs_live_instance: true,
        evidence: true,
        needs_evidence: false,
        describes_instance: false,
        ends_instance: false,
        default_on_failure: OnFailure::Abort,
        iam_actions: &[
            super::Iam::read("ec2:DescribeInstances"),
            super::Iam::read("ec2:DescribeSnapshots"),
            super::iam::modify_instance(&[super::iam::attributes(&["blockDeviceMapping"])]),
            // DeleteOnTermination is authorized on the volumes too, which carry no
            // `ec2:Attribute`.
            super::Iam::on("ec2:ModifyInstanceAttribute", &[super::Resource::Volume]),
            // Snapshots only with the finding marker, which the duplicate clean-up
            // requires (request tags are in the context of the snapshots they tag).
            super::Iam::on("ec2:CreateSnapshots", &[super::Resource::Snapshot])
                .when(&[super::iam::SNAPSHOT_MARKED]),
            super::Iam::on(
                "ec2:CreateSnapshots",
                &[super::Resource::Instance, super::Resource::Volume],
            ),
            super::Iam::on("ec2:CreateTags", &[super::Resource::Snapshot])
                .when(&[super::iam::created_by(&["CreateSnapshots"])]),
            super::Iam::on("ec2:DeleteSnapshot", &[super::Resource::Snapshot])
                .when(&[super::iam::MARKED_SNAPSHOT]),
        ],
    };
    type Planned = Planned;

    fn on_failure(&self) -> Option<OnFailure> {
        self.on_failure
    }

    fn plan(&self, input: &PlanInput<'_>) -> Result<Planned, PlanError> {
        let instance_id = input.instance_id();
        let mut tags = tags::markers(input.finding, input.playbook);
        tags.insert(tags::INSTANCE_ID.to_owned(), instance_id.clone());
        tags.extend(input.render_tags(Self::SPEC.name, &self.tags)?);
        Ok(Planned {
            instance_id,
            tags,
            wait: self.wait,
            wait_timeout_seconds: self.wait_timeout_seconds,
            preserve_volumes: self.preserve_volumes,
        })
    }

    fn validate(&self, _context: &Context<'_>) -> Vec<Check> {
        check_tags(&self.tags)
    }
}

impl fmt::Display for Planned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: every volume", self.instance_id)?;
        if self.preserve_volumes {
            f.write_str(", volumes kept on terminate")?;
        }
        if self.wait {
            write!(
                f,
                ", waiting up to {} s for completion",
                self.wait_timeout_seconds
            )?;
        }
        Ok(())
    }
}
