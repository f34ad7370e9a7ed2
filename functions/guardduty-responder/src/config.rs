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
    /// `VERIFY_FINDINGS`: `on` (the default) fetches each finding from GuardDuty and
    /// plans from GuardDuty's copy; `off` believes the event (for emulators without
    /// GuardDuty findings; [`Config::warnings`] says so at init).
    pub verify: bool,
    /// `DETECTOR_ID`: the detector findings are read from; unset, the one detector
    /// ListDetectors names in the function's region.
    pub detector_id: Option<String>,
    /// `LEDGER_TABLE`: the DynamoDB table recording what the responder did; required
    /// in enforce mode.
    pub ledger_table: Option<String>,
    /// `MAX_DESTRUCTIVE_PER_HOUR`: destructive responses allowed per hour before the
    /// destructive steps are withheld (default [`DEFAULT_MAX_DESTRUCTIVE_PER_HOUR`]).
    pub max_destructive_per_hour: u32,
}

/// `MAX_DESTRUCTIVE_PER_HOUR` when unset.
pub const DEFAULT_MAX_DESTRUCTIVE_PER_HOUR: u32 = 10;

/// A setting the function cannot start with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `RESPONDER_MODE` is neither `enforce` nor `dry-run`.
    #[error("RESPONDER_MODE must be enforce or dry-run, not {0:?}")]
    Mode(String),
    /// `VERIFY_FINDINGS` is neither `on` nor `off`.
    #[error("VERIFY_FINDINGS must be on or off, not {0:?}")]
    Verify(String),
    /// `MAX_DESTRUCTIVE_PER_HOUR` is not a positive integer.
    #[error("MAX_DESTRUCTIVE_PER_HOUR must be a positive integer, not {0:?}")]
    MaxDestructive(String),
    /// Enforce mode without `LEDGER_TABLE`.
    #[error(
        "enforce mode needs LEDGER_TABLE: the ledger is what makes each destructive step run once and what the responder's own state is read from; set it to the table's name, or run in dry-run"
    )]
    NoLedger,
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
        let trimmed = |k: &str| non_empty(k).map(|s| s.trim().to_owned());
        let verify = match get("VERIFY_FINDINGS").unwrap_or_default().trim() {
            "" | "on" => true,
            "off" => false,
            other => return Err(ConfigError::Verify(other.to_owned())),
        };
        let max_destructive_per_hour = match non_empty("MAX_DESTRUCTIVE_PER_HOUR") {
            None => DEFAULT_MAX_DESTRUCTIVE_PER_HOUR,
            Some(text) => text
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or(ConfigError::MaxDestructive(text))?,
        };
        let ledger_table = trimmed("LEDGER_TABLE");
        if !dry_run && ledger_table.is_none() {
            return Err(ConfigError::NoLedger);
        }
        Ok(Config {
            dry_run,
            playbooks_dir,
            quarantine_group: non_empty("QUARANTINE_GROUP"),
            topic_arn: non_empty("SNS_TOPIC_ARN"),
            verify,
            detector_id: trimmed("DETECTOR_ID"),
            ledger_table,
            max_destructive_per_hour,
        })
    }

    /// What an operator should know at init: settings that weaken the response's
    /// checks (one line each, for the init log).
    // Until main.rs logs these at init (the integration of issue 9 wires it).
    #[allow(dead_code)]
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.verify {
            out.push(
                "VERIFY_FINDINGS=off: findings are not checked with GuardDuty; events are believed as delivered (for emulators only)"
                    .to_owned(),
            );
        }
        out
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
            !Config::from(env(&[("RESPONDER_MODE", "enforce"), ("LEDGER_TABLE", "l")]))
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

    #[test]
    fn verification_is_on_unless_off() {
        let c = Config::from(env(&[])).unwrap();
        assert!(c.verify);
        assert!(c.warnings().is_empty());
        assert!(
            Config::from(env(&[("VERIFY_FINDINGS", "on")]))
                .unwrap()
                .verify
        );
        let off = Config::from(env(&[("VERIFY_FINDINGS", " off ")])).unwrap();
        assert!(!off.verify);
        let warnings = off.warnings();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("VERIFY_FINDINGS=off"), "{warnings:?}");
        for bad in ["yes", "false", "OFF", "0"] {
            assert_eq!(
                Config::from(env(&[("VERIFY_FINDINGS", bad)])),
                Err(ConfigError::Verify(bad.to_owned()))
            );
        }
    }

    #[test]
    fn detector_and_ledger_are_optional_names() {
        let c = Config::from(env(&[])).unwrap();
        assert_eq!((c.detector_id, c.ledger_table), (None, None));
        let c = Config::from(env(&[
            ("DETECTOR_ID", " 12abc34d567e8fa901bc2d34e56789f0 "),
            ("LEDGER_TABLE", "responder-ledger"),
        ]))
        .unwrap();
        assert_eq!(
            c.detector_id.as_deref(),
            Some("12abc34d567e8fa901bc2d34e56789f0")
        );
        assert_eq!(c.ledger_table.as_deref(), Some("responder-ledger"));
        assert_eq!(
            Config::from(env(&[("DETECTOR_ID", "  ")]))
                .unwrap()
                .detector_id,
            None
        );
    }

    #[test]
    fn enforce_needs_a_ledger() {
        for env_pairs in [
            &[("RESPONDER_MODE", "enforce")][..],
            &[("RESPONDER_MODE", "enforce"), ("LEDGER_TABLE", " ")][..],
        ] {
            let err = Config::from(env(env_pairs)).unwrap_err();
            assert_eq!(err, ConfigError::NoLedger);
            assert!(
                err.to_string()
                    .starts_with("enforce mode needs LEDGER_TABLE: ")
            );
        }
        // Dry runs change nothing and need none.
        assert_eq!(
            Config::from(env(&[("RESPONDER_MODE", "dry-run")]))
                .unwrap()
                .ledger_table,
            None
        );
    }

    #[test]
    fn destructive_budget_is_a_positive_integer() {
        assert_eq!(
            Config::from(env(&[])).unwrap().max_destructive_per_hour,
            DEFAULT_MAX_DESTRUCTIVE_PER_HOUR
        );
        assert_eq!(DEFAULT_MAX_DESTRUCTIVE_PER_HOUR, 10);
        assert_eq!(
            Config::from(env(&[("MAX_DESTRUCTIVE_PER_HOUR", " 3 ")]))
                .unwrap()
                .max_destructive_per_hour,
            3
        );
        for bad in ["0", "-1", "ten", "1.5", "4294967296"] {
            assert_eq!(
                Config::from(env(&[("MAX_DESTRUCTIVE_PER_HOUR", bad)])),
                Err(ConfigError::MaxDestructive(bad.to_owned()))
            );
        }
    }
}
