//! The instance's life: tag, protect, stop, terminate, and relaunch a replacement.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{
    AttributeBooleanValue, HttpTokensState, IamInstanceProfileSpecification,
    InstanceMetadataEndpointState, InstanceMetadataOptionsRequest,
    InstanceNetworkInterfaceSpecification, InstanceType, LaunchTemplateSpecification, ResourceType,
    TagSpecification,
};
use responder_core::plan::{Action, ReplacementSource, TAG_PREFIX};
use responder_core::playbook::steps::MetadataTokens;

use crate::call::{CallError, err};
use crate::executor::{Ctx, InstanceView, StepResult};
use crate::state::{self, decode_groups, filter, original_groups_key, tag, write_tags};

pub(crate) async fn run(ctx: &mut Ctx<'_>, action: &Action) -> StepResult {
    match action {
        Action::Tag { instance_id, tags } => {
            let dry = ctx.dry_run;
            match write_tags(ctx.ec2(), std::slice::from_ref(instance_id), tags, dry).await {
                Ok(()) => StepResult::done(vec![instance_id.clone()]),
                Err(e) => StepResult::from_error(&e, dry),
            }
        }
        Action::Protect {
            instance_id,
            termination,
            shutdown_behavior_stop,
        } => protect(ctx, instance_id, *termination, *shutdown_behavior_stop).await,
        Action::Stop { instance_id, force } => stop(ctx, instance_id, *force).await,
        Action::Terminate {
            instance_id,
            lift_termination_protection,
        } => terminate(ctx, instance_id, *lift_termination_protection).await,
        Action::Relaunch { .. } => relaunch(ctx, action).await,
        _ => StepResult::skipped("not a lifecycle step"),
    }
}

async fn protect(ctx: &mut Ctx<'_>, id: &str, termination: bool, stop: bool) -> StepResult {
    let ec2 = ctx.ec2().clone();
    let dry = ctx.dry_run;
    let mut changed = false;
    if termination {
        match protected(&ec2, id).await {
            Ok(true) => {}
            Ok(false) => {
                if let Err(e) = set_protection(&ec2, id, true, dry).await {
                    return StepResult::from_error(&e, dry);
                }
                changed = true;
            }
            Err(e) => return StepResult::from_error(&e, false),
        }
    }
    if stop {
        let r = ec2
            .modify_instance_attribute()
            .instance_id(id)
            .dry_run(dry)
            // The attribute/value form: moto ignores the structured one; AWS takes both.
            .attribute(aws_sdk_ec2::types::InstanceAttributeName::InstanceInitiatedShutdownBehavior)
            .value("stop")
            .send()
            .await
            .map_err(err);
        if let Err(e) = r {
            return StepResult::from_error(&e, dry);
        }
        changed = true;
    }
    if changed {
        StepResult::done(vec![id.to_owned()])
    } else {
        StepResult::already(format!("{id} is already protected"))
    }
}

async fn set_protection(
    ec2: &aws_sdk_ec2::Client,
    id: &str,
    on: bool,
    dry_run: bool,
) -> Result<(), CallError> {
    ec2.modify_instance_attribute()
        .instance_id(id)
        .dry_run(dry_run)
        .disable_api_termination(AttributeBooleanValue::builder().value(on).build())
        .send()
        .await
        .map(|_| ())
        .map_err(err)
}

async fn protected(ec2: &aws_sdk_ec2::Client, id: &str) -> Result<bool, CallError> {
    let out = ec2
        .describe_instance_attribute()
        .instance_id(id)
        .attribute(aws_sdk_ec2::types::InstanceAttributeName::DisableApiTermination)
        .send()
        .await
        .map_err(err)?;
    Ok(out
        .disable_api_termination()
        .and_then(|v| v.value())
        .unwrap_or(false))
}

async fn stop(ctx: &mut Ctx<'_>, id: &str, force: bool) -> StepResult {
    let state = ctx
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
        .force(force)
        .dry_run(ctx.dry_run)
        .send()
        .await
        .map_err(err)
    {
        Ok(_) => StepResult::done(vec![id.to_owned()]),
        Err(e) => StepResult::from_error(&e, ctx.dry_run),
    }
}

async fn terminate(ctx: &mut Ctx<'_>, id: &str, lift: bool) -> StepResult {
    if ctx.snapshot_failed {
        return StepResult::skipped(
            "the snapshot failed: terminating would destroy the only evidence",
        );
    }
    let state = ctx
        .view
        .as_ref()
        .map(|v| v.state.clone())
        .unwrap_or_default();
    if matches!(state.as_str(), "terminated" | "shutting-down") {
        return StepResult::already(format!("{id} is {state}"));
    }
    let ec2 = ctx.ec2().clone();
    let dry = ctx.dry_run;
    let mut notes = Vec::new();
    if lift {
        match protected(&ec2, id).await {
            Ok(true) => match set_protection(&ec2, id, false, dry).await {
                Ok(_) => notes.push("termination protection lifted".to_owned()),
                Err(e) if dry && e.is_dry_run_ok() => {
                    notes.push("lifting protection would succeed".to_owned())
                }
                Err(e) => return StepResult::from_error(&e, dry),
            },
            Ok(false) => {}
            Err(e) => return StepResult::from_error(&e, false),
        }
    }
    let r = ec2
        .terminate_instances()
        .instance_ids(id)
        .dry_run(dry)
        .send()
        .await
        .map_err(err);
    let mut result = match r {
        Ok(_) => StepResult::done(vec![id.to_owned()]),
        Err(e) if e.code == "OperationNotPermitted" => StepResult::new(e.failed())
            .note("termination protection is on and the playbook does not lift it (lift_termination_protection: true)"),
        Err(e) => StepResult::from_error(&e, dry),
    };
    result.notes.extend(notes);
    result
}

/// Replacements of this instance for this finding that are not terminated.
async fn replacements(
    ec2: &aws_sdk_ec2::Client,
    finding_id: &str,
    id: &str,
) -> Result<Vec<String>, CallError> {
    let out = ec2
        .describe_instances()
        .filters(filter(&format!("tag:{TAG_PREFIX}replaces"), &[id]))
        .filters(filter(
            &format!("tag:{TAG_PREFIX}finding-id"),
            &[finding_id],
        ))
        .filters(filter(
            "instance-state-name",
            &["pending", "running", "stopping", "stopped"],
        ))
        .send()
        .await
        .map_err(err)?;
    let mut ids: Vec<String> = out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter_map(|i| i.instance_id().map(str::to_owned))
        .collect();
    ids.sort();
    Ok(ids)
}

async fn relaunch(ctx: &mut Ctx<'_>, action: &Action) -> StepResult {
    let Action::Relaunch {
        instance_id,
        source,
        client_token,
        metadata_tokens,
        associate_public_ip,
        instance_type,
        copy_tags,
        tags,
    } = action
    else {
        return StepResult::skipped("not a relaunch step");
    };
    if ctx.snapshot_failed {
        return StepResult::skipped(
            "the snapshot failed: not replacing an instance whose evidence is not kept",
        );
    }
    let ec2 = ctx.ec2().clone();
    let dry = ctx.dry_run;
    let current = ctx.view(instance_id).await.map(|v| v.cloned());
    let ours = |v: &InstanceView| v.tags.get(&state::isolated_key()) == Some(&ctx.finding.id);
    let view = match current {
        // Replace only an instance this response (or an earlier delivery of this
        // finding) took down; never one terminated by someone else.
        Ok(Some(v)) if v.is_terminated() && !ctx.terminated && !ours(&v) => {
            return StepResult::skipped(format!(
                "{instance_id} was terminated outside this response: not replacing it"
            ));
        }
        Ok(Some(v)) if v.is_terminated() => ctx.live.clone().unwrap_or(v),
        Ok(Some(v)) => v,
        Ok(None) => {
            return StepResult::skipped(format!(
                "instance {instance_id} not found: nothing to copy"
            ));
        }
        Err(e) => return StepResult::from_error(&e, false),
    };
    // Tags as state (moto ignores ClientToken; AWS honours it: both are used).
    match replacements(&ec2, &ctx.finding.id, instance_id).await {
        Ok(existing) if !existing.is_empty() && !dry => {
            let mut r = StepResult::already(format!(
                "{instance_id} is already replaced by {}",
                existing.join(", ")
            ));
            r.resources = existing;
            return r;
        }
        Ok(_) => {}
        Err(e) => return StepResult::from_error(&e, false),
    }
    let template = view.tags.get("aws:ec2launchtemplate:id").cloned();
    let asg = view.tags.get("aws:autoscaling:groupName").cloned();
    let kind = match source {
        ReplacementSource::LaunchTemplate { launch_template_id } => {
            match launch_template_id.clone().or(template) {
                Some(t) => Kind::Template(t),
                None => {
                    return StepResult::new(
                        CallError::internal(format!("{instance_id} has no launch template"))
                            .failed(),
                    );
                }
            }
        }
        ReplacementSource::AutoScalingGroup { auto_scaling_group } => {
            Kind::Asg(auto_scaling_group.clone().or(asg))
        }
        ReplacementSource::Clone { .. } => Kind::Clone,
        ReplacementSource::Auto => match (template, asg) {
            (Some(t), _) => Kind::Template(t),
            (None, Some(g)) => Kind::Asg(Some(g)),
            (None, None) => Kind::Clone,
        },
    };
    if let Kind::Asg(group) = &kind {
        return StepResult::skipped(format!(
            "left to Auto Scaling group {}: it launches the replacement from its own configuration",
            group.as_deref().unwrap_or("(unknown)")
        ));
    }
    let mut all_tags: BTreeMap<String, String> = BTreeMap::new();
    if *copy_tags {
        for (k, v) in &view.tags {
            if !k.starts_with("aws:") && !k.starts_with(TAG_PREFIX) {
                all_tags.insert(k.clone(), v.clone());
            }
        }
    }
    all_tags.extend(tags.clone());
    let mut spec = TagSpecification::builder().resource_type(ResourceType::Instance);
    for (k, v) in &all_tags {
        spec = spec.tags(tag(k, v));
    }
    let metadata = InstanceMetadataOptionsRequest::builder()
        .http_endpoint(InstanceMetadataEndpointState::Enabled)
        .http_tokens(match metadata_tokens {
            MetadataTokens::Required => HttpTokensState::Required,
            MetadataTokens::Optional => HttpTokensState::Optional,
        })
        .build();
    let mut req = ec2
        .run_instances()
        .dry_run(dry)
        .min_count(1)
        .max_count(1)
        .client_token(client_token)
        .metadata_options(metadata)
        .tag_specifications(spec.build());
    if let Some(t) = instance_type {
        req = req.instance_type(InstanceType::from(t.as_str()));
    }
    match &kind {
        Kind::Template(t) => {
            req = req.launch_template(
                LaunchTemplateSpecification::builder()
                    .launch_template_id(t)
                    .build(),
            );
            if let Some(subnet) = &view.subnet_id {
                req = req.network_interfaces(primary_nic(&view, subnet, *associate_public_ip));
            }
        }
        Kind::Clone => {
            let (Some(image), Some(subnet)) = (&view.image_id, &view.subnet_id) else {
                return StepResult::new(
                    CallError::internal(format!("{instance_id}: no AMI or subnet to clone"))
                        .failed(),
                );
            };
            req = req
                .image_id(image)
                .set_key_name(view.key_name.clone())
                .network_interfaces(primary_nic(&view, subnet, *associate_public_ip));
            if instance_type.is_none()
                && let Some(t) = &view.instance_type
            {
                req = req.instance_type(InstanceType::from(t.as_str()));
            }
            if let Some(arn) = original_profile(&view) {
                req = req.iam_instance_profile(
                    IamInstanceProfileSpecification::builder().arn(arn).build(),
                );
            }
        }
        Kind::Asg(_) => {}
    }
    let launched = match req.send().await.map_err(err) {
        Ok(out) => out
            .instances()
            .iter()
            .filter_map(|i| i.instance_id().map(str::to_owned))
            .collect::<Vec<_>>(),
        Err(e) => return StepResult::from_error(&e, dry),
    };
    // Concurrent deliveries: after the settle delay the lowest instance id stays.
    tokio::time::sleep(crate::executor::SETTLE).await;
    match replacements(&ec2, &ctx.finding.id, instance_id).await {
        Ok(all) => {
            if let (Some(first), Some(mine)) = (all.first(), launched.first())
                && first != mine
                && !launched.contains(first)
            {
                let _ = ec2
                    .terminate_instances()
                    .set_instance_ids(Some(launched.clone()))
                    .send()
                    .await;
                return StepResult::already(format!(
                    "a concurrent response replaced {instance_id} with {first}"
                ));
            }
        }
        Err(e) => {
            return StepResult::from_error(&e, false)
                .note("launched, but the duplicate check failed");
        }
    }
    let mut r = StepResult::done(launched);
    r.notes.push(match kind {
        Kind::Template(t) => format!("from launch template {t}"),
        _ => "cloned from the instance's configuration".to_owned(),
    });
    r
}

enum Kind {
    Template(String),
    Asg(Option<String>),
    Clone,
}

/// The replacement's primary interface: the original subnet and the ORIGINAL groups
/// (from the record tag when the instance is already isolated), public IP as asked.
fn primary_nic(
    view: &InstanceView,
    subnet: &str,
    public_ip: bool,
) -> InstanceNetworkInterfaceSpecification {
    let primary = view.enis.first();
    let groups: Vec<String> = primary
        .and_then(|e| view.tags.get(&original_groups_key(&e.id)))
        .map(|v| decode_groups(v))
        .or_else(|| {
            // No ENI left (terminated): any recorded groups.
            view.tags
                .iter()
                .find(|(k, _)| k.starts_with(&original_groups_key("")))
                .map(|(_, v)| decode_groups(v))
        })
        .unwrap_or_else(|| primary.map(|e| e.groups.clone()).unwrap_or_default());
    InstanceNetworkInterfaceSpecification::builder()
        .device_index(0)
        .subnet_id(subnet)
        .associate_public_ip_address(public_ip)
        .set_groups(Some(groups))
        .build()
}

fn original_profile(view: &InstanceView) -> Option<String> {
    view.tags
        .get(&state::original_profile_key())
        .cloned()
        .or_else(|| view.profile_arn.clone())
}
