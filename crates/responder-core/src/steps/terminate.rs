//! `terminate`: terminate the instance, once the evidence is kept.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Check, Context, Declare, OnFailure, PlanError, PlanInput, Step, StepSpec};
use crate::diagnostic::Acknowledgement;

/// `terminate` as playbooks write it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[schemars(rename = "TerminateParams")]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Lift termination protection first. Without it, a protected instance stays.
    pub lift_termination_protection: bool,
    /// What to do when this step fails (default: abort).
    pub on_failure: Option<OnFailure>,
}

/// The termination the executor carries out (already-terminated counts as done).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Planned {
    /// The instance to terminate.
    pub instance_id: String,
    /// Turn termination protection off first when it is on.
    pub lift_termination_protection: bool,
}

impl super::Instruction for Planned {
    fn instance(&self) -> &str {
        &self.instance_id
    }
}

impl Declare for Params {
    const SPEC: StepSpec = StepSpec {
        name: "terminate",
        summary: "Terminate the instance.",
        destructive: true,
        reversible: false,
        once: true,
        needs_instance: true,
        needs_live_instance: false,
        evidence: false,
        needs_evidence: true,
        describes_instance: false,
        ends_instance: true,
        default_on_failure: OnFailure::Abort,
        iam_actions: &[
            super::Iam::read("ec2:DescribeInstances"),
            super::Iam::read("ec2:DescribeInstanceAttribute"),
            super::iam::modify_instance(&[super::iam::attributes(&["disableApiTermination"])]),
            // No tag condition: a tag the role itself writes protects nothing. What
            // may be terminated is decided from the ledger and live state; exempt
            // instances are refused by DENIES.
            super::Iam::on("ec2:TerminateInstances", &[super::Resource::Instance]),
        ],
    };
    type Planned = Planned;

    fn on_failure(&self) -> Option<OnFailure> {
        self.on_failure
    }

    fn plan(&self, input: &PlanInput<'_>) -> Result<Planned, PlanError> {
        Ok(Planned {
            instance_id: input.instance_id(),
            lift_termination_protection: self.lift_termination_protection,
        })
    }

    fn validate(&self, context: &Context<'_>) -> Vec<Check> {
        let mut out = Vec::new();
        if !context.after("snapshot")
            && !context
                .acknowledge
                .contains(&Acknowledgement::TerminateWithoutSnapshot)
        {
            out.push(Check::warning(
                "terminate without an earlier snapshot destroys the evidence (add a snapshot step, or acknowledge terminate-without-snapshot)",
            ));
        }
        let protects = context
            .earlier
            .iter()
            .any(|s| matches!(s, Step::Protect(p) if p.termination));
        if protects && !self.lift_termination_protection {
            out.push(Check::error(
                "an earlier protect step enables termination protection, so this terminate would fail; set lift_termination_protection: true",
            ));
        }
        out
    }
}

impl fmt::Display for Planned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.instance_id)?;
        if self.lift_termination_protection {
            f.write_str(", lifting termination protection")?;
        }
        Ok(())
    }
}
