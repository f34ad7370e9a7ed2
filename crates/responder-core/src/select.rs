//! Choosing the one playbook that answers a finding.
//!
//! The rule: among the playbooks whose `match` holds, whose `exclude` blocks do not,
//! and that accept the finding's archived state, the one with the highest `priority`
//! wins; equal priorities are broken by name (alphabetical), and validation rejects
//! equal-priority playbooks that can match the same finding, so that tie-break is a
//! last resort, not policy.

use crate::finding::Finding;
use crate::plan::NotChosen;
use crate::playbook::LoadedPlaybook;

/// The outcome of selection.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// Index of the winning playbook in the engine's order, if any.
    pub winner: Option<usize>,
    /// Why the winner matched, criterion by criterion.
    pub reasons: Vec<String>,
    /// Why it won, or why nothing matched.
    pub decision: String,
    /// Why each other playbook did not answer (when asked).
    pub not_chosen: Option<Vec<NotChosen>>,
}

/// Why a playbook does not accept a finding, or `Ok` with its reasons.
pub fn evaluate(p: &LoadedPlaybook, f: &Finding, explain: bool) -> Result<Vec<String>, String> {
    let reasons = p.matches.evaluate(f, explain)?;
    for (i, exclude) in p.excludes.iter().enumerate() {
        if let Ok(why) = exclude.evaluate(f, explain) {
            return Err(if explain {
                format!("excluded by exclude[{i}]: {}", why.join("; "))
            } else {
                String::new()
            });
        }
    }
    if f.archived && !p.playbook.include_archived && p.playbook.is_destructive() {
        return Err(if explain {
            "finding is archived and the playbook has destructive steps (set include_archived: true to act on archived findings)".to_owned()
        } else {
            String::new()
        });
    }
    Ok(reasons)
}

/// Picks the winner among `playbooks`, which must be in priority order (highest first,
/// then by name). With `explain_all`, says why every other playbook did not answer.
pub fn select(playbooks: &[LoadedPlaybook], f: &Finding, explain_all: bool) -> Selection {
    let mut winner: Option<usize> = None;
    let mut not_chosen = explain_all.then(Vec::new);
    let mut also_matched: Vec<&str> = Vec::new();
    for (i, p) in playbooks.iter().enumerate() {
        if winner.is_some() && !explain_all {
            break;
        }
        match evaluate(p, f, explain_all) {
            Ok(_) if winner.is_none() => winner = Some(i),
            Ok(_) => {
                also_matched.push(p.playbook.name());
                if let (Some(list), Some(w)) = (not_chosen.as_mut(), winner) {
                    let w = &playbooks[w].playbook;
                    list.push(NotChosen {
                        playbook: p.playbook.name().to_owned(),
                        reason: format!(
                            "matched too, but {} wins (priority {} vs {})",
                            w.name(),
                            w.priority,
                            p.playbook.priority
                        ),
                    });
                }
            }
            Err(reason) => {
                if let Some(list) = not_chosen.as_mut() {
                    list.push(NotChosen {
                        playbook: p.playbook.name().to_owned(),
                        reason,
                    });
                }
            }
        }
    }
    let Some(w) = winner else {
        return Selection {
            winner: None,
            reasons: Vec::new(),
            decision: format!("no playbook matched (of {})", playbooks.len()),
            not_chosen,
        };
    };
    let chosen = &playbooks[w];
    let reasons = evaluate(chosen, f, true).unwrap_or_default();
    let decision = if also_matched.is_empty() && explain_all {
        format!(
            "the only matching playbook (priority {})",
            chosen.playbook.priority
        )
    } else if also_matched.is_empty() {
        format!(
            "highest-priority matching playbook (priority {})",
            chosen.playbook.priority
        )
    } else {
        format!(
            "highest priority ({}) of the matching playbooks; also matched: {}",
            chosen.playbook.priority,
            also_matched.join(", ")
        )
    };
    Selection {
        winner: Some(w),
        reasons,
        decision,
        not_chosen,
    }
}
