//! Loading playbook files, with errors located at file:line:column.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::model::Playbook;
use crate::matcher::CompiledCriteria;

/// Playbook files larger than this are refused (1 MiB).
pub const MAX_PLAYBOOK_BYTES: u64 = 1024 * 1024;

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// The playbooks can be used; someone should look.
    Warning,
    /// The playbooks cannot be used.
    Error,
}

/// One problem in a playbook, located where possible.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub level: Level,
    /// The file.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// 1-based column, when known.
    pub column: Option<u64>,
    /// The field concerned, e.g. `steps[2].terminate`, when known.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl Diagnostic {
    /// An error about a whole file.
    pub fn error(file: &Path, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            level: Level::Error,
            file: file.to_owned(),
            line: None,
            column: None,
            field: None,
            message: message.into(),
        }
    }

    /// Sets the location.
    pub fn at(mut self, loc: serde_saphyr::Location) -> Diagnostic {
        if loc != serde_saphyr::Location::UNKNOWN {
            self.line = Some(loc.line());
            self.column = Some(loc.column());
        }
        self
    }

    /// Sets the field.
    pub fn field(mut self, field: impl Into<String>) -> Diagnostic {
        self.field = Some(field.into());
        self
    }

    /// Turns it into a warning.
    pub fn warning(mut self) -> Diagnostic {
        self.level = Level::Warning;
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        let level = match self.level {
            Level::Error => "error",
            Level::Warning => "warning",
        };
        write!(f, ": {level}: ")?;
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

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
