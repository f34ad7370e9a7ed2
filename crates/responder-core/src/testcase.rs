//! Playbook test cases (`playbooks/tests/*.yaml`): a finding file and what the
//! playbooks must do with it.
//!
//! ```yaml
//! cases:
//!   - name: bitcoin DNS on EC2 is answered by crypto-mining-ec2
//!     finding: findings/bitcoin-dns.json   # relative to this file
//!     expect:
//!       playbook: crypto-mining-ec2        # null: no playbook may match
//!       steps: [isolate, snapshot, relaunch, terminate]
//! ```
//!
//! For an attack sequence, `steps` are the steps run once for the sequence, and
//! `instances` (the answered instances, in order) and `instance_steps` (every
//! section's steps) check the fan-out.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::diagnostic::Diagnostic;
use crate::engine::Engine;
use crate::event::decode_bytes;
use crate::playbook::model::Mode;

/// A test case file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    /// The cases.
    pub cases: Vec<Case>,
}

/// One case.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// What the case checks.
    pub name: String,
    /// Finding file (any decodable shape), relative to the case file. Every finding
    /// in it must meet the expectation.
    pub finding: PathBuf,
    /// The expectation.
    pub expect: Expect,
}

/// What must happen.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The playbook that answers; null when none may.
    pub playbook: Option<String>,
    /// The step actions, in plan order (isolation first).
    #[serde(default)]
    pub steps: Option<Vec<String>>,
    /// The mode.
    #[serde(default)]
    pub mode: Option<Mode>,
    /// For an attack sequence: the instances answered, one section each, in plan
    /// order (`steps` are then the steps run once for the sequence).
    #[serde(default)]
    pub instances: Option<Vec<String>>,
    /// For an attack sequence: the steps of every instance's section.
    #[serde(default)]
    pub instance_steps: Option<Vec<String>>,
}

/// One case's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseResult {
    /// The case file.
    pub file: PathBuf,
    /// The case name.
    pub name: String,
    /// Empty when the case passed; otherwise every mismatch.
    pub failures: Vec<String>,
}

impl CaseResult {
    /// True when the case passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Reads every `*.yaml` case file in `dir` (sorted) and runs its cases.
pub fn run_dir(engine: &Engine, dir: &Path) -> Result<Vec<CaseResult>, Diagnostic> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Diagnostic::error(dir, format!("cannot read test folder: {e}")))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    let mut results = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .map_err(|e| Diagnostic::error(&file, format!("cannot read: {e}")))?;
        let cases: CaseFile = serde_saphyr::from_str(&text)
            .map_err(|e| crate::playbook::load::yaml_error(&file, &text, &e))?;
        let base = file.parent().unwrap_or(Path::new("."));
        for case in cases.cases {
            results.push(run_case(engine, &file, base, case));
        }
    }
    Ok(results)
}

fn run_case(engine: &Engine, file: &Path, base: &Path, case: Case) -> CaseResult {
    let mut failures = Vec::new();
    let path = base.join(&case.finding);
    match std::fs::read(&path)
        .map_err(|e| e.to_string())
        .and_then(|b| decode_bytes(&b).map_err(|e| e.to_string()))
    {
        Err(e) => failures.push(format!("{}: {e}", path.display())),
        Ok(findings) if findings.is_empty() => {
            failures.push(format!("{}: no findings", path.display()))
        }
        Ok(findings) => {
            for (i, f) in findings.into_iter().enumerate() {
                let f = match f {
                    Ok(f) => f,
                    Err(e) => {
                        failures.push(format!("finding #{i}: {e}"));
                        continue;
                    }
                };
                match engine.plan(&f, false) {
                    Err(e) => failures.push(format!("finding {}: {e}", f.id)),
                    Ok(plan) => {
                        if plan.playbook != case.expect.playbook {
                            failures.push(format!(
                                "finding {}: expected playbook {}, got {}",
                                f.id,
                                case.expect.playbook.as_deref().unwrap_or("none"),
                                plan.playbook.as_deref().unwrap_or("none")
                            ));
                        }
                        if let Some(expected) = &case.expect.steps {
                            let got: Vec<&str> =
                                plan.steps.iter().map(|s| s.action.name()).collect();
                            if got != *expected {
                                failures.push(format!(
                                    "finding {}: expected steps {expected:?}, got {got:?}",
                                    f.id
                                ));
                            }
                        }
                        let sections = plan.sequence.as_ref().map_or(&[][..], |q| &q.sections);
                        if let Some(expected) = &case.expect.instances {
                            let got: Vec<&str> =
                                sections.iter().map(|s| s.instance_id.as_str()).collect();
                            if got != *expected {
                                failures.push(format!(
                                    "finding {}: expected instances {expected:?}, got {got:?}",
                                    f.id
                                ));
                            }
                        }
                        if let Some(expected) = &case.expect.instance_steps {
                            for section in sections {
                                let got: Vec<&str> =
                                    section.steps.iter().map(|s| s.action.name()).collect();
                                if got != *expected {
                                    failures.push(format!(
                                        "finding {}: expected steps {expected:?} on {}, got {got:?}",
                                        f.id, section.instance_id
                                    ));
                                }
                            }
                            if sections.is_empty() {
                                failures.push(format!(
                                    "finding {}: expected instance steps {expected:?}, but no instance is answered",
                                    f.id
                                ));
                            }
                        }
                        if let Some(mode) = case.expect.mode
                            && plan.mode != Some(mode)
                        {
                            failures.push(format!(
                                "finding {}: expected mode {}, got {}",
                                f.id,
                                mode.as_str(),
                                plan.mode.map_or("none", Mode::as_str)
                            ));
                        }
                    }
                }
            }
        }
    }
    CaseResult {
        file: file.to_owned(),
        name: case.name,
        failures,
    }
}
