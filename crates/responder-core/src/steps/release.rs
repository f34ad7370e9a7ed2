//! `release`: undo an isolation and a profile revocation from what they recorded.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Declare, OnFailure, PlanError, PlanInput, StepSpec};

/// `release` as playbooks write it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[schemars(rename = "ReleaseParams")]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// What to do when this step fails (default: abort).
    #[serde(default)]
    pub on_failure: Option<OnFailure>,
}

/// The release the executor carries out: every ENI back into the groups the ledger
/// recorded when it was isolated, the recorded instance profile back, the `isolated`
/// marker removed.
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
        name: "release",
        summary: "Undo an isolation and a profile revocation from the recorded state.",
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
            // Back into the ENI's original groups, whichever they are.
            super::Iam::on(
                "ec2:ModifyNetworkInterfaceAttribute",
                &[super::Resource::NetworkInterface],
            )
            .when(&[super::iam::ENI_GROUPS_ONLY]),
            super::Iam::on(
                "ec2:ModifyNetworkInterfaceAttribute",
                &[super::Resource::SecurityGroup],
            ),
            super::Iam::on(
                "ec2:AssociateIamInstanceProfile",
                &[super::Resource::Instance],
            ),
            // The responder's own marker keys only, named.
            super::Iam::on("ec2:DeleteTags", &[super::Resource::Instance])
                .when(&[super::iam::TAG_KEYS_SENT, super::iam::ONLY_OWN_TAG_KEYS]),
            super::Iam::on("iam:PassRole", &[super::Resource::InstanceRole])
                .when(&[super::iam::PASSED_TO_EC2]),
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
        write!(
            f,
            "{}: recorded groups and instance profile restored",
            self.instance_id
        )
    }
}
