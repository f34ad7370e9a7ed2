//! `snapshot`: crash-consistent snapshots of every EBS volume, tagged as planned, as
//! evidence. Snapshots tagged with this finding and instance mean it is done.

use std::time::Duration;

use aws_sdk_ec2::client::Waiters;
use aws_sdk_ec2::config::retry::RetryConfig;
use aws_sdk_ec2::types::{
    EbsInstanceBlockDeviceSpecification, InstanceBlockDeviceMappingSpecification,
    InstanceSpecification, ResourceType, TagSpecification,
};
use responder_core::steps::snapshot::Planned;
use responder_core::tags;

use crate::call::{CallError, err};
use crate::context::{Ctx, StepResult};
use crate::tagging::{tag, tag_filter};

pub(crate) async fn run(ctx: &mut Ctx<'_>, a: &Planned) -> StepResult {
    let ec2 = ctx.ec2();
    let dry_run = ctx.dry_run;
    let instance_id = a.instance_id.as_str();
    let volumes = match ctx.view(instance_id).await {
        Ok(Some(v)) => v.volumes.clone(),
        Ok(None) => return StepResult::skipped(format!("instance {instance_id} not found")),
        Err(e) => return StepResult::from_error(&e, false),
    };
    // Tags as state: snapshots of this instance for this finding already exist?
    let existing = match ours(ec2, &ctx.finding.id, instance_id).await {
        Ok(s) => s,
        Err(e) => return StepResult::from_error(&e, false),
    };
    if !existing.is_empty() && !dry_run {
        let mut r = StepResult::already(format!(
            "{} snapshot(s) of {instance_id} for this finding exist",
            existing.len()
        ));
        r.resources = existing;
        return r;
    }
    let mut notes = Vec::new();
    if a.preserve_volumes && !volumes.is_empty() {
        match preserve(ec2, instance_id, &volumes, dry_run).await {
            Ok(()) => notes
                .push("volumes set to survive termination (DeleteOnTermination=false)".to_owned()),
            Err(e) if dry_run && e.is_dry_run_ok() => {}
            Err(e) => {
                return StepResult::from_error(&e, dry_run)
                    .note("setting DeleteOnTermination=false failed");
            }
        }
    }
    let created = match create_once(ctx, a).await {
        Ok(created) => created,
        Err(e) => return StepResult::from_error(&e, dry_run),
    };
    // Concurrent deliveries: the ledger's claim lets one of them create the set.
    if a.wait && !created.is_empty() {
        let waited = ec2
            .wait_until_snapshot_completed()
            .set_snapshot_ids(Some(created.clone()))
            .wait(Duration::from_secs(u64::from(a.wait_timeout_seconds)))
            .await;
        match waited {
            Ok(_) => notes.push("snapshots completed".to_owned()),
            Err(e) => return StepResult::internal(format!("snapshots not completed: {e}")),
        }
    }
    let mut r = StepResult::done(created);
    r.notes = notes;
    r
}

/// `DeleteOnTermination=false` on every volume, so that a terminate keeps them.
async fn preserve(
    ec2: &aws_sdk_ec2::Client,
    instance_id: &str,
    volumes: &[(String, String)],
    dry_run: bool,
) -> Result<(), CallError> {
    let mut req = ec2
        .modify_instance_attribute()
        .instance_id(instance_id)
        .dry_run(dry_run);
    for (device, _) in volumes {
        req = req.block_device_mappings(
            InstanceBlockDeviceMappingSpecification::builder()
                .device_name(device)
                .ebs(
                    EbsInstanceBlockDeviceSpecification::builder()
                        .delete_on_termination(false)
                        .build(),
                )
                .build(),
        );
    }
    req.send().await.map(|_| ()).map_err(err)
}

/// How many `CreateSnapshots` calls one step makes at most.
const CREATE_ATTEMPTS: u32 = 3;

/// The pause before the second call (doubled before the third).
const CREATE_BACKOFF: Duration = Duration::from_millis(200);

/// Error codes after which `CreateSnapshots` is tried again (throttling, server
/// errors, a lost connection).
fn retryable(e: &CallError) -> bool {
    matches!(
        e.code.as_str(),
        "RequestLimitExceeded"
            | "Throttling"
            | "ThrottlingException"
            | "InternalError"
            | "InternalFailure"
            | "ServiceUnavailable"
            | "Unavailable"
            | "Transport"
    )
}

/// `CreateSnapshots`, retried by the step and not by the SDK. The call has no client
/// token: when EC2 takes a snapshot set and its answer is then lost (a 5xx, a broken
/// connection), the SDK's own retry would take a second set. So the SDK does not
/// retry it; before each new attempt the step looks for the set by its tags, and
/// returns it if the lost attempt made it.
async fn create_once(ctx: &Ctx<'_>, a: &Planned) -> Result<Vec<String>, CallError> {
    let mut attempt = 1;
    loop {
        let e = match create(ctx, a).await {
            Ok(created) => return Ok(created),
            Err(e) if ctx.dry_run || attempt >= CREATE_ATTEMPTS || !retryable(&e) => {
                return Err(e);
            }
            Err(e) => e,
        };
        tokio::time::sleep(CREATE_BACKOFF * attempt).await;
        let found = ours(ctx.ec2(), &ctx.finding.id, &a.instance_id).await?;
        if !found.is_empty() {
            tracing::warn!(error = %e, "CreateSnapshots answered an error, but its snapshot set exists: using it");
            return Ok(found);
        }
        attempt += 1;
    }
}

/// One `CreateSnapshots` call with the instance as source and the planned tags
/// (never resent by the SDK: see [`create_once`]).
async fn create(ctx: &Ctx<'_>, a: &Planned) -> Result<Vec<String>, CallError> {
    let mut spec = TagSpecification::builder().resource_type(ResourceType::Snapshot);
    for (k, v) in &a.tags {
        spec = spec.tags(tag(k, v));
    }
    let out = ctx
        .ec2()
        .create_snapshots()
        .dry_run(ctx.dry_run)
        .instance_specification(
            InstanceSpecification::builder()
                .instance_id(&a.instance_id)
                .build(),
        )
        .description(format!(
            "guardduty-responder evidence: finding {}",
            ctx.finding.id
        ))
        .tag_specifications(spec.build())
        .customize()
        .config_override(
            aws_sdk_ec2::config::Builder::default().retry_config(RetryConfig::disabled()),
        )
        .send()
        .await
        .map_err(err)?;
    Ok(out
        .snapshots()
        .iter()
        .filter_map(|s| s.snapshot_id().map(str::to_owned))
        .collect())
}

/// Snapshots tagged for this finding and instance, sorted.
async fn ours(
    ec2: &aws_sdk_ec2::Client,
    finding_id: &str,
    instance_id: &str,
) -> Result<Vec<String>, CallError> {
    let out = ec2
        .describe_snapshots()
        .owner_ids("self")
        .filters(tag_filter(tags::FINDING_ID, &[finding_id]))
        .filters(tag_filter(tags::INSTANCE_ID, &[instance_id]))
        .send()
        .await
        .map_err(err)?;
    let mut ids: Vec<String> = out
        .snapshots()
        .iter()
        .filter_map(|s| s.snapshot_id().map(str::to_owned))
        .collect();
    ids.sort();
    Ok(ids)
}
