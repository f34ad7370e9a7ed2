//! The state of one response while its steps run, and what a step returns.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::time::Instant;

use aws_sdk_ec2::types::SecurityGroup;
use responder_core::Finding;
use responder_core::plan::Observed;
use responder_core::steps::{Declare, StepSpec, isolate, revoke_instance_profile, spec_named};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::call::CallError;
use crate::clients::Clients;
use crate::instance::{InstanceView, describe};
use crate::ledger::{Finish, Ledger, RecordStatus, ResponseMeta, StepKey};
use crate::report::{Outcome, SequenceSummary, StepReport};

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
    pub dry_run: bool,
    pub started: Instant,
    /// The responder's groups found in round 1 (the prefetch), by VPC, with the
    /// group names looked up.
    pub prefetched_groups: Option<PrefetchedGroups>,
    /// The instance as the describes of this response showed it.
    pub instance: Known,
    /// What the steps so far left for the steps after them.
    pub effects: Effects,
    /// The steps so far (`notify` publishes them).
    pub reports: Vec<StepReport>,
    /// An attack sequence's instance sections and shared cause, for the steps run
    /// once after them (`notify` publishes it).
    pub sequence: Option<SequenceSummary>,
}

/// The instance as the describes of one response showed it.
#[derive(Debug, Default)]
pub(crate) struct Known {
    /// As last described; `None` once a step changed it.
    pub view: Option<InstanceView>,
    /// The latest view while it was not terminated (relaunch copies it).
    pub live: Option<InstanceView>,
    /// A describe said the instance does not exist, or `isolate` found it terminated
    /// by someone else: the response has nothing to act on.
    pub gone: bool,
}

impl Known {
    /// Takes in a describe's answer: the instance, or `None` when it does not exist.
    pub fn saw(&mut self, described: Option<InstanceView>) {
        match described {
            Some(v) => {
                if !v.is_terminated() {
                    self.live = Some(v.clone());
                }
                self.view = Some(v);
            }
            None => self.gone = true,
        }
    }
}

/// What the steps of one response leave for the steps after it, each named after
/// what happened. Set by the step that did it (or by the executor, from the step's
/// declaration); read by later steps and the report. Never read from a tag.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    /// `isolate` determined the ENIs' original groups (before its moves): what
    /// `relaunch` and `release` restore.
    pub isolated: Option<Isolated>,
    /// How long it took until every ENI was isolated (the report's figures).
    pub isolation: Option<IsolationTime>,
    /// `revoke-instance-profile` removed this profile: what `relaunch` and `release`
    /// restore.
    pub revoked: Option<Revoked>,
    /// A step that ends the instance (its spec says `ends_instance`) took it down in
    /// this response, or an earlier delivery's did (as the ledger says).
    pub terminated: bool,
    /// The first evidence step that failed: the steps that need evidence are withheld.
    pub evidence_failed: Option<&'static str>,
}

/// How long a response took to isolate every ENI.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IsolationTime {
    /// Sequential API round trips.
    pub round_trips: u32,
    /// Milliseconds since the answer began.
    pub ms: u64,
}

/// The ENIs' original groups (by ENI id), as `isolate` determined them: its undo
/// state in the ledger (`{"original_groups": {...}}`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Isolated {
    pub original_groups: BTreeMap<String, Vec<String>>,
}

/// The instance profile `revoke-instance-profile` removed: its undo state in the
/// ledger (`{"original_profile": arn}`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Revoked {
    pub original_profile: String,
}

/// An effect the ledger keeps as its step's undo state, so that later responses
/// (`release`, a redelivery's `relaunch`) find it: this response's own when its step
/// ran here, else the newest record of the step on the instance, whatever the finding.
pub(crate) trait Recorded: Serialize + DeserializeOwned + Clone {
    /// The step whose ledger record holds it.
    const STEP: &'static StepSpec;
    /// This response's own, when its step ran here.
    fn of(effects: &Effects) -> Option<&Self>;
}

impl Recorded for Isolated {
    const STEP: &'static StepSpec = &<isolate::Params as Declare>::SPEC;
    fn of(effects: &Effects) -> Option<&Self> {
        effects.isolated.as_ref()
    }
}

impl Recorded for Revoked {
    const STEP: &'static StepSpec = &<revoke_instance_profile::Params as Declare>::SPEC;
    fn of(effects: &Effects) -> Option<&Self> {
        effects.revoked.as_ref()
    }
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
            dry_run,
            started,
            prefetched_groups: None,
            instance: Known::default(),
            effects: Effects::default(),
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
        if self.instance.view.is_none() && !self.instance.gone {
            let described = describe(self.ec2(), id).await?;
            self.instance.saw(described);
        }
        Ok(self.instance.view.as_ref())
    }

    /// Forgets the view after a step changed the instance.
    pub fn invalidate(&mut self) {
        self.instance.view = None;
    }

    /// Records, once, how long it took until every ENI was isolated.
    pub fn isolated_after(&mut self, round_trips: u32) {
        if self.effects.isolation.is_none() {
            self.effects.isolation = Some(IsolationTime {
                round_trips,
                ms: self.started.elapsed().as_millis() as u64,
            });
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

    /// Records the running step's effect in the ledger as its undo state, first
    /// writer wins (a concurrent delivery recording the same step keeps the earlier
    /// record). No ledger, or a dry run: nothing is recorded.
    pub async fn record<E: Recorded>(&self, effect: &E) -> Result<(), CallError> {
        let Some(ledger) = self.ledger.filter(|_| !self.dry_run) else {
            return Ok(());
        };
        let finish = Finish {
            status: RecordStatus::Done,
            outcome: "recorded".to_owned(),
            resources: Vec::new(),
            state: state_of(effect),
        };
        ledger
            .record_once(&self.step_key(), &self.meta, finish)
            .await
            .map(|_| ())
            .map_err(ledger_error)
    }

    /// The effect `E`: as its step left it in this response, else as the ledger
    /// recorded it for the instance (the latest done record of its step, whatever the
    /// finding). A record that does not read as `E` counts as none.
    pub async fn recorded<E: Recorded>(&self, instance_id: &str) -> Result<Option<E>, CallError> {
        if let Some(e) = E::of(&self.effects) {
            return Ok(Some(e.clone()));
        }
        let Some(ledger) = self.ledger else {
            return Ok(None);
        };
        let record = ledger
            .last_done(instance_id, E::STEP.name)
            .await
            .map_err(ledger_error)?;
        Ok(record.and_then(|r| serde_json::from_value(r.state).ok()))
    }

    /// True when this response, or an earlier delivery of this finding, took the
    /// instance down (a step whose spec says `ends_instance`, done or tried): this
    /// process's memory, then the ledger. Never a tag.
    pub async fn terminated_by_this_response(&self) -> Result<bool, CallError> {
        if self.effects.terminated {
            return Ok(true);
        }
        let Some(ledger) = self.ledger else {
            return Ok(false);
        };
        // Any such record of this response counts, not only a Done one: a
        // TerminateInstances that took effect but whose answer was lost ends Failed,
        // and the instance is still ours to replace, not "gone".
        let records = ledger
            .history(Some(&self.finding.id), Some(&self.instance_id))
            .await
            .map_err(ledger_error)?;
        Ok(records
            .iter()
            .any(|r| spec_named(&r.step).is_some_and(|s| s.ends_instance)))
    }
}

/// An effect as the ledger keeps it (a step's undo state).
pub(crate) fn state_of<E: Serialize>(effect: &E) -> Value {
    serde_json::to_value(effect).unwrap_or(Value::Null)
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
    /// What the ledger keeps to undo or continue the step (a [`Recorded`] effect:
    /// `isolate`'s original groups, `revoke-instance-profile`'s profile).
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

    /// The step's effect, kept by the ledger as its undo state.
    pub fn recording<E: Recorded>(mut self, effect: &E) -> StepResult {
        self.state = Some(state_of(effect));
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> StepResult {
        self.notes.push(note.into());
        self
    }
}
