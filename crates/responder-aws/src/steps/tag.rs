//! `tag`: the planned tags on the instance (`CreateTags` overwrites: idempotent).

use responder_core::steps::tag::Planned;

use crate::context::{Ctx, StepResult};
use crate::tagging::write_tags;

pub(crate) async fn run(ctx: &mut Ctx<'_>, a: &Planned) -> StepResult {
    let dry = ctx.dry_run;
    match write_tags(
        ctx.ec2(),
        std::slice::from_ref(&a.instance_id),
        &a.tags,
        dry,
    )
    .await
    {
        Ok(()) => StepResult::done(vec![a.instance_id.clone()]),
        Err(e) => StepResult::from_error(&e, dry),
    }
}
