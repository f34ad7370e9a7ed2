//! `responder run`: execute the plans against an AWS endpoint (or with DryRun).

use std::path::{Path, PathBuf};

use responder_aws::accounts::{parse_accounts, parse_regions};
use responder_aws::ledger::Ledger;
use responder_aws::render::report_text;
use responder_aws::responder::{Answer, AnswerError, Responder};
use responder_aws::verify::{DetectorSource, RetryPolicy, Verifier};
use responder_aws::{AccountSettings, ClientPool, Clients, ExecOptions, Executor};
use responder_core::console::{SeverityCounts, details_panel};
use responder_core::steps::Settings;
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
    /// Ask GuardDuty to confirm each finding first.
    pub verify: bool,
    /// The verifying detector (else ListDetectors).
    pub detector_id: Option<String>,
    /// The ledger table.
    pub ledger_table: Option<String>,
    /// The blast-radius budget per hour.
    pub max_destructive_per_hour: u32,
    /// Acting in the finding's account and region.
    pub organization: Organization,
    /// Output format.
    pub format: Format,
    /// Text: each finding's details panel before its report.
    pub details: bool,
    /// Finding files.
    pub files: &'a [PathBuf],
}

/// The organization flags: where to act.
#[derive(Debug, Clone, Default)]
pub struct Organization {
    /// `--member-role`.
    pub member_role: Option<String>,
    /// `--allowed-accounts` (comma-separated).
    pub allowed_accounts: Option<String>,
    /// `--regions` (comma-separated).
    pub regions: Option<String>,
    /// `--home-account`.
    pub home_account: Option<String>,
    /// `--max-destructive-per-hour-per-account`.
    pub max_destructive_per_hour_per_account: Option<u32>,
}

impl Organization {
    /// Where `run` may act. Without any of `--member-role`, `--allowed-accounts` and
    /// `--regions`, only in the caller's own account (GetCallerIdentity) and region:
    /// a member account's finding is an error then, never an "instance gone" from a
    /// describe in the wrong account.
    fn settings(&self) -> Result<AccountSettings, String> {
        if self.own_account_only() {
            return Ok(AccountSettings {
                allowed_accounts: Some(Default::default()),
                ..AccountSettings::default()
            });
        }
        let home_account = match self.home_account.as_deref() {
            None => None,
            Some(id) => parse_accounts(id)
                .map_err(|e| format!("--home-account: {e}"))?
                .and_then(|s| s.into_iter().next()),
        };
        Ok(AccountSettings {
            member_role: self.member_role.clone().filter(|r| !r.trim().is_empty()),
            home_account,
            allowed_accounts: parse_accounts(self.allowed_accounts.as_deref().unwrap_or(""))
                .map_err(|e| format!("--allowed-accounts: {e}"))?,
            regions: parse_regions(self.regions.as_deref().unwrap_or(""))
                .map_err(|e| format!("--regions: {e}"))?,
        })
    }

    /// No flag asks for acting outside the caller's own account and region.
    fn own_account_only(&self) -> bool {
        self.member_role.is_none() && self.allowed_accounts.is_none() && self.regions.is_none()
    }
}

/// What to add to an account error when `run` acts in the caller's account only.
const OWN_ACCOUNT_HINT: &str = "without --member-role, --allowed-accounts or --regions, \
run acts only in your own account and region: pass --member-role NAME (and --regions) \
to act in the finding's";

/// Exit 0 when every response succeeded (or needed nothing), 1 on invalid playbooks
/// or any failed response, 2 on unreadable input.
pub fn run(args: RunArgs<'_>) -> u8 {
    let organization = match args.organization.settings() {
        Ok(o) => o,
        Err(message) => {
            errln!("{message}");
            return 2;
        }
    };
    let Some(engine) = input::engine_with(args.playbooks, args.settings) else {
        return 1;
    };
    let Some(runtime) = input::runtime() else {
        return 1;
    };
    runtime.block_on(async {
        let config = Clients::load(args.endpoint_url, args.region).await;
        let clients = Clients::new(&config);
        let verifier = if args.verify {
            Some(Verifier::new(
                clients.guardduty.clone(),
                match &args.detector_id {
                    Some(id) => DetectorSource::Fixed(id.clone()),
                    None => DetectorSource::Discover,
                },
                RetryPolicy::default(),
            ))
        } else {
            eprintln!("warning: --no-verify: findings are acted on without GuardDuty confirming them");
            None
        };
        let pool = ClientPool::new(clients.clone(), &config, organization);
        let mut executor = Executor::new(
            clients,
            ExecOptions {
                dry_run: args.dry_run,
                topic_arn: args.topic_arn.map(str::to_owned),
            },
        );
        if let Some(table) = &args.ledger_table {
            executor = executor.with_ledger(Ledger::from_config(&config, table));
        }
        let mut responder =
            Responder::new(engine, executor, verifier, args.max_destructive_per_hour)
                .with_max_per_account(args.organization.max_destructive_per_hour_per_account);
        responder = responder.with_accounts(pool);
        let owner = format!(
            "cli-{}-{}",
            std::process::id(),
            responder_core::timestamp::now_millis()
        );
        let mut out: Vec<Value> = Vec::new();
        let mut code = 0;
        // Every file read first: the text output starts with the severity counters of
        // all the findings, as the console's header.
        let inputs: Vec<_> = args.files.iter().map(|p| (p, input::findings(p))).collect();
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
                            println!("{source}: {}: no action ({})", f.id, plan.decision);
                        }
                        out.push(v);
                        continue;
                    }
                    Err(e) => {
                        let mut message = e.to_string();
                        if matches!(e, AnswerError::Account(_))
                            && args.organization.own_account_only()
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
