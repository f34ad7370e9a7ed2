//! `responder`: test GuardDuty response playbooks before they go live.

mod commands;
mod input;
mod output;
mod table;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

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

/// Settings that override playbook parameters, shared by `plan` and `run` so that a
/// plan printed with the same settings is what the function does.
#[derive(Debug, Clone, clap::Args)]
pub struct SettingsArgs {
    /// Quarantine group name for every isolate step (the function's QUARANTINE_GROUP).
    #[arg(long, env = "QUARANTINE_GROUP")]
    quarantine_group: Option<String>,
    /// CIDR blocks no block-remote-ip step ever blocks, comma-separated (the
    /// function's NEVER_BLOCK_CIDRS).
    #[arg(long, env = "NEVER_BLOCK_CIDRS", value_parser = parse_never_block)]
    never_block: Option<NeverBlock>,
}

/// `--never-block`, parsed.
#[derive(Debug, Clone)]
struct NeverBlock(Vec<String>);

fn parse_never_block(text: &str) -> Result<NeverBlock, String> {
    responder_core::steps::block_remote_ip::parse_never_block(text).map(NeverBlock)
}

impl SettingsArgs {
    fn into_settings(self) -> responder_core::steps::Settings {
        responder_core::steps::Settings {
            quarantine_group: self.quarantine_group.filter(|s| !s.trim().is_empty()),
            detector_id: None,
            never_block: self.never_block.map(|n| n.0).unwrap_or_default(),
        }
    }
}

/// Where the ledger table is: shared by `ledger create` and `history`.
#[derive(Debug, Clone, clap::Args)]
pub struct LedgerArgs {
    /// The ledger's DynamoDB table (the function's LEDGER_TABLE).
    #[arg(long, env = "LEDGER_TABLE")]
    table: String,
    /// AWS endpoint, e.g. a local emulator (default: the standard chain).
    #[arg(long)]
    endpoint_url: Option<String>,
    /// Region (default: the standard chain).
    #[arg(long)]
    region: Option<String>,
}

impl LedgerArgs {
    fn target(&self) -> commands::ledger::Target<'_> {
        commands::ledger::Target {
            table: &self.table,
            endpoint_url: self.endpoint_url.as_deref(),
            region: self.region.as_deref(),
        }
    }
}

/// Where GuardDuty is: shared by `findings`, `filter` and `archive`.
#[derive(Debug, Clone, clap::Args)]
pub struct GuardDutyArgs {
    /// Region (default: the standard chain).
    #[arg(long)]
    region: Option<String>,
    /// AWS endpoint, e.g. a local emulator (default: the standard chain;
    /// AWS_ENDPOINT_URL_GUARDDUTY also works).
    #[arg(long)]
    endpoint_url: Option<String>,
    /// The GuardDuty detector (default: the region's only detector, from ListDetectors).
    #[arg(long, env = "DETECTOR_ID")]
    detector_id: Option<String>,
}

impl GuardDutyArgs {
    fn target(&self) -> commands::findings::Target<'_> {
        commands::findings::Target {
            endpoint_url: self.endpoint_url.as_deref(),
            region: self.region.as_deref(),
            detector_id: self.detector_id.clone(),
        }
    }
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
        guardduty: GuardDutyArgs,
    },
    /// Create or update a saved filter (action NOOP) that shows exactly the findings
    /// a playbook answers; exit 2 naming any part that cannot be expressed.
    Export {
        /// The playbook's name.
        playbook: String,
        /// The saved filter's name.
        #[arg(long)]
        name: String,
        /// Playbook folder.
        #[arg(long, default_value = "playbooks")]
        playbooks: PathBuf,
        /// Leave out exclude blocks GuardDuty cannot express (a tag key=value): the
        /// filter then also shows the findings they exclude.
        #[arg(long)]
        allow_broader: bool,
        /// Print the criteria (the AWS CLI's --finding-criteria JSON); call nothing.
        #[arg(long)]
        print: bool,
        /// Where GuardDuty is.
        #[command(flatten)]
        guardduty: GuardDutyArgs,
    },
}

/// `responder ledger ...`.
#[derive(Debug, Subcommand)]
enum LedgerCommand {
    /// Create the ledger table (on-demand, encrypted, point-in-time recovery, TTL,
    /// index by instance) for local use; exit 0 also when it exists.
    Create {
        /// The table.
        #[command(flatten)]
        ledger: LedgerArgs,
    },
}

// One value per process, parsed once: `run`'s many flags make it the largest variant,
// and boxing them would only hide the fields from clap's derive.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Check the playbooks: exit 0 when valid (warnings allowed), 1 on errors.
    Validate {
        /// Playbook folder.
        #[arg(long, default_value = "playbooks")]
        playbooks: PathBuf,
    },
    /// Which playbook each finding would hit, why, and the exact steps. No AWS call.
    Plan {
        /// Playbook folder.
        #[arg(long, default_value = "playbooks")]
        playbooks: PathBuf,
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
        settings: SettingsArgs,
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
    /// Which playbook handles each known finding type; flags uncovered High and
    /// Critical EC2 types.
    Coverage {
        /// Playbook folder.
        #[arg(long, default_value = "playbooks")]
        playbooks: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// A gate: exit 1 when an active EC2-instance finding type that can be at this
        /// severity or above (its documented severity, or one that varies or is not
        /// documented) has no playbook: low, medium, high or critical.
        #[arg(long, value_name = "SEVERITY", value_parser = commands::coverage::parse_threshold)]
        fail_on_uncovered: Option<responder_core::severity::SeverityLevel>,
    },
    /// Run the plans against AWS (or an emulator) and print what happened.
    Run {
        /// Playbook folder.
        #[arg(long, default_value = "playbooks")]
        playbooks: PathBuf,
        /// AWS endpoint, e.g. a local emulator (default: the standard chain).
        #[arg(long)]
        endpoint_url: Option<String>,
        /// Region (default: the standard chain).
        #[arg(long)]
        region: Option<String>,
        /// Make every mutating call with DryRun=true; calls without DryRun are not made.
        #[arg(long)]
        dry_run: bool,
        /// SNS topic for notify steps that name none.
        #[arg(long)]
        topic_arn: Option<String>,
        /// Do not ask GuardDuty to confirm each finding before acting (for emulators
        /// without GuardDuty findings; the function's VERIFY_FINDINGS=off).
        #[arg(long)]
        no_verify: bool,
        /// The GuardDuty detector that verifies findings (default: the region's only
        /// detector, from ListDetectors).
        #[arg(long, env = "DETECTOR_ID")]
        detector_id: Option<String>,
        /// The ledger table: claims each step once, records what was done, counts the
        /// blast-radius budget. Without it, concurrent runs are not kept apart.
        #[arg(long, env = "LEDGER_TABLE")]
        ledger_table: Option<String>,
        /// Responses per hour that may take steps that cannot be undone (with a ledger).
        #[arg(long, env = "MAX_DESTRUCTIVE_PER_HOUR", default_value_t = 10)]
        max_destructive_per_hour: u32,
        /// The same budget per member account (default: no per-account limit).
        #[arg(long, env = "MAX_DESTRUCTIVE_PER_HOUR_PER_ACCOUNT")]
        max_destructive_per_hour_per_account: Option<u32>,
        /// Act in each finding's account and region by assuming this role there
        /// (the function's MEMBER_ROLE_NAME); with `--dry-run`, every call is made with
        /// DryRun in the member account. Without it (and without the flags below),
        /// every finding is answered with the caller's own credentials and region.
        #[arg(long, env = "MEMBER_ROLE_NAME")]
        member_role: Option<String>,
        /// Comma-separated 12-digit accounts that may be acted in (default: every
        /// account); implies acting in the finding's account.
        #[arg(long, env = "ALLOWED_ACCOUNTS")]
        allowed_accounts: Option<String>,
        /// Comma-separated regions served (default: the caller's region); implies
        /// acting in the finding's account.
        #[arg(long, env = "REGIONS")]
        regions: Option<String>,
        /// The caller's own account (default: STS GetCallerIdentity at first need).
        #[arg(long, env = "HOME_ACCOUNT_ID")]
        home_account: Option<String>,
        /// Deployment settings, as the Lambda reads them from its environment.
        #[command(flatten)]
        settings: SettingsArgs,
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
        /// The table.
        #[command(flatten)]
        ledger: LedgerArgs,
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
        /// The ledger's DynamoDB table (the function's LEDGER_TABLE).
        #[arg(long, env = "LEDGER_TABLE")]
        ledger_table: String,
        /// AWS endpoint, e.g. a local emulator (default: the standard chain).
        #[arg(long)]
        endpoint_url: Option<String>,
        /// Region (default: the standard chain).
        #[arg(long)]
        region: Option<String>,
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
        guardduty: GuardDutyArgs,
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
        /// Playbook folder (for --playbook).
        #[arg(long, default_value = "playbooks")]
        playbooks: PathBuf,
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
        guardduty: GuardDutyArgs,
    },
    /// Print the playbook JSON Schema.
    Schema,
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
        Command::Validate { playbooks } => commands::validate::run(&playbooks),
        Command::Plan {
            playbooks,
            format,
            why_not,
            details,
            settings,
            files,
        } => commands::plan::run(
            &playbooks,
            settings.into_settings(),
            format,
            why_not,
            details,
            &files,
        ),
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
            playbooks,
            endpoint_url,
            region,
            dry_run,
            topic_arn,
            no_verify,
            detector_id,
            ledger_table,
            max_destructive_per_hour,
            max_destructive_per_hour_per_account,
            member_role,
            allowed_accounts,
            regions,
            home_account,
            settings,
            format,
            details,
            files,
        } => commands::run::run(commands::run::RunArgs {
            playbooks: &playbooks,
            settings: responder_core::steps::Settings {
                detector_id: detector_id.clone(),
                ..settings.into_settings()
            },
            endpoint_url: endpoint_url.as_deref(),
            region: region.as_deref(),
            dry_run,
            topic_arn: topic_arn.as_deref(),
            verify: !no_verify,
            detector_id,
            ledger_table,
            max_destructive_per_hour,
            organization: commands::run::Organization {
                member_role,
                allowed_accounts,
                regions,
                home_account,
                max_destructive_per_hour_per_account,
            },
            format,
            details,
            files: &files,
        }),
        Command::Permissions {
            playbooks,
            all,
            format,
        } => commands::permissions::run(&playbooks, all, format),
        Command::Ledger {
            command: LedgerCommand::Create { ledger },
        } => commands::ledger::create(&ledger.target()),
        Command::History {
            ledger,
            finding,
            instance,
            format,
        } => commands::ledger::history(
            &ledger.target(),
            finding.as_deref(),
            instance.as_deref(),
            format,
        ),
        Command::Expire {
            ledger_table,
            endpoint_url,
            region,
            now,
            format,
        } => commands::expire::run(&commands::expire::ExpireArgs {
            table: &ledger_table,
            endpoint_url: endpoint_url.as_deref(),
            region: region.as_deref(),
            now: now.as_deref(),
            format,
        }),
        Command::Findings {
            guardduty,
            filter,
            criteria,
            playbook,
            playbooks,
            since,
            include_archived,
            limit,
            format,
            details,
        } => commands::findings::run(
            &guardduty.target(),
            &commands::findings::Selection {
                filter: filter.as_deref(),
                criteria: criteria.as_deref(),
                playbook: playbook.as_deref(),
                playbooks: &playbooks,
                since: since.as_deref(),
                include_archived,
                limit,
            },
            format,
            details,
        ),
        Command::Filter {
            command: FilterCommand::Import { name, guardduty },
        } => commands::filter::import_filter(&guardduty.target(), &name),
        Command::Filter {
            command:
                FilterCommand::Export {
                    playbook,
                    name,
                    playbooks,
                    allow_broader,
                    print,
                    guardduty,
                },
        } => commands::filter::export_filter(
            &guardduty.target(),
            &commands::filter::ExportArgs {
                playbooks: &playbooks,
                playbook: &playbook,
                name: &name,
                allow_broader,
                print_only: print,
            },
        ),
        Command::Archive {
            finding_ids,
            unarchive,
            guardduty,
        } => commands::archive::run(&guardduty.target(), &finding_ids, unarchive),
        Command::Schema => {
            output::out_json(responder_core::schema::playbook_schema().trim_end());
            0
        }
    };
    ExitCode::from(code)
}
