//! `stop`: stop the instance (stopped or stopping counts as done).

use responder_core::steps::stop::Planned;

use crate::call::err;
use crate::context::{Ctx, StepResult};

pub(crate) async fn run(ctx: &mut Ctx<'_>, a: &Planned) -> StepResult {
    let id = a.instance_id.as_str();
    let state = ctx
        .instance
        .view
        .as_ref()
        .map(|v| v.state.clone())
        .unwrap_or_default();
    if matches!(state.as_str(), "stopped" | "stopping") && !ctx.dry_run {
        return StepResult::already(format!("{id} is {state}"));
    }
    match ctx
        .ec2()
        .stop_instances()
        .instance_ids(id)
        .force(a.force)
        .dry_run(ctx.dry_run)
        .send()
        .await
        .map_err(err)
    {
        Ok(_) => StepResult::done(vec![id.to_owned()]),
        Err(e) => StepResult::from_error(&e, ctx.dry_run),
    }
}
