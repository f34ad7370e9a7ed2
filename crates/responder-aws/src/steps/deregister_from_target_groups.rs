//! `deregister-from-target-groups`: out of every target group that lists the
//! instance now.

use aws_sdk_elasticloadbalancingv2::types::TargetDescription;
use responder_core::steps::deregister_from_target_groups::Planned;

use crate::call::{CallError, err};
use crate::context::{Ctx, StepResult};

pub(crate) async fn run(ctx: &mut Ctx<'_>, a: &Planned) -> StepResult {
    let id = a.instance_id.as_str();
    let elb = &ctx.clients.elbv2;
    let registered = match registrations(elb, id).await {
        Ok(r) => r,
        Err(e) => return StepResult::from_error(&e, false),
    };
    if registered.is_empty() {
        return StepResult::already(format!("{id} is in no target group"));
    }
    if ctx.dry_run {
        return StepResult::no_dry_run(format!(
            "would deregister {id} from {} target group(s)",
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

/// `(target group ARN, port)` of every registration of the instance.
async fn registrations(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    id: &str,
) -> Result<Vec<(String, Option<i32>)>, CallError> {
    let mut groups = Vec::new();
    let mut marker: Option<String> = None;
    // Bounded: at most 50 pages of 400 target groups.
    for _ in 0..50 {
        let page = elb
            .describe_target_groups()
            .set_marker(marker.clone())
            .send()
            .await
            .map_err(err)?;
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
        let health = elb
            .describe_target_health()
            .target_group_arn(arn)
            .send()
            .await
            .map_err(err)?;
        for d in health.target_health_descriptions() {
            if let Some(t) = d.target().filter(|t| t.id() == Some(id)) {
                registered.push((arn.clone(), t.port()));
            }
        }
    }
    Ok(registered)
}
