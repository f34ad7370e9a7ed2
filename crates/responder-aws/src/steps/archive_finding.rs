//! `archive-finding`: archive the finding in GuardDuty (`ArchiveFindings` has no DryRun).

use responder_core::steps::archive_finding::Planned;

use crate::call::err;
use crate::context::{Ctx, StepResult};

pub(crate) async fn run(ctx: &mut Ctx<'_>, a: &Planned) -> StepResult {
    if let Some(reason) = &a.skip_reason {
        return StepResult::skipped(reason.clone());
    }
    let Some(detector) = &a.detector_id else {
        return StepResult::skipped("the finding names no detector id");
    };
    if ctx.dry_run {
        return StepResult::skipped("not called: ArchiveFindings has no DryRun");
    }
    match ctx
        .clients
        .guardduty
        .archive_findings()
        .detector_id(detector)
        .finding_ids(&a.finding_id)
        .send()
        .await
        .map_err(err)
    {
        Ok(_) => StepResult::done(vec![a.finding_id.clone()]),
        Err(e) => StepResult::from_error(&e, false),
    }
}
