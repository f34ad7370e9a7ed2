//! `terminate`: terminate the instance (already terminated counts as done). The
//! executor withholds it when an evidence step failed.

use responder_core::steps::terminate::Planned;

use super::protect::{protected, set_protection};
use crate::call::err;
use crate::context::{Ctx, StepResult};

pub(crate) async fn run(ctx: &mut Ctx<'_>, a: &Planned) -> StepResult {
    let id = a.instance_id.as_str();
    let state = ctx
        .instance
        .view
        .as_ref()
        .map(|v| v.state.clone())
        .unwrap_or_default();
    if matches!(state.as_str(), "terminated" | "shutting-down") {
        return StepResult::already(format!("{id} is {state}"));
    }
    let ec2 = ctx.ec2();
    let dry = ctx.dry_run;
    let mut notes = Vec::new();
    if a.lift_termination_protection {
        match protected(ec2, id).await {
            Ok(true) => match set_protection(ec2, id, false, dry).await {
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
        // The executor notes that this response took the instance down (the spec
        // says `ends_instance`): a later relaunch replaces only that.
        Ok(_) => StepResult::done(vec![id.to_owned()]),
        Err(e) if e.code == "OperationNotPermitted" => StepResult::new(e.failed())
            .note("termination protection is on and the playbook does not lift it (lift_termination_protection: true)"),
        Err(e) => StepResult::from_error(&e, dry),
    };
    result.notes.extend(notes);
    result
}
