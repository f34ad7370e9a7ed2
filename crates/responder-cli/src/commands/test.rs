//! `responder test`: the playbook test cases.

use std::path::Path;

use responder_core::testcase::run_dir;

use crate::input;
use crate::output::{errln, outln};

/// Exit 0 when every case passes, 1 otherwise (or when the playbooks are invalid).
pub fn run(dir: &Path) -> u8 {
    let Some(engine) = input::engine(dir) else {
        return 1;
    };
    let tests = dir.join("tests");
    let results = match run_dir(&engine, &tests) {
        Ok(r) => r,
        Err(d) => {
            errln!("{d}");
            return 1;
        }
    };
    if results.is_empty() {
        errln!("{}: no test cases", tests.display());
        return 1;
    }
    let mut failed = 0;
    for r in &results {
        if r.passed() {
            outln!("pass  {}: {}", r.file.display(), r.name);
        } else {
            failed += 1;
            outln!("FAIL  {}: {}", r.file.display(), r.name);
            for f in &r.failures {
                outln!("      {f}");
            }
        }
    }
    outln!("{} passed, {failed} failed", results.len() - failed);
    u8::from(failed > 0)
}
