//! `responder coverage`: which playbook answers each known finding type in each
//! severity band, and the gate `--fail-on-uncovered SEVERITY`
//! (`responder_core::coverage` says how the bands are judged).

use std::path::Path;

use responder_core::catalogue::{CatalogueEntry, catalogue};
use responder_core::coverage::{Band, Status, TypeCoverage, coverage};
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

/// A band's cell in the text table: `yes`, `part` or `-`.
fn cell(b: &Band) -> &'static str {
    match b.status {
        Status::Covered => "yes",
        Status::Partial => "part",
        Status::None => "-",
    }
}

/// Why a band is not covered, in one line: who answers part of it and what is left.
fn band_line(b: &Band) -> String {
    let mut line = format!("{}: {}", b.level, b.status.as_str());
    if !b.playbooks.is_empty() {
        line.push_str(&format!(" ({})", b.playbooks.join(", ")));
    }
    let gaps: Vec<String> = b.gaps.iter().map(ToString::to_string).collect();
    line.push_str(&format!("; no playbook answers {}", gaps.join(", ")));
    line
}

/// Exit 0 with valid playbooks (coverage is information) unless `gate` is given and
/// an active EC2-instance type has a gated band (its documented band at or above
/// the threshold, or every band from the threshold up when its severity varies or
/// is not documented) that is not fully covered (1); 1 when the playbooks are
/// invalid. Without a gate, the types marked `!` are the ones a `high` gate would
/// fail on.
pub fn run(dir: &Path, format: Format, gate: Option<SeverityLevel>) -> u8 {
    let Some(engine) = input::engine(dir) else {
        return 1;
    };
    let threshold = gate.unwrap_or(SeverityLevel::High);
    let entries: Vec<CatalogueEntry> = catalogue().into_iter().filter(|e| e.is_active()).collect();
    let rows = coverage(&engine, &entries);
    let uncovered: Vec<&TypeCoverage> = rows
        .iter()
        .filter(|c| !c.failing_bands(threshold).is_empty())
        .collect();
    let uncovered_high: Vec<&str> = rows
        .iter()
        .filter(|c| !c.failing_bands(SeverityLevel::High).is_empty())
        .map(|c| c.entry.finding_type.as_str())
        .collect();
    let covered = rows.iter().filter(|c| c.fully_covered()).count();
    let answered = rows.iter().filter(|c| c.answered()).count();
    let failed = gate.is_some() && !uncovered.is_empty();
    match format {
        Format::Json => {
            let types: Vec<_> = rows
                .iter()
                .map(|c| {
                    let e = &c.entry;
                    let bands: serde_json::Map<String, serde_json::Value> = c
                        .bands
                        .iter()
                        .map(|b| {
                            let gaps: Vec<_> = b
                                .gaps
                                .iter()
                                .map(|g| {
                                    json!({
                                        "role": g.role,
                                        "resource_type": g.resource_type,
                                        "severity": [g.from, g.to],
                                    })
                                })
                                .collect();
                            (
                                b.level.as_str().to_owned(),
                                json!({
                                    "status": b.status,
                                    "playbooks": b.playbooks,
                                    "unanswered": gaps,
                                }),
                            )
                        })
                        .collect();
                    json!({
                        "type": e.finding_type,
                        "resource": e.resource,
                        "resource_types": e.resource_types,
                        "ec2_instance": e.ec2_instance,
                        "severity": e.severity,
                        "playbooks": c.playbooks(),
                        "bands": bands,
                        "gated_bands": c.gated_bands(threshold),
                    })
                })
                .collect();
            let failing: Vec<_> = uncovered
                .iter()
                .flat_map(|c| {
                    c.failing_bands(threshold).into_iter().map(|b| {
                        json!({
                            "type": c.entry.finding_type,
                            "band": b.level,
                            "status": b.status,
                        })
                    })
                })
                .collect();
            let doc = json!({
                "types": types,
                "covered": covered,
                "answered": answered,
                "total": entries.len(),
                "uncovered_high_critical_ec2": uncovered_high,
                "gate": {
                    "threshold": threshold.as_str(),
                    "enforced": gate.is_some(),
                    "uncovered": uncovered.iter().map(|c| &c.entry.finding_type).collect::<Vec<_>>(),
                    "bands": failing,
                    "passed": !failed,
                },
            });
            output::out_json(&serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        Format::Text => {
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|c| {
                    let flag = if c.failing_bands(threshold).is_empty() {
                        ""
                    } else {
                        "!"
                    };
                    let mut row = vec![
                        flag.to_owned(),
                        c.entry.finding_type.clone(),
                        c.entry.severity.clone().unwrap_or_else(|| "?".to_owned()),
                    ];
                    row.extend(c.bands.iter().map(|b| cell(b).to_owned()));
                    let playbooks = c.playbooks();
                    row.push(if playbooks.is_empty() {
                        "-".to_owned()
                    } else {
                        playbooks.join(", ")
                    });
                    row
                })
                .collect();
            out!(
                "{}",
                table::render(
                    &[
                        "",
                        "TYPE",
                        "SEVERITY",
                        "LOW",
                        "MEDIUM",
                        "HIGH",
                        "CRITICAL",
                        "PLAYBOOKS"
                    ],
                    &cells
                )
            );
            outln!(
                "\nyes: every finding of the band is answered (severities in steps of 0.1, each resource role the type can carry); part: some are; -: none."
            );
            outln!(
                "{covered} of {} active finding types are answered in every band; {answered} in some.",
                entries.len()
            );
            if uncovered.is_empty() {
                outln!(
                    "Every EC2-instance finding type that can be {threshold} or above is answered in its band."
                );
            } else {
                outln!(
                    "Uncovered EC2-instance types that can be {threshold} or above (marked !; a documented severity is checked in its band, \"varies\" and \"?\" in every band from {threshold} up): {}",
                    uncovered.len()
                );
                for c in &uncovered {
                    outln!(
                        "  {} ({})",
                        c.entry.finding_type,
                        c.entry
                            .severity
                            .as_deref()
                            .unwrap_or("severity not documented")
                    );
                    for b in c.failing_bands(threshold) {
                        outln!("    {}", band_line(b));
                    }
                }
            }
            if failed {
                errln!("coverage gate failed: add or widen playbooks for the types above");
            }
        }
    }
    u8::from(failed)
}
