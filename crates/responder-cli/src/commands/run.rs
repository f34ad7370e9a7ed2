//! `responder run`: execute the plans against an AWS endpoint (or with DryRun).

use std::path::PathBuf;

use responder_aws::deployment::{self, DeploymentSettings, Wiring};
use responder_aws::render::report_text;
use responder_aws::responder::{Answer, AnswerError};
use responder_core::console::{SeverityCounts, details_panel};
use serde_json::{Value, json};

use crate::output::{self, errln};
use crate::{Format, input};

/// What to run, how.
pub struct RunArgs<'a> {
    /// The deployment settings, judged by the function's reader.
    pub settings: DeploymentSettings,
    /// Output format.
    pub format: Format,
    /// Text: each finding's details panel before its report.
    pub details: bool,
    /// Finding files.
    pub files: &'a [PathBuf],
}

/// What to add to an account error when `run` acts in the caller's account only.
const OWN_ACCOUNT_HINT: &str = "without --member-role, --allowed-accounts or --regions, \
run acts only in your own account and region: pass --member-role NAME (and --regions) \
to act in the finding's";

/// Exit 0 when every response succeeded (or needed nothing), 1 on invalid playbooks
/// or any failed response, 2 on unreadable input.
pub fn run(args: &RunArgs<'_>) -> u8 {
    let settings = &args.settings;
    let Some(engine) = input::engine(settings.playbooks()) else {
        return 1;
    };
    let engine = match deployment::engine_with_settings(settings, engine) {
        Ok(e) => e,
        Err(problems) => {
            for p in &problems {
                errln!("error: {p}");
            }
            return 1;
        }
    };
    for w in settings.warnings() {
        errln!("warning: {w}");
    }
    let Some(runtime) = input::runtime() else {
        return 1;
    };
    runtime.block_on(async {
        // Every file read first: the text output starts with the severity counters of
        // all the findings, as the console's header.
        let inputs: Vec<_> = args.files.iter().map(|p| (p, input::findings(p))).collect();
        // The region and the credentials are checked when there is something to
        // answer (unreadable files alone are reported below, with no AWS call).
        let config = if inputs.iter().any(|(_, r)| r.is_ok()) {
            match settings.checked_sdk_config().await {
                Ok(c) => c,
                Err(message) => {
                    errln!("error: {message}");
                    return 2;
                }
            }
        } else {
            settings.sdk_config().await
        };
        let responder = deployment::responder(settings, engine, Wiring::new(&config));
        let owner = format!(
            "cli-{}-{}",
            std::process::id(),
            responder_core::timestamp::now_millis()
        );
        let mut out: Vec<Value> = Vec::new();
        let mut code = 0;
        if args.format == Format::Text {
            let mut counts = SeverityCounts::default();
            for f in inputs.iter().filter_map(|(_, r)| r.as_ref().ok()).flatten().flatten() {
                counts.observe(f);
            }
            output::out_text(&format!("{counts}\n\n"));
        }
        for (path, findings) in inputs {
            let findings = match findings {
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
                if args.details && args.format == Format::Text {
                    output::out_text(&details_panel(&f));
                }
                let report = match responder.answer(&f, &owner).await {
                    Ok(Answer::Responded(report)) => report,
                    Ok(Answer::NoAction { plan, .. }) => {
                        let v = json!({"source": source, "finding_id": f.id, "status": "no-action", "reason": plan.decision});
                        if args.format == Format::Text {
                            output::out_text(&format!(
                                "{source}: {}: no action ({})\n",
                                f.id, plan.decision
                            ));
                        }
                        out.push(v);
                        continue;
                    }
                    Err(e) => {
                        let mut message = e.to_string();
                        if matches!(e, AnswerError::Account(_)) && settings.own_account_only
                        {
                            message = format!("{message} ({OWN_ACCOUNT_HINT})");
                        }
                        errln!("{source}: {message}");
                        out.push(json!({"source": source, "finding_id": f.id, "error": message}));
                        code = code.max(1);
                        continue;
                    }
                };
                if report.is_failure() {
                    code = code.max(1);
                }
                let mut v = serde_json::to_value(&report).unwrap_or(Value::Null);
                if args.format == Format::Text {
                    output::out_text(&report_text(&source, &report));
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
