//! `responder run`: execute the plans against an AWS endpoint (or with DryRun).

use std::path::{Path, PathBuf};

use responder_aws::render::report_text;
use responder_aws::{Clients, ExecOptions, Executor};
use responder_core::plan::Settings;
use serde_json::{Value, json};

use crate::output::{self, errln};
use crate::{Format, input};

/// Where and how to run.
pub struct RunArgs<'a> {
    /// Playbook folder.
    pub playbooks: &'a Path,
    /// Settings the plans are made under.
    pub settings: Settings,
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
    let Some(engine) = input::engine_with(args.playbooks, args.settings) else {
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
                    errln!("{message}");
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
                        errln!("{source}: {e}");
                        out.push(json!({"source": source, "error": e.to_string()}));
                        code = 2;
                        continue;
                    }
                };
                let plan = match engine.plan(&f, false) {
                    Ok(p) => p,
                    Err(e) => {
                        errln!("{source}: {e}");
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
                    output::out_text(&report_text(&source, &v));
                }
                if let Value::Object(m) = &mut v {
                    m.insert("source".to_owned(), json!(source));
                }
                out.push(v);
            }
        }
        if args.format == Format::Json {
            output::out_json(
                &serde_json::to_string_pretty(&json!({ "reports": out })).unwrap_or_default(),
            );
        }
        code
    })
}
