//! Configuration from the environment, read once per container.

use std::collections::BTreeSet;
use std::path::PathBuf;

use responder_aws::accounts::{parse_accounts, parse_regions};

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
    /// `VERIFY_FINDINGS`: `on` (the default) asks GuardDuty to confirm every finding
    /// before acting; `off` is for emulators without GuardDuty findings.
    pub verify: bool,
    /// `DETECTOR_ID`: the detector that verifies findings (else ListDetectors).
    pub detector_id: Option<String>,
    /// `LEDGER_TABLE`: the DynamoDB ledger. Required in enforce mode.
    pub ledger_table: Option<String>,
    /// `MAX_DESTRUCTIVE_PER_HOUR`: responses per hour that may take steps that cannot
    /// be undone (default 10).
    pub max_destructive_per_hour: u32,
    /// `MAX_DESTRUCTIVE_PER_HOUR_PER_ACCOUNT`: the same budget per member account
    /// (scope `account#<id>`); unset: no per-account limit.
    pub max_destructive_per_hour_per_account: Option<u32>,
    /// `MEMBER_ROLE_NAME`: the role assumed in member accounts (default
    /// GuardDutyResponderMember).
    pub member_role: Option<String>,
    /// `ALLOWED_ACCOUNTS`: comma-separated 12-digit ids; unset: every account.
    pub allowed_accounts: Option<BTreeSet<String>>,
    /// `REGIONS`: comma-separated regions served; unset: the function's own region.
    pub regions: BTreeSet<String>,
    /// `HOME_ACCOUNT_ID`: the function's own account (else STS GetCallerIdentity once,
    /// at the first finding).
    pub home_account: Option<String>,
    /// `NEVER_BLOCK_CIDRS`: CIDR blocks (comma- or space-separated) no
    /// `block-remote-ip` step ever blocks, besides its defaults and the playbook's.
    pub never_block: Vec<String>,
}

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
    Budget(String),
    /// `MAX_DESTRUCTIVE_PER_HOUR_PER_ACCOUNT` is not a positive integer.
    #[error("MAX_DESTRUCTIVE_PER_HOUR_PER_ACCOUNT must be a positive integer, not {0:?}")]
    AccountBudget(String),
    /// `ALLOWED_ACCOUNTS`, `HOME_ACCOUNT_ID` or `REGIONS` is malformed.
    #[error("{name}: {message}")]
    List {
        /// The variable.
        name: &'static str,
        /// What is wrong.
        message: String,
    },
    /// `MEMBER_ROLE_NAME` is not an IAM role name.
    #[error(
        "MEMBER_ROLE_NAME must be an IAM role name ([\\w+=,.@-], 1 to 64 characters), not {0:?}"
    )]
    MemberRole(String),
    /// Enforce mode without a ledger: concurrent deliveries could repeat destructive
    /// steps, and nothing would record what was done.
    #[error(
        "RESPONDER_MODE=enforce needs LEDGER_TABLE: without the ledger, concurrent deliveries could take destructive steps twice and nothing would record what was done"
    )]
    LedgerRequired,
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
        let non_empty = |k: &str| {
            get(k)
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        };
        let verify = match non_empty("VERIFY_FINDINGS").as_deref() {
            None | Some("on") => true,
            Some("off") => false,
            Some(other) => return Err(ConfigError::Verify(other.to_owned())),
        };
        let max_destructive_per_hour = match non_empty("MAX_DESTRUCTIVE_PER_HOUR") {
            None => responder_aws::responder::DEFAULT_MAX_DESTRUCTIVE_PER_HOUR,
            Some(v) => match v.parse::<u32>() {
                Ok(n) if n > 0 => n,
                _ => return Err(ConfigError::Budget(v)),
            },
        };
        let max_destructive_per_hour_per_account =
            match non_empty("MAX_DESTRUCTIVE_PER_HOUR_PER_ACCOUNT") {
                None => None,
                Some(v) => match v.parse::<u32>() {
                    Ok(n) if n > 0 => Some(n),
                    _ => return Err(ConfigError::AccountBudget(v)),
                },
            };
        let list = |name: &'static str, message: String| ConfigError::List { name, message };
        let allowed_accounts = parse_accounts(&get("ALLOWED_ACCOUNTS").unwrap_or_default())
            .map_err(|m| list("ALLOWED_ACCOUNTS", m))?;
        let regions =
            parse_regions(&get("REGIONS").unwrap_or_default()).map_err(|m| list("REGIONS", m))?;
        let home_account = match non_empty("HOME_ACCOUNT_ID") {
            None => None,
            Some(id) => parse_accounts(&id)
                .map_err(|m| list("HOME_ACCOUNT_ID", m))?
                .and_then(|s| s.into_iter().next()),
        };
        let member_role = non_empty("MEMBER_ROLE_NAME");
        if let Some(role) = &member_role
            && (role.len() > 64
                || !role
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)))
        {
            return Err(ConfigError::MemberRole(role.clone()));
        }
        let never_block = responder_core::steps::block_remote_ip::parse_never_block(
            &get("NEVER_BLOCK_CIDRS").unwrap_or_default(),
        )
        .map_err(|m| list("NEVER_BLOCK_CIDRS", m))?;
        let ledger_table = non_empty("LEDGER_TABLE");
        if !dry_run && ledger_table.is_none() {
            return Err(ConfigError::LedgerRequired);
        }
        Ok(Config {
            dry_run,
            playbooks_dir,
            quarantine_group: non_empty("QUARANTINE_GROUP"),
            topic_arn: non_empty("SNS_TOPIC_ARN"),
            verify,
            detector_id: non_empty("DETECTOR_ID"),
            ledger_table,
            max_destructive_per_hour,
            max_destructive_per_hour_per_account,
            member_role,
            allowed_accounts,
            regions,
            home_account,
            never_block,
        })
    }

    /// What an operator must hear about at every cold start.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.verify {
            out.push("VERIFY_FINDINGS=off: findings are acted on without GuardDuty confirming them; an invented or forged event would be answered. Use only with emulators".to_owned());
        }
        if self.dry_run && self.ledger_table.is_none() {
            out.push("no LEDGER_TABLE: dry-run responses are not recorded".to_owned());
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
            !Config::from(env(&[("RESPONDER_MODE", "enforce"), ("LEDGER_TABLE", "t")]))
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
    fn verification_ledger_and_budget() {
        let c = Config::from(env(&[])).unwrap();
        assert!(c.verify);
        assert_eq!(c.max_destructive_per_hour, 10);
        assert!(
            !c.warnings().is_empty(),
            "no ledger in dry-run is worth a warning"
        );
        let c = Config::from(env(&[
            ("VERIFY_FINDINGS", "off"),
            ("DETECTOR_ID", "abc"),
            ("MAX_DESTRUCTIVE_PER_HOUR", "3"),
        ]))
        .unwrap();
        assert!(!c.verify);
        assert!(
            c.warnings()
                .iter()
                .any(|w| w.contains("VERIFY_FINDINGS=off"))
        );
        assert_eq!(c.detector_id.as_deref(), Some("abc"));
        assert_eq!(c.max_destructive_per_hour, 3);
        assert_eq!(
            Config::from(env(&[("VERIFY_FINDINGS", "no")])),
            Err(ConfigError::Verify("no".into()))
        );
        for bad in ["0", "-1", "ten"] {
            assert_eq!(
                Config::from(env(&[("MAX_DESTRUCTIVE_PER_HOUR", bad)])),
                Err(ConfigError::Budget(bad.into()))
            );
        }
        assert_eq!(
            Config::from(env(&[("RESPONDER_MODE", "enforce")])),
            Err(ConfigError::LedgerRequired)
        );
    }

    #[test]
    fn never_block_cidrs_are_checked() {
        let c = Config::from(env(&[(
            "NEVER_BLOCK_CIDRS",
            "198.51.100.0/24, 2001:db8::/32",
        )]))
        .unwrap();
        assert_eq!(c.never_block, ["198.51.100.0/24", "2001:db8::/32"]);
        assert!(Config::from(env(&[])).unwrap().never_block.is_empty());
        let e =
            Config::from(env(&[("NEVER_BLOCK_CIDRS", "198.51.100.0/24,10.0.0.1")])).unwrap_err();
        assert!(e.to_string().contains("NEVER_BLOCK_CIDRS"), "{e}");
    }

    #[test]
    fn organization_settings() {
        let c = Config::from(env(&[])).unwrap();
        assert_eq!(c.member_role, None);
        assert_eq!(c.allowed_accounts, None);
        assert!(c.regions.is_empty());
        assert_eq!(c.home_account, None);
        assert_eq!(c.max_destructive_per_hour_per_account, None);
        let c = Config::from(env(&[
            ("MEMBER_ROLE_NAME", "Responder"),
            ("ALLOWED_ACCOUNTS", "111111111111,222222222222"),
            ("REGIONS", "eu-west-1"),
            ("HOME_ACCOUNT_ID", "999999999999"),
            ("MAX_DESTRUCTIVE_PER_HOUR_PER_ACCOUNT", "2"),
        ]))
        .unwrap();
        assert_eq!(c.member_role.as_deref(), Some("Responder"));
        assert_eq!(c.allowed_accounts.map(|a| a.len()), Some(2));
        assert!(c.regions.contains("eu-west-1"));
        assert_eq!(c.home_account.as_deref(), Some("999999999999"));
        assert_eq!(c.max_destructive_per_hour_per_account, Some(2));
        for (k, v) in [
            ("ALLOWED_ACCOUNTS", "12345"),
            ("REGIONS", "Mars"),
            ("HOME_ACCOUNT_ID", "x"),
            ("MEMBER_ROLE_NAME", "a/b"),
            ("MAX_DESTRUCTIVE_PER_HOUR_PER_ACCOUNT", "0"),
        ] {
            assert!(Config::from(env(&[(k, v)])).is_err(), "{k}={v}");
        }
    }
}
