//! Steps that talk to other services about the response: GuardDuty and SNS.

use std::collections::BTreeMap;

use responder_core::plan::Action;
use serde_json::json;

use crate::call::err;
use crate::executor::{Ctx, StepResult};
use crate::state::{self, write_tags};

pub(crate) async fn run(ctx: &mut Ctx<'_>, action: &Action) -> StepResult {
    match action {
        Action::ArchiveFinding {
            detector_id,
            finding_id,
        } => {
            let Some(detector) = detector_id else {
                return StepResult::skipped("the finding names no detector id");
            };
            if ctx.dry_run {
                return StepResult::skipped("not called: ArchiveFindings has no DryRun");
            }
            match ctx
                .exec
                .clients
                .guardduty
                .archive_findings()
                .detector_id(detector)
                .finding_ids(finding_id)
                .send()
                .await
                .map_err(err)
            {
                Ok(_) => StepResult::done(vec![finding_id.clone()]),
                Err(e) => StepResult::from_error(&e, false),
            }
        }
        Action::Notify { topic_arn, subject } => notify(ctx, topic_arn.as_deref(), subject).await,
        _ => StepResult::skipped("not an outbound step"),
    }
}

async fn notify(ctx: &mut Ctx<'_>, topic: Option<&str>, subject: &str) -> StepResult {
    let Some(topic) = topic
        .map(str::to_owned)
        .or_else(|| ctx.exec.options.topic_arn.clone())
    else {
        return StepResult::skipped("no SNS topic: the playbook names none and none is configured");
    };
    let instance = ctx.finding.instance_id().map(str::to_owned);
    if let Some(id) = &instance {
        // Tags as state: read them as they are now (an earlier step may have changed them).
        let _ = ctx.view(id).await;
    }
    let key = state::notified_key();
    let already = ctx
        .view
        .as_ref()
        .and_then(|v| v.tags.get(&key))
        .is_some_and(|v| *v == ctx.finding.id);
    if already {
        return StepResult::already("the report for this finding was already published");
    }
    if ctx.dry_run {
        return StepResult::skipped("not called: SNS Publish has no DryRun");
    }
    let message = json!({
        "finding_id": ctx.finding.id,
        "finding_type": ctx.finding.finding_type.name,
        "severity": ctx.finding.severity,
        "account_id": ctx.finding.account_id,
        "region": ctx.finding.region,
        "instance_id": instance,
        "steps": ctx.reports,
    });
    match ctx
        .exec
        .clients
        .sns
        .publish()
        .topic_arn(&topic)
        .subject(subject)
        .message(serde_json::to_string_pretty(&message).unwrap_or_default())
        .send()
        .await
        .map_err(err)
    {
        Ok(out) => {
            if let Some(id) = &instance {
                let tags = BTreeMap::from([(key, ctx.finding.id.clone())]);
                let _ = write_tags(ctx.ec2(), std::slice::from_ref(id), &tags, false).await;
            }
            StepResult::done(out.message_id().map(str::to_owned).into_iter().collect())
        }
        Err(e) => StepResult::from_error(&e, false),
    }
}
