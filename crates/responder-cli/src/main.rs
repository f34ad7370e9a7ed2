//! `responder`: test GuardDuty response playbooks before they go live.

mod commands;
mod input;
mod output;
mod settings;
mod table;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use settings::{
    ArchiveCmd, Declared, ExpireCmd, FilterCmd, FindingsCmd, HistoryCmd, LedgerCreateCmd, PlanCmd,
    RunCmd,
};

/// Automated response to Amazon GuardDuty findings: validate, plan and test playbooks.
#[derive(Debug, Parser)]
#[command(name = "responder", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// One JSON document.
    Json,
}

/// Reads a command's deployment settings; `None` (reported) when they are refused.
fn judged<C: settings::ForCommand>(
    declared: &settings::Declared<C>,
) -> Option<responder_aws::deployment::DeploymentSettings> {
    declared.read().ok()
}

/// `responder filter ...`.
#[derive(Debug, Subcommand)]
enum FilterCommand {
    /// Print the playbook `match`/`exclude` that selects the findings a saved filter
    /// selects (GetFilter); exit 2 naming any criterion that cannot be expressed.
    Import {
        /// The saved filter's name.
        name: String,
        /// Where GuardDuty is.
        #[command(flatten)]
        guardduty: Declared<FilterCmd>,
    },
    /// Create or update a saved filter (action NOOP) that shows exactly the findings
    /// a playbook answers; exit 2 naming any part that cannot be expressed.
    Export {
        /// The playbook's name.
        playbook: String,
        /// The saved filter's name.
        #[arg(long)]
        name: String,
        /// Leave out exclude blocks GuardDuty cannot express (a tag key=value): the
        /// filter then also shows the findings they exclude.
        #[arg(long)]
        allow_broader: bool,
        /// Print the criteria (the AWS CLI's --finding-criteria JSON); call nothing.
        #[arg(long)]
        print: bool,
        /// Where GuardDuty is.
        #[command(flatten)]
        guardduty: Declared<FilterCmd>,
    },
}

/// `responder ledger ...`.
#[derive(Debug, Subcommand)]
enum LedgerCommand {
    /// Create the ledger table (on-demand, encrypted, point-in-time recovery, TTL,
    /// index by instance) for local use; exit 0 also when it exists.
    Create {
        /// The table, where.
        #[command(flatten)]
        ledger: Declared<LedgerCreateCmd>,
    },
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check the playbooks: exit 0 when valid (warnings allowed unless --strict), 1
    /// on errors.
    Validate {
        /// Playbook folder.
        #[arg(long, default_value = "playbooks")]
        playbooks: PathBuf,
        /// Warnings fail too (exit 1): an unknown finding type or filter attribute,
        /// terminate without a snapshot, ...
        #[arg(long)]
        strict: bool,
    },
    /// Which playbook each finding would hit, why, and the exact steps. No AWS call.
    Plan {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Also say why every other playbook did not answer.
        #[arg(long)]
        why_not: bool,
        /// Text: each finding's details panel (the console's) before its plan.
        #[arg(long)]
        details: bool,
        /// Deployment settings, as the Lambda reads them from its environment.
        #[command(flatten)]
        settings: Declared<PlanCmd>,
        /// Finding files (`-` reads standard input): EventBridge events, bare findings,
        /// arrays of them, or `aws guardduty get-findings` output.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run the playbook test cases (`<playbooks>/tests/*.yaml`).
    Test {
        /// Playbook folder.
        #[arg(long, default_value = "playbooks")]
        playbooks: PathBuf,
    },
    /// Which playbook answers each known finding type in each severity band; flags
    /// the EC2-instance types a `high` gate fails on.
    Coverage {
        /// Playbook folder.
        #[arg(long, default_value = "playbooks")]
        playbooks: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// A gate: exit 1 when an active EC2-instance finding type is not answered
        /// throughout its documented band, if that is at this level or above, or
        /// throughout every band from this level up when its severity varies or is
        /// not documented: low, medium, high or critical.
        #[arg(long, value_name = "SEVERITY", value_parser = commands::coverage::parse_threshold)]
        fail_on_uncovered: Option<responder_core::severity::SeverityLevel>,
    },
    /// Run the plans against AWS (or an emulator) and print what happened.
    Run {
        /// Deployment settings: each flag's default is the variable the function
        /// reads, and both are judged by the same reader.
        #[command(flatten)]
        settings: Declared<RunCmd>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Text: each finding's details panel before its report.
        #[arg(long)]
        details: bool,
        /// Finding files (`-` reads standard input).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// The IAM actions the playbooks' steps need (from each step's declaration), one
    /// per line; `--all` lists those of every step the responder knows.
    Permissions {
        /// Playbook folder.
        #[arg(long, default_value = "playbooks")]
        playbooks: PathBuf,
        /// Every step, whatever the playbooks use (what the deployment templates grant).
        #[arg(long)]
        all: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// The responder's ledger (DynamoDB): `ledger create`.
    Ledger {
        #[command(subcommand)]
        command: LedgerCommand,
    },
    /// What the responder did, from its ledger, newest first: by finding, by
    /// instance, or both.
    History {
        /// The table, where.
        #[command(flatten)]
        ledger: Declared<HistoryCmd>,
        /// Only this finding.
        #[arg(long)]
        finding: Option<String>,
        /// Only this instance.
        #[arg(long)]
        instance: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Remove block-remote-ip's deny entries that are due (what the function does
    /// on its schedule), in the caller's account: each deleted only while still
    /// exactly as recorded.
    Expire {
        /// The table, where.
        #[command(flatten)]
        ledger: Declared<ExpireCmd>,
        /// Expire as if it were this time (RFC 3339 UTC, e.g. 2026-11-29T12:00:00Z).
        #[arg(long)]
        now: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// The GuardDuty console's findings view: severity counters and a table (or the
    /// console's JSON export, which `responder plan -` reads), live from GuardDuty.
    Findings {
        /// Where GuardDuty is.
        #[command(flatten)]
        guardduty: Declared<FindingsCmd>,
        /// Only the findings of this saved filter.
        #[arg(long, conflicts_with_all = ["criteria", "playbook"])]
        filter: Option<String>,
        /// Only the findings meeting these criteria (JSON: {"Criterion": {...}}).
        #[arg(long, conflicts_with = "playbook")]
        criteria: Option<PathBuf>,
        /// Only the findings this playbook would answer (its match as criteria where
        /// GuardDuty can say it, the rest filtered here).
        #[arg(long)]
        playbook: Option<String>,
        /// Only findings updated within this span: 30m, 12h, 7d, 2w.
        #[arg(long)]
        since: Option<String>,
        /// Archived findings too (the console leaves them out).
        #[arg(long)]
        include_archived: bool,
        /// At most this many findings (highest severity first).
        #[arg(long)]
        limit: Option<usize>,
        /// Output format (json: the console export, an array of findings).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Each finding's details panel after the table.
        #[arg(long)]
        details: bool,
    },
    /// Saved filters both ways: `filter import NAME`, `filter export PLAYBOOK --name NAME`.
    Filter {
        #[command(subcommand)]
        command: FilterCommand,
    },
    /// Archive findings (or unarchive them with --unarchive).
    Archive {
        /// Finding ids.
        #[arg(required = true)]
        finding_ids: Vec<String>,
        /// Unarchive instead.
        #[arg(long)]
        unarchive: bool,
        /// Where GuardDuty is.
        #[command(flatten)]
        guardduty: Declared<ArchiveCmd>,
    },
    /// Print the playbook JSON Schema.
    Schema {
        /// The schema of test case files (playbooks/tests/*.yaml) instead.
        #[arg(long)]
        test_cases: bool,
    },
    /// Print the EventBridge rule pattern that delivers the findings the playbooks
    /// can answer (and no others).
    EventPattern {
        /// Playbook folder.
        #[arg(long, default_value = "playbooks")]
        playbooks: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Validate { playbooks, strict } => commands::validate::run(&playbooks, strict),
        Command::Plan {
            format,
            why_not,
            details,
            settings,
            files,
        } => match judged(&settings) {
            Some(settings) => commands::plan::run(
                settings.playbooks(),
                settings.engine_settings(),
                format,
                why_not,
                details,
                &files,
            ),
            None => 2,
        },
        Command::Test { playbooks } => commands::test::run(&playbooks),
        Command::Coverage {
            playbooks,
            format,
            fail_on_uncovered,
        } => commands::coverage::run(&playbooks, format, fail_on_uncovered),
        Command::EventPattern { playbooks } => match input::engine(&playbooks) {
            Some(engine) => {
                let pattern = responder_core::event_pattern::event_pattern(engine.playbooks());
                output::out_json(&serde_json::to_string_pretty(&pattern).unwrap_or_default());
                0
            }
            None => 1,
        },
        Command::Run {
            settings,
            format,
            details,
            files,
        } => match judged(&settings) {
            Some(settings) => commands::run::run(&commands::run::RunArgs {
                settings,
                format,
                details,
                files: &files,
            }),
            None => 2,
        },
        Command::Permissions {
            playbooks,
            all,
            format,
        } => commands::permissions::run(&playbooks, all, format),
        Command::Ledger {
            command: LedgerCommand::Create { ledger },
        } => judged(&ledger).map_or(2, |s| commands::ledger::create(&s)),
        Command::History {
            ledger,
            finding,
            instance,
            format,
        } => judged(&ledger).map_or(2, |s| {
            commands::ledger::history(&s, finding.as_deref(), instance.as_deref(), format)
        }),
        Command::Expire {
            ledger,
            now,
            format,
        } => judged(&ledger).map_or(2, |s| {
            commands::expire::run(&commands::expire::ExpireArgs {
                settings: &s,
                now: now.as_deref(),
                format,
            })
        }),
        Command::Findings {
            guardduty,
            filter,
            criteria,
            playbook,
            since,
            include_archived,
            limit,
            format,
            details,
        } => judged(&guardduty).map_or(2, |s| {
            commands::findings::run(
                &commands::findings::Target { settings: &s },
                &commands::findings::Selection {
                    filter: filter.as_deref(),
                    criteria: criteria.as_deref(),
                    playbook: playbook.as_deref(),
                    playbooks: s.playbooks(),
                    since: since.as_deref(),
                    include_archived,
                    limit,
                },
                format,
                details,
            )
        }),
        Command::Filter {
            command: FilterCommand::Import { name, guardduty },
        } => judged(&guardduty).map_or(2, |s| {
            commands::filter::import_filter(&commands::findings::Target { settings: &s }, &name)
        }),
        Command::Filter {
            command:
                FilterCommand::Export {
                    playbook,
                    name,
                    allow_broader,
                    print,
                    guardduty,
                },
        } => judged(&guardduty).map_or(2, |s| {
            commands::filter::export_filter(
                &commands::findings::Target { settings: &s },
                &commands::filter::ExportArgs {
                    playbooks: s.playbooks(),
                    playbook: &playbook,
                    name: &name,
                    allow_broader,
                    print_only: print,
                },
            )
        }),
        Command::Archive {
            finding_ids,
            unarchive,
            guardduty,
        } => judged(&guardduty).map_or(2, |s| {
            commands::archive::run(
                &commands::findings::Target { settings: &s },
                &finding_ids,
                unarchive,
            )
        }),
        Command::Schema { test_cases } => {
            let schema = if test_cases {
                responder_core::schema::test_case_schema()
            } else {
                responder_core::schema::playbook_schema()
            };
            output::out_json(schema.trim_end());
            0
        }
    };
    ExitCode::from(code)
}
