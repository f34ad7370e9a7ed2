//! `protect`: termination protection, and shutdown from inside the instance stops it.
//! Owns termination protection, which `terminate` may lift.

use aws_sdk_ec2::types::{AttributeBooleanValue, InstanceAttributeName};
use responder_core::steps::protect::Planned;

use crate::call::{CallError, err};
use crate::context::{Ctx, StepResult};

pub(crate) async fn run(ctx: &mut Ctx<'_>, a: &Planned) -> StepResult {
    let ec2 = ctx.ec2();
    let dry = ctx.dry_run;
    let id = a.instance_id.as_str();
    let mut changed = false;
    if a.termination {
        match protected(ec2, id).await {
            Ok(true) => {}
            Ok(false) => {
                if let Err(e) = set_protection(ec2, id, true, dry).await {
                    return StepResult::from_error(&e, dry);
                }
                changed = true;
            }
            Err(e) => return StepResult::from_error(&e, false),
        }
    }
    if a.shutdown_behavior_stop {
        let r = ec2
            .modify_instance_attribute()
            .instance_id(id)
            .dry_run(dry)
            // The attribute/value form: moto ignores the structured one; AWS takes both.
            .attribute(InstanceAttributeName::InstanceInitiatedShutdownBehavior)
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

/// Turns termination protection on or off.
pub(super) async fn set_protection(
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

/// True when termination protection is on.
pub(super) async fn protected(ec2: &aws_sdk_ec2::Client, id: &str) -> Result<bool, CallError> {
    let out = ec2
        .describe_instance_attribute()
        .instance_id(id)
        .attribute(InstanceAttributeName::DisableApiTermination)
        .send()
        .await
        .map_err(err)?;
    Ok(out
        .disable_api_termination()
        .and_then(|v| v.value())
        .unwrap_or(false))
}
