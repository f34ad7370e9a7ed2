//! `deregister-from-target-groups`: no load balancer sends traffic to the instance.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Declare, OnFailure, PlanError, PlanInput, StepSpec};

/// `deregister-from-target-groups` as playbooks write it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[schemars(rename = "DeregisterFromTargetGroupsParams")]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// What to do when this step fails (default: abort).
    #[serde(default)]
    pub on_failure: Option<OnFailure>,
}

/// The deregistration the executor carries out, from every target group that lists
/// the instance now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Planned {
    /// The instance.
    pub instance_id: String,
}

impl super::Instruction for Planned {
    fn instance(&self) -> &str {
        &self.instance_id
    }
}

impl Declare for Params {
    const SPEC: StepSpec = StepSpec {
        name: "deregister-from-target-groups",
        summary: "Deregister the instance from every load-balancer target group.",
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
            super::Iam::read("elasticloadbalancing:DescribeTargetGroups"),
            super::Iam::read("elasticloadbalancing:DescribeTargetHealth"),
            // No condition: the target group is the one the instance is registered in.
            super::Iam::on(
                "elasticloadbalancing:DeregisterTargets",
                &[super::Resource::TargetGroup],
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
        })
    }
}

impl fmt::Display for Planned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} out of every target group", self.instance_id)
    }
}
