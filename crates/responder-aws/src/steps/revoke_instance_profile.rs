//! `revoke-instance-profile`: remove the association EC2 shows now; the ledger
//! records its profile so that `release` and `relaunch` can restore it.

use responder_core::steps::revoke_instance_profile::Planned;

use crate::call::err;
use crate::context::{Ctx, Revoked, StepResult};
use crate::tagging::filter;

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
    // The profile is recorded (the ledger keeps the step's state) so that `release`
    // and `relaunch` can restore it; never on a tag anyone could overwrite.
    let revoked = Revoked {
        original_profile: arn.clone(),
    };
    ctx.effects.revoked = Some(revoked.clone());
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
        Ok(_) => StepResult::done(vec![arn]).recording(&revoked),
        Err(e) if e.code == "InvalidAssociationID.NotFound" => {
            StepResult::already("the association is already gone")
        }
        Err(e) => StepResult::from_error(&e, false),
    }
}
