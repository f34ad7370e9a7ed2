//! Evidence: snapshots of every volume, and the console output.

use std::time::Duration;

use aws_sdk_ec2::client::Waiters;
use aws_sdk_ec2::types::{
    EbsInstanceBlockDeviceSpecification, InstanceBlockDeviceMappingSpecification,
    InstanceSpecification, ResourceType, TagSpecification,
};
use responder_core::plan::{Action, TAG_PREFIX};

use crate::call::{CallError, err};
use crate::executor::{Ctx, StepResult};
use crate::state::{filter, tag};

/// Console output kept in the report: the last 32 KiB.
const MAX_CONSOLE_BYTES: usize = 32 * 1024;

pub(crate) async fn run(ctx: &mut Ctx<'_>, action: &Action) -> StepResult {
    match action {
        Action::Snapshot {
            instance_id,
            tags,
            wait,
            wait_timeout_seconds,
            preserve_volumes,
        } => {
            snapshot(
                ctx,
                instance_id,
                tags,
                *wait,
                *wait_timeout_seconds,
                *preserve_volumes,
            )
            .await
        }
        Action::CaptureConsoleOutput {
            instance_id,
            latest,
        } => console(ctx, instance_id, *latest).await,
        _ => StepResult::skipped("not an evidence step"),
    }
}

async fn snapshot(
    ctx: &mut Ctx<'_>,
    instance_id: &str,
    tags: &std::collections::BTreeMap<String, String>,
    wait: bool,
    wait_timeout_seconds: u32,
    preserve_volumes: bool,
) -> StepResult {
    let ec2 = ctx.ec2().clone();
    let dry_run = ctx.dry_run;
    let volumes = match ctx.view(instance_id).await {
        Ok(Some(v)) => v.volumes.clone(),
        Ok(None) => return StepResult::skipped(format!("instance {instance_id} not found")),
        Err(e) => return StepResult::from_error(&e, false),
    };
    // Tags as state: snapshots of this instance for this finding already exist?
    let existing = match ours(&ec2, &ctx.finding.id, instance_id).await {
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
    if preserve_volumes && !volumes.is_empty() {
        let mut req = ec2
            .modify_instance_attribute()
            .instance_id(instance_id)
            .dry_run(dry_run);
        for (device, _) in &volumes {
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
        match req.send().await.map_err(err) {
            Ok(_) => notes
                .push("volumes set to survive termination (DeleteOnTermination=false)".to_owned()),
            Err(e) if dry_run && e.is_dry_run_ok() => {}
            Err(e) => {
                return StepResult::from_error(&e, dry_run)
                    .note("setting DeleteOnTermination=false failed");
            }
        }
    }
    let mut spec = TagSpecification::builder().resource_type(ResourceType::Snapshot);
    for (k, v) in tags {
        spec = spec.tags(tag(k, v));
    }
    let out = ec2
        .create_snapshots()
        .dry_run(dry_run)
        .instance_specification(
            InstanceSpecification::builder()
                .instance_id(instance_id)
                .build(),
        )
        .description(format!(
            "guardduty-responder evidence: finding {}",
            ctx.finding.id
        ))
        .tag_specifications(spec.build())
        .send()
        .await
        .map_err(err);
    let created: Vec<String> = match out {
        Ok(out) => out
            .snapshots()
            .iter()
            .filter_map(|s| s.snapshot_id().map(str::to_owned))
            .collect(),
        Err(e) => return StepResult::from_error(&e, dry_run),
    };
    // Concurrent deliveries may each have created a set. After a settle delay every
    // one of them sees all sets; the set holding the lowest snapshot id stays, the
    // others delete their own. Converges without a lock for deliveries that start
    // within the delay of each other (a conditional write in a table is the general fix).
    tokio::time::sleep(crate::executor::SETTLE).await;
    let all = match ours(&ec2, &ctx.finding.id, instance_id).await {
        Ok(s) => s,
        Err(e) => return StepResult::from_error(&e, false),
    };
    let lowest_other = all.iter().filter(|s| !created.contains(s)).min();
    if let (Some(other), Some(mine)) = (lowest_other, created.iter().min())
        && other < mine
    {
        for s in &created {
            let _ = ec2.delete_snapshot().snapshot_id(s).send().await;
        }
        return StepResult::already(format!(
            "a concurrent response snapshotted {instance_id} first"
        ));
    }
    if wait && !created.is_empty() {
        let waited = ec2
            .wait_until_snapshot_completed()
            .set_snapshot_ids(Some(created.clone()))
            .wait(Duration::from_secs(u64::from(wait_timeout_seconds)))
            .await;
        match waited {
            Ok(_) => notes.push("snapshots completed".to_owned()),
            Err(e) => {
                return StepResult::new(
                    CallError::internal(format!("snapshots not completed: {e}")).failed(),
                );
            }
        }
    }
    let mut r = StepResult::done(created);
    r.notes = notes;
    r
}

/// Snapshots tagged for this finding and instance.
async fn ours(
    ec2: &aws_sdk_ec2::Client,
    finding_id: &str,
    instance_id: &str,
) -> Result<Vec<String>, CallError> {
    let out = ec2
        .describe_snapshots()
        .owner_ids("self")
        .filters(filter(
            &format!("tag:{TAG_PREFIX}finding-id"),
            &[finding_id],
        ))
        .filters(filter(
            &format!("tag:{TAG_PREFIX}instance-id"),
            &[instance_id],
        ))
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

async fn console(ctx: &mut Ctx<'_>, instance_id: &str, latest: bool) -> StepResult {
    if ctx.dry_run {
        return match ctx
            .ec2()
            .get_console_output()
            .instance_id(instance_id)
            .dry_run(true)
            .send()
            .await
            .map_err(err)
        {
            Ok(_) => StepResult::skipped("DryRun call unexpectedly succeeded"),
            Err(e) => StepResult::new(e.dry_run_outcome()),
        };
    }
    let out = ctx
        .ec2()
        .get_console_output()
        .instance_id(instance_id)
        .latest(latest)
        .send()
        .await
        .map_err(err);
    match out {
        Ok(out) => {
            let text = out
                .output()
                .and_then(|b64| aws_smithy_types::base64::decode(b64).ok())
                .map(|bytes| {
                    let start = bytes.len().saturating_sub(MAX_CONSOLE_BYTES);
                    String::from_utf8_lossy(&bytes[start..]).into_owned()
                });
            let mut r = StepResult::done(Vec::new());
            match text {
                Some(t) => r.output = Some(t),
                None => r
                    .notes
                    .push("the instance has no console output yet".to_owned()),
            }
            r
        }
        Err(e) => StepResult::from_error(&e, false),
    }
}
