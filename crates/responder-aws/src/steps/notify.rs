//! `notify`: publish the report so far to SNS, once per finding (the instance's
//! `notified` tag says it was).

use std::collections::BTreeMap;

use responder_core::steps::notify::Planned;
use responder_core::tags;
use serde_json::json;

use crate::call::err;
use crate::context::{Ctx, StepResult};
use crate::tagging::write_tags;

pub(crate) async fn run(ctx: &mut Ctx<'_>, a: &Planned) -> StepResult {
    let Some(topic) = a
        .topic_arn
        .clone()
        .or_else(|| ctx.options.topic_arn.clone())
    else {
        return StepResult::skipped("no SNS topic: the playbook names none and none is configured");
    };
    let instance = ctx.finding.instance_id().map(str::to_owned);
    if let Some(id) = &instance {
        // Tags as state: read them as they are now (an earlier step may have changed them).
        let _ = ctx.view(id).await;
    }
    let already = ctx
        .instance
        .view
        .as_ref()
        .and_then(|v| v.tags.get(tags::NOTIFIED))
        .is_some_and(|v| *v == ctx.finding.id);
    if already {
        return StepResult::already("the report for this finding was already published");
    }
    if ctx.dry_run {
        return StepResult::skipped("not called: SNS Publish has no DryRun");
    }
    // Finding fields reach a mail client or a chat window: every string escaped.
    let mut message = json!({
        "finding_id": ctx.finding.id,
        "finding_type": ctx.finding.finding_type.name,
        "severity": ctx.finding.severity,
        "account_id": ctx.finding.account_id,
        "region": ctx.finding.region,
        "instance_id": instance,
        "steps": ctx.reports,
    });
    if let (Some(sequence), Some(map)) = (&ctx.sequence, message.as_object_mut()) {
        map.insert("sequence".to_owned(), json!(sequence));
    }
    let message = responder_core::text::escape_json(message);
    match ctx
        .clients
        .sns
        .publish()
        .topic_arn(&topic)
        // The planned subject is already valid; applied again (idempotent) for plans
        // built by other means.
        .subject(responder_core::text::sns_subject(&a.subject))
        .message(serde_json::to_string_pretty(&message).unwrap_or_default())
        .send()
        .await
        .map_err(err)
    {
        Ok(out) => {
            if let Some(id) = &instance {
                let record = BTreeMap::from([(tags::NOTIFIED.to_owned(), ctx.finding.id.clone())]);
                let _ = write_tags(ctx.ec2(), std::slice::from_ref(id), &record, false).await;
            }
            StepResult::done(out.message_id().map(str::to_owned).into_iter().collect())
        }
        Err(e) => StepResult::from_error(&e, false),
    }
}
