//! `detach-from-asg`: take the instance out of its Auto Scaling group, so the group
//! neither replaces nor terminates it while it is examined.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Declare, OnFailure, PlanError, PlanInput, StepSpec};

/// `detach-from-asg` as playbooks write it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[schemars(rename = "DetachFromAsgParams")]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Lower the group's desired capacity (default: no, so the group launches a replacement).
    pub decrement_desired_capacity: bool,
    /// What to do when this step fails (default: abort).
    pub on_failure: Option<OnFailure>,
}

/// The detach the executor carries out, from the group Auto Scaling says the instance
/// is in now (the finding's group is only shown in the plan's `observed` part).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Planned {
    /// The instance.
    pub instance_id: String,
    /// `ShouldDecrementDesiredCapacity`.
    pub decrement_desired_capacity: bool,
}

impl super::Instruction for Planned {
    fn instance(&self) -> &str {
        &self.instance_id
    }
}

impl Declare for Params {
    const SPEC: StepSpec = StepSpec {
        name: "detach-from-asg",
        summary: "Detach the instance from its Auto Scaling group.",
        destructive: true,
        reversible: true,
        once: true,
        needs_instance: true,
        needs_live_instance: true,
        evidence: false,
        needs_evidence: false,
        describes_instance: false,
        ends_instance: false,
        default_on_failure: OnFailure::Abort,
        iam_actions: &[
            super::Iam::read("autoscaling:DescribeAutoScalingInstances"),
            // No condition: the group is the one the instance belongs to.
            super::Iam::on(
                "autoscaling:DetachInstances",
                &[super::Resource::AutoScalingGroup],
            ),
        ],
    };
    type Planned = Planned;

    fn on_failure(&self) -> Option<OnFailure> {
        self.on_failure
    }

    fn plan(&self, input: &PlanInput<'_>) -> Result<Planned, PlanError> {
        Ok(Planned {
            instance_id: input.instance_id(),
            decrement_desired_capacity: self.decrement_desired_capacity,
        })
    }
}

impl fmt::Display for Planned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} out of its Auto Scaling group ({})",
            self.instance_id,
            if self.decrement_desired_capacity {
                "capacity lowered"
            } else {
                "the group launches a replacement"
            }
        )
    }
}
