//! `relaunch`: a clean, hardened replacement, from the source the plan resolved: a
//! launch template, the Auto Scaling group (nothing launched here), or a clone of
//! the live instance's configuration. The executor withholds it when an evidence
//! step failed.

use std::collections::BTreeMap;

use aws_sdk_ec2::operation::run_instances::builders::RunInstancesFluentBuilder;
use aws_sdk_ec2::types::{
    HttpTokensState, IamInstanceProfileSpecification, InstanceMetadataEndpointState,
    InstanceMetadataOptionsRequest, InstanceNetworkInterfaceSpecification, InstanceType,
    LaunchTemplateSpecification, ResourceType, TagSpecification,
};
use responder_core::steps::relaunch::{MetadataTokens, Planned, ReplacementSource};
use responder_core::tags;

use crate::call::{CallError, err};
use crate::context::{Ctx, Isolated, Phase, Revoked, StepResult};
use crate::instance::InstanceView;
use crate::tagging::{filter, tag, tag_filter};

/// What `RunInstances` launches from.
enum Launch<'p> {
    /// The plan's launch template.
    Template(&'p str),
    /// The live instance's configuration.
    Clone,
}

pub(crate) async fn run(ctx: &mut Ctx<'_>, a: &Planned) -> StepResult {
    match relaunch(ctx, a).await {
        Ok(r) | Err(r) => r,
    }
}

async fn relaunch(ctx: &mut Ctx<'_>, a: &Planned) -> Phase<StepResult> {
    let view = guard(ctx, a).await?;
    not_yet_replaced(ctx, a).await?;
    let launch = source(a)?;
    let restore = restore(ctx, a, &view).await?;
    let req = request(ctx, a, &view, &launch, &restore)?;
    let launched = match req.send().await.map_err(err) {
        Ok(out) => out
            .instances()
            .iter()
            .filter_map(|i| i.instance_id().map(str::to_owned))
            .collect::<Vec<_>>(),
        Err(e) => return Err(StepResult::from_error(&e, ctx.dry_run)),
    };
    let mut r = StepResult::done(launched);
    r.notes.push(match launch {
        Launch::Template(t) => format!("from launch template {t}"),
        Launch::Clone => "cloned from the instance's configuration".to_owned(),
    });
    Ok(r)
}

/// The instance to replace as it is (or, once terminated, as it last ran). Replaces
/// only an instance this response (or an earlier delivery of this finding) took
/// down; never one terminated by someone else.
async fn guard(ctx: &mut Ctx<'_>, a: &Planned) -> Phase<InstanceView> {
    let instance_id = a.instance_id.as_str();
    let current = ctx.view(instance_id).await.map(|v| v.cloned());
    let ours = match &current {
        Ok(Some(v)) if v.is_terminated() => ctx
            .terminated_by_this_response()
            .await
            .map_err(|e| StepResult::from_error(&e, false))?,
        _ => false,
    };
    match current {
        Ok(Some(v)) if v.is_terminated() && !ours => Err(StepResult::skipped(format!(
            "{instance_id} was terminated outside this response: not replacing it"
        ))),
        Ok(Some(v)) if v.is_terminated() => Ok(ctx.instance.live.clone().unwrap_or(v)),
        Ok(Some(v)) => Ok(v),
        Ok(None) => Err(StepResult::skipped(format!(
            "instance {instance_id} not found: nothing to copy"
        ))),
        Err(e) => Err(StepResult::from_error(&e, false)),
    }
}

/// Tags as state: a replacement for this finding already runs? (moto ignores
/// ClientToken; AWS honours it: both are used.)
async fn not_yet_replaced(ctx: &Ctx<'_>, a: &Planned) -> Phase<()> {
    match replacements(ctx.ec2(), &ctx.finding.id, &a.instance_id).await {
        Ok(existing) if !existing.is_empty() && !ctx.dry_run => {
            let mut r = StepResult::already(format!(
                "{} is already replaced by {}",
                a.instance_id,
                existing.join(", ")
            ));
            r.resources = existing;
            Err(r)
        }
        Ok(_) => Ok(()),
        Err(e) => Err(StepResult::from_error(&e, false)),
    }
}

/// The source the plan resolved. Never read again from the live instance's tags.
#[expect(
    clippy::result_large_err,
    reason = "a Phase error ends the step once; its size does not matter"
)]
fn source(a: &Planned) -> Phase<Launch<'_>> {
    match &a.source {
        ReplacementSource::LaunchTemplate {
            launch_template_id: Some(t),
        } => Ok(Launch::Template(t)),
        ReplacementSource::LaunchTemplate {
            launch_template_id: None,
        } => Err(StepResult::internal(format!(
            "the plan names no launch template for {} (the finding's instance has no {} tag)",
            a.instance_id,
            tags::LAUNCH_TEMPLATE
        ))),
        ReplacementSource::AutoScalingGroup { auto_scaling_group } => {
            Err(StepResult::skipped(format!(
                "left to Auto Scaling group {}: it launches the replacement from its own configuration",
                auto_scaling_group.as_deref().unwrap_or("(unknown)")
            )))
        }
        ReplacementSource::Clone => Ok(Launch::Clone),
    }
}

/// The `RunInstances` request: the planned token, tags, IMDS setting, public IP and
/// type, and the configuration of the source.
#[expect(
    clippy::result_large_err,
    reason = "a Phase error ends the step once; its size does not matter"
)]
fn request(
    ctx: &Ctx<'_>,
    a: &Planned,
    view: &InstanceView,
    launch: &Launch<'_>,
    restore: &Restore,
) -> Phase<RunInstancesFluentBuilder> {
    let mut all_tags: BTreeMap<String, String> = BTreeMap::new();
    if a.copy_tags {
        for (k, v) in &view.tags {
            if !tags::is_reserved(k) {
                all_tags.insert(k.clone(), v.clone());
            }
        }
    }
    all_tags.extend(a.tags.clone());
    let mut spec = TagSpecification::builder().resource_type(ResourceType::Instance);
    for (k, v) in &all_tags {
        spec = spec.tags(tag(k, v));
    }
    let metadata = InstanceMetadataOptionsRequest::builder()
        .http_endpoint(InstanceMetadataEndpointState::Enabled)
        .http_tokens(match a.metadata_tokens {
            MetadataTokens::Required => HttpTokensState::Required,
            MetadataTokens::Optional => HttpTokensState::Optional,
        })
        .build();
    let mut req = ctx
        .ec2()
        .run_instances()
        .dry_run(ctx.dry_run)
        .min_count(1)
        .max_count(1)
        .client_token(&a.client_token)
        .metadata_options(metadata)
        .tag_specifications(spec.build());
    if let Some(t) = &a.instance_type {
        req = req.instance_type(InstanceType::from(t.as_str()));
    }
    match launch {
        Launch::Template(t) => {
            req = req.launch_template(
                LaunchTemplateSpecification::builder()
                    .launch_template_id(*t)
                    .build(),
            );
            if let Some(subnet) = &view.subnet_id {
                req = req.network_interfaces(primary_nic(restore, subnet, a.associate_public_ip));
            }
        }
        Launch::Clone => {
            let (Some(image), Some(subnet)) = (&view.image_id, &view.subnet_id) else {
                return Err(StepResult::internal(format!(
                    "{}: no AMI or subnet to clone",
                    a.instance_id
                )));
            };
            req = req
                .image_id(image)
                .set_key_name(view.key_name.clone())
                .network_interfaces(primary_nic(restore, subnet, a.associate_public_ip));
            if a.instance_type.is_none()
                && let Some(t) = &view.instance_type
            {
                req = req.instance_type(InstanceType::from(t.as_str()));
            }
            if let Some(arn) = &restore.profile {
                req = req.iam_instance_profile(
                    IamInstanceProfileSpecification::builder().arn(arn).build(),
                );
            }
        }
    }
    Ok(req)
}

/// Replacements of this instance for this finding that are not terminated.
async fn replacements(
    ec2: &aws_sdk_ec2::Client,
    finding_id: &str,
    id: &str,
) -> Result<Vec<String>, CallError> {
    let out = ec2
        .describe_instances()
        .filters(tag_filter(tags::REPLACES, &[id]))
        .filters(tag_filter(tags::FINDING_ID, &[finding_id]))
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

/// What the replacement gets back of the original: the primary ENI's groups and
/// the instance profile as they were before any response.
struct Restore {
    groups: Vec<String>,
    profile: Option<String>,
}

/// The original groups and profile, from the responder's own record (this response's
/// isolate, else the ledger), else GuardDuty's copy of the finding, else the live
/// instance when no response changed it. Never from tags: anyone who can tag the
/// instance could otherwise hand the replacement an admin profile or an open group.
async fn restore(ctx: &Ctx<'_>, a: &Planned, view: &InstanceView) -> Phase<Restore> {
    let fail = |e: crate::call::CallError| StepResult::from_error(&e, false);
    let recorded = ctx
        .recorded::<Isolated>(&a.instance_id)
        .await
        .map_err(fail)?
        .map(|i| i.original_groups);
    let observed = ctx.observed;
    let primary = view.enis.first().map(|e| e.id.clone()).or_else(|| {
        observed
            .and_then(|o| o.network_interfaces.first())
            .map(|e| e.network_interface_id.clone())
    });
    let groups = primary
        .as_ref()
        .and_then(|p| recorded.as_ref().and_then(|r| r.get(p)).cloned())
        .or_else(|| {
            let p = primary.as_ref()?;
            observed?
                .network_interfaces
                .iter()
                .find(|e| &e.network_interface_id == p)
                .map(|e| e.security_groups.clone())
        })
        .filter(|g| !g.is_empty())
        .unwrap_or_else(|| {
            if recorded.is_some() {
                Vec::new()
            } else {
                view.enis
                    .first()
                    .map(|e| e.groups.clone())
                    .unwrap_or_default()
            }
        });
    let profile = match ctx
        .recorded::<Revoked>(&a.instance_id)
        .await
        .map_err(fail)?
    {
        Some(r) => Some(r.original_profile),
        None => observed
            .and_then(|o| o.instance_profile_arn.clone())
            .or_else(|| {
                ctx.instance
                    .live
                    .as_ref()
                    .and_then(|v| v.profile_arn.clone())
            }),
    };
    Ok(Restore { groups, profile })
}

/// The replacement's primary interface: the original subnet and the original groups,
/// public IP as asked.
fn primary_nic(
    restore: &Restore,
    subnet: &str,
    public_ip: bool,
) -> InstanceNetworkInterfaceSpecification {
    let mut nic = InstanceNetworkInterfaceSpecification::builder()
        .device_index(0)
        .subnet_id(subnet)
        .associate_public_ip_address(public_ip);
    if !restore.groups.is_empty() {
        nic = nic.set_groups(Some(restore.groups.clone()));
    }
    nic.build()
}
