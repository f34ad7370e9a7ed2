//! `stop`: stop the instance (memory is lost; disks are kept).

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Declare, OnFailure, PlanError, PlanInput, StepSpec};

/// `stop` as playbooks write it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[schemars(rename = "StopParams")]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Force the stop (no clean OS shutdown).
    pub force: bool,
    /// What to do when this step fails (default: abort).
    pub on_failure: Option<OnFailure>,
}

/// The stop the executor carries out (stopped or stopping counts as done).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Planned {
    /// The instance.
    pub instance_id: String,
    /// `Force=true`.
    pub force: bool,
}

impl super::Instruction for Planned {
    fn instance(&self) -> &str {
        &self.instance_id
    }
}

impl Declare for Params {
    const SPEC: StepSpec = StepSpec {
        name: "stop",
        summary: "Stop the instance (memory is lost; disks are kept).",
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
        iam_actions: &[super::Iam::on(
            "ec2:StopInstances",
            &[super::Resource::Instance],
        )],
    };
    type Planned = Planned;

    fn on_failure(&self) -> Option<OnFailure> {
        self.on_failure
    }

    fn plan(&self, input: &PlanInput<'_>) -> Result<Planned, PlanError> {
        Ok(Planned {
            instance_id: input.instance_id(),
            force: self.force,
        })
    }
}

impl fmt::Display for Planned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.instance_id)?;
        if self.force {
            f.write_str(", forced")?;
        }
        Ok(())
    }
}
