//! `responder`: test GuardDuty response playbooks before they go live.

mod commands;
mod input;
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
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Finding files (`-` reads standard input).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Demo against a local emulator: launch a sample instance, feed it a Bitcoin DNS
    /// finding, respond, and show the state before and after.
    Demo {
        /// Playbook folder.
        #[arg(long, default_value = "playbooks")]
        playbooks: PathBuf,
        /// The emulator's endpoint (never a real AWS endpoint).
        #[arg(long, default_value = "http://127.0.0.1:5055")]
        endpoint_url: String,
        /// DryRun every call.
        #[arg(long)]
        dry_run: bool,
        /// Respond through this Lambda function binary (`guardduty-responder`), driven
        /// through a local Runtime API, instead of in this process.
        #[arg(long, value_name = "BINARY")]
        lambda: Option<PathBuf>,
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
            files,
        } => commands::plan::run(&playbooks, format, why_not, &files),
        Command::Test { playbooks } => commands::test::run(&playbooks),
        Command::Coverage { playbooks, format } => commands::coverage::run(&playbooks, format),
        Command::EventPattern { playbooks } => match input::engine(&playbooks) {
            Some(engine) => {
                let pattern = responder_core::event_pattern::event_pattern(engine.playbooks());
                println!(
                    "{}",
                    serde_json::to_string_pretty(&pattern).unwrap_or_default()
                );
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
            format,
            files,
        } => commands::run::run(commands::run::RunArgs {
            playbooks: &playbooks,
            endpoint_url: endpoint_url.as_deref(),
            region: region.as_deref(),
            dry_run,
            topic_arn: topic_arn.as_deref(),
            format,
            files: &files,
        }),
        Command::Demo {
            playbooks,
            endpoint_url,
            dry_run,
            lambda,
        } => commands::demo::run(&playbooks, &endpoint_url, dry_run, lambda.as_deref()),
        Command::Schema => {
            print!("{}", responder_core::schema::playbook_schema());
            0
        }
    };
    ExitCode::from(code)
}
