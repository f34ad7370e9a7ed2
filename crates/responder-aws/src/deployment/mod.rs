//! Deployment settings: declared once, read by the function from its environment and
//! by `responder` from its flags (the same environment variables as their defaults),
//! judged by the same code, and turned into a [`Responder`] by one builder.
//!
//! Everything about a setting is its [`Setting`] in [`SETTINGS`]: its name, its
//! environment variable, its CLI flag and aliases, help text, default (and the CLI's
//! default where it differs), the commands that take it, and `apply`, its parser and
//! validator. Nothing here knows clap: the CLI generates its arguments from the
//! table (`responder-cli/src/settings.rs`), so the library keeps no CLI dependency.
//!
//! [`DeploymentSettings::read`] is the one reader: it asks its caller for each
//! setting's text (the environment, or a flag), applies the default, runs the
//! setting's `apply`, and then the rules between settings (enforce needs a ledger;
//! the CLI's own-account default). The builder ([`build`]) makes the SDK
//! configuration, the client pool, the verifier, the ledger, the executor and the
//! budget from the result.

mod build;
mod declared;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

pub use build::{Wiring, engine_with_settings, responder};
pub use declared::SETTINGS;

use crate::accounts::AccountSettings;

/// A `responder` command that takes deployment settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Command {
    /// `responder run`.
    Run,
    /// `responder plan` (the settings that enter the plan).
    Plan,
    /// `responder expire`.
    Expire,
    /// `responder history`.
    History,
    /// `responder ledger create`.
    LedgerCreate,
    /// `responder findings`.
    Findings,
    /// `responder filter import|export`.
    Filter,
    /// `responder archive`.
    Archive,
}

/// Who reads the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// The Lambda function, from its environment.
    Function,
    /// A `responder` command, from its flags and the environment.
    Cli(Command),
}

/// How a setting is written on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// `--flag VALUE`; the environment variable is the default.
    Value {
        /// The placeholder in `--help`.
        value_name: &'static str,
    },
    /// `--flag` alone, meaning the value `when_set`; absent, the environment
    /// variable's value (as the function reads it) or the default.
    Switch {
        /// The setting's value when the flag is given.
        when_set: &'static str,
    },
}

/// Which side reads a setting: both, or one with the reason written down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// The function reads its variable and `responder run` takes its flag.
    Both,
    /// Only the CLI, and why.
    CliOnly(&'static str),
    /// Only the function, and why.
    FunctionOnly(&'static str),
}

/// Whether `infra/template.yaml` sets a setting's variable on the function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    /// One of the function's `Environment.Variables`.
    Variable,
    /// Not set by the template, and why.
    Absent(&'static str),
}

/// One deployment setting, everything about it.
pub struct Setting {
    /// Its name in messages and the key of its CLI argument.
    pub name: &'static str,
    /// The environment variable (the function's setting; the CLI flag's default).
    pub env: Option<&'static str>,
    /// The CLI flag, without `--`.
    pub flag: &'static str,
    /// Other names the flag answers to (visible in `--help`).
    pub aliases: &'static [&'static str],
    /// A flag with a value or a switch.
    pub form: Flag,
    /// The help text.
    pub help: &'static str,
    /// The default, as text (run through `apply` like any value); `None`: unset.
    pub default: Option<&'static str>,
    /// The CLI's default where it differs from the function's.
    pub cli_default: Option<&'static str>,
    /// The `responder` commands that take it.
    pub commands: &'static [Command],
    /// The commands that cannot run without it.
    pub required_by: &'static [Command],
    /// Which side reads it.
    pub reach: Reach,
    /// Whether the SAM template sets it.
    pub template: Template,
    /// On the CLI, giving it lets `run` act beyond the caller's own account and
    /// region (`--member-role`, `--allowed-accounts`, `--regions`).
    pub widens_reach: bool,
    /// Parses and checks the (trimmed, non-empty) text and stores it.
    pub apply: fn(&mut DeploymentSettings, &str) -> Result<(), String>,
}

impl fmt::Debug for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Setting")
            .field("name", &self.name)
            .field("env", &self.env)
            .field("flag", &self.flag)
            .finish_non_exhaustive()
    }
}

impl Setting {
    /// Whether `reader` reads this setting.
    pub fn read_by(&self, reader: Reader) -> bool {
        match reader {
            Reader::Function => self.env.is_some() && !matches!(self.reach, Reach::CliOnly(_)),
            Reader::Cli(command) => self.commands.contains(&command),
        }
    }

    /// The default `reader` applies when the setting is not given.
    pub fn default_for(&self, reader: Reader) -> Option<&'static str> {
        match reader {
            Reader::Cli(_) => self.cli_default.or(self.default),
            Reader::Function => self.default,
        }
    }

    /// `--flag`.
    pub fn long(&self) -> String {
        format!("--{}", self.flag)
    }
}

/// The settings `reader` reads, in declaration order.
pub fn settings_of(reader: Reader) -> impl Iterator<Item = &'static Setting> {
    SETTINGS.iter().filter(move |s| s.read_by(reader))
}

/// The environment variables the function reads.
pub fn function_env() -> impl Iterator<Item = &'static str> {
    settings_of(Reader::Function).filter_map(|s| s.env)
}

/// Where a setting's value came from, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Its environment variable.
    Env,
    /// Its CLI flag.
    Flag,
    /// Its default.
    Default,
}

/// A setting's text as the caller found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Given {
    /// The text (a switch: its `when_set` value).
    pub text: String,
    /// Where it came from.
    pub origin: Origin,
}

impl Given {
    /// Text from the environment.
    pub fn env(text: impl Into<String>) -> Given {
        Given {
            text: text.into(),
            origin: Origin::Env,
        }
    }

    /// Text from a flag.
    pub fn flag(text: impl Into<String>) -> Given {
        Given {
            text: text.into(),
            origin: Origin::Flag,
        }
    }
}

/// Why the settings cannot be used: the deployment refuses to start, the command to
/// run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    /// A value its setting refuses.
    #[error("{name}: {message}, not {value:?}")]
    Invalid {
        /// The setting (its [`Setting::name`]).
        setting: &'static str,
        /// As the reader names it: the variable, or `--flag`.
        name: String,
        /// The value.
        value: String,
        /// What is wrong.
        message: String,
    },
    /// A setting the command cannot run without.
    #[error("{name} is required")]
    Missing {
        /// The setting.
        setting: &'static str,
        /// Its names: `--flag (or --alias, or VARIABLE)`.
        name: String,
    },
    /// Enforcing without a ledger: concurrent deliveries could repeat destructive
    /// steps, and nothing would record what was done.
    #[error(
        "{mode} needs {ledger}: without the ledger, concurrent deliveries could take destructive steps twice and nothing would record what was done"
    )]
    LedgerRequired {
        /// How the reader names enforce mode.
        mode: String,
        /// How it names the ledger.
        ledger: String,
    },
}

impl SettingError {
    /// The setting the error is about.
    pub fn setting(&self) -> &'static str {
        match self {
            SettingError::Invalid { setting, .. } | SettingError::Missing { setting, .. } => {
                setting
            }
            SettingError::LedgerRequired { .. } => "ledger_table",
        }
    }
}

/// The deployment's settings, read and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentSettings {
    /// `RESPONDER_MODE` / `--dry-run`: every mutating call with DryRun.
    pub dry_run: bool,
    /// `PLAYBOOKS_DIR` / `--playbooks`: else the function's bundled playbooks.
    pub playbooks_dir: Option<PathBuf>,
    /// `--endpoint-url` (CLI only).
    pub endpoint_url: Option<String>,
    /// `--region` (CLI only).
    pub region: Option<String>,
    /// `--profile` / `AWS_PROFILE` (CLI only).
    pub profile: Option<String>,
    /// `QUARANTINE_GROUP`: an engine setting.
    pub quarantine_group: Option<String>,
    /// `NEVER_BLOCK_CIDRS`, canonical: an engine setting.
    pub never_block: Vec<String>,
    /// `SNS_TOPIC_ARN`: notify steps that name no topic.
    pub topic_arn: Option<String>,
    /// `VERIFY_FINDINGS`: GuardDuty confirms every finding first.
    pub verify: bool,
    /// `DETECTOR_ID`: verification and archive (else ListDetectors); an engine setting.
    pub detector_id: Option<String>,
    /// `LEDGER_TABLE`.
    pub ledger_table: Option<String>,
    /// `MAX_DESTRUCTIVE_PER_HOUR`.
    pub max_destructive_per_hour: u32,
    /// `MAX_DESTRUCTIVE_PER_HOUR_PER_ACCOUNT`.
    pub max_destructive_per_hour_per_account: Option<u32>,
    /// `MEMBER_ROLE_NAME`, `ALLOWED_ACCOUNTS`, `REGIONS`, `HOME_ACCOUNT_ID`.
    pub accounts: AccountSettings,
    /// The CLI's default: no setting that widens the reach was given, so `run` acts
    /// only in the caller's own account and region.
    pub own_account_only: bool,
    /// How the reader named `verify` when it was turned off (for the warning).
    verify_off_origin: Option<String>,
    /// Who read the settings (for messages).
    reader: Reader,
}

impl DeploymentSettings {
    /// Reads the settings `reader` takes: `given(setting)` is the setting's text
    /// where the reader found it (blank counts as absent), else its default. Each
    /// value is checked by its setting's `apply`; then the rules between settings.
    pub fn read(
        reader: Reader,
        given: impl Fn(&Setting) -> Option<Given>,
    ) -> Result<DeploymentSettings, SettingError> {
        let mut out = declared::empty(reader);
        let mut widened = false;
        let mut origins: BTreeMap<&'static str, Given> = BTreeMap::new();
        for setting in settings_of(reader) {
            let value = given(setting)
                .map(|g| Given {
                    text: g.text.trim().to_owned(),
                    origin: g.origin,
                })
                .filter(|g| !g.text.is_empty());
            if value.is_some() && setting.widens_reach {
                widened = true;
            }
            let value = match value {
                Some(v) => v,
                None => {
                    if let Reader::Cli(command) = reader
                        && setting.required_by.contains(&command)
                    {
                        return Err(SettingError::Missing {
                            setting: setting.name,
                            name: all_names(setting),
                        });
                    }
                    match setting.default_for(reader) {
                        Some(d) => Given {
                            text: d.to_owned(),
                            origin: Origin::Default,
                        },
                        None => continue,
                    }
                }
            };
            (setting.apply)(&mut out, &value.text).map_err(|message| SettingError::Invalid {
                setting: setting.name,
                name: name_of(setting, reader, value.origin),
                value: value.text.clone(),
                message,
            })?;
            origins.insert(setting.name, value);
        }
        let takes = |name: &str| settings_of(reader).any(|s| s.name == name);
        if takes("mode") && !out.dry_run && out.ledger_table.is_none() {
            let (mode, ledger) = match reader {
                Reader::Function => (
                    "RESPONDER_MODE=enforce".to_owned(),
                    "LEDGER_TABLE".to_owned(),
                ),
                Reader::Cli(_) => (
                    "enforcing (without --dry-run)".to_owned(),
                    "--ledger-table (or LEDGER_TABLE)".to_owned(),
                ),
            };
            return Err(SettingError::LedgerRequired { mode, ledger });
        }
        out.own_account_only = reader == Reader::Cli(Command::Run) && !widened;
        if let Some(g) = origins.get("verify").filter(|_| !out.verify) {
            out.verify_off_origin = Some(match g.origin {
                Origin::Flag => "--no-verify".to_owned(),
                _ => format!("VERIFY_FINDINGS={}", g.text),
            });
        }
        Ok(out)
    }

    /// The function's settings from `get` (the environment in production).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Self, SettingError> {
        DeploymentSettings::read(Reader::Function, |s| s.env.and_then(&get).map(Given::env))
    }

    /// The playbook folder: `--playbooks` / `PLAYBOOKS_DIR`, else `playbooks` (the
    /// function, without it, uses its bundled playbooks and does not ask).
    pub fn playbooks(&self) -> &std::path::Path {
        self.playbooks_dir
            .as_deref()
            .unwrap_or(std::path::Path::new("playbooks"))
    }

    /// The engine inputs among the settings: `responder plan` with the same settings
    /// prints what the function does.
    pub fn engine_settings(&self) -> responder_core::steps::Settings {
        responder_core::steps::Settings {
            quarantine_group: self.quarantine_group.clone(),
            detector_id: self.detector_id.clone(),
            never_block: self.never_block.clone(),
        }
    }

    /// Where the responder may act: the CLI's own-account default, else the
    /// account settings as given.
    pub fn account_settings(&self) -> AccountSettings {
        if self.own_account_only {
            AccountSettings {
                allowed_accounts: Some(Default::default()),
                ..AccountSettings::default()
            }
        } else {
            self.accounts.clone()
        }
    }

    /// What an operator must hear about at every start.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(origin) = &self.verify_off_origin {
            out.push(format!("{origin}: findings are acted on without GuardDuty confirming them; an invented or forged event would be answered. Use only with emulators"));
        }
        if self.dry_run && self.ledger_table.is_none() {
            let ledger = match self.reader {
                Reader::Function => "LEDGER_TABLE",
                Reader::Cli(_) => "--ledger-table",
            };
            out.push(format!("no {ledger}: dry-run responses are not recorded"));
        }
        out
    }
}

/// How `reader` names a setting whose value came from `origin`.
fn name_of(setting: &Setting, reader: Reader, origin: Origin) -> String {
    match (reader, origin, setting.env) {
        (Reader::Cli(_), Origin::Flag, _) | (Reader::Cli(_), _, None) => setting.long(),
        (_, _, Some(env)) => env.to_owned(),
        (Reader::Function, _, None) => setting.name.to_owned(),
    }
}

/// `--flag (or --alias, or VARIABLE)`.
fn all_names(setting: &Setting) -> String {
    let others: Vec<String> = setting
        .aliases
        .iter()
        .map(|a| format!("--{a}"))
        .chain(setting.env.map(str::to_owned))
        .collect();
    if others.is_empty() {
        setting.long()
    } else {
        format!("{} (or {})", setting.long(), others.join(", or "))
    }
}

#[cfg(test)]
mod tests;
