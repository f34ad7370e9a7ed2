//! `detach-from-asg`: out of the Auto Scaling group Auto Scaling reports now.

use responder_core::steps::detach_from_asg::Planned;

use crate::call::err;
use crate::context::{Ctx, StepResult};

pub(crate) async fn run(ctx: &mut Ctx<'_>, a: &Planned) -> StepResult {
    let id = a.instance_id.as_str();
    let asg = &ctx.clients.autoscaling;
    let found = asg
        .describe_auto_scaling_instances()
        .instance_ids(id)
        .send()
        .await
        .map_err(err);
    let group = match found {
        Ok(out) => out
            .auto_scaling_instances()
            .first()
            .and_then(|i| i.auto_scaling_group_name())
            .map(str::to_owned),
        Err(e) => return StepResult::from_error(&e, false),
    };
    let Some(group) = group else {
        return StepResult::already(format!("{id} is not in an Auto Scaling group"));
    };
    if ctx.dry_run {
        return StepResult::no_dry_run(format!("would detach {id} from {group}"));
    }
    match asg
        .detach_instances()
        .auto_scaling_group_name(&group)
        .instance_ids(id)
        .should_decrement_desired_capacity(a.decrement_desired_capacity)
        .send()
        .await
        .map_err(err)
    {
        Ok(_) => StepResult::done(vec![group]),
        Err(e) => StepResult::from_error(&e, false),
    }
}
