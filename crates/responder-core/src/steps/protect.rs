//! `protect`: termination protection, and shutdown from inside the instance stops it
//! rather than terminating it (the evidence survives a `shutdown -h`).

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Declare, OnFailure, PlanError, PlanInput, StepSpec};

/// `protect` as playbooks write it.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[schemars(rename = "ProtectParams")]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Enable termination protection.
    pub termination: bool,
    /// Set instance-initiated shutdown behaviour to `stop` (not `terminate`).
    pub shutdown_behavior_stop: bool,
    /// What to do when this step fails (default: abort).
    pub on_failure: Option<OnFailure>,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            termination: true,
            shutdown_behavior_stop: true,
            on_failure: None,
        }
    }
}

/// The instance attributes the executor sets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Planned {
    /// The instance.
    pub instance_id: String,
    /// `DisableApiTermination=true`.
    pub termination: bool,
    /// `InstanceInitiatedShutdownBehavior=stop`.
    pub shutdown_behavior_stop: bool,
}

impl super::Instruction for Planned {
    fn instance(&self) -> &str {
        &self.instance_id
    }
}

impl Declare for Params {
    const SPEC: StepSpec = StepSpec {
        name: "protect",
        summary: "Enable termination protection and set shutdown behaviour to stop.",
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
            super::Iam::read("ec2:DescribeInstanceAttribute"),
            super::iam::modify_instance(&[super::iam::attributes(&[
                "disableApiTermination",
                "instanceInitiatedShutdownBehavior",
            ])]),
        ],
    };
    type Planned = Planned;

    fn on_failure(&self) -> Option<OnFailure> {
        self.on_failure
    }

    fn plan(&self, input: &PlanInput<'_>) -> Result<Planned, PlanError> {
        Ok(Planned {
            instance_id: input.instance_id(),
            termination: self.termination,
            shutdown_behavior_stop: self.shutdown_behavior_stop,
        })
    }
}

impl fmt::Display for Planned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut what = Vec::new();
        if self.termination {
            what.push("termination protection");
        }
        if self.shutdown_behavior_stop {
            what.push("shutdown stops");
        }
        write!(f, "{}: {}", self.instance_id, what.join(", "))
    }
}
