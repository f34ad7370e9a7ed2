//! The deployment settings as clap arguments, generated from the library's
//! declarations (`responder_aws::deployment::SETTINGS`): each command flattens a
//! [`Declared`] and gets exactly the settings declared for it, with their flags,
//! aliases, help and environment variables. The values are judged by the library's
//! reader, the one the function uses, never by a clap parser of our own.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, FromArgMatches};
use responder_aws::deployment::{
    Command, DeploymentSettings, Flag, Given, Reader, SettingError, settings_of,
};

use crate::output::errln;

/// Names a command for [`Declared`].
pub trait ForCommand {
    /// The command.
    const COMMAND: Command;
}

macro_rules! commands {
    ($($marker:ident => $command:ident),* $(,)?) => {$(
        #[doc = concat!("`", stringify!($command), "`'s settings.")]
        #[derive(Debug, Clone, Copy)]
        pub struct $marker;
        impl ForCommand for $marker {
            const COMMAND: Command = Command::$command;
        }
    )*};
}

commands! {
    RunCmd => Run,
    PlanCmd => Plan,
    ExpireCmd => Expire,
    HistoryCmd => History,
    LedgerCreateCmd => LedgerCreate,
    FindingsCmd => Findings,
    FilterCmd => Filter,
    ArchiveCmd => Archive,
}

/// The settings text one command was given (flags, and the environment variables
/// that are their defaults), not yet judged.
#[derive(Debug, Clone)]
pub struct Declared<C> {
    given: BTreeMap<&'static str, Given>,
    command: PhantomData<C>,
}

impl<C: ForCommand> Declared<C> {
    /// Judged by the library's reader; the error is printed (`error: ...`).
    pub fn read(&self) -> Result<DeploymentSettings, SettingError> {
        DeploymentSettings::read(Reader::Cli(C::COMMAND), |s| self.given.get(s.name).cloned())
            .inspect_err(|e| errln!("error: {e}"))
    }
}

/// The clap argument of each setting `command` takes.
pub fn args(command: Command) -> Vec<Arg> {
    settings_of(Reader::Cli(command))
        .map(|s| {
            let mut help = s.help.to_owned();
            if let Some(d) = s.default_for(Reader::Cli(command)) {
                help.push_str(&format!(" [default: {d}]"));
            }
            let arg = Arg::new(s.name)
                .long(s.flag)
                .visible_aliases(s.aliases.iter().copied());
            match s.form {
                Flag::Value { value_name } => {
                    // `-1` is a value for the reader to judge, not a flag.
                    let arg = arg
                        .value_name(value_name)
                        .action(ArgAction::Set)
                        .allow_hyphen_values(true);
                    match s.env {
                        Some(env) => arg.env(env),
                        None => arg,
                    }
                }
                Flag::Switch { .. } => {
                    if let Some(env) = s.env {
                        help.push_str(&format!(" [absent: {env}]"));
                    }
                    arg.action(ArgAction::SetTrue)
                }
            }
            .help(help)
        })
        .collect()
}

impl<C: ForCommand> FromArgMatches for Declared<C> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut given = BTreeMap::new();
        for s in settings_of(Reader::Cli(C::COMMAND)) {
            let value = match s.form {
                Flag::Switch { when_set } if matches.get_flag(s.name) => {
                    Some(Given::flag(when_set))
                }
                // A switch not given: its variable as the function reads it.
                Flag::Switch { .. } => s.env.and_then(|e| std::env::var(e).ok()).map(Given::env),
                Flag::Value { .. } => {
                    matches
                        .get_one::<String>(s.name)
                        .map(|v| match matches.value_source(s.name) {
                            Some(ValueSource::EnvVariable) => Given::env(v.clone()),
                            _ => Given::flag(v.clone()),
                        })
                }
            };
            if let Some(v) = value {
                given.insert(s.name, v);
            }
        }
        Ok(Declared {
            given,
            command: PhantomData,
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl<C: ForCommand> clap::Args for Declared<C> {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        cmd.args(args(C::COMMAND))
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}
