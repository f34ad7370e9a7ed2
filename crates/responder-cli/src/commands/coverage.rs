//! `responder coverage`: which playbook handles each known finding type.

use std::path::Path;

use responder_core::catalogue::catalogue;
use serde_json::json;

use crate::output::{self, out, outln};
use crate::table;
use crate::{Format, input};

/// Always exit 0 with valid playbooks (coverage is information); 1 when invalid.
pub fn run(dir: &Path, format: Format) -> u8 {
    let Some(engine) = input::engine(dir) else {
        return 1;
    };
    let entries: Vec<_> = catalogue().into_iter().filter(|e| e.is_active()).collect();
    let mut rows = Vec::new();
    let mut uncovered = Vec::new();
    let mut covered = 0;
    for e in &entries {
        // Type patterns only: other criteria (severity, role, tags) may still narrow it.
        let handlers: Vec<&str> = engine
            .playbooks()
            .iter()
            .filter(|p| {
                p.matches.type_patterns().is_some() && p.matches.matches_type(&e.finding_type)
            })
            .map(|p| p.playbook.name())
            .collect();
        if !handlers.is_empty() {
            covered += 1;
        } else if e.resource == "EC2" && e.is_high_or_critical() {
            uncovered.push(e.finding_type.clone());
        }
        rows.push((e, handlers));
    }
    match format {
        Format::Json => {
            let types: Vec<_> = rows
                .iter()
                .map(|(e, h)| {
                    json!({"type": e.finding_type, "resource": e.resource, "severity": e.severity, "playbooks": h})
                })
                .collect();
            let doc = json!({
                "types": types,
                "covered": covered,
                "total": entries.len(),
                "uncovered_high_critical_ec2": uncovered,
            });
            output::out_json(&serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        Format::Text => {
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|(e, h)| {
                    let flag = if h.is_empty() && e.resource == "EC2" && e.is_high_or_critical() {
                        "!"
                    } else {
                        ""
                    };
                    vec![
                        flag.to_owned(),
                        e.finding_type.clone(),
                        e.severity.clone().unwrap_or_else(|| "?".to_owned()),
                        if h.is_empty() {
                            "-".to_owned()
                        } else {
                            h.join(", ")
                        },
                    ]
                })
                .collect();
            out!(
                "{}",
                table::render(&["", "TYPE", "SEVERITY", "PLAYBOOKS"], &cells)
            );
            outln!(
                "\n{covered} of {} active finding types have a playbook.",
                entries.len()
            );
            if uncovered.is_empty() {
                outln!("Every High and Critical EC2 finding type has a playbook.");
            } else {
                outln!(
                    "Uncovered High and Critical EC2 types (marked !): {}",
                    uncovered.len()
                );
                for t in &uncovered {
                    outln!("  {t}");
                }
            }
        }
    }
    0
}
