//! Runs a plan: steps in order, isolation first, fail closed.
//!
//! What happens around a step is decided from its declaration
//! ([`StepSpec`](responder_core::steps::StepSpec)), never from its name: whether the
//! instance must still exist, whether a terminated one is still worth acting on,
//! whether a failed evidence step withholds it, and what its failure does to the rest.

use std::sync::Arc;
use std::time::Instant;

use responder_core::Finding;
use responder_core::plan::Plan;
use responder_core::playbook::Mode;
use responder_core::steps::{Action, OnFailure};

use crate::clients::Clients;
use crate::context::{Ctx, ExecOptions, StepResult};
use crate::group_cache::GroupCache;
use crate::report::{Report, Status, StepReport};
use crate::steps;

/// Executes plans. Build once and reuse: it caches the quarantine groups it found.
#[derive(Debug, Clone)]
pub struct Executor {
    clients: Clients,
    options: ExecOptions,
    groups: Arc<GroupCache>,
}

impl Executor {
    /// An executor over these clients.
    pub fn new(clients: Clients, options: ExecOptions) -> Executor {
        Executor {
            clients,
            options,
            groups: Arc::new(GroupCache::default()),
        }
    }

    /// Runs the plan for the finding. Never panics; a failure is in the report
    /// (`Report::is_failure`), which the caller must turn into an error.
    pub async fn respond(&self, finding: &Finding, plan: &Plan) -> Report {
        let started = Instant::now();
        let dry_run = self.options.dry_run || plan.mode != Some(Mode::Enforce);
        let mut ctx = Ctx::new(
            &self.clients,
            &self.options,
            &self.groups,
            finding,
            plan.observed.as_ref(),
            dry_run,
            started,
        );
        let mut abort: Option<String> = None;
        let mut failed = false;
        for step in &plan.steps {
            let spec = step.action.spec();
            let t = Instant::now();
            let result = match &abort {
                Some(why) => StepResult::skipped(format!("not run: {why}")),
                None => run_step(&mut ctx, &step.action).await,
            };
            if result.outcome.is_failure() {
                failed = true;
                if spec.evidence && ctx.evidence_failed.is_none() {
                    ctx.evidence_failed = Some(spec.name);
                }
                if step.on_failure == OnFailure::Abort && abort.is_none() {
                    abort = Some(format!("{} failed and its policy is abort", spec.name));
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
                outcome = %serde_json::to_value(&report.outcome).ok().and_then(|v| v.get("outcome").and_then(|o| o.as_str()).map(str::to_owned)).unwrap_or_default(),
                duration_ms = report.duration_ms,
                "step"
            );
            ctx.reports.push(report);
        }
        let status = if plan.playbook.is_none() {
            Status::NoAction
        } else if failed {
            Status::Failed
        } else if ctx.gone {
            Status::InstanceGone
        } else if dry_run {
            Status::DryRunPassed
        } else {
            Status::Succeeded
        };
        Report {
            finding_id: finding.id.clone(),
            finding_type: finding.finding_type.name.clone(),
            playbook: plan.playbook.clone(),
            dry_run,
            status,
            steps: ctx.reports,
            round_trips_to_isolation: ctx.round_trips_to_isolation,
            ms_to_isolation: ctx.ms_to_isolation,
            duration_ms: started.elapsed().as_millis() as u64,
        }
    }
}

/// One step, after the checks its declaration asks for.
async fn run_step(ctx: &mut Ctx<'_>, action: &Action) -> StepResult {
    let spec = action.spec();
    // Steps that act on the instance first make sure it is still there.
    if spec.needs_instance && !steps::describes_instance_itself(action) {
        let Some(id) = steps::instance_id(action) else {
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
        && let Some(evidence) = ctx.evidence_failed
    {
        return StepResult::skipped(format!(
            "the {evidence} step failed: {} withheld, so that the instance whose evidence is not kept is neither destroyed nor replaced",
            spec.name
        ));
    }
    steps::run(ctx, action).await
}
