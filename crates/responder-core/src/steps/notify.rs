//! `notify`: publish the report to an SNS topic, once per finding.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Check, Context, Declare, OnFailure, PlanError, PlanInput, StepSpec};
use crate::template;

/// SNS subjects are shorter than this (see [`crate::text::sns_subject`]).
pub const MAX_SUBJECT_CHARS: usize = crate::text::SNS_SUBJECT_LIMIT;

/// `notify` as playbooks write it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[schemars(rename = "NotifyParams")]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// SNS topic ARN; default: the deployment's configured topic.
    pub topic_arn: Option<String>,
    /// Message subject (placeholders allowed; made one line and cut below 100 characters).
    pub subject: Option<String>,
    /// What to do when this step fails (default: continue).
    pub on_failure: Option<OnFailure>,
}

/// The `Publish` call the executor makes, with the report so far as the message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Planned {
    /// The topic; null means the deployment's configured topic (none: skipped).
    pub topic_arn: Option<String>,
    /// The subject, placeholders filled, as SNS accepts it: one line, control and bidi
    /// characters escaped, fewer than 100 characters.
    pub subject: String,
}

/// Acts on no instance.
impl super::Instruction for Planned {}

impl Declare for Params {
    const SPEC: StepSpec = StepSpec {
        name: "notify",
        summary: "Publish the report to an SNS topic.",
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
        iam_actions: &[
            super::Iam::on("sns:Publish", &[super::Resource::ReportTopic]),
            super::Iam::read("ec2:DescribeInstances"),
            super::Iam::on("ec2:CreateTags", &[super::Resource::Instance])
                .when(&[super::iam::TAG_KEYS_SENT, super::iam::ONLY_OWN_TAG_KEYS]),
        ],
    };
    type Planned = Planned;

    fn on_failure(&self) -> Option<OnFailure> {
        self.on_failure
    }

    fn plan(&self, input: &PlanInput<'_>) -> Result<Planned, PlanError> {
        let f = input.finding;
        let subject = match &self.subject {
            Some(s) => input.render(Self::SPEC.name, s)?,
            None => match f.instance_id() {
                Some(i) => format!(
                    "GuardDuty {} on {i}: {}",
                    f.finding_type.name, input.playbook
                ),
                None => format!("GuardDuty {}: {}", f.finding_type.name, input.playbook),
            },
        };
        Ok(Planned {
            topic_arn: self.topic_arn.clone(),
            subject: crate::text::sns_subject(&subject),
        })
    }

    fn validate(&self, _context: &Context<'_>) -> Vec<Check> {
        let mut out = Vec::new();
        if let Some(s) = &self.subject
            && let Err(e) = template::check(s)
        {
            out.push(Check::error(format!("subject: {e}")));
        }
        if let Some(arn) = &self.topic_arn
            && !(arn.starts_with("arn:")
                && arn.split(':').nth(2) == Some("sns")
                && arn.split(':').count() == 6)
        {
            out.push(Check::error(format!(
                "topic_arn {arn:?} is not an SNS topic ARN"
            )));
        }
        out
    }
}

impl fmt::Display for Planned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:?}",
            self.topic_arn.as_deref().unwrap_or("(configured topic)"),
            self.subject
        )
    }
}
