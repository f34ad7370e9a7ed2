//! `responder validate`.

use std::path::Path;

use crate::output::outln;
use responder_core::Engine;
use responder_core::diagnostic::Level;

/// Exit 0 when valid (warnings allowed unless `strict`), 1 on errors (and, when
/// `strict`, on warnings).
pub fn run(dir: &Path, strict: bool) -> u8 {
    match Engine::load(dir) {
        Ok(engine) => {
            for w in engine.warnings() {
                outln!("{w}");
            }
            let warnings = engine.warnings().len();
            let failed = strict && warnings > 0;
            outln!(
                "{}: {} playbook(s) valid, {warnings} warning(s){}",
                dir.display(),
                engine.playbooks().len(),
                if failed {
                    " (--strict: warnings fail)"
                } else {
                    ""
                }
            );
            u8::from(failed)
        }
        Err(diagnostics) => {
            for d in &diagnostics {
                outln!("{d}");
            }
            let errors = diagnostics
                .iter()
                .filter(|d| d.level == Level::Error)
                .count();
            outln!(
                "{}: {errors} error(s), {} warning(s)",
                dir.display(),
                diagnostics.len() - errors
            );
            1
        }
    }
}
