//! `capture-console-output`: the instance's serial console output, kept in the report.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Declare, OnFailure, PlanError, PlanInput, StepSpec};

/// `capture-console-output` as playbooks write it.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[schemars(rename = "CaptureConsoleOutputParams")]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Ask for the latest output (Nitro) rather than the buffered one.
    pub latest: bool,
    /// What to do when this step fails (default: continue).
    pub on_failure: Option<OnFailure>,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            latest: true,
            on_failure: None,
        }
    }
}

/// The console output the executor reads (`GetConsoleOutput`; the last 32 KiB kept).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Planned {
    /// The instance.
    pub instance_id: String,
    /// `Latest=true`.
    pub latest: bool,
}

impl super::Instruction for Planned {
    fn instance(&self) -> &str {
        &self.instance_id
    }
}

impl Declare for Params {
    const SPEC: StepSpec = StepSpec {
        name: "capture-console-output",
        summary: "Keep the instance's console output in the report.",
        destructive: false,
        reversible: true,
        once: true,
        needs_instance: true,
        needs_live_instance: true,
        evidence: false,
        needs_evidence: false,
        describes_instance: false,
        ends_instance: false,
        default_on_failure: OnFailure::Continue,
        iam_actions: &[super::Iam::on(
            "ec2:GetConsoleOutput",
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
            latest: self.latest,
        })
    }
}

impl fmt::Display for Planned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} console output",
            self.instance_id,
            if self.latest { "latest" } else { "buffered" }
        )
    }
}
