//! `archive-finding`: archive the finding in GuardDuty once the response is done.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Declare, OnFailure, PlanError, PlanInput, StepSpec};
use crate::finding::Finding;

/// `archive-finding` as playbooks write it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[schemars(rename = "ArchiveFindingParams")]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// What to do when this step fails (default: continue).
    #[serde(default)]
    pub on_failure: Option<OnFailure>,
}

/// The `ArchiveFindings` call the executor makes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Planned {
    /// The detector: the deployment's (`Settings::detector_id`), else the finding's
    /// (`service.detectorId`, or the ARN's); null skips the step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detector_id: Option<String>,
    /// The finding.
    pub finding_id: String,
    /// Why the finding is not archived: it belongs to an attack sequence
    /// (`associatedAttackSequenceArn`), and GuardDuty's Extended Threat Detection
    /// leaves archived findings out of its sequences.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<String>,
}

/// Acts on no instance.
impl super::Instruction for Planned {}

impl Declare for Params {
    const SPEC: StepSpec = StepSpec {
        name: "archive-finding",
        summary: "Archive the finding in GuardDuty after the response.",
        destructive: false,
        reversible: true,
        once: true,
        needs_instance: false,
        needs_live_instance: false,
        evidence: false,
        needs_evidence: false,
        describes_instance: false,
        ends_instance: false,
        default_on_failure: OnFailure::Continue,
        // No resource-level permission: the service authorization reference lists no
        // resource type for ArchiveFindings.
        iam_actions: &[super::Iam::on(
            "guardduty:ArchiveFindings",
            &[super::Resource::Any],
        )],
    };
    type Planned = Planned;

    fn on_failure(&self) -> Option<OnFailure> {
        self.on_failure
    }

    fn plan(&self, input: &PlanInput<'_>) -> Result<Planned, PlanError> {
        Ok(Planned {
            detector_id: input
                .settings
                .detector_id
                .clone()
                .or_else(|| detector_id(input.finding)),
            finding_id: input.finding.id.clone(),
            skip_reason: attack_sequence(input.finding).map(|arn| {
                format!(
                    "the finding belongs to attack sequence {arn}: archived findings are left out of Extended Threat Detection"
                )
            }),
        })
    }
}

/// The attack sequence the finding belongs to: the finding's top-level
/// `associatedAttackSequenceArn` (the API model's `Finding.AssociatedAttackSequenceArn`),
/// escaped for reports.
pub fn attack_sequence(f: &Finding) -> Option<String> {
    f.attack_sequence_arn
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .map(|s| crate::text::escape(s).into_owned())
}

/// The detector id: `service.detectorId`, or the ARN's `detector/<id>/finding/...`.
fn detector_id(f: &Finding) -> Option<String> {
    if let Some(id) = f.detector_id.as_deref() {
        return Some(id.to_owned());
    }
    let arn = f.arn.as_deref()?;
    let rest = &arn[arn.find("detector/")? + "detector/".len()..];
    rest.split('/').next().map(str::to_owned)
}

impl fmt::Display for Planned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(reason) = &self.skip_reason {
            return write!(f, "{} (not archived: {reason})", self.finding_id);
        }
        match &self.detector_id {
            Some(d) => write!(f, "{} in detector {d}", self.finding_id),
            None => write!(f, "{} (no detector id: skipped)", self.finding_id),
        }
    }
}
