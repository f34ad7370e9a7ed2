//! `responder coverage`: which playbook handles each known finding type, and the
//! gate `--fail-on-uncovered SEVERITY`.

use std::path::Path;

use responder_core::catalogue::{CatalogueEntry, catalogue};
use responder_core::severity::SeverityLevel;
use serde_json::json;

use crate::output::{self, errln, out, outln};
use crate::table;
use crate::{Format, input};

/// `--fail-on-uncovered`'s value: a console severity level, any case.
pub fn parse_threshold(s: &str) -> Result<SeverityLevel, String> {
    match s.to_ascii_lowercase().as_str() {
        "low" => Ok(SeverityLevel::Low),
        "medium" => Ok(SeverityLevel::Medium),
        "high" => Ok(SeverityLevel::High),
        "critical" => Ok(SeverityLevel::Critical),
        _ => Err("expected low, medium, high or critical".to_owned()),
    }
}

/// Exit 0 with valid playbooks (coverage is information) unless `gate` is given and
/// an active EC2-instance type that can reach that severity has no playbook (1); 1
/// when the playbooks are invalid. Without a gate, the types marked `!` are the ones
/// a `high` gate would fail on.
pub fn run(dir: &Path, format: Format, gate: Option<SeverityLevel>) -> u8 {
    let Some(engine) = input::engine(dir) else {
        return 1;
    };
    let threshold = gate.unwrap_or(SeverityLevel::High);
    let entries: Vec<CatalogueEntry> = catalogue().into_iter().filter(|e| e.is_active()).collect();
    let mut rows = Vec::new();
    let mut uncovered = Vec::new();
    let mut uncovered_high = Vec::new();
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
        if handlers.is_empty() {
            if e.gated(threshold) {
                uncovered.push(e);
            }
            if e.gated(SeverityLevel::High) {
                uncovered_high.push(e.finding_type.clone());
            }
        } else {
            covered += 1;
        }
        rows.push((e, handlers));
    }
    let failed = gate.is_some() && !uncovered.is_empty();
    match format {
        Format::Json => {
            let types: Vec<_> = rows
                .iter()
                .map(|(e, h)| {
                    json!({
                        "type": e.finding_type,
                        "resource": e.resource,
                        "resource_types": e.resource_types,
                        "ec2_instance": e.ec2_instance,
                        "severity": e.severity,
                        "playbooks": h,
                    })
                })
                .collect();
            let doc = json!({
                "types": types,
                "covered": covered,
                "total": entries.len(),
                "uncovered_high_critical_ec2": uncovered_high,
                "gate": {
                    "threshold": threshold.as_str(),
                    "enforced": gate.is_some(),
                    "uncovered": uncovered.iter().map(|e| &e.finding_type).collect::<Vec<_>>(),
                    "passed": !failed,
                },
            });
            output::out_json(&serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        Format::Text => {
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|(e, h)| {
                    let flag = if h.is_empty() && e.gated(threshold) {
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
                outln!(
                    "Every EC2-instance finding type that can be {threshold} or above has a playbook."
                );
            } else {
                outln!(
                    "Uncovered EC2-instance types that can be {threshold} or above (marked !; \"varies\" and \"?\" severities count): {}",
                    uncovered.len()
                );
                for e in &uncovered {
                    outln!(
                        "  {} ({})",
                        e.finding_type,
                        e.severity.as_deref().unwrap_or("severity not documented")
                    );
                }
            }
            if failed {
                errln!("coverage gate failed: add or widen playbooks for the types above");
            }
        }
    }
    u8::from(failed)
}
