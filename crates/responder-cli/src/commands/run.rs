//! `responder run`: execute the plans against an AWS endpoint (or with DryRun).

use std::path::{Path, PathBuf};

use responder_aws::{Clients, ExecOptions, Executor};
use serde_json::{Value, json};

use crate::{Format, input};

/// Where and how to run.
pub struct RunArgs<'a> {
    /// Playbook folder.
    pub playbooks: &'a Path,
    /// Endpoint override (moto, LocalStack).
    pub endpoint_url: Option<&'a str>,
    /// Region override.
    pub region: Option<&'a str>,
    /// DryRun every call.
    pub dry_run: bool,
    /// Default SNS topic.
    pub topic_arn: Option<&'a str>,
    /// Output format.
    pub format: Format,
    /// Finding files.
    pub files: &'a [PathBuf],
}

/// Exit 0 when every response succeeded (or needed nothing), 1 on invalid playbooks
/// or any failed response, 2 on unreadable input.
pub fn run(args: RunArgs<'_>) -> u8 {
    let Some(engine) = input::engine(args.playbooks) else {
        return 1;
    };
    let Some(runtime) = input::runtime() else {
        return 1;
    };
    runtime.block_on(async {
        let config = Clients::load(args.endpoint_url, args.region).await;
        let executor = Executor::new(
            Clients::new(&config),
            ExecOptions {
                dry_run: args.dry_run,
                topic_arn: args.topic_arn.map(str::to_owned),
            },
        );
        let mut out: Vec<Value> = Vec::new();
        let mut code = 0;
        for path in args.files {
            let findings = match input::findings(path) {
                Ok(f) => f,
                Err(message) => {
                    eprintln!("{message}");
                    out.push(json!({"source": input::label(path), "error": message}));
                    code = 2;
                    continue;
                }
            };
            for (i, f) in findings.into_iter().enumerate() {
                let source = format!("{}#{i}", input::label(path));
                let f = match f {
                    Ok(f) => f,
                    Err(e) => {
                        eprintln!("{source}: {e}");
                        out.push(json!({"source": source, "error": e.to_string()}));
                        code = 2;
                        continue;
                    }
                };
                let plan = match engine.plan(&f, false) {
                    Ok(p) => p,
                    Err(e) => {
                        eprintln!("{source}: {e}");
                        out.push(
                            json!({"source": source, "finding_id": f.id, "error": e.to_string()}),
                        );
                        code = code.max(1);
                        continue;
                    }
                };
                let report = executor.respond(&f, &plan).await;
                if report.is_failure() {
                    code = code.max(1);
                }
                let mut v = serde_json::to_value(&report).unwrap_or(Value::Null);
                if args.format == Format::Text {
                    print!("{}", describe(&source, &v));
                }
                if let Value::Object(m) = &mut v {
                    m.insert("source".to_owned(), json!(source));
                }
                out.push(v);
            }
        }
        if args.format == Format::Json {
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({ "reports": out })).unwrap_or_default()
            );
        }
        code
    })
}

/// A report for people, from its JSON form (what `--format json` prints and what the
/// Lambda returns): one line per step.
pub fn describe(source: &str, r: &Value) -> String {
    let text = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let number = |v: &Value, k: &str| v.get(k).and_then(Value::as_u64);
    let mut s = format!(
        "{} ({source}) {}: playbook {}, {}{}\n",
        text(r, "finding_id"),
        text(r, "finding_type"),
        r.get("playbook").and_then(Value::as_str).unwrap_or("none"),
        text(r, "status"),
        if r.get("dry_run").and_then(Value::as_bool) == Some(true) {
            " (dry run)"
        } else {
            ""
        }
    );
    let steps = r.get("steps").and_then(Value::as_array).map(Vec::as_slice);
    for (i, step) in steps.unwrap_or_default().iter().enumerate() {
        let detail = ["detail", "reason", "code"]
            .iter()
            .filter_map(|k| step.get(*k).and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(": ");
        let message = text(step, "message");
        s.push_str(&format!(
            "  {}. {:<30} {:<14} {:>6} ms",
            i + 1,
            text(step, "action"),
            step.get("outcome").and_then(Value::as_str).unwrap_or("?"),
            number(step, "duration_ms").unwrap_or(0)
        ));
        if !detail.is_empty() {
            s.push_str(&format!("  {detail}"));
        }
        if !message.is_empty() {
            s.push_str(&format!(" {message}"));
        }
        let list = |k: &str| -> Vec<String> {
            step.get(k)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let resources = list("resources");
        if !resources.is_empty() {
            s.push_str(&format!("  [{}]", resources.join(", ")));
        }
        s.push('\n');
        for n in list("notes") {
            s.push_str(&format!("       - {n}\n"));
        }
    }
    if let (Some(trips), Some(ms)) = (
        number(r, "round_trips_to_isolation"),
        number(r, "ms_to_isolation"),
    ) {
        s.push_str(&format!(
            "  isolated after {trips} sequential API round trip(s), {ms} ms\n"
        ));
    }
    s.push_str(&format!(
        "  total {} ms\n",
        number(r, "duration_ms").unwrap_or(0)
    ));
    s
}
