//! What a response did: every step with its outcome, duration and resources.

use responder_core::Finding;
use responder_core::plan::NotAnswered;
use responder_core::sequence::SharedResource;
use serde::{Deserialize, Serialize};

/// The result of one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// The step changed something.
    Done,
    /// The state it would create was already there.
    AlreadyDone {
        /// What was found.
        detail: String,
    },
    /// Not run.
    Skipped {
        /// Why.
        reason: String,
    },
    /// DryRun: the call would have succeeded.
    WouldSucceed,
    /// DryRun: the caller lacks permission.
    Denied {
        /// The AWS error code.
        code: String,
        /// The AWS message.
        message: String,
    },
    /// The step failed.
    Failed {
        /// The AWS error code, or `Internal`.
        code: String,
        /// What went wrong.
        message: String,
    },
}

impl Outcome {
    /// True for failures (and denials, which would be failures when enforced).
    pub fn is_failure(&self) -> bool {
        matches!(self, Outcome::Failed { .. } | Outcome::Denied { .. })
    }

    /// The outcome's name as the JSON report writes it (`already-done`): for logs
    /// and the ledger.
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::AlreadyDone { .. } => "already-done",
            Outcome::Skipped { .. } => "skipped",
            Outcome::WouldSucceed => "would-succeed",
            Outcome::Denied { .. } => "denied",
            Outcome::Failed { .. } => "failed",
        }
    }
}

/// One step's report. Read back from JSON (a report the function returned) only
/// with an action the step registry knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepReport {
    /// The step.
    pub action: &'static str,
    /// What happened.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Wall time of the step in milliseconds.
    pub duration_ms: u64,
    /// Resources the step created or changed (ids).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// Notes for people (e.g. "the network ACL affects every instance in subnet-1").
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Captured data, such as console output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

/// A [`StepReport`] as its JSON form reads, before its step name is checked.
#[derive(Deserialize)]
struct StepReportRead {
    action: String,
    #[serde(flatten)]
    outcome: Outcome,
    duration_ms: u64,
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    notes: Vec<String>,
    output: Option<String>,
}

impl<'de> Deserialize<'de> for StepReport {
    /// The step's name is the step registry's: an unknown one is an error.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<StepReport, D::Error> {
        let r = StepReportRead::deserialize(d)?;
        let spec = responder_core::steps::spec_named(&r.action).ok_or_else(|| {
            serde::de::Error::unknown_variant(&r.action, responder_core::steps::NAMES)
        })?;
        Ok(StepReport {
            action: spec.name,
            outcome: r.outcome,
            duration_ms: r.duration_ms,
            resources: r.resources,
            notes: r.notes,
            output: r.output,
        })
    }
}

/// The overall result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Every step done, already done or deliberately skipped.
    Succeeded,
    /// No playbook answered the finding: nothing to do.
    NoAction,
    /// The instance no longer exists; the response ended cleanly.
    InstanceGone,
    /// Dry run: every call that has a DryRun would succeed.
    DryRunPassed,
    /// A step failed or was denied: the event must be retried or dead-lettered.
    Failed,
    /// GuardDuty does not confirm the finding (unknown, archived, or about another
    /// account, type or resource than the event says): no action. Not a failure: a
    /// retry would be answered the same way.
    Unverified,
    /// The response kept its reversible steps and withheld the others (a sample
    /// finding, the blast-radius budget): `reason` says why.
    Withheld,
}

/// The report of one response (read back from its JSON form too: what the function
/// returns).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Finding id.
    pub finding_id: String,
    /// Finding type.
    pub finding_type: String,
    /// The playbook, if one answered.
    pub playbook: Option<String>,
    /// True when every mutating call was made with `DryRun=true` (or not made).
    pub dry_run: bool,
    /// Overall result.
    pub status: Status,
    /// Why the response did less than its playbook says (unverified, withheld).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The account the response acted in (the finding's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The region the response acted in (the finding's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The steps, in the order they ran.
    pub steps: Vec<StepReport>,
    /// Sequential API round trips before every ENI was isolated (null without isolate).
    pub round_trips_to_isolation: Option<u32>,
    /// Milliseconds from the start until every ENI was isolated.
    pub ms_to_isolation: Option<u64>,
    /// Wall time of the whole response in milliseconds.
    pub duration_ms: u64,
    /// An attack sequence: one section per instance answered, in the plan's order
    /// (`steps` are then the steps run once for the sequence). Absent for every
    /// other finding, whose report is unchanged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sections: Vec<SectionReport>,
    /// An attack sequence: the instances the plan did not answer, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_answered: Vec<NotAnswered>,
    /// An attack sequence: the resources its members share (the likely common cause).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shared: Vec<SharedResource>,
}

/// What the response did on one instance of an attack sequence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SectionReport {
    /// The instance.
    pub instance_id: String,
    /// Its result: `instance-gone` when it no longer exists, `no-action` when its
    /// live tags exempt it, `failed` when a step failed (the whole response then
    /// fails and is retried; the other instances' steps still ran).
    pub status: Status,
    /// Why the section did less than the playbook says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Its steps, in the order they ran.
    pub steps: Vec<StepReport>,
    /// Sequential API round trips before its ENIs were isolated.
    pub round_trips_to_isolation: Option<u32>,
    /// Milliseconds from the start of the answer until its ENIs were isolated.
    pub ms_to_isolation: Option<u64>,
    /// Wall time of the section in milliseconds.
    pub duration_ms: u64,
}

impl SectionReport {
    /// The section of `instance_id` from the report of its response.
    pub fn of(instance_id: String, report: Report) -> SectionReport {
        SectionReport {
            instance_id,
            status: report.status,
            reason: report.reason,
            steps: report.steps,
            round_trips_to_isolation: report.round_trips_to_isolation,
            ms_to_isolation: report.ms_to_isolation,
            duration_ms: report.duration_ms,
        }
    }
}

/// An attack sequence as the steps run once after its sections see it (`notify`
/// publishes it): the sequence, each section's result and steps in short, the
/// instances not answered and the shared cause.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SequenceSummary {
    /// The sequence's uid.
    pub uid: Option<String>,
    /// One per instance section, in the plan's order.
    pub sections: Vec<SectionSummary>,
    /// The instances the plan did not answer, and why.
    pub not_answered: Vec<NotAnswered>,
    /// The resources the members share.
    pub shared: Vec<SharedResource>,
}

/// One section of a [`SequenceSummary`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SectionSummary {
    /// The instance.
    pub instance_id: String,
    /// Its result.
    pub status: Status,
    /// Why it did less than the playbook says.
    pub reason: Option<String>,
    /// Its steps: each one's name and outcome.
    pub steps: Vec<StepSummary>,
}

/// One step of a [`SectionSummary`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepSummary {
    /// The step.
    pub action: &'static str,
    /// Its outcome ([`Outcome::kind`]).
    pub outcome: &'static str,
}

impl SectionSummary {
    /// The summary of a section's report.
    pub fn of(section: &SectionReport) -> SectionSummary {
        SectionSummary {
            instance_id: section.instance_id.clone(),
            status: section.status,
            reason: section.reason.clone(),
            steps: section
                .steps
                .iter()
                .map(|s| StepSummary {
                    action: s.action,
                    outcome: s.outcome.kind(),
                })
                .collect(),
        }
    }
}

impl Report {
    /// The report of a response to `finding` answered by `playbook` (`None`: no
    /// playbook) with `status`, as it starts: no step, no dry run, no reason, no
    /// time. Every report is made here; the caller sets what else it knows.
    pub fn new(finding: &Finding, playbook: Option<String>, status: Status) -> Report {
        Report {
            finding_id: finding.id.clone(),
            finding_type: finding.finding_type.name.clone(),
            playbook,
            dry_run: false,
            status,
            reason: None,
            account: finding.account_id.clone(),
            region: finding.region.clone(),
            steps: Vec::new(),
            round_trips_to_isolation: None,
            ms_to_isolation: None,
            duration_ms: 0,
            sections: Vec::new(),
            not_answered: Vec::new(),
            shared: Vec::new(),
        }
    }

    /// Every step of the response with the instance of its section: the steps run
    /// once (`None`), then each attack-sequence section's, in order.
    pub fn all_steps(&self) -> impl Iterator<Item = (Option<&str>, &StepReport)> {
        self.steps
            .iter()
            .map(|s| (None, s))
            .chain(self.sections.iter().flat_map(|sec| {
                sec.steps
                    .iter()
                    .map(|s| (Some(sec.instance_id.as_str()), s))
            }))
    }

    /// True when the response failed and the event must not be considered handled.
    pub fn is_failure(&self) -> bool {
        self.status == Status::Failed
    }
}
