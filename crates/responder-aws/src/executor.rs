//! Runs a plan: steps in order, isolation first, fail closed.
//!
//! What happens around a step is decided from its declaration
//! ([`StepSpec`](responder_core::steps::StepSpec)), never from its name: whether the
//! instance must still exist, whether a terminated one is still worth acting on,
//! whether a failed evidence step withholds it, whether the ledger claims it before
//! it runs, and what its failure does to the rest.

use std::time::{Duration, Instant, SystemTime};

use futures::future::BoxFuture;

use responder_core::Finding;
use responder_core::plan::Plan;
use responder_core::playbook::Mode;
use responder_core::steps::{Action, OnFailure, StepSpec};

use crate::call::CallError;
use crate::clients::Clients;
use crate::context::{Ctx, ExecOptions, PrefetchedGroups, StepResult, ledger_error};
use crate::instance::{InstanceView, describe};
use crate::ledger::{Claim, Finish, Ledger, LedgerError, RecordStatus};
use crate::report::{Outcome, Report, SequenceSummary, Status, StepReport};
use crate::steps;

/// The function's timeout: `Timeout` in infra/template.yaml (a test keeps the two
/// equal, and checks them against Lambda's retry timings).
pub const FUNCTION_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a claim outlives its invocation's deadline: the clocks of the Lambda host
/// (which writes `lease_until`) and of the next delivery may differ by this much.
pub const LEASE_MARGIN: Duration = Duration::from_secs(10);
/// The lease of a claim made without a deadline (`responder run`): as long as the
/// function's longest invocation could hold one.
pub const LEASE: Duration =
    Duration::from_secs(FUNCTION_TIMEOUT.as_secs() + LEASE_MARGIN.as_secs());

/// How long a claim made at `now` protects its step from another delivery: until
/// the invocation's deadline (Lambda's, authoritative: the invocation is dead by
/// then) plus [`LEASE_MARGIN`], so that a live invocation is never overtaken and a
/// crashed one's claim is free for Lambda's next retry (about 1 and 3 minutes after
/// the first attempt; the template's timeout keeps deadline plus margin under 3
/// minutes). Without a deadline, [`LEASE`].
pub fn claim_lease(now: SystemTime, deadline: Option<SystemTime>) -> Duration {
    match deadline {
        Some(d) => d.duration_since(now).unwrap_or_default() + LEASE_MARGIN,
        None => LEASE,
    }
}

/// Executes plans. Build once and reuse.
#[derive(Debug, Clone)]
pub struct Executor {
    clients: Clients,
    options: ExecOptions,
    ledger: Option<Ledger>,
}

/// Round 1 of a response, started before the plan is final (in parallel with the
/// verification): the instance describe and the lookup of the responder's groups in
/// the VPCs the finding lists.
#[derive(Debug)]
pub struct Prefetch {
    instance_id: String,
    view: Result<Option<InstanceView>, CallError>,
    groups: Option<PrefetchedGroups>,
}

impl Prefetch {
    /// True when the describe found the instance gone or terminated: no step of a
    /// response would act on it (it takes no place in the blast-radius budget).
    pub fn is_gone(&self) -> bool {
        match &self.view {
            Ok(None) => true,
            Ok(Some(v)) => v.is_terminated(),
            Err(_) => false,
        }
    }

    /// The live instance's tags, when the describe found it.
    pub fn live_tags(&self) -> Option<Vec<responder_core::finding::Tag>> {
        let view = self.view.as_ref().ok()?.as_ref()?;
        Some(
            view.tags
                .iter()
                .map(|(k, v)| responder_core::finding::Tag {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect(),
        )
    }
}

/// Steps a response must not take, and why (a sample finding, the blast-radius
/// budget).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Withhold {
    /// Which steps.
    pub scope: WithholdScope,
    /// Why, for the report.
    pub reason: String,
}

/// Which steps a [`Withhold`] covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WithholdScope {
    /// Every destructive step (sample findings).
    Destructive,
    /// Destructive steps that cannot be undone: terminate, stop, relaunch, revoke
    /// (past the blast-radius budget).
    Irreversible,
}

impl WithholdScope {
    /// True when the step is withheld.
    pub fn covers(self, spec: &StepSpec) -> bool {
        match self {
            WithholdScope::Destructive => spec.destructive,
            WithholdScope::Irreversible => spec.destructive && !spec.reversible,
        }
    }
}

/// A decision on what to withhold that is still being made (the blast-radius budget,
/// a write in the ledger): the executor runs it beside the first step, so that it
/// costs no time to isolation, and awaits it before the first step it could withhold.
/// An error withholds the irreversible steps and fails the response (it is retried).
pub type PendingWithhold<'a> = BoxFuture<'a, Result<Option<Withhold>, WithholdError>>;

/// Why a pending decision on what to withhold could not be made.
#[derive(Debug, thiserror::Error)]
pub enum WithholdError {
    /// The ledger did not take the response's place in the blast-radius budget.
    #[error("the blast-radius budget could not be read: {0}")]
    Budget(#[from] LedgerError),
    /// Whoever was to decide went away without deciding.
    #[error("the blast-radius budget decision was not made")]
    Undecided,
}

/// One response's inputs beyond the finding and its plan.
#[derive(Default)]
pub struct Response<'a> {
    /// Round 1, when the caller ran it in parallel with the verification.
    pub prefetch: Option<Prefetch>,
    /// The claim owner (the Lambda request id); claims are only made with one.
    pub owner: Option<&'a str>,
    /// When the invocation is killed (Lambda's deadline): claims are leased until
    /// then (see [`claim_lease`]); none outside Lambda.
    pub deadline: Option<SystemTime>,
    /// Steps not to take.
    pub withhold: Option<Withhold>,
    /// Steps not to take, decided while the first step runs (see [`PendingWithhold`]).
    pub pending_withhold: Option<PendingWithhold<'a>>,
    /// When the answer to the finding began (before verification and round 1), so
    /// that the time to isolation counts them; default: when the plan starts.
    pub started: Option<Instant>,
    /// The instance sections and shared cause of an attack sequence, for the steps
    /// run once after them (`notify` publishes it).
    pub sequence: Option<SequenceSummary>,
}

impl Executor {
    /// An executor over these clients, without a ledger: nothing is claimed or
    /// recorded, so concurrent deliveries are not kept apart (tests, dry runs, the
    /// CLI without `--ledger-table`).
    pub fn new(clients: Clients, options: ExecOptions) -> Executor {
        Executor {
            clients,
            options,
            ledger: None,
        }
    }

    /// The same executor, recording in (and claiming through) `ledger`.
    pub fn with_ledger(mut self, ledger: Ledger) -> Executor {
        self.ledger = Some(ledger);
        self
    }

    /// The same executor (options, ledger) over other clients: those of the
    /// finding's account and region ([`crate::accounts::ClientPool`]).
    pub fn with_clients(&self, clients: Clients) -> Executor {
        Executor {
            clients,
            options: self.options.clone(),
            ledger: self.ledger.clone(),
        }
    }

    /// The ledger, when there is one.
    pub fn ledger(&self) -> Option<&Ledger> {
        self.ledger.as_ref()
    }

    /// True when the plan's steps would really be taken (an enforce playbook and an
    /// executor that is not in dry-run mode).
    pub fn enforces(&self, plan: &Plan) -> bool {
        !self.options.dry_run && plan.mode == Some(Mode::Enforce)
    }

    /// The SDK clients.
    pub fn clients(&self) -> &Clients {
        &self.clients
    }

    /// Round 1 for a plan: describes its instance and looks up its isolate step's
    /// groups in (at most four of) the VPCs the finding lists, in parallel.
    pub async fn prefetch(&self, plan: &Plan) -> Option<Prefetch> {
        let instance_id = plan.steps.iter().find_map(|s| s.action.instance_id())?;
        let ec2 = &self.clients.ec2;
        let isolate = plan.steps.iter().find_map(|s| match &s.action {
            Action::Isolate(a) => Some(a),
            _ => None,
        });
        let lookup = async {
            let a = isolate?;
            let names = steps::isolate_group_names(a);
            let vpcs = steps::observed_vpcs(plan);
            let found = steps::lookup_groups(ec2, &vpcs, &names).await.ok()?;
            Some(PrefetchedGroups { names, found })
        };
        let (view, groups) = futures::join!(describe(ec2, instance_id), lookup);
        Some(Prefetch {
            instance_id: instance_id.to_owned(),
            view,
            groups,
        })
    }

    /// Runs the plan for the finding. Never panics; a failure is in the report
    /// (`Report::is_failure`), which the caller must turn into an error.
    pub async fn respond(&self, finding: &Finding, plan: &Plan) -> Report {
        self.respond_with(finding, plan, Response::default()).await
    }

    /// [`Executor::respond`] with round 1 already done, a claim owner, and steps
    /// to withhold.
    pub async fn respond_with(
        &self,
        finding: &Finding,
        plan: &Plan,
        response: Response<'_>,
    ) -> Report {
        let started = response.started.unwrap_or_else(Instant::now);
        let dry_run = self.options.dry_run || plan.mode != Some(Mode::Enforce);
        let mut ctx = Ctx::new(
            &self.clients,
            &self.options,
            finding,
            plan.observed.as_ref(),
            dry_run,
            started,
        );
        ctx.meta.playbook = plan.playbook.clone().unwrap_or_default();
        ctx.sequence = response.sequence;
        ctx.deadline = response.deadline;
        if let Some(owner) = response.owner {
            ctx.owner = owner;
            ctx.ledger = self.ledger.as_ref();
        }
        if let Some(p) = response.prefetch
            && p.instance_id == ctx.instance_id
            && let Ok(described) = p.view
        {
            ctx.instance.saw(described);
            ctx.prefetched_groups = p.groups;
        }
        let mut abort: Option<String> = None;
        let mut failed = false;
        let mut withheld = false;
        let mut withhold = response.withhold;
        let mut pending = response.pending_withhold;
        for (index, step) in plan.steps.iter().enumerate() {
            let spec = step.action.spec();
            ctx.step = (index, spec.name);
            let t = Instant::now();
            // A decision still pending is made beside the first step (isolation), and
            // awaited at the latest before a step it could withhold.
            if WithholdScope::Irreversible.covers(spec)
                && let Some(p) = pending.take()
            {
                absorb(p.await, &mut withhold, &mut failed);
            }
            let result = match (&abort, &withhold) {
                (Some(why), _) => StepResult::skipped(format!("not run: {why}")),
                (None, Some(w)) if w.scope.covers(spec) => {
                    withheld = true;
                    StepResult::skipped(format!("withheld: {}", w.reason))
                }
                _ => match pending.take() {
                    Some(p) => {
                        let (result, decided) =
                            futures::join!(run_claimed(&mut ctx, &step.action), p);
                        absorb(decided, &mut withhold, &mut failed);
                        result
                    }
                    None => run_claimed(&mut ctx, &step.action).await,
                },
            };
            if result.outcome.is_failure() {
                failed = true;
                if spec.evidence && ctx.effects.evidence_failed.is_none() {
                    ctx.effects.evidence_failed = Some(spec.name);
                }
                let in_progress =
                    matches!(&result.outcome, Outcome::Failed { code, .. } if code == IN_PROGRESS);
                if (step.on_failure == OnFailure::Abort || in_progress) && abort.is_none() {
                    abort = Some(if in_progress {
                        "another delivery of this finding is responding".to_owned()
                    } else {
                        format!("{} failed and its policy is abort", spec.name)
                    });
                }
            }
            let report = StepReport {
                action: spec.name,
                outcome: result.outcome,
                duration_ms: t.elapsed().as_millis() as u64,
                resources: result.resources,
                notes: result.notes,
                output: result.output,
            };
            tracing::info!(
                finding_id = %finding.id,
                playbook = plan.playbook.as_deref().unwrap_or_default(),
                step = spec.name,
                outcome = report.outcome.kind(),
                duration_ms = report.duration_ms,
                "step"
            );
            ctx.reports.push(report);
        }
        let status = if plan.playbook.is_none() {
            Status::NoAction
        } else if failed {
            Status::Failed
        } else if ctx.instance.gone {
            Status::InstanceGone
        } else if dry_run {
            Status::DryRunPassed
        } else if withheld {
            Status::Withheld
        } else {
            Status::Succeeded
        };
        let isolation = ctx.effects.isolation;
        Report {
            dry_run,
            reason: withhold.filter(|_| withheld).map(|w| w.reason),
            steps: ctx.reports,
            round_trips_to_isolation: isolation.map(|i| i.round_trips),
            ms_to_isolation: isolation.map(|i| i.ms),
            duration_ms: started.elapsed().as_millis() as u64,
            ..Report::new(finding, plan.playbook.clone(), status)
        }
    }
}

/// Takes a pending decision in: a withholding joins the one already known; an error
/// withholds the irreversible steps and fails the response.
fn absorb(
    decided: Result<Option<Withhold>, WithholdError>,
    withhold: &mut Option<Withhold>,
    failed: &mut bool,
) {
    match decided {
        Ok(w) => {
            if withhold.is_none() {
                *withhold = w;
            }
        }
        Err(e) => {
            *failed = true;
            *withhold = Some(Withhold {
                scope: WithholdScope::Irreversible,
                reason: format!("{e}; the response fails so that it is retried"),
            });
        }
    }
}

/// The error code of a step another delivery of the same finding holds the claim of.
const IN_PROGRESS: &str = "InProgressElsewhere";

/// A step the ledger claims first when its declaration says it is taken once: an
/// earlier delivery's outcome is reported instead of running it again, a live claim
/// of another delivery fails this one (Lambda retries it later), and the outcome is
/// recorded after.
async fn run_claimed(ctx: &mut Ctx<'_>, action: &Action) -> StepResult {
    let spec = action.spec();
    let Some(ledger) = ctx.ledger.filter(|_| spec.once && !ctx.dry_run) else {
        return run_step(ctx, action).await;
    };
    let key = ctx.step_key();
    let now = SystemTime::now();
    let lease = claim_lease(now, ctx.deadline);
    match ledger
        .claim_at(&key, &ctx.meta, ctx.owner, lease, now)
        .await
    {
        Err(e) => StepResult::from_error(&ledger_error(e), false)
            .note("the step was not run: its claim could not be written"),
        Ok(Claim::Done(record)) => {
            if spec.ends_instance {
                ctx.effects.terminated = true;
            }
            let mut r = StepResult::already(format!(
                "done by an earlier delivery ({}), as the ledger records",
                record.owner.as_deref().unwrap_or("unknown")
            ));
            r.resources = record.resources;
            r
        }
        Ok(Claim::Held { owner, .. }) => StepResult::new(Outcome::Failed {
            code: IN_PROGRESS.to_owned(),
            message: format!(
                "{} is claimed by {owner}, another delivery of this finding; this one stops and is retried",
                spec.name
            ),
        }),
        Ok(Claim::Granted { took_over_from }) => {
            let mut result = run_step(ctx, action).await;
            if let Some(old) = took_over_from {
                result
                    .notes
                    .push(format!("took over the expired claim of {old}"));
            }
            // Only a step that did its work (or found it done) is Done. A failed or
            // skipped one (withheld for missing evidence, say) is recorded as Failed,
            // which a later delivery may claim again: a Done record is never retried.
            let done = matches!(
                result.outcome,
                Outcome::Done | Outcome::AlreadyDone { .. } | Outcome::WouldSucceed
            );
            let finish = Finish {
                status: if done {
                    RecordStatus::Done
                } else {
                    RecordStatus::Failed
                },
                outcome: result.outcome.kind().to_owned(),
                resources: result.resources.clone(),
                state: result.state.clone().unwrap_or(serde_json::Value::Null),
            };
            if let Err(e) = ledger.finish(&key, ctx.owner, finish).await {
                let e = ledger_error(e);
                return StepResult::new(e.failed()).note(format!(
                    "{} ended {} but its outcome could not be recorded: the response fails so that it is retried",
                    spec.name,
                    result.outcome.kind()
                ));
            }
            result
        }
    }
}

/// One step, after the checks its declaration asks for.
async fn run_step(ctx: &mut Ctx<'_>, action: &Action) -> StepResult {
    let spec = action.spec();
    // Steps that act on the instance first make sure it is still there.
    if spec.needs_instance && !spec.describes_instance {
        let Some(id) = action.instance_id() else {
            return StepResult::internal(format!(
                "{}: the plan names no instance to act on",
                spec.name
            ));
        };
        match ctx.view(id).await {
            Err(e) => return StepResult::from_error(&e, false),
            Ok(None) => {
                return StepResult::skipped(format!("instance {id} not found: nothing to act on"));
            }
            Ok(Some(v)) if v.is_terminated() && spec.needs_live_instance => {
                return StepResult::skipped(format!("instance {id} is {}", v.state));
            }
            Ok(Some(_)) => {}
        }
    }
    if spec.needs_evidence
        && let Some(evidence) = ctx.effects.evidence_failed
    {
        return StepResult::skipped(format!(
            "the {evidence} step failed: {} withheld, so that the instance whose evidence is not kept is neither destroyed nor replaced",
            spec.name
        ));
    }
    let result = steps::run(ctx, action).await;
    // A later relaunch replaces only what this response took down.
    if spec.ends_instance && result.outcome == Outcome::Done {
        ctx.effects.terminated = true;
    }
    result
}
