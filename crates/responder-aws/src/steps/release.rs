//! `release`: undo an isolation and a profile revocation from what they recorded on
//! the instance, then remove the records.

use aws_sdk_ec2::types::IamInstanceProfileSpecification;
use responder_core::steps::release::Planned;
use responder_core::tags;

use super::isolate::move_eni;
use crate::call::err;
use crate::context::{Ctx, StepResult};
use crate::report::Outcome;
use crate::tagging::tag;

pub(crate) async fn run(ctx: &mut Ctx<'_>, a: &Planned) -> StepResult {
    let id = a.instance_id.as_str();
    let ec2 = ctx.ec2();
    let Some(view) = ctx.view.clone() else {
        return StepResult::skipped(format!("instance {id} not found"));
    };
    let mut restored = Vec::new();
    for eni in &view.enis {
        let Some(groups) = view
            .tags
            .get(&tags::original_groups(&eni.id))
            .map(|v| tags::decode_groups(v))
        else {
            continue;
        };
        match move_eni(ec2, &eni.id, groups, ctx.dry_run).await {
            Ok(()) => restored.push(eni.id.clone()),
            Err(e) => return StepResult::from_error(&e, ctx.dry_run),
        }
    }
    let profile = view.tags.get(tags::ORIGINAL_PROFILE).cloned();
    if let Some(arn) = &profile
        && view.profile_arn.is_none()
    {
        let r = ec2
            .associate_iam_instance_profile()
            .instance_id(id)
            .iam_instance_profile(IamInstanceProfileSpecification::builder().arn(arn).build())
            .send()
            .await
            .map_err(err);
        if let Err(e) = r {
            return StepResult::from_error(&e, false)
                .note("groups restored; the instance profile was not");
        }
    }
    if restored.is_empty() && profile.is_none() {
        return StepResult::already(format!("{id} has no recorded isolation to release"));
    }
    if ctx.dry_run {
        return StepResult::new(Outcome::WouldSucceed);
    }
    let mut del = ec2.delete_tags().resources(id);
    for (k, v) in view.tags.iter().filter(|(k, _)| {
        k.starts_with(tags::ORIGINAL_GROUPS_PREFIX)
            || *k == tags::ORIGINAL_PROFILE
            || *k == tags::ISOLATED
    }) {
        del = del.tags(tag(k, v));
    }
    let _ = del.send().await;
    let mut r = StepResult::done(restored);
    r.notes
        .push(format!("isolation records ({}...) removed", tags::PREFIX));
    r
}
