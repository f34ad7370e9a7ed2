//! The state of one response while its steps run, and what a step returns.

use std::fmt::Display;
use std::time::{Duration, Instant};

use responder_core::Finding;
use responder_core::plan::Observed;

use crate::call::CallError;
use crate::clients::Clients;
use crate::group_cache::GroupCache;
use crate::instance::{InstanceView, describe};
use crate::report::{Outcome, StepReport};

/// How long a step that may race with a concurrent delivery of the same finding
/// waits before checking for its twin.
const SETTLE: Duration = Duration::from_millis(1000);

/// Why a step whose API has no DryRun was not called in a dry run.
const NO_DRY_RUN: &str = "not called: this API has no DryRun";

/// How the executor runs.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// Make every mutating call with `DryRun=true` (calls without DryRun are not made).
    pub dry_run: bool,
    /// The SNS topic for `notify` steps that name none.
    pub topic_arn: Option<String>,
}

/// Mutable state of one response.
pub(crate) struct Ctx<'a> {
    pub clients: &'a Clients,
    pub options: &'a ExecOptions,
    pub groups: &'a GroupCache,
    pub finding: &'a Finding,
    /// The instance as the finding saw it (the plan's `observed`): only `isolate`'s
    /// warm fast path and its raced-describe fallback read it; live state wins
    /// everywhere else.
    pub observed: Option<&'a Observed>,
    pub dry_run: bool,
    /// The instance as last described; `None` once a step changed it.
    pub view: Option<InstanceView>,
    /// The latest view of the instance while it was not terminated (relaunch copies it).
    pub live: Option<InstanceView>,
    /// Set once a describe said the instance does not exist.
    pub gone: bool,
    pub round_trips_to_isolation: Option<u32>,
    pub ms_to_isolation: Option<u64>,
    pub started: Instant,
    /// The first evidence step that failed: the steps that need evidence are withheld.
    pub evidence_failed: Option<&'static str>,
    /// This response terminated the instance.
    pub terminated: bool,
    /// The steps so far (`notify` publishes them).
    pub reports: Vec<StepReport>,
}

impl<'a> Ctx<'a> {
    /// The state at the start of a response.
    pub fn new(
        clients: &'a Clients,
        options: &'a ExecOptions,
        groups: &'a GroupCache,
        finding: &'a Finding,
        observed: Option<&'a Observed>,
        dry_run: bool,
        started: Instant,
    ) -> Ctx<'a> {
        Ctx {
            clients,
            options,
            groups,
            finding,
            observed,
            dry_run,
            view: None,
            live: None,
            gone: false,
            round_trips_to_isolation: None,
            ms_to_isolation: None,
            started,
            evidence_failed: None,
            terminated: false,
            reports: Vec::new(),
        }
    }

    /// The EC2 client.
    pub fn ec2(&self) -> &'a aws_sdk_ec2::Client {
        &self.clients.ec2
    }

    /// The instance view, describing it once if no step did yet.
    pub async fn view(&mut self, id: &str) -> Result<Option<&InstanceView>, CallError> {
        if self.view.is_none() && !self.gone {
            match describe(self.ec2(), id).await? {
                Some(v) => {
                    if !v.is_terminated() {
                        self.live = Some(v.clone());
                    }
                    self.view = Some(v)
                }
                None => self.gone = true,
            }
        }
        Ok(self.view.as_ref())
    }

    /// Forgets the view after a step changed the instance.
    pub fn invalidate(&mut self) {
        self.view = None;
    }

    /// Records, once, how long it took until every ENI was isolated.
    pub fn isolated_after(&mut self, round_trips: u32) {
        if self.round_trips_to_isolation.is_none() {
            self.round_trips_to_isolation = Some(round_trips);
            self.ms_to_isolation = Some(self.started.elapsed().as_millis() as u64);
        }
    }

    /// Waits until a concurrent delivery of the same finding would have done its
    /// twin of what this step just did, so that the step can see it.
    pub async fn settle(&self) {
        tokio::time::sleep(SETTLE).await;
    }
}

/// One phase of a long step: `Ok` goes on to the next phase, `Err` ends the step
/// with that result (a failure, a skip, an idempotent "already done", a dry run's answer).
pub(crate) type Phase<T> = Result<T, StepResult>;

/// What a step returns before timing is added.
pub(crate) struct StepResult {
    pub outcome: Outcome,
    pub resources: Vec<String>,
    pub notes: Vec<String>,
    pub output: Option<String>,
}

impl StepResult {
    pub fn new(outcome: Outcome) -> StepResult {
        StepResult {
            outcome,
            resources: Vec::new(),
            notes: Vec::new(),
            output: None,
        }
    }

    pub fn done(resources: Vec<String>) -> StepResult {
        StepResult {
            resources,
            ..StepResult::new(Outcome::Done)
        }
    }

    pub fn already(detail: impl Into<String>) -> StepResult {
        StepResult::new(Outcome::AlreadyDone {
            detail: detail.into(),
        })
    }

    pub fn skipped(reason: impl Into<String>) -> StepResult {
        StepResult::new(Outcome::Skipped {
            reason: reason.into(),
        })
    }

    /// A dry run of a step whose API has no DryRun: skipped, saying what it would do.
    pub fn no_dry_run(would: impl Display) -> StepResult {
        StepResult::skipped(format!("{NO_DRY_RUN} ({would})"))
    }

    /// A failure of our own (no AWS call failed).
    pub fn internal(message: impl Into<String>) -> StepResult {
        StepResult::new(CallError::internal(message).failed())
    }

    pub fn from_error(e: &CallError, dry_run: bool) -> StepResult {
        StepResult::new(if dry_run {
            e.dry_run_outcome()
        } else {
            e.failed()
        })
    }

    pub fn note(mut self, note: impl Into<String>) -> StepResult {
        self.notes.push(note.into());
        self
    }
}
