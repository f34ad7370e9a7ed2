//! Reading finding files (or standard input) and the playbook folder.

use std::io::Read;
use std::path::Path;

use crate::output::errln;
use responder_core::steps::Settings;
use responder_core::{DecodeError, Engine, Finding, decode_bytes};

/// Reads a file, or standard input for `-`.
pub fn read(path: &Path) -> Result<Vec<u8>, String> {
    if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| format!("<stdin>: cannot read: {e}"))?;
        Ok(buf)
    } else {
        std::fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))
    }
}

/// Opens a file, or standard input for `-`, for streaming ([`responder_core::Findings`]).
pub fn open(path: &Path) -> Result<Box<dyn Read>, String> {
    if path == Path::new("-") {
        Ok(Box::new(std::io::stdin().lock()))
    } else {
        std::fs::File::open(path)
            .map(|f| Box::new(f) as Box<dyn Read>)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))
    }
}

/// Reads and decodes one input; the outer error names the file.
pub fn findings(path: &Path) -> Result<Vec<Result<Finding, DecodeError>>, String> {
    let bytes = read(path)?;
    decode_bytes(&bytes).map_err(|e| format!("{}: {e}", label(path)))
}

/// How a path is named in messages.
pub fn label(path: &Path) -> String {
    if path == Path::new("-") {
        "<stdin>".to_owned()
    } else {
        path.display().to_string()
    }
}

/// Loads the playbooks, printing diagnostics to stderr. `None` when any is an error.
pub fn engine(dir: &Path) -> Option<Engine> {
    let (engine, lines) = Engine::load_reported(dir);
    for line in lines {
        errln!("{line}");
    }
    engine
}

/// [`engine`] under deployment settings; `None` (reported) when the settings cannot
/// be used with the playbooks (`Engine::settings_problems`).
pub fn engine_with(dir: &Path, settings: Settings) -> Option<Engine> {
    let engine = engine(dir)?.with_settings(settings);
    let problems = engine.settings_problems();
    for p in &problems {
        errln!("error: {p}");
    }
    problems.is_empty().then_some(engine)
}

/// The async runtime for the commands that call AWS; `None` (reported) if it cannot start.
pub fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Runtime::new() {
        Ok(r) => Some(r),
        Err(e) => {
            errln!("cannot start the async runtime: {e}");
            None
        }
    }
}
