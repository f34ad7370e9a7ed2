//! What the instance can reach and what reaches it: Auto Scaling, load balancers,
//! its instance profile, and `release` (undoing isolation and profile revocation).

use std::collections::BTreeMap;

use aws_sdk_ec2::types::IamInstanceProfileSpecification;
use aws_sdk_elasticloadbalancingv2::types::TargetDescription;
use responder_core::plan::{Action, TAG_PREFIX};

use crate::call::err;
use crate::executor::{Ctx, StepResult};
use crate::state::{self, decode_groups, filter, write_tags};

pub(crate) async fn run(ctx: &mut Ctx<'_>, action: &Action) -> StepResult {
    match action {
        Action::DetachFromAsg {
            instance_id,
            auto_scaling_group,
            decrement_desired_capacity,
        } => {
            detach(
                ctx,
                instance_id,
                auto_scaling_group.as_deref(),
                *decrement_desired_capacity,
            )
            .await
        }
        Action::DeregisterFromTargetGroups { instance_id } => deregister(ctx, instance_id).await,
        Action::RevokeInstanceProfile { instance_id, .. } => revoke(ctx, instance_id).await,
        Action::Release { instance_id, .. } => release(ctx, instance_id).await,
        _ => StepResult::skipped("not an access step"),
    }
}

const NO_DRY_RUN: &str = "not called: this API has no DryRun";

async fn detach(ctx: &mut Ctx<'_>, id: &str, named: Option<&str>, decrement: bool) -> StepResult {
    let asg = &ctx.exec.clients.autoscaling;
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
        return StepResult::already(match named {
            Some(n) => format!("{id} is no longer in Auto Scaling group {n}"),
            None => format!("{id} is not in an Auto Scaling group"),
        });
    };
    if ctx.dry_run {
        return StepResult::skipped(format!("{NO_DRY_RUN} (would detach {id} from {group})"));
    }
    match asg
        .detach_instances()
        .auto_scaling_group_name(&group)
        .instance_ids(id)
        .should_decrement_desired_capacity(decrement)
        .send()
        .await
        .map_err(err)
    {
        Ok(_) => StepResult::done(vec![group]),
        Err(e) => StepResult::from_error(&e, false),
    }
}

async fn deregister(ctx: &mut Ctx<'_>, id: &str) -> StepResult {
    let elb = &ctx.exec.clients.elbv2;
    let mut groups = Vec::new();
    let mut marker: Option<String> = None;
    // Bounded: at most 50 pages of 400 target groups.
    for _ in 0..50 {
        let page = elb
            .describe_target_groups()
            .set_marker(marker.clone())
            .send()
            .await
            .map_err(err);
        let page = match page {
            Ok(p) => p,
            Err(e) => return StepResult::from_error(&e, false),
        };
        groups.extend(
            page.target_groups()
                .iter()
                .filter_map(|g| g.target_group_arn().map(str::to_owned)),
        );
        marker = page.next_marker().map(str::to_owned);
        if marker.is_none() {
            break;
        }
    }
    let mut registered = Vec::new();
    for arn in &groups {
        match elb
            .describe_target_health()
            .target_group_arn(arn)
            .send()
            .await
            .map_err(err)
        {
            Ok(h) => {
                for d in h.target_health_descriptions() {
                    if let Some(t) = d.target().filter(|t| t.id() == Some(id)) {
                        registered.push((arn.clone(), t.port()));
                    }
                }
            }
            Err(e) => return StepResult::from_error(&e, false),
        }
    }
    if registered.is_empty() {
        return StepResult::already(format!("{id} is in no target group"));
    }
    if ctx.dry_run {
        return StepResult::skipped(format!(
            "{NO_DRY_RUN} (would deregister {id} from {} target group(s))",
            registered.len()
        ));
    }
    let mut done = Vec::new();
    for (arn, port) in registered {
        let target = TargetDescription::builder().id(id).set_port(port).build();
        match elb
            .deregister_targets()
            .target_group_arn(&arn)
            .targets(target)
            .send()
            .await
            .map_err(err)
        {
            Ok(_) => done.push(arn),
            // Already gone (a concurrent response, or moto's answer to a repeat).
            Err(e) if e.code == "InvalidTarget" => {}
            Err(e) => return StepResult::from_error(&e, false),
        }
    }
    StepResult::done(done)
}

async fn revoke(ctx: &mut Ctx<'_>, id: &str) -> StepResult {
    let ec2 = ctx.ec2().clone();
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
    let key = state::original_profile_key();
    let recorded = ctx.view.as_ref().is_some_and(|v| v.tags.contains_key(&key));
    if !recorded && !ctx.dry_run && !arn.is_empty() {
        let tags = BTreeMap::from([(key, arn.clone())]);
        if let Err(e) = write_tags(&ec2, &[id.to_owned()], &tags, false).await {
            return StepResult::from_error(&e, false)
                .note("not revoking: the profile could not be recorded");
        }
    }
    if ctx.dry_run {
        return StepResult::skipped(format!("{NO_DRY_RUN} (would remove {arn} from {id})"));
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

async fn release(ctx: &mut Ctx<'_>, id: &str) -> StepResult {
    let ec2 = ctx.ec2().clone();
    let Some(view) = ctx.view.clone() else {
        return StepResult::skipped(format!("instance {id} not found"));
    };
    let prefix = state::original_groups_key("");
    let mut restored = Vec::new();
    for eni in &view.enis {
        let Some(groups) = view
            .tags
            .get(&state::original_groups_key(&eni.id))
            .map(|v| decode_groups(v))
        else {
            continue;
        };
        let mut req = ec2
            .modify_network_interface_attribute()
            .network_interface_id(&eni.id)
            .dry_run(ctx.dry_run);
        for g in &groups {
            req = req.groups(g);
        }
        match req.send().await.map_err(err) {
            Ok(_) => restored.push(eni.id.clone()),
            Err(e) => return StepResult::from_error(&e, ctx.dry_run),
        }
    }
    let profile = view.tags.get(&state::original_profile_key()).cloned();
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
        return StepResult::new(crate::report::Outcome::WouldSucceed);
    }
    let mut del = ec2.delete_tags().resources(id);
    for k in view.tags.keys().filter(|k| {
        k.starts_with(&prefix)
            || **k == state::original_profile_key()
            || **k == state::isolated_key()
    }) {
        del = del.tags(state::tag(
            k,
            view.tags.get(k).map(String::as_str).unwrap_or_default(),
        ));
    }
    let _ = del.send().await;
    let mut r = StepResult::done(restored);
    r.notes
        .push(format!("isolation records ({TAG_PREFIX}...) removed"));
    r
}
