//! `release`: undo an isolation and a profile revocation from what the responder
//! recorded in its ledger (never from tags, which anyone who can tag the instance
//! could have written), then remove the `isolated` marker.

use aws_sdk_ec2::types::IamInstanceProfileSpecification;
use responder_core::steps::release::Planned;
use responder_core::tags;

use super::isolate::move_eni;
use crate::call::err;
use crate::context::{Ctx, Isolated, Revoked, StepResult};
use crate::report::Outcome;
use crate::tagging::tag;

pub(crate) async fn run(ctx: &mut Ctx<'_>, a: &Planned) -> StepResult {
    let id = a.instance_id.as_str();
    let ec2 = ctx.ec2();
    let Some(view) = ctx.instance.view.clone() else {
        return StepResult::skipped(format!("instance {id} not found"));
    };
    let groups = match ctx.recorded::<Isolated>(id).await {
        Ok(i) => i.map(|i| i.original_groups).unwrap_or_default(),
        Err(e) => return StepResult::from_error(&e, false),
    };
    let profile = match ctx.recorded::<Revoked>(id).await {
        Ok(r) => r.map(|r| r.original_profile),
        Err(e) => return StepResult::from_error(&e, false),
    };
    if groups.is_empty() && profile.is_none() {
        return StepResult::already(format!(
            "the ledger holds no isolation or revocation of {id} to release"
        ));
    }
    let mut restored = Vec::new();
    for eni in &view.enis {
        let Some(original) = groups.get(&eni.id) else {
            continue;
        };
        if &eni.groups == original {
            continue;
        }
        match move_eni(ec2, &eni.id, original.clone(), ctx.dry_run).await {
            Ok(()) => restored.push(eni.id.clone()),
            Err(e) => return StepResult::from_error(&e, ctx.dry_run),
        }
    }
    if let Some(arn) = &profile
        && view.profile_arn.is_none()
    {
        if ctx.dry_run {
            return StepResult::no_dry_run(format!("would associate {arn} with {id}"));
        }
        let r = ec2
            .associate_iam_instance_profile()
            .instance_id(id)
            .iam_instance_profile(IamInstanceProfileSpecification::builder().arn(arn).build())
            .send()
            .await
            .map_err(err);
        match r {
            Ok(_) => restored.push(arn.clone()),
            Err(e) => {
                return StepResult::from_error(&e, false)
                    .note("groups restored; the instance profile was not");
            }
        }
    }
    if ctx.dry_run {
        return StepResult::new(Outcome::WouldSucceed);
    }
    if restored.is_empty() {
        return StepResult::already(format!("{id} already has its recorded groups and profile"));
    }
    if let Some(v) = view.tags.get(tags::ISOLATED) {
        let _ = ec2
            .delete_tags()
            .resources(id)
            .tags(tag(tags::ISOLATED, v))
            .send()
            .await;
    }
    let mut r = StepResult::done(restored);
    r.notes
        .push(format!("the {} marker is removed", tags::ISOLATED));
    r
}
