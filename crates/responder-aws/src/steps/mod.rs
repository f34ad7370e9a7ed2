//! The steps, one module each, named as playbooks write them. Each carries out its
//! [`Action`]'s planned instruction field for field:
//! `run(ctx, &Planned) -> StepResult`.

mod archive_finding;
pub(crate) mod block_remote_ip;
mod capture_console_output;
mod deregister_from_target_groups;
mod detach_from_asg;
mod isolate;
mod notify;
mod protect;
mod relaunch;
mod release;
mod revoke_instance_profile;
mod scan;
mod snapshot;
mod stop;
mod tag;
mod terminate;

use responder_core::plan::Plan;
use responder_core::steps::Action;

pub(crate) use isolate::{group_names as isolate_group_names, lookup_groups};

use crate::context::{Ctx, StepResult};
use crate::report::Outcome;

/// Runs one step. The view of the instance is forgotten when the step changed it.
pub(crate) async fn run(ctx: &mut Ctx<'_>, action: &Action) -> StepResult {
    let result = match action {
        Action::Isolate(a) => isolate::run(ctx, a).await,
        Action::Snapshot(a) => snapshot::run(ctx, a).await,
        Action::Terminate(a) => terminate::run(ctx, a).await,
        Action::Relaunch(a) => relaunch::run(ctx, a).await,
        Action::Tag(a) => tag::run(ctx, a).await,
        Action::Protect(a) => protect::run(ctx, a).await,
        Action::DetachFromAsg(a) => detach_from_asg::run(ctx, a).await,
        Action::DeregisterFromTargetGroups(a) => deregister_from_target_groups::run(ctx, a).await,
        Action::RevokeInstanceProfile(a) => revoke_instance_profile::run(ctx, a).await,
        Action::CaptureConsoleOutput(a) => capture_console_output::run(ctx, a).await,
        Action::Stop(a) => stop::run(ctx, a).await,
        Action::Release(a) => release::run(ctx, a).await,
        Action::ArchiveFinding(a) => archive_finding::run(ctx, a).await,
        Action::Notify(a) => notify::run(ctx, a).await,
        Action::Scan(a) => scan::run(ctx, a).await,
        Action::BlockRemoteIp(a) => block_remote_ip::run(ctx, a).await,
    };
    if matches!(result.outcome, Outcome::Done) {
        ctx.invalidate();
    }
    result
}

/// The VPCs the plan's finding lists (at most a few: see `isolate::PREFETCH_VPCS`).
pub(crate) fn observed_vpcs(plan: &Plan) -> Vec<String> {
    isolate::observed_vpcs(
        plan.observed
            .as_ref()
            .map(|o| o.network_interfaces.as_slice())
            .unwrap_or_default(),
    )
}
