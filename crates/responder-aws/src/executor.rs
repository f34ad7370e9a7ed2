//! Runs a plan: steps in order, isolation first, fail closed.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use aws_sdk_ec2::types::Instance;
use responder_core::Finding;
use responder_core::plan::{Action, Plan};
use responder_core::playbook::{Mode, OnFailure};

use crate::call::{CallError, err};
use crate::clients::Clients;
use crate::report::{Outcome, Report, Status, StepReport};
use crate::state::filter;
use crate::{access, evidence, isolate, lifecycle, outbound};

/// How long a step that may race with a concurrent delivery of the same finding
/// waits before checking for its twin.
pub(crate) const SETTLE: std::time::Duration = std::time::Duration::from_millis(1000);

/// How the executor runs.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// Make every mutating call with `DryRun=true` (calls without DryRun are not made).
    pub dry_run: bool,
    /// The SNS topic for `notify` steps that name none.
    pub topic_arn: Option<String>,
}

/// Executes plans. Build once and reuse: it caches the quarantine groups it found.
#[derive(Debug, Clone)]
pub struct Executor {
    pub(crate) clients: Clients,
    pub(crate) options: ExecOptions,
    pub(crate) groups: Arc<Mutex<HashMap<(String, String), String>>>,
}

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

/// The instance as EC2 describes it now.
#[derive(Debug, Clone, Default)]
pub(crate) struct InstanceView {
    pub id: String,
    pub state: String,
    pub subnet_id: Option<String>,
    pub image_id: Option<String>,
    pub instance_type: Option<String>,
    pub key_name: Option<String>,
    pub profile_arn: Option<String>,
    pub enis: Vec<EniView>,
    pub tags: BTreeMap<String, String>,
    pub volumes: Vec<(String, String)>,
}

/// One attached ENI.
#[derive(Debug, Clone, Default)]
pub(crate) struct EniView {
    pub id: String,
    pub vpc_id: Option<String>,
    pub subnet_id: Option<String>,
    pub device_index: i32,
    pub groups: Vec<String>,
}

impl InstanceView {
    pub fn is_terminated(&self) -> bool {
        matches!(self.state.as_str(), "terminated" | "shutting-down")
    }

    fn from_sdk(i: &Instance) -> InstanceView {
        let mut enis: Vec<EniView> = i
            .network_interfaces()
            .iter()
            .map(|n| EniView {
                id: n.network_interface_id().unwrap_or_default().to_owned(),
                vpc_id: n.vpc_id().map(str::to_owned),
                subnet_id: n.subnet_id().map(str::to_owned),
                device_index: n.attachment().and_then(|a| a.device_index()).unwrap_or(0),
                groups: n
                    .groups()
                    .iter()
                    .filter_map(|g| g.group_id().map(str::to_owned))
                    .collect(),
            })
            .collect();
        enis.sort_by_key(|e| e.device_index);
        InstanceView {
            id: i.instance_id().unwrap_or_default().to_owned(),
            state: i
                .state()
                .and_then(|s| s.name())
                .map(|n| n.as_str().to_owned())
                .unwrap_or_default(),
            subnet_id: i.subnet_id().map(str::to_owned),
            image_id: i.image_id().map(str::to_owned),
            instance_type: i.instance_type().map(|t| t.as_str().to_owned()),
            key_name: i.key_name().map(str::to_owned),
            profile_arn: i
                .iam_instance_profile()
                .and_then(|p| p.arn())
                .map(str::to_owned),
            enis,
            tags: i
                .tags()
                .iter()
                .filter_map(|t| {
                    Some((
                        t.key()?.to_owned(),
                        t.value().unwrap_or_default().to_owned(),
                    ))
                })
                .collect(),
            volumes: i
                .block_device_mappings()
                .iter()
                .filter_map(|b| {
                    Some((
                        b.device_name()?.to_owned(),
                        b.ebs()?.volume_id()?.to_owned(),
                    ))
                })
                .collect(),
        }
    }
}

/// Describes one instance; `None` when EC2 does not know it.
pub(crate) async fn describe(
    ec2: &aws_sdk_ec2::Client,
    id: &str,
) -> Result<Option<InstanceView>, CallError> {
    let out = ec2
        .describe_instances()
        .filters(filter("instance-id", &[id]))
        .send()
        .await
        .map_err(err);
    match out {
        Ok(out) => Ok(out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .find(|i| i.instance_id() == Some(id))
            .map(InstanceView::from_sdk)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Mutable state of one response.
pub(crate) struct Ctx<'a> {
    pub exec: &'a Executor,
    pub finding: &'a Finding,
    pub dry_run: bool,
    pub view: Option<InstanceView>,
    /// The latest view of the instance while it was not terminated (relaunch copies it).
    pub live: Option<InstanceView>,
    /// Set once a describe said the instance does not exist.
    pub gone: bool,
    pub round_trips_to_isolation: Option<u32>,
    pub ms_to_isolation: Option<u64>,
    pub started: Instant,
    pub snapshot_failed: bool,
    /// This response terminated the instance.
    pub terminated: bool,
    pub reports: Vec<StepReport>,
}

impl Ctx<'_> {
    pub fn ec2(&self) -> &aws_sdk_ec2::Client {
        &self.exec.clients.ec2
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
}

impl Executor {
    /// An executor over these clients.
    pub fn new(clients: Clients, options: ExecOptions) -> Executor {
        Executor {
            clients,
            options,
            groups: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Runs the plan for the finding. Never panics; a failure is in the report
    /// (`Report::is_failure`), which the caller must turn into an error.
    pub async fn respond(&self, finding: &Finding, plan: &Plan) -> Report {
        let started = Instant::now();
        let dry_run = self.options.dry_run || plan.mode != Some(Mode::Enforce);
        let mut ctx = Ctx {
            exec: self,
            finding,
            dry_run,
            view: None,
            live: None,
            gone: false,
            round_trips_to_isolation: None,
            ms_to_isolation: None,
            started,
            snapshot_failed: false,
            terminated: false,
            reports: Vec::new(),
        };
        let mut abort: Option<String> = None;
        let mut failed = false;
        for step in &plan.steps {
            let name = step.action.name();
            let t = Instant::now();
            let result = if let Some(why) = &abort {
                StepResult::skipped(format!("not run: {why}"))
            } else {
                self.run_step(&mut ctx, &step.action).await
            };
            let is_failure = result.outcome.is_failure();
            if is_failure {
                failed = true;
                if name == "snapshot" {
                    ctx.snapshot_failed = true;
                }
                if step.on_failure == OnFailure::Abort && abort.is_none() {
                    abort = Some(format!("{name} failed and its policy is abort"));
                }
            }
            let report = StepReport {
                action: name,
                outcome: result.outcome,
                duration_ms: t.elapsed().as_millis() as u64,
                resources: result.resources,
                notes: result.notes,
                output: result.output,
            };
            tracing::info!(
                finding_id = %finding.id,
                playbook = plan.playbook.as_deref().unwrap_or_default(),
                step = name,
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

    async fn run_step(&self, ctx: &mut Ctx<'_>, action: &Action) -> StepResult {
        // Steps that act on the instance first make sure it is still there.
        let instance_id = instance_of(action);
        if let Some(id) = instance_id
            && !matches!(action, Action::Isolate { .. })
        {
            match ctx.view(id).await {
                Err(e) => return StepResult::from_error(&e, false),
                Ok(None) => {
                    return StepResult::skipped(format!(
                        "instance {id} not found: nothing to act on"
                    ));
                }
                Ok(Some(v)) if v.is_terminated() && needs_live_instance(action) => {
                    return StepResult::skipped(format!("instance {id} is {}", v.state));
                }
                Ok(Some(_)) => {}
            }
        }
        let result = match action {
            Action::Isolate { .. } => isolate::run(ctx, action).await,
            Action::Snapshot { .. } | Action::CaptureConsoleOutput { .. } => {
                evidence::run(ctx, action).await
            }
            Action::Terminate { .. }
            | Action::Stop { .. }
            | Action::Protect { .. }
            | Action::Relaunch { .. }
            | Action::Tag { .. } => lifecycle::run(ctx, action).await,
            Action::DetachFromAsg { .. }
            | Action::DeregisterFromTargetGroups { .. }
            | Action::RevokeInstanceProfile { .. }
            | Action::Release { .. } => access::run(ctx, action).await,
            Action::ArchiveFinding { .. } | Action::Notify { .. } => {
                outbound::run(ctx, action).await
            }
        };
        if matches!(result.outcome, Outcome::Done) {
            ctx.invalidate();
        }
        result
    }
}

fn instance_of(action: &Action) -> Option<&str> {
    match action {
        Action::Isolate { instance_id, .. }
        | Action::Snapshot { instance_id, .. }
        | Action::Terminate { instance_id, .. }
        | Action::Relaunch { instance_id, .. }
        | Action::Tag { instance_id, .. }
        | Action::Protect { instance_id, .. }
        | Action::DetachFromAsg { instance_id, .. }
        | Action::DeregisterFromTargetGroups { instance_id }
        | Action::RevokeInstanceProfile { instance_id, .. }
        | Action::CaptureConsoleOutput { instance_id, .. }
        | Action::Stop { instance_id, .. }
        | Action::Release { instance_id, .. } => Some(instance_id),
        Action::ArchiveFinding { .. } | Action::Notify { .. } => None,
    }
}

/// Steps that make no sense once the instance is terminated. `terminate` reports
/// "already done" itself and `relaunch` still replaces it.
fn needs_live_instance(action: &Action) -> bool {
    !matches!(
        action,
        Action::Terminate { .. } | Action::Relaunch { .. } | Action::Tag { .. }
    )
}
