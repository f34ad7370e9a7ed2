//! Loading playbook files, with errors located at file:line:column.

use std::path::{Path, PathBuf};

use super::model::Playbook;
use crate::diagnostic::Diagnostic;
use crate::matcher::CompiledCriteria;

/// Playbook files larger than this are refused (1 MiB).
pub const MAX_PLAYBOOK_BYTES: u64 = 1024 * 1024;

/// A parsed playbook, its file, and its compiled criteria.
#[derive(Debug, Clone)]
pub struct LoadedPlaybook {
    /// The playbook as written.
    pub playbook: Playbook,
    /// Where it came from.
    pub file: PathBuf,
    /// `match`, compiled.
    pub matches: CompiledCriteria,
    /// `exclude`, compiled.
    pub excludes: Vec<CompiledCriteria>,
    /// Warnings about what the binary knows (catalogued types, filter attributes),
    /// located in the file ([`super::lint`]); [`super::validate::validate`] reports them.
    pub lints: Vec<Diagnostic>,
}

/// Parses and compiles one playbook. `file` is used in diagnostics only.
pub fn load_str(file: &Path, text: &str) -> Result<LoadedPlaybook, Diagnostic> {
    let playbook: Playbook =
        serde_saphyr::from_str(text).map_err(|e| yaml_error(file, text, &e))?;
    let matches = CompiledCriteria::compile(&playbook.matches.value).map_err(|e| {
        Diagnostic::error(file, e.message)
            .at(playbook.matches.referenced)
            .field(format!("match.{}", e.field))
    })?;
    let excludes = playbook
        .exclude
        .iter()
        .enumerate()
        .map(|(i, c)| {
            CompiledCriteria::compile(&c.value).map_err(|e| {
                Diagnostic::error(file, e.message)
                    .at(c.referenced)
                    .field(format!("exclude[{i}].{}", e.field))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let lints = super::lint::lint(file, text, &playbook);
    Ok(LoadedPlaybook {
        playbook,
        file: file.to_owned(),
        matches,
        excludes,
        lints,
    })
}

/// Loads every `*.yaml` and `*.yml` file directly in `dir` (not in subfolders), in
/// file-name order. Returns what loaded and a diagnostic for each file that did not.
pub fn load_dir(dir: &Path) -> Result<(Vec<LoadedPlaybook>, Vec<Diagnostic>), Diagnostic> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Diagnostic::error(dir, format!("cannot read playbook folder: {e}")))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
        })
        .collect();
    files.sort();
    let mut loaded = Vec::with_capacity(files.len());
    let mut diagnostics = Vec::new();
    for file in files {
        match read_playbook(&file) {
            Ok(p) => loaded.push(p),
            Err(d) => diagnostics.push(d),
        }
    }
    Ok((loaded, diagnostics))
}

fn read_playbook(file: &Path) -> Result<LoadedPlaybook, Diagnostic> {
    let size = std::fs::metadata(file)
        .map_err(|e| Diagnostic::error(file, format!("cannot read: {e}")))?
        .len();
    if size > MAX_PLAYBOOK_BYTES {
        return Err(Diagnostic::error(
            file,
            format!("{size} bytes is more than the {MAX_PLAYBOOK_BYTES}-byte limit for a playbook"),
        ));
    }
    let text = std::fs::read_to_string(file)
        .map_err(|e| Diagnostic::error(file, format!("cannot read: {e}")))?;
    load_str(file, &text)
}

/// Turns a YAML or schema error into a located diagnostic with the field path.
pub(crate) fn yaml_error(file: &Path, text: &str, e: &serde_saphyr::Error) -> Diagnostic {
    let rendered = e.to_string();
    let first = rendered.lines().next().unwrap_or("invalid playbook").trim();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    // "line L column C: message": the location is reported separately.
    let message = match first.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") => rest,
        _ => first,
    };
    let mut d = Diagnostic::error(file, message);
    if let Some(loc) = e.location() {
        d = d.at(loc);
        if let Some(path) = super::yaml_path::path_at(text, loc.line(), loc.column()) {
            d = d.field(path);
        }
    }
    d
}
