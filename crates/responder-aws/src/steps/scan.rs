//! `scan`: a Malware Protection on-demand scan of the instance (`StartMalwareScan`,
//! which has no DryRun), called with the administrator's GuardDuty client: the
//! administrator account scans its members' instances.

use responder_core::steps::scan::Planned;

use crate::call::err;
use crate::context::{Ctx, StepResult};

pub(crate) async fn run(ctx: &mut Ctx<'_>, a: &Planned) -> StepResult {
    if let Some(reason) = &a.skip_reason {
        return StepResult::skipped(reason.clone());
    }
    if ctx.dry_run {
        return StepResult::no_dry_run(format_args!(
            "would start a malware scan of {}",
            a.resource_arn
        ));
    }
    let mut call = ctx
        .clients
        .guardduty
        .start_malware_scan()
        .resource_arn(&a.resource_arn);
    if let Some(token) = &a.client_token {
        call = call.client_token(token);
    }
    match call.send().await.map_err(err) {
        Ok(out) => {
            let mut r = StepResult::done(vec![a.resource_arn.clone()]);
            match out.scan_id() {
                Some(id) => r.notes.push(format!(
                    "malware scan {id} started; its findings arrive as Execution:EC2/MaliciousFile"
                )),
                None => r
                    .notes
                    .push("malware scan started (GuardDuty returned no scan id)".to_owned()),
            }
            r
        }
        Err(e) => StepResult::from_error(&e, false),
    }
}
