//! `responder plan`: the playbook, the reasons and the steps for each finding.

use std::path::{Path, PathBuf};

use responder_core::Engine;
use responder_core::plan::Settings;
use responder_core::plan::{Plan, SequencePlan};
use responder_core::steps::{OnFailure, PlannedStep};
use responder_core::text::escape;
use serde_json::{Value, json};

use crate::Format;
use crate::input;
use crate::output::{self, errln};
use crate::table;

/// One finding's outcome: a plan, or why there is none.
struct Outcome {
    source: String,
    result: Result<Plan, Failure>,
}

struct Failure {
    finding_id: Option<String>,
    finding_type: Option<String>,
    message: String,
}

/// Exit 0 when every finding was planned, 1 on invalid playbooks, 2 when any input or
/// finding could not be read or planned.
pub fn run(dir: &Path, settings: Settings, format: Format, why_not: bool, files: &[PathBuf]) -> u8 {
    let Some(engine) = input::engine_with(dir, settings) else {
        return 1;
    };
    let mut outcomes = Vec::new();
    let mut failed = false;
    for path in files {
        match input::findings(path) {
            Err(message) => {
                failed = true;
                errln!("{message}");
                outcomes.push(Outcome {
                    source: input::label(path),
                    result: Err(Failure {
                        finding_id: None,
                        finding_type: None,
                        message,
                    }),
                });
            }
            Ok(findings) => {
                if findings.is_empty() {
                    errln!("{}: no findings", input::label(path));
                }
                for (i, f) in findings.into_iter().enumerate() {
                    let source = format!("{}#{i}", input::label(path));
                    let result = match f {
                        Err(e) => Err(Failure {
                            finding_id: None,
                            finding_type: None,
                            message: e.to_string(),
                        }),
                        Ok(f) => plan_one(&engine, &f, why_not),
                    };
                    if let Err(e) = &result {
                        failed = true;
                        errln!("{source}: {}", e.message);
                    }
                    outcomes.push(Outcome { source, result });
                }
            }
        }
    }
    match format {
        Format::Json => output::out_json(&to_json(&outcomes)),
        Format::Text => output::out_text(&to_text(&outcomes)),
    }
    if failed { 2 } else { 0 }
}

fn plan_one(engine: &Engine, f: &responder_core::Finding, why_not: bool) -> Result<Plan, Failure> {
    engine.plan(f, why_not).map_err(|e| Failure {
        finding_id: Some(f.id.clone()),
        finding_type: Some(f.finding_type.name.clone()),
        message: e.to_string(),
    })
}

fn to_json(outcomes: &[Outcome]) -> String {
    let plans: Vec<Value> = outcomes
        .iter()
        .map(|o| match &o.result {
            Ok(plan) => {
                let mut v = serde_json::to_value(plan).unwrap_or(Value::Null);
                if let Value::Object(map) = &mut v {
                    map.insert("source".to_owned(), json!(o.source));
                }
                v
            }
            Err(e) => json!({
                "source": o.source,
                "finding_id": e.finding_id,
                "finding_type": e.finding_type,
                "error": e.message,
            }),
        })
        .collect();
    serde_json::to_string_pretty(&json!({ "plans": plans })).unwrap_or_default()
}

fn to_text(outcomes: &[Outcome]) -> String {
    let rows: Vec<Vec<String>> = outcomes
        .iter()
        .map(|o| match &o.result {
            Ok(p) => vec![
                short(&p.finding_id),
                p.finding_type.clone(),
                match (p.severity, p.severity_level) {
                    (Some(s), Some(l)) => format!("{s} {l}"),
                    _ => "-".to_owned(),
                },
                p.playbook.clone().unwrap_or_else(|| "(none)".to_owned()),
                p.mode.map_or("-", |m| m.as_str()).to_owned(),
                step_column(p),
            ],
            Err(e) => vec![
                e.finding_id
                    .as_deref()
                    .map_or_else(|| o.source.clone(), short),
                e.finding_type.clone().unwrap_or_else(|| "-".to_owned()),
                "-".to_owned(),
                "ERROR".to_owned(),
                "-".to_owned(),
                e.message.clone(),
            ],
        })
        .collect();
    let mut out = table::render(
        &["FINDING", "TYPE", "SEVERITY", "PLAYBOOK", "MODE", "STEPS"],
        &rows,
    );
    // Every value below can come from the finding: each is escaped on its own, so
    // that a newline in one cannot forge a line of this report.
    for o in outcomes {
        let Ok(p) = &o.result else { continue };
        out.push_str(&format!(
            "\n{} ({}): {}\n",
            escape(&p.finding_id),
            escape(&o.source),
            escape(&p.finding_type)
        ));
        let decision = escape(&p.decision);
        match &p.playbook {
            Some(name) => out.push_str(&format!("  playbook: {} ({decision})\n", escape(name))),
            None => out.push_str(&format!("  playbook: none ({decision})\n")),
        }
        for r in &p.matched_because {
            out.push_str(&format!("  because: {}\n", escape(r)));
        }
        for n in p.not_chosen.iter().flatten() {
            out.push_str(&format!(
                "  not {}: {}\n",
                escape(&n.playbook),
                escape(&n.reason)
            ));
        }
        if let Some(q) = &p.sequence {
            sequence_text(q, &mut out);
            if !p.steps.is_empty() {
                out.push_str("  once for the sequence, after the instances:\n");
            }
        }
        for (i, s) in p.steps.iter().enumerate() {
            out.push_str(&format!("  {}. {}\n", i + 1, escape(&describe(s))));
        }
        if let Some(o) = &p.observed {
            out.push_str("  as the finding saw the instance (live state wins when it runs):\n");
            for e in &o.network_interfaces {
                out.push_str(&format!(
                    "    {} in {} [{}]\n",
                    escape(&e.network_interface_id),
                    escape(e.vpc_id.as_deref().unwrap_or("?")),
                    escape(&e.security_groups.join(" "))
                ));
            }
            if let Some(arn) = &o.instance_profile_arn {
                out.push_str(&format!("    instance profile {}\n", escape(arn)));
            }
            if let Some(g) = &o.auto_scaling_group {
                out.push_str(&format!("    Auto Scaling group {}\n", escape(g)));
            }
        }
    }
    out
}

/// The STEPS column: the steps, or for an attack sequence the instance steps times
/// the instances, then the steps run once.
fn step_column(p: &Plan) -> String {
    let names = |steps: &[PlannedStep]| {
        steps
            .iter()
            .map(|s| s.action.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut parts = Vec::new();
    if let Some(q) = &p.sequence {
        let per = q
            .sections
            .first()
            .map(|s| names(&s.steps))
            .unwrap_or_default();
        parts.push(format!("{} instance(s): {per}", q.sections.len()));
    }
    if !p.steps.is_empty() {
        parts.push(names(&p.steps));
    }
    if parts.is_empty() {
        "-".to_owned()
    } else {
        parts.join("; ")
    }
}

/// An attack sequence's fan-out: every instance with its steps, the instances not
/// answered, the shared cause and the dropped ids. Every value is escaped: the uids
/// come from the finding.
fn sequence_text(q: &SequencePlan, out: &mut String) {
    out.push_str(&format!(
        "  attack sequence {}: {} instance(s) answered (max_instances {})\n",
        escape(q.uid.as_deref().unwrap_or("-")),
        q.sections.len(),
        q.max_instances
    ));
    for section in &q.sections {
        out.push_str(&format!("  instance {}:\n", escape(&section.instance_id)));
        for (i, s) in section.steps.iter().enumerate() {
            out.push_str(&format!("    {}. {}\n", i + 1, escape(&describe(s))));
        }
    }
    for n in &q.not_answered {
        out.push_str(&format!(
            "  instance {}: not answered ({})\n",
            escape(&n.instance_id),
            escape(&n.reason)
        ));
    }
    if q.shared.is_empty() {
        out.push_str("  shared cause: none named by the sequence\n");
    }
    for r in &q.shared {
        out.push_str(&format!(
            "  shared cause: {} {}{}\n",
            r.kind.label(),
            escape(&r.uid),
            if r.instances.is_empty() {
                String::new()
            } else {
                format!(" (instances {})", escape(&r.instances.join(" ")))
            }
        ));
    }
    for d in &q.dropped {
        out.push_str(&format!(
            "  dropped: {:?} at {} is not an instance id: never acted on\n",
            escape(&d.value),
            escape(&d.source)
        ));
    }
}

fn short(id: &str) -> String {
    if id.chars().count() > 12 {
        format!("{}…", id.chars().take(12).collect::<String>())
    } else {
        id.to_owned()
    }
}

/// One line per step: the step's own summary of what it will do.
fn describe(step: &PlannedStep) -> String {
    format!(
        "{} {} (on failure: {})",
        step.action.name(),
        step.action.summary(),
        match step.on_failure {
            OnFailure::Abort => "abort",
            OnFailure::Continue => "continue",
        }
    )
}
