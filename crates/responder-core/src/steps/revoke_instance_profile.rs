//! `revoke-instance-profile`: remove the instance's IAM role (its credentials), after
//! recording it so that `release` can restore it.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Declare, OnFailure, PlanError, PlanInput, StepSpec};

/// `revoke-instance-profile` as playbooks write it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[schemars(rename = "RevokeInstanceProfileParams")]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// What to do when this step fails (default: abort).
    #[serde(default)]
    pub on_failure: Option<OnFailure>,
}

/// The revocation the executor carries out: the association EC2 shows now (the
/// finding's profile is only shown in the plan's `observed` part).
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
        name: "revoke-instance-profile",
        summary: "Remove the instance's IAM instance profile (its credentials).",
        destructive: true,
        reversible: false,
        once: true,
        needs_instance: true,
        needs_live_instance: true,
        evidence: false,
        needs_evidence: false,
        describes_instance: false,
        ends_instance: false,
        default_on_failure: OnFailure::Abort,
        iam_actions: &[
            super::Iam::read("ec2:DescribeIamInstanceProfileAssociations"),
            super::Iam::on(
                "ec2:DisassociateIamInstanceProfile",
                &[super::Resource::Instance],
            ),
            super::Iam::on("ec2:CreateTags", &[super::Resource::Instance])
                .when(&[super::iam::TAG_KEYS_SENT, super::iam::ONLY_OWN_TAG_KEYS]),
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
        write!(f, "{}: its instance profile removed", self.instance_id)
    }
}
