//! What a response did: every step with its outcome, duration and resources.

use responder_core::plan::NotAnswered;
use responder_core::sequence::SharedResource;
use serde::Serialize;

/// The result of one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

/// One step's report.
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

/// The overall result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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

/// The report of one response.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sections: Vec<SectionReport>,
    /// An attack sequence: the instances the plan did not answer, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_answered: Vec<NotAnswered>,
    /// An attack sequence: the resources its members share (the likely common cause).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shared: Vec<SharedResource>,
}

/// What the response did on one instance of an attack sequence.
#[derive(Debug, Clone, PartialEq, Serialize)]
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

impl Report {
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
