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
        Command::Schema => {
            print!("{}", responder_core::schema::playbook_schema());
            0
        }
    };
    ExitCode::from(code)
}
