//! One finding's whole answer, the same in the function and in `responder run`:
//! the event's finding is matched (pure) to know whether any playbook cares; then
//! GuardDuty is asked for its copy while round 1 of the response (the instance
//! describe, the group lookups) runs; the plan is made again from GuardDuty's copy
//! with the live instance's tags; the blast-radius budget is taken in the ledger;
//! and the executor runs the plan.
//!
//! In an organization the response runs in the finding's account and region
//! ([`ClientPool`]: the member role is assumed), while verification, the ledger and
//! the budget stay in the administrator's (home) account. An account outside
//! `ALLOWED_ACCOUNTS`, a region the deployment does not serve, or a role that cannot
//! be assumed is an [`AnswerError::Account`]: nothing is done anywhere, the
//! invocation fails and is retried, then dead-lettered.
//!
//! `archive-finding` archives through the administrator's detector: the plan carries
//! the configured one (`Settings::detector_id`, from `DETECTOR_ID`), and with a
//! verifier the response replaces whatever the plan says with the verifier's
//! [`Verifier::detector_id`] (the detector GuardDuty's copy was read from), never the
//! member detector of the finding's ARN.
//!
//! Nothing in the event is trusted: an unknown finding, an archived one, or one
//! whose type, account or resource differs from the event ends as an "unverified"
//! report with no action; a sample finding never reaches a destructive step.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Instant, SystemTime};

use responder_core::plan::Plan;
use responder_core::steps::Action;
use responder_core::steps::PlanError;
use responder_core::{Engine, Finding};

use crate::accounts::{AccountError, ClientPool};

use futures::StreamExt;
use futures::channel::oneshot;
use responder_core::sequence::member_finding;

use crate::context::PARALLEL;
use crate::executor::{
    Executor, PendingWithhold, Prefetch, Response, Withhold, WithholdError, WithholdScope,
};
use crate::ledger::{Budget, LedgerError, ResponseKey, ResponseMeta};
use crate::report::{Report, SectionReport, SectionSummary, SequenceSummary, Status};
use crate::verify::{Verification, Verifier, VerifyError};

/// The default of `MAX_DESTRUCTIVE_PER_HOUR`.
pub const DEFAULT_MAX_DESTRUCTIVE_PER_HOUR: u32 = 10;

/// Answers findings: verification, plan, budget, execution.
#[derive(Debug)]
pub struct Responder {
    engine: Engine,
    executor: Executor,
    verifier: Option<Arc<Verifier>>,
    /// Verifiers of the other served regions, built at first need.
    regional: Mutex<HashMap<String, Arc<Verifier>>>,
    max_destructive_per_hour: u32,
    accounts: Option<ClientPool>,
    max_per_account: Option<u32>,
}

/// What became of one finding.
#[derive(Debug)]
pub enum Answer {
    /// No playbook answers it (`decision` says why): nothing was asked or done.
    NoAction {
        /// The engine's decision.
        decision: String,
        /// The plan that says so.
        plan: Box<Plan>,
    },
    /// A playbook answered: what the response did (or, unverified, why it did nothing).
    Responded(Box<Report>),
}

/// The answer could not be given: the invocation must fail, so that Lambda retries
/// the event and then dead-letters it.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    /// The matched playbook cannot be planned for this finding.
    #[error("the plan failed: {0}")]
    Plan(#[from] PlanError),
    /// GuardDuty could not be asked.
    #[error("verification failed: {0}")]
    Verify(#[from] VerifyError),
    /// The ledger could not count the response against the blast-radius budget.
    #[error("the blast-radius budget could not be read: {0}")]
    Budget(#[from] LedgerError),
    /// The finding's account and region cannot be acted in (not allowed, not
    /// served, the member role cannot be assumed): nothing was done.
    #[error("{0}")]
    Account(#[from] AccountError),
}

impl Responder {
    /// A responder. `verifier: None` turns verification off (`VERIFY_FINDINGS=off`,
    /// `responder run --no-verify`): for emulators without GuardDuty findings only.
    pub fn new(
        engine: Engine,
        executor: Executor,
        verifier: Option<Verifier>,
        max_destructive_per_hour: u32,
    ) -> Responder {
        Responder {
            engine,
            executor,
            verifier: verifier.map(Arc::new),
            regional: Mutex::new(HashMap::new()),
            max_destructive_per_hour,
            accounts: None,
            max_per_account: None,
        }
    }

    /// The same responder acting in each finding's account and region through
    /// `pool` (without one, every finding is answered with the executor's clients).
    pub fn with_accounts(mut self, pool: ClientPool) -> Responder {
        self.accounts = Some(pool);
        self
    }

    /// A per-account blast-radius budget (`MAX_DESTRUCTIVE_PER_HOUR_PER_ACCOUNT`,
    /// scope `account#<id>`) beside the deployment-wide one; `None`: none.
    pub fn with_max_per_account(mut self, max: Option<u32>) -> Responder {
        self.max_per_account = max;
        self
    }

    /// The client pool, when the responder acts across accounts.
    pub fn accounts(&self) -> Option<&ClientPool> {
        self.accounts.as_ref()
    }

    /// The validated playbooks.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The executor.
    pub fn executor(&self) -> &Executor {
        &self.executor
    }

    /// Answers one finding as the event describes it. `owner` names this
    /// invocation in the ledger's claims (the Lambda request id); claims are leased
    /// for [`crate::LEASE`].
    pub async fn answer(&self, event: &Finding, owner: &str) -> Result<Answer, AnswerError> {
        self.answer_until(event, owner, None).await
    }

    /// [`Responder::answer`] by an invocation killed at `deadline` (Lambda's): its
    /// claims are leased until then plus [`crate::LEASE_MARGIN`], so that a retry
    /// after a crash finds them free ([`crate::claim_lease`]).
    pub async fn answer_until(
        &self,
        event: &Finding,
        owner: &str,
        deadline: Option<SystemTime>,
    ) -> Result<Answer, AnswerError> {
        let started = Instant::now();
        let first = self.engine.plan(event, false)?;
        if first.playbook.is_none() {
            return Ok(no_action(first));
        }
        let target = self.admit(event).await?;
        let verifier = self.verifier_for(target.as_ref().map(|t| t.1.as_str()));
        let (verification, round1) = futures::join!(
            verify(verifier.as_deref(), event),
            self.round1(target.as_ref(), event, &first)
        );
        let (mut finding, sample) = match verification? {
            Verification::Verified { finding, sample } => (*finding, sample),
            Verification::Unverified { reason } => {
                tracing::warn!(finding_id = %event.id, %reason, "unverified: GuardDuty does not confirm the event's finding; no action");
                return Ok(Answer::Responded(Box::new(unverified(
                    event, &first, reason,
                ))));
            }
        };
        let (executor, prefetch) = round1.inspect_err(|e| refused(event, e))?;
        same_place(target.as_ref(), &finding)?;
        let plan = self
            .replan(&mut finding, prefetch.as_ref(), verifier.as_deref())
            .await?;
        if plan.playbook.is_none() {
            return Ok(no_action(plan));
        }
        let at = Answering {
            executor: &executor,
            owner,
            deadline,
            started,
            sample,
        };
        if plan.sequence.is_some() {
            let report = self.answer_sequence(&at, &finding, &plan).await;
            return Ok(Answer::Responded(Box::new(report)));
        }
        let withholding = if sample {
            Withholding::now(sample_withhold())
        } else {
            // The budget is a ledger write: it runs beside isolation, not before it.
            let budget = self.budget(&finding, &plan);
            Withholding::pending(Box::pin(async move { Ok(budget.await?) }))
        };
        let report = at.respond(&finding, &plan, prefetch, withholding).await;
        Ok(Answer::Responded(Box::new(report)))
    }

    /// Admits the finding's account and region before anything is asked or done (an
    /// unserved region must fail, not end unverified): the place the response runs
    /// in, or `None` without a client pool (the executor's own clients).
    async fn admit(&self, event: &Finding) -> Result<Option<Place>, AnswerError> {
        let Some(pool) = &self.accounts else {
            return Ok(None);
        };
        let (account, region) = place(event);
        pool.admit(&account, &region)
            .await
            .inspect_err(|e| refused(event, e))?;
        Ok(Some((account, region)))
    }

    /// Round 1 in the event's account and region (they choose the clients;
    /// GuardDuty's copy must name the same ones, or it is unverified): the executor
    /// for that place and its prefetch of the first plan.
    async fn round1(
        &self,
        target: Option<&Place>,
        event: &Finding,
        first: &Plan,
    ) -> Result<(Executor, Option<Prefetch>), AccountError> {
        let executor = match (&self.accounts, target) {
            (Some(pool), Some((account, region))) => self
                .executor
                .with_clients(pool.clients(account, region, &event.id).await?),
            _ => self.executor.clone(),
        };
        let prefetch = executor.prefetch(first).await;
        Ok((executor, prefetch))
    }

    /// The plan made again from GuardDuty's copy, matched against the instance's
    /// tags as they are now (an exempt tag added or removed since detection counts,
    /// never as the event says); `archive-finding` archives through the verifier's
    /// detector.
    async fn replan(
        &self,
        finding: &mut Finding,
        prefetch: Option<&Prefetch>,
        verifier: Option<&Verifier>,
    ) -> Result<Plan, AnswerError> {
        with_live_tags(finding, prefetch);
        let mut plan = self.engine.plan(finding, false)?;
        if let Some(verifier) = verifier
            && plan
                .steps
                .iter()
                .any(|s| matches!(s.action, Action::ArchiveFinding(_)))
        {
            let detector = verifier.detector_id().await?.to_owned();
            for step in &mut plan.steps {
                if let Action::ArchiveFinding(a) = &mut step.action {
                    a.detector_id = Some(detector.clone());
                }
            }
        }
        Ok(plan)
    }

    /// An attack sequence, planned from GuardDuty's copy: each instance section is
    /// answered as its own response (at most [`PARALLEL`] at once, each isolating
    /// first): its live describe, its live tags matched again (an exempt member is
    /// not acted on), its own place in the blast-radius budget (taken in instance id
    /// order beside the isolations; a gone instance takes none) and its own ledger
    /// claims, keyed by the instance. One instance failing or gone does not stop the
    /// others. Then the steps that act on no instance run once, with the sections
    /// and the shared cause to publish. The report has one section per instance; it
    /// fails (and the event is retried) when any section or shared step failed.
    async fn answer_sequence(&self, at: &Answering<'_>, finding: &Finding, plan: &Plan) -> Report {
        let Answering {
            executor,
            owner,
            deadline,
            started,
            sample,
        } = *at;
        let Some(sequence) = &plan.sequence else {
            return executor.respond(finding, plan).await;
        };
        // The budget is taken in instance id order, one member after the other, while
        // the members run (isolation does not wait for it): the first members in the
        // plan's order get the places, whichever is isolated first. Each member asks
        // with its finding and plan (or drops its ask: no place needed) and awaits
        // its decision before its first irreversible step.
        let n = sequence.sections.len();
        let (asks, ask_rx): (Vec<_>, Vec<_>) = (0..n)
            .map(|_| oneshot::channel::<(Finding, Plan)>())
            .unzip();
        let (decide, decisions): (Vec<_>, Vec<_>) = (0..n)
            .map(|_| oneshot::channel::<Result<Option<Withhold>, WithholdError>>())
            .unzip();
        let budgets = async move {
            for (ask, answer) in ask_rx.into_iter().zip(decide) {
                let Ok((member, member_plan)) = ask.await else {
                    continue;
                };
                let decided = self.budget(&member, &member_plan).await;
                let _ = answer.send(decided.map_err(WithholdError::from));
            }
        };
        let member = |((instance_id, ask), decision): ((String, BudgetAsk), BudgetDecision)| {
            self.answer_member(at, finding, plan, instance_id, ask, decision)
        };
        let ids: Vec<String> = sequence
            .sections
            .iter()
            .map(|s| s.instance_id.clone())
            .collect();
        let run = futures::stream::iter(ids.into_iter().zip(asks).zip(decisions))
            .map(member)
            .buffered(PARALLEL)
            .collect::<Vec<SectionReport>>();
        let ((), sections) = futures::join!(budgets, run);
        let shared_plan = Plan {
            sequence: None,
            ..plan.clone()
        };
        let summary = SequenceSummary {
            uid: sequence.uid.clone(),
            sections: sections.iter().map(SectionSummary::of).collect(),
            not_answered: sequence.not_answered.clone(),
            shared: sequence.shared.clone(),
        };
        let mut report = executor
            .respond_with(
                finding,
                &shared_plan,
                Response {
                    owner: Some(owner),
                    deadline,
                    withhold: sample.then(sample_withhold),
                    started: Some(started),
                    sequence: Some(summary),
                    ..Response::default()
                },
            )
            .await;
        let failed =
            report.status == Status::Failed || sections.iter().any(|s| s.status == Status::Failed);
        let withheld = sections
            .iter()
            .find(|s| s.status == Status::Withheld)
            .and_then(|s| s.reason.clone());
        report.status = if failed {
            Status::Failed
        } else if report.dry_run {
            Status::DryRunPassed
        } else if report.status == Status::Withheld || withheld.is_some() {
            Status::Withheld
        } else {
            Status::Succeeded
        };
        if report.reason.is_none() {
            report.reason = withheld;
        }
        report.round_trips_to_isolation = sections
            .iter()
            .filter_map(|s| s.round_trips_to_isolation)
            .max();
        report.ms_to_isolation = sections.iter().filter_map(|s| s.ms_to_isolation).max();
        report.not_answered = sequence.not_answered.clone();
        report.shared = sequence.shared.clone();
        report.sections = sections;
        report.duration_ms = started.elapsed().as_millis() as u64;
        report
    }

    /// One instance section of an attack sequence: its member finding planned, its
    /// round 1, planned again with its live tags (a member the playbook no longer
    /// answers is not acted on), its place in the budget asked for (none when a
    /// sample withholds its destructive steps, or the instance is gone), then its
    /// response.
    async fn answer_member(
        &self,
        at: &Answering<'_>,
        finding: &Finding,
        plan: &Plan,
        instance_id: String,
        ask: BudgetAsk,
        decision: BudgetDecision,
    ) -> SectionReport {
        let t = Instant::now();
        let failed = |e: PlanError| {
            let report = Report {
                reason: Some(e.to_string()),
                duration_ms: t.elapsed().as_millis() as u64,
                ..Report::new(finding, plan.playbook.clone(), Status::Failed)
            };
            SectionReport::of(instance_id.clone(), report)
        };
        let mut member = member_finding(finding, &instance_id);
        let first = match self.engine.plan_member(&member) {
            Ok(p) => p,
            Err(e) => return failed(e),
        };
        let prefetch = at.executor.prefetch(&first).await;
        with_live_tags(&mut member, prefetch.as_ref());
        let mut member_plan = match self.engine.plan_member(&member) {
            Ok(p) => p,
            Err(e) => return failed(e),
        };
        if member_plan.playbook != plan.playbook {
            let report = Report {
                reason: Some(format!(
                    "not acted on: with its live tags, {}",
                    member_plan.decision
                )),
                duration_ms: t.elapsed().as_millis() as u64,
                ..Report::new(finding, plan.playbook.clone(), Status::NoAction)
            };
            return SectionReport::of(instance_id, report);
        }
        // The steps run once for the sequence are not the member's.
        member_plan.steps.retain(|s| s.action.spec().needs_instance);
        let gone = prefetch.as_ref().is_some_and(Prefetch::is_gone);
        let withholding = if at.sample {
            Withholding::now(sample_withhold())
        } else if gone {
            // A gone instance takes no place in the budget: nothing will run.
            Withholding::default()
        } else {
            let _ = ask.send((member.clone(), member_plan.clone()));
            Withholding::pending(Box::pin(async move {
                decision.await.unwrap_or(Err(WithholdError::Undecided))
            }))
        };
        let report = at
            .respond(&member, &member_plan, prefetch, withholding)
            .await;
        SectionReport::of(instance_id, report)
    }

    /// The verifier of `region`: the configured one in the home region (or without
    /// a client pool), else the administrator's detector of that region.
    fn verifier_for(&self, region: Option<&str>) -> Option<Arc<Verifier>> {
        let home = self.verifier.as_ref()?;
        let (Some(pool), Some(region)) = (&self.accounts, region) else {
            return Some(Arc::clone(home));
        };
        if region == pool.home_region() {
            return Some(Arc::clone(home));
        }
        let mut regional = self.regional.lock().unwrap_or_else(PoisonError::into_inner);
        Some(Arc::clone(
            regional
                .entry(region.to_owned())
                .or_insert_with(|| Arc::new(home.in_region(pool.guardduty_in(region)))),
        ))
    }

    /// Takes the response's place in the blast-radius budget (deployment-wide and,
    /// when the playbook sets one, per playbook) when it would take a step that
    /// cannot be undone; `Some` withholds those steps past the budget. No ledger,
    /// or a response that only plans: no budget.
    async fn budget(
        &self,
        finding: &Finding,
        plan: &Plan,
    ) -> Result<Option<Withhold>, LedgerError> {
        let Some(ledger) = self.executor.ledger() else {
            return Ok(None);
        };
        let irreversible = plan
            .steps
            .iter()
            .any(|s| WithholdScope::Irreversible.covers(s.action.spec()));
        if !irreversible || !self.executor.enforces(plan) {
            return Ok(None);
        }
        let playbook = plan.playbook.clone().unwrap_or_default();
        let mut scopes = vec![("all".to_owned(), self.max_destructive_per_hour)];
        if let Some(max) = plan.max_per_hour {
            scopes.push((format!("playbook#{playbook}"), max));
        }
        if let (Some(max), Some(account)) = (self.max_per_account, &finding.account_id) {
            scopes.push((format!("account#{account}"), max));
        }
        let key = ResponseKey {
            finding_id: finding.id.clone(),
            instance_id: finding.instance_id().unwrap_or_default().to_owned(),
        };
        let meta = ResponseMeta::of(finding, playbook);
        match ledger
            .budget(&key, &meta, &scopes, SystemTime::now())
            .await?
        {
            Budget::Granted { .. } => Ok(None),
            Budget::Exhausted { scope, used, max } => {
                tracing::warn!(finding_id = %finding.id, %scope, used, max, "blast-radius budget exhausted: irreversible steps withheld");
                Ok(Some(Withhold {
                    scope: WithholdScope::Irreversible,
                    reason: format!(
                        "the blast-radius budget is spent ({used} of {max} destructive responses this hour, scope {scope}): terminate, stop, relaunch and revoke are withheld; the reversible steps ran"
                    ),
                }))
            }
        }
    }
}

/// The report of a finding GuardDuty does not confirm.
fn unverified(event: &Finding, plan: &Plan, reason: String) -> Report {
    Report {
        reason: Some(reason),
        ..Report::new(event, plan.playbook.clone(), Status::Unverified)
    }
}

/// No playbook answers the finding.
fn no_action(plan: Plan) -> Answer {
    Answer::NoAction {
        decision: plan.decision.clone(),
        plan: Box::new(plan),
    }
}

/// An account and a region.
type Place = (String, String);

/// Logs why the finding's account and region cannot be acted in.
fn refused(event: &Finding, e: &AccountError) {
    tracing::error!(finding_id = %event.id, account = %e.account, region = %e.region, reason = %e.reason, "the finding's account and region cannot be acted in: nothing done");
}

/// GuardDuty's copy of the finding; without a verifier (verification off), the
/// event's own.
async fn verify(verifier: Option<&Verifier>, event: &Finding) -> Result<Verification, VerifyError> {
    match verifier {
        Some(v) => v.verify(event).await,
        None => Ok(Verification::Verified {
            finding: Box::new(event.clone()),
            sample: event.is_sample(),
        }),
    }
}

/// GuardDuty's copy must name the account and region the response runs in.
fn same_place(target: Option<&Place>, finding: &Finding) -> Result<(), AnswerError> {
    let Some((account, region)) = target else {
        return Ok(());
    };
    let copy = place(finding);
    if (&copy.0, &copy.1) != (account, region) {
        return Err(AnswerError::Account(AccountError {
            account: copy.0,
            region: copy.1,
            reason: crate::accounts::AccountReason::CopyDiffers,
        }));
    }
    Ok(())
}

/// The instance's tags as the live describe shows them, in place of the finding's.
fn with_live_tags(finding: &mut Finding, prefetch: Option<&Prefetch>) {
    if let (Some(live), Some(instance)) = (
        prefetch.and_then(Prefetch::live_tags),
        finding.instance.as_mut(),
    ) {
        instance.tags = live;
    }
}

/// What a sample finding withholds.
fn sample_withhold() -> Withhold {
    Withhold {
        scope: WithholdScope::Destructive,
        reason: "a sample finding (GuardDuty CreateSampleFindings): no destructive step runs"
            .to_owned(),
    }
}

/// What a response withholds: decided now, or decided beside its first step.
#[derive(Default)]
struct Withholding<'a> {
    now: Option<Withhold>,
    pending: Option<PendingWithhold<'a>>,
}

impl<'a> Withholding<'a> {
    fn now(w: Withhold) -> Withholding<'a> {
        Withholding {
            now: Some(w),
            pending: None,
        }
    }

    fn pending(p: PendingWithhold<'a>) -> Withholding<'a> {
        Withholding {
            now: None,
            pending: Some(p),
        }
    }
}

/// What every phase of one answer shares: the executor of the finding's place,
/// the claim owner and its deadline (Lambda's, which its claims are leased until),
/// when the answer began, and whether GuardDuty's copy is a sample.
#[derive(Clone, Copy)]
struct Answering<'a> {
    executor: &'a Executor,
    owner: &'a str,
    deadline: Option<SystemTime>,
    started: Instant,
    sample: bool,
}

impl Answering<'_> {
    /// The response to one finding (or one sequence member), with its round 1.
    async fn respond(
        &self,
        finding: &Finding,
        plan: &Plan,
        prefetch: Option<Prefetch>,
        withholding: Withholding<'_>,
    ) -> Report {
        self.executor
            .respond_with(
                finding,
                plan,
                Response {
                    prefetch,
                    owner: Some(self.owner),
                    deadline: self.deadline,
                    withhold: withholding.now,
                    pending_withhold: withholding.pending,
                    started: Some(self.started),
                    sequence: None,
                },
            )
            .await
    }
}

/// How a sequence member asks for its place in the blast-radius budget: its finding
/// and plan (dropped unsent: it needs none).
type BudgetAsk = oneshot::Sender<(Finding, Plan)>;

/// The budget decision a sequence member awaits before its first irreversible step.
type BudgetDecision = oneshot::Receiver<Result<Option<Withhold>, WithholdError>>;

/// The finding's account and region (empty when absent: the pool refuses them).
fn place(f: &Finding) -> (String, String) {
    (
        f.account_id.clone().unwrap_or_default(),
        f.region.clone().unwrap_or_default(),
    )
}
