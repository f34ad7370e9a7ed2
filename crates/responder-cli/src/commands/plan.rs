//! `responder plan`: the playbook, the reasons and the steps for each finding.

use std::path::{Path, PathBuf};

use responder_core::Engine;
use responder_core::plan::{Action, Plan, PlannedStep};
use serde_json::{Value, json};

use crate::Format;
use crate::input;
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
pub fn run(dir: &Path, format: Format, why_not: bool, files: &[PathBuf]) -> u8 {
    let Some(engine) = input::engine(dir) else {
        return 1;
    };
    let mut outcomes = Vec::new();
    let mut failed = false;
    for path in files {
        match input::findings(path) {
            Err(message) => {
                failed = true;
                eprintln!("{message}");
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
                    eprintln!("{}: no findings", input::label(path));
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
                        eprintln!("{source}: {}", e.message);
                    }
                    outcomes.push(Outcome { source, result });
                }
            }
        }
    }
    match format {
        Format::Json => println!("{}", to_json(&outcomes)),
        Format::Text => print!("{}", to_text(&outcomes)),
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
                if p.steps.is_empty() {
                    "-".to_owned()
                } else {
                    p.steps
                        .iter()
                        .map(|s| s.action.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                },
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
    for o in outcomes {
        let Ok(p) = &o.result else { continue };
        out.push_str(&format!(
            "\n{} ({}): {}\n",
            p.finding_id, o.source, p.finding_type
        ));
        match &p.playbook {
            Some(name) => out.push_str(&format!("  playbook: {name} ({})\n", p.decision)),
            None => out.push_str(&format!("  playbook: none ({})\n", p.decision)),
        }
        for r in &p.matched_because {
            out.push_str(&format!("  because: {r}\n"));
        }
        for n in p.not_chosen.iter().flatten() {
            out.push_str(&format!("  not {}: {}\n", n.playbook, n.reason));
        }
        for (i, s) in p.steps.iter().enumerate() {
            out.push_str(&format!("  {}. {}\n", i + 1, describe(s)));
        }
    }
    out
}

fn short(id: &str) -> String {
    if id.chars().count() > 12 {
        format!("{}…", id.chars().take(12).collect::<String>())
    } else {
        id.to_owned()
    }
}

/// One line per step, with the parameters that matter.
fn describe(step: &PlannedStep) -> String {
    let detail = match &step.action {
        Action::Isolate {
            instance_id,
            network_interfaces,
            quarantine_groups,
            untrack_groups,
            network_acl,
            ..
        } => {
            let enis: Vec<String> = network_interfaces
                .iter()
                .map(|e| {
                    format!(
                        "{} [{}]",
                        e.network_interface_id,
                        e.current_groups.join(" ")
                    )
                })
                .collect();
            let groups: Vec<String> = quarantine_groups
                .iter()
                .map(|g| format!("{} in {}", g.group_name, g.vpc_id))
                .collect();
            format!(
                "{instance_id}: {} -> {}{}{}",
                if enis.is_empty() {
                    "every ENI".to_owned()
                } else {
                    enis.join(", ")
                },
                if groups.is_empty() {
                    "quarantine group".to_owned()
                } else {
                    groups.join(", ")
                },
                if untrack_groups.is_empty() {
                    ""
                } else {
                    ", cutting tracked connections"
                },
                if *network_acl {
                    ", and a deny-all network ACL on the subnets"
                } else {
                    ""
                }
            )
        }
        Action::Snapshot {
            instance_id,
            wait,
            preserve_volumes,
            ..
        } => format!(
            "{instance_id}: every volume{}{}",
            if *preserve_volumes {
                ", volumes kept on terminate"
            } else {
                ""
            },
            if *wait {
                ", waiting for completion"
            } else {
                ""
            }
        ),
        Action::Terminate {
            instance_id,
            lift_termination_protection,
        } => format!(
            "{instance_id}{}",
            if *lift_termination_protection {
                ", lifting termination protection"
            } else {
                ""
            }
        ),
        Action::Relaunch {
            instance_id,
            source,
            metadata_tokens,
            associate_public_ip,
            ..
        } => format!(
            "replace {instance_id} from {}, IMDSv2 {}, {}",
            serde_json::to_value(source)
                .ok()
                .and_then(|v| v.get("kind").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_default(),
            match metadata_tokens {
                responder_core::playbook::steps::MetadataTokens::Required => "required",
                responder_core::playbook::steps::MetadataTokens::Optional => "optional",
            },
            if *associate_public_ip {
                "public IP"
            } else {
                "no public IP"
            }
        ),
        Action::Tag { instance_id, tags } => format!(
            "{instance_id}: {}",
            tags.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Action::Notify { topic_arn, subject } => format!(
            "{} {subject:?}",
            topic_arn.as_deref().unwrap_or("(configured topic)")
        ),
        other => serde_json::to_value(other)
            .ok()
            .and_then(|v| {
                v.get("instance_id")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or_default(),
    };
    format!(
        "{} {detail} (on failure: {})",
        step.action.name(),
        on_failure(step)
    )
}

fn on_failure(step: &PlannedStep) -> &'static str {
    match step.on_failure {
        responder_core::playbook::OnFailure::Abort => "abort",
        responder_core::playbook::OnFailure::Continue => "continue",
    }
}
