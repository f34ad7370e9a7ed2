//! The state of one response while its steps run, and what a step returns.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::time::Instant;

use aws_sdk_ec2::types::SecurityGroup;
use responder_core::Finding;
use responder_core::plan::Observed;
use serde_json::Value;

use crate::call::CallError;
use crate::clients::Clients;
use crate::instance::{InstanceView, describe};
use crate::ledger::{Finish, Ledger, RecordStatus, ResponseMeta, StepKey};
use crate::report::{Outcome, StepReport};

/// How many AWS calls of one kind a response makes at once (group lookups, ENI
/// moves): an event listing hundreds of ENIs or VPCs must not throttle the account.
pub(crate) const PARALLEL: usize = 8;

/// The responder's groups found in each VPC (by VPC id).
pub(crate) type GroupLookups = BTreeMap<String, Vec<SecurityGroup>>;

/// Group lookups made before the step that uses them, with the names looked up.
#[derive(Debug)]
pub(crate) struct PrefetchedGroups {
    pub names: Vec<String>,
    pub found: GroupLookups,
}

/// The instance part of the ledger key of a step that acts on no instance: not an
/// instance id's shape, so it never collides with one.
pub(crate) const NO_INSTANCE: &str = "none";

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
    pub finding: &'a Finding,
    /// The instance as GuardDuty's copy of the finding saw it (the plan's
    /// `observed`): the last resort for the groups and profile to restore; live
    /// state and the ledger win.
    pub observed: Option<&'a Observed>,
    /// What the responder recorded itself: claims, outcomes, undo state.
    pub ledger: Option<&'a Ledger>,
    /// Who runs this response (the Lambda request id): the owner of its claims.
    pub owner: &'a str,
    /// The invocation's deadline (Lambda's), which its claims are leased until.
    pub deadline: Option<std::time::SystemTime>,
    /// The response's identity in the ledger.
    pub meta: ResponseMeta,
    /// The instance the response is about (`""` when the finding names none).
    pub instance_id: String,
    /// The running step: its index in the plan and its name.
    pub step: (usize, &'static str),
    /// The responder's groups found in round 1 (the prefetch), by VPC, with the
    /// group names looked up.
    pub prefetched_groups: Option<PrefetchedGroups>,
    /// The ENIs' original groups as `isolate` determined them in this response.
    pub original_groups: Option<BTreeMap<String, Vec<String>>>,
    /// The instance profile `revoke-instance-profile` removed in this response.
    pub original_profile: Option<String>,
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
    /// An attack sequence's instance sections and shared cause, for the steps run
    /// once after them (`notify` publishes it).
    pub sequence: Option<Value>,
}

impl<'a> Ctx<'a> {
    /// The state at the start of a response.
    pub fn new(
        clients: &'a Clients,
        options: &'a ExecOptions,
        finding: &'a Finding,
        observed: Option<&'a Observed>,
        dry_run: bool,
        started: Instant,
    ) -> Ctx<'a> {
        Ctx {
            clients,
            options,
            finding,
            observed,
            ledger: None,
            owner: "",
            deadline: None,
            meta: ResponseMeta::of(finding, ""),
            instance_id: finding.instance_id().unwrap_or_default().to_owned(),
            step: (0, ""),
            prefetched_groups: None,
            original_groups: None,
            original_profile: None,
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
            sequence: None,
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

    /// The prefetched group lookups, once, when they cover these group names.
    pub fn take_prefetched_groups(&mut self, names: &[String]) -> Option<GroupLookups> {
        let looked_up = &self.prefetched_groups.as_ref()?.names;
        if !names.iter().all(|n| looked_up.contains(n)) {
            return None;
        }
        self.prefetched_groups.take().map(|p| p.found)
    }

    /// The ledger key of the running step. A step of a finding about no instance
    /// (an attack sequence's `notify`, run once) is keyed under [`NO_INSTANCE`]: the
    /// ledger refuses an empty id.
    pub fn step_key(&self) -> StepKey {
        StepKey {
            finding_id: self.finding.id.clone(),
            instance_id: if self.instance_id.is_empty() {
                NO_INSTANCE.to_owned()
            } else {
                self.instance_id.clone()
            },
            index: self.step.0,
            step: self.step.1.to_owned(),
        }
    }

    /// Records the running step's undo state in the ledger, first writer wins (a
    /// concurrent delivery recording the same step keeps the earlier record). No
    /// ledger, or a dry run: nothing is recorded.
    pub async fn record_state(&self, state: Value) -> Result<(), CallError> {
        let Some(ledger) = self.ledger.filter(|_| !self.dry_run) else {
            return Ok(());
        };
        let finish = Finish {
            status: RecordStatus::Done,
            outcome: "recorded".to_owned(),
            resources: Vec::new(),
            state,
        };
        ledger
            .record_once(&self.step_key(), &self.meta, finish)
            .await
            .map(|_| ())
            .map_err(ledger_error)
    }

    /// The undo state the ledger holds for the latest completed `step` on this
    /// instance, whatever the finding.
    pub async fn recorded_state(
        &self,
        instance_id: &str,
        step: &str,
    ) -> Result<Option<Value>, CallError> {
        let Some(ledger) = self.ledger else {
            return Ok(None);
        };
        let record = ledger
            .last_done(instance_id, step)
            .await
            .map_err(ledger_error)?;
        Ok(record.map(|r| r.state))
    }

    /// The ENIs' original groups: as `isolate` found them in this response, else as
    /// the ledger recorded them for the instance.
    pub async fn recorded_original_groups(
        &self,
        instance_id: &str,
    ) -> Result<Option<BTreeMap<String, Vec<String>>>, CallError> {
        if let Some(g) = &self.original_groups {
            return Ok(Some(g.clone()));
        }
        let state = self.recorded_state(instance_id, "isolate").await?;
        Ok(state
            .and_then(|s| s.get("original_groups").cloned())
            .and_then(|g| serde_json::from_value(g).ok()))
    }

    /// The instance profile a `revoke-instance-profile` removed, as the ledger
    /// recorded it.
    pub async fn recorded_profile(&self, instance_id: &str) -> Result<Option<String>, CallError> {
        if let Some(p) = &self.original_profile {
            return Ok(Some(p.clone()));
        }
        let state = self
            .recorded_state(instance_id, "revoke-instance-profile")
            .await?;
        Ok(state
            .and_then(|s| s.get("original_profile").cloned())
            .and_then(|v| v.as_str().map(str::to_owned)))
    }

    /// True when this response, or an earlier delivery of this finding, terminated
    /// (or tried to terminate) the instance: this process's memory, then the ledger.
    /// Never a tag.
    pub async fn terminated_by_this_response(&self) -> Result<bool, CallError> {
        if self.terminated {
            return Ok(true);
        }
        let Some(ledger) = self.ledger else {
            return Ok(false);
        };
        // Any terminate record of this response counts, not only a Done one: a
        // TerminateInstances that took effect but whose answer was lost ends Failed,
        // and the instance is still ours to replace, not "gone".
        let records = ledger
            .history(Some(&self.finding.id), Some(&self.instance_id))
            .await
            .map_err(ledger_error)?;
        Ok(records.iter().any(|r| r.step == "terminate"))
    }
}

/// A ledger failure as a step's error.
pub(crate) fn ledger_error(e: crate::ledger::LedgerError) -> CallError {
    CallError {
        code: "LedgerUnavailable".to_owned(),
        message: e.to_string(),
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
    /// What the ledger keeps to undo or continue the step (`isolate`'s original
    /// groups, `revoke-instance-profile`'s profile).
    pub state: Option<Value>,
}

impl StepResult {
    pub fn new(outcome: Outcome) -> StepResult {
        StepResult {
            outcome,
            resources: Vec::new(),
            notes: Vec::new(),
            output: None,
            state: None,
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
