//! `responder validate`.

use std::path::Path;

use crate::output::outln;
use responder_core::Engine;
use responder_core::diagnostic::Level;

/// Exit 0 when valid (warnings allowed), 1 on errors.
pub fn run(dir: &Path) -> u8 {
    match Engine::load(dir) {
        Ok(engine) => {
            for w in engine.warnings() {
                outln!("{w}");
            }
            outln!(
                "{}: {} playbook(s) valid, {} warning(s)",
                dir.display(),
                engine.playbooks().len(),
                engine.warnings().len()
            );
            0
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
