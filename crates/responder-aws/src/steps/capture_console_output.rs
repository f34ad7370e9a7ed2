//! `capture-console-output`: the instance's console output, kept in the report.

use responder_core::steps::capture_console_output::Planned;

use crate::call::err;
use crate::context::{Ctx, StepResult};

/// Console output kept in the report: the last 32 KiB.
const MAX_CONSOLE_BYTES: usize = 32 * 1024;

pub(crate) async fn run(ctx: &mut Ctx<'_>, a: &Planned) -> StepResult {
    let id = a.instance_id.as_str();
    if ctx.dry_run {
        return match ctx
            .ec2()
            .get_console_output()
            .instance_id(id)
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
        .instance_id(id)
        .latest(a.latest)
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
