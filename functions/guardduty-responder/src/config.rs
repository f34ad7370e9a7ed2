//! Configuration from the environment, read once per container.

use std::path::PathBuf;

/// What the function reads from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `RESPONDER_MODE`: `enforce` acts; anything else, or unset, is `dry-run`.
    pub dry_run: bool,
    /// `PLAYBOOKS_DIR`: load playbooks from this folder instead of the copy built
    /// into the binary.
    pub playbooks_dir: Option<PathBuf>,
    /// `QUARANTINE_GROUP`: overrides the quarantine group name of every isolate step.
    pub quarantine_group: Option<String>,
    /// `SNS_TOPIC_ARN`: the topic for notify steps that name none.
    pub topic_arn: Option<String>,
}

/// A setting the function cannot start with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `RESPONDER_MODE` is neither `enforce` nor `dry-run`.
    #[error("RESPONDER_MODE must be enforce or dry-run, not {0:?}")]
    Mode(String),
}

impl Config {
    /// Reads the configuration through `get` (the environment in production).
    pub fn from(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let mode = get("RESPONDER_MODE").unwrap_or_default();
        let dry_run = match mode.trim() {
            "" | "dry-run" => true,
            "enforce" => false,
            other => return Err(ConfigError::Mode(other.to_owned())),
        };
        let playbooks_dir = get("PLAYBOOKS_DIR")
            .filter(|s| !s.trim().is_empty())
            .map(PathBuf::from);
        let non_empty = |k: &str| get(k).filter(|s| !s.trim().is_empty());
        Ok(Config {
            dry_run,
            playbooks_dir,
            quarantine_group: non_empty("QUARANTINE_GROUP"),
            topic_arn: non_empty("SNS_TOPIC_ARN"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn dry_run_unless_enforce() {
        assert!(Config::from(env(&[])).unwrap().dry_run);
        assert!(
            Config::from(env(&[("RESPONDER_MODE", "dry-run")]))
                .unwrap()
                .dry_run
        );
        assert!(
            !Config::from(env(&[("RESPONDER_MODE", "enforce")]))
                .unwrap()
                .dry_run
        );
        assert!(Config::from(env(&[("RESPONDER_MODE", "Enforce!")])).is_err());
        let c = Config::from(env(&[
            ("PLAYBOOKS_DIR", "/x"),
            ("QUARANTINE_GROUP", "q"),
            ("SNS_TOPIC_ARN", " "),
        ]))
        .unwrap();
        assert_eq!(c.playbooks_dir, Some(PathBuf::from("/x")));
        assert_eq!(Config::from(env(&[])).unwrap().playbooks_dir, None);
        assert_eq!(c.quarantine_group.as_deref(), Some("q"));
        assert_eq!(c.topic_arn, None);
    }
}
