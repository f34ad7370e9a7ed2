//! `revoke-instance-profile`: remove the association EC2 shows now, after recording
//! its profile on the instance so that `release` can restore it.

use std::collections::BTreeMap;

use responder_core::steps::revoke_instance_profile::Planned;
use responder_core::tags;

use crate::call::err;
use crate::context::{Ctx, StepResult};
use crate::tagging::{filter, write_tags};

pub(crate) async fn run(ctx: &mut Ctx<'_>, a: &Planned) -> StepResult {
    let id = a.instance_id.as_str();
    let ec2 = ctx.ec2();
    let out = ec2
        .describe_iam_instance_profile_associations()
        .filters(filter("instance-id", &[id]))
        .filters(filter("state", &["associated", "associating"]))
        .send()
        .await
        .map_err(err);
    let assoc = match out {
        Ok(o) => o.iam_instance_profile_associations().first().map(|a| {
            (
                a.association_id().unwrap_or_default().to_owned(),
                a.iam_instance_profile()
                    .and_then(|p| p.arn())
                    .unwrap_or_default()
                    .to_owned(),
            )
        }),
        Err(e) => return StepResult::from_error(&e, false),
    };
    let Some((assoc_id, arn)) = assoc else {
        return StepResult::already(format!("{id} has no instance profile"));
    };
    // Record the profile so `release` can restore it (never overwrite a record).
    let recorded = ctx
        .view
        .as_ref()
        .is_some_and(|v| v.tags.contains_key(tags::ORIGINAL_PROFILE));
    if !recorded && !ctx.dry_run && !arn.is_empty() {
        let record = BTreeMap::from([(tags::ORIGINAL_PROFILE.to_owned(), arn.clone())]);
        if let Err(e) = write_tags(ec2, &[id.to_owned()], &record, false).await {
            return StepResult::from_error(&e, false)
                .note("not revoking: the profile could not be recorded");
        }
    }
    if ctx.dry_run {
        return StepResult::no_dry_run(format!("would remove {arn} from {id}"));
    }
    match ec2
        .disassociate_iam_instance_profile()
        .association_id(&assoc_id)
        .send()
        .await
        .map_err(err)
    {
        Ok(_) => StepResult::done(vec![arn]),
        Err(e) if e.code == "InvalidAssociationID.NotFound" => {
            StepResult::already("the association is already gone")
        }
        Err(e) => StepResult::from_error(&e, false),
    }
}
