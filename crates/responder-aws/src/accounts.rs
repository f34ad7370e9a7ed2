//! Clients per (account, region): a finding is answered in the account and region it
//! names.
//!
//! The deployment's own account (`HOME_ACCOUNT_ID`, else STS GetCallerIdentity once,
//! at first need: never at init) in its own region uses the home [`Clients`]. Any
//! other account is reached by assuming
//! `arn:<partition>:iam::<account>:role/<MEMBER_ROLE_NAME>` with a session name that
//! carries the id of the finding that needed it and the source identity
//! [`SOURCE_IDENTITY`], so CloudTrail in the member account names the responder and
//! the finding. Clients are built on first use of an (account, region) and kept
//! until 5 minutes before their credentials expire; concurrent first uses wait for
//! one AssumeRole (a lock per key), so a burst of findings from one account assumes
//! its role once. The session name therefore names the finding that opened the
//! session; later findings in the same hour reuse it (their ids are in the ledger and
//! the reports).
//!
//! In a member bundle only EC2, Auto Scaling and ELBv2 act in the member account:
//! GuardDuty (archive-finding: only the administrator may archive member findings)
//! is the administrator's in the finding's region, and SNS (the deployment's topic)
//! stays the home client.
//!
//! Regions: `REGIONS` lists the regions one deployment answers. With the default
//! (the home region only) the supported topology is a stack per region (a StackSet
//! of the region-agnostic template), each answering its region's findings. A
//! deployment that also lists other regions answers their findings there: the
//! finding is verified with the administrator's detector of that region (found by
//! ListDetectors; `DETECTOR_ID` names the home region's only) and the instance is
//! described and acted on there.
//!
//! Before any call, an account outside `ALLOWED_ACCOUNTS` or a region outside
//! `REGIONS` (default: the home region only, the stack-per-region topology) is an
//! [`AccountError`]; so is a role that cannot be assumed. Nothing is changed anywhere.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use aws_config::{Region, SdkConfig};
use aws_sdk_sts::config::{Credentials, SharedCredentialsProvider};
use tokio::sync::OnceCell;

use crate::call::{CallError, err};
use crate::clients::Clients;

/// The default of `MEMBER_ROLE_NAME`: the role infra/member-role.yaml deploys.
pub const DEFAULT_MEMBER_ROLE: &str = "GuardDutyResponderMember";

/// The source identity of every assumed session (CloudTrail's `sourceIdentity`, kept
/// through role chaining). The member role's trust policy must allow
/// `sts:SetSourceIdentity`.
pub const SOURCE_IDENTITY: &str = "guardduty-responder";

/// Assumed credentials are renewed this long before they expire, so that no
/// response starts with credentials that lapse during it (the function's timeout is
/// 180 s).
const RENEW_BEFORE: Duration = Duration::from_secs(300);

/// The session length asked of AssumeRole (the default maximum of a role).
const SESSION_SECONDS: i32 = 3600;

/// Where the deployment may act.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountSettings {
    /// The role assumed in member accounts (default [`DEFAULT_MEMBER_ROLE`]).
    pub member_role: Option<String>,
    /// The deployment's own account (`HOME_ACCOUNT_ID`); else GetCallerIdentity at
    /// first need.
    pub home_account: Option<String>,
    /// `ALLOWED_ACCOUNTS`: `None` allows every account; the home account is always
    /// allowed.
    pub allowed_accounts: Option<BTreeSet<String>>,
    /// `REGIONS`: the regions served; empty means the home region only.
    pub regions: BTreeSet<String>,
}

/// Why a finding's account and region cannot be acted in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("account {account}, region {region}: {reason}")]
pub struct AccountError {
    /// The finding's account.
    pub account: String,
    /// The finding's region.
    pub region: String,
    /// Why.
    pub reason: AccountReason,
}

/// The reason of an [`AccountError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountReason {
    /// The account is not in `ALLOWED_ACCOUNTS`.
    #[error("the account is not in ALLOWED_ACCOUNTS; nothing was done")]
    NotAllowed,
    /// The region is not in `REGIONS`.
    #[error("the region is not served by this deployment (REGIONS: {served}); nothing was done")]
    RegionNotServed {
        /// The served regions, comma-separated.
        served: String,
    },
    /// AssumeRole failed.
    #[error("cannot assume {role_arn}: {error}; nothing was done")]
    AssumeRole {
        /// The role.
        role_arn: String,
        /// The STS error.
        error: CallError,
    },
    /// GetCallerIdentity failed: the home account is unknown.
    #[error(
        "the deployment's own account is unknown (GetCallerIdentity failed: {0}); set HOME_ACCOUNT_ID"
    )]
    CallerIdentity(CallError),
    /// The finding names no account or no region.
    #[error("the finding names no account or no region")]
    Missing,
    /// GuardDuty's copy names another account or region than the event the clients
    /// were chosen for.
    #[error(
        "GuardDuty's copy of the finding names another account or region than the event; nothing was done"
    )]
    CopyDiffers,
    /// The account id is not 12 digits.
    #[error("not a 12-digit account id")]
    BadAccount,
}

/// One (account, region)'s clients and when their credentials expire.
#[derive(Debug, Clone)]
struct Entry {
    clients: Clients,
    expires: Option<SystemTime>,
}

type Slot = Arc<tokio::sync::Mutex<Option<Entry>>>;

/// The clients of every (account, region) the deployment acts in, built lazily.
#[derive(Debug)]
pub struct ClientPool {
    home: Clients,
    config: SdkConfig,
    sts: aws_sdk_sts::Client,
    home_region: String,
    partition: &'static str,
    settings: AccountSettings,
    home_account: OnceCell<String>,
    slots: Mutex<HashMap<(String, String), Slot>>,
    assumed: AtomicUsize,
}

impl ClientPool {
    /// A pool over the home clients. `config` is the home configuration member
    /// clients are derived from (endpoint, retries, timeouts; credentials replaced);
    /// its region is the home region. Makes no call.
    pub fn new(home: Clients, config: &SdkConfig, settings: AccountSettings) -> ClientPool {
        let sts = aws_sdk_sts::Client::new(config);
        ClientPool::with_sts(home, config, sts, settings)
    }

    /// [`ClientPool::new`] with the STS client given (tests point it elsewhere).
    pub fn with_sts(
        home: Clients,
        config: &SdkConfig,
        sts: aws_sdk_sts::Client,
        settings: AccountSettings,
    ) -> ClientPool {
        let home_region = config
            .region()
            .map(|r| r.as_ref().to_owned())
            .unwrap_or_default();
        ClientPool {
            partition: partition(&home_region),
            home,
            config: config.clone(),
            sts,
            home_region,
            settings,
            home_account: OnceCell::new(),
            slots: Mutex::new(HashMap::new()),
            assumed: AtomicUsize::new(0),
        }
    }

    /// The home clients (the deployment's account and region).
    pub fn home(&self) -> &Clients {
        &self.home
    }

    /// The home region.
    pub fn home_region(&self) -> &str {
        &self.home_region
    }

    /// AssumeRole calls made so far (successful or not).
    pub fn assume_role_calls(&self) -> usize {
        self.assumed.load(Ordering::Relaxed)
    }

    /// The member role's ARN in `account`.
    pub fn role_arn(&self, account: &str) -> String {
        format!(
            "arn:{}:iam::{account}:role/{}",
            self.partition,
            self.settings
                .member_role
                .as_deref()
                .unwrap_or(DEFAULT_MEMBER_ROLE)
        )
    }

    /// The checks that need no call: a 12-digit account in `ALLOWED_ACCOUNTS`, a
    /// served region.
    pub fn check(&self, account: &str, region: &str) -> Result<(), AccountError> {
        let fail = |reason| {
            Err(AccountError {
                account: account.to_owned(),
                region: region.to_owned(),
                reason,
            })
        };
        if account.is_empty() || region.is_empty() {
            return fail(AccountReason::Missing);
        }
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return fail(AccountReason::BadAccount);
        }
        let home = self.settings.home_account.as_deref() == Some(account)
            || self.home_account.get().map(String::as_str) == Some(account);
        if let Some(allowed) = &self.settings.allowed_accounts
            && !home
            && !allowed.contains(account)
        {
            return fail(AccountReason::NotAllowed);
        }
        let served = if self.settings.regions.is_empty() {
            region == self.home_region
        } else {
            self.settings.regions.contains(region)
        };
        if !served {
            let list: Vec<&str> = if self.settings.regions.is_empty() {
                vec![self.home_region.as_str()]
            } else {
                self.settings.regions.iter().map(String::as_str).collect()
            };
            return fail(AccountReason::RegionNotServed {
                served: list.join(", "),
            });
        }
        Ok(())
    }

    /// [`ClientPool::check`], asking GetCallerIdentity only when the answer depends
    /// on it (an account outside `ALLOWED_ACCOUNTS` that may be the home account, not
    /// yet known): an error means nothing may be done for a finding of `account` in
    /// `region`. Otherwise no call, so that the identity call of a container's first
    /// finding runs in parallel with its verification (or set `HOME_ACCOUNT_ID`).
    pub async fn admit(&self, account: &str, region: &str) -> Result<(), AccountError> {
        match self.check(account, region) {
            Err(e)
                if e.reason == AccountReason::NotAllowed
                    && self.settings.home_account.is_none()
                    && self.home_account.get().is_none() =>
            {
                self.home_account().await.map_err(|reason| AccountError {
                    account: account.to_owned(),
                    region: region.to_owned(),
                    reason,
                })?;
                self.check(account, region)
            }
            other => other,
        }
    }

    /// The administrator's GuardDuty in `region` (the home client, moved there).
    pub fn guardduty_in(&self, region: &str) -> aws_sdk_guardduty::Client {
        if region == self.home_region {
            return self.home.guardduty.clone();
        }
        aws_sdk_guardduty::Client::from_conf(
            self.home
                .guardduty
                .config()
                .to_builder()
                .region(Region::new(region.to_owned()))
                .build(),
        )
    }

    /// The home clients moved to `region` (same credentials and settings).
    fn home_in(&self, region: &str) -> Clients {
        let r = Region::new(region.to_owned());
        let h = &self.home;
        Clients {
            ec2: aws_sdk_ec2::Client::from_conf(
                h.ec2.config().to_builder().region(r.clone()).build(),
            ),
            guardduty: self.guardduty_in(region),
            autoscaling: aws_sdk_autoscaling::Client::from_conf(
                h.autoscaling
                    .config()
                    .to_builder()
                    .region(r.clone())
                    .build(),
            ),
            elbv2: aws_sdk_elasticloadbalancingv2::Client::from_conf(
                h.elbv2.config().to_builder().region(r).build(),
            ),
            sns: h.sns.clone(),
        }
    }

    /// The clients that act in `account` and `region` for the finding `finding_id`
    /// (which names the session if a role is assumed).
    pub async fn clients(
        &self,
        account: &str,
        region: &str,
        finding_id: &str,
    ) -> Result<Clients, AccountError> {
        let fail = |reason| AccountError {
            account: account.to_owned(),
            region: region.to_owned(),
            reason,
        };
        if account.is_empty() || region.is_empty() {
            return Err(fail(AccountReason::Missing));
        }
        let home = self.home_account().await.map_err(fail)?;
        self.check(account, region)?;
        if home == account && region == self.home_region {
            return Ok(self.home.clone());
        }
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(
                slots
                    .entry((account.to_owned(), region.to_owned()))
                    .or_default(),
            )
        };
        let mut entry = slot.lock().await;
        if let Some(e) = entry.as_ref()
            && e.expires
                .is_none_or(|t| SystemTime::now() + RENEW_BEFORE < t)
        {
            return Ok(e.clients.clone());
        }
        let built = if home == account {
            // The home account in another region: the same credentials.
            Entry {
                clients: self.home_in(region),
                expires: None,
            }
        } else {
            self.assume(account, region, finding_id)
                .await
                .map_err(fail)?
        };
        let clients = built.clients.clone();
        *entry = Some(built);
        Ok(clients)
    }

    /// The deployment's own account: configured, or GetCallerIdentity once.
    async fn home_account(&self) -> Result<&str, AccountReason> {
        if let Some(id) = &self.settings.home_account {
            return Ok(id);
        }
        self.home_account
            .get_or_try_init(|| async {
                let out = self
                    .sts
                    .get_caller_identity()
                    .send()
                    .await
                    .map_err(|e| AccountReason::CallerIdentity(err(e)))?;
                out.account.ok_or_else(|| {
                    AccountReason::CallerIdentity(CallError::internal(
                        "GetCallerIdentity named no account",
                    ))
                })
            })
            .await
            .map(String::as_str)
    }

    /// AssumeRole into `account` and clients in `region` with its credentials.
    async fn assume(
        &self,
        account: &str,
        region: &str,
        finding_id: &str,
    ) -> Result<Entry, AccountReason> {
        let role_arn = self.role_arn(account);
        self.assumed.fetch_add(1, Ordering::Relaxed);
        let fail = |error| AccountReason::AssumeRole {
            role_arn: role_arn.clone(),
            error,
        };
        let out = self
            .sts
            .assume_role()
            .role_arn(&role_arn)
            .role_session_name(session_name(finding_id))
            .source_identity(SOURCE_IDENTITY)
            .duration_seconds(SESSION_SECONDS)
            .send()
            .await
            .map_err(|e| fail(err(e)))?;
        let creds = out
            .credentials
            .ok_or_else(|| fail(CallError::internal("AssumeRole returned no credentials")))?;
        let expires = SystemTime::try_from(creds.expiration).ok();
        let credentials = Credentials::new(
            creds.access_key_id,
            creds.secret_access_key,
            Some(creds.session_token),
            expires,
            "guardduty-responder-member",
        );
        let config = self
            .config
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(credentials))
            .region(Region::new(region.to_owned()))
            .build();
        tracing::info!(%account, %region, %role_arn, "assumed the member role");
        Ok(Entry {
            clients: self.member_bundle(&config),
            expires,
        })
    }

    /// EC2, Auto Scaling and ELBv2 from `config`; GuardDuty stays the
    /// administrator's (in `config`'s region), SNS the home one.
    fn member_bundle(&self, config: &SdkConfig) -> Clients {
        let region = config
            .region()
            .map(|r| r.as_ref().to_owned())
            .unwrap_or_default();
        Clients {
            ec2: aws_sdk_ec2::Client::new(config),
            guardduty: self.guardduty_in(&region),
            autoscaling: aws_sdk_autoscaling::Client::new(config),
            elbv2: aws_sdk_elasticloadbalancingv2::Client::new(config),
            sns: self.home.sns.clone(),
        }
    }
}

/// The partition of a region (`aws`, `aws-cn`, `aws-us-gov`).
fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// `gdr-<finding id>` in STS's alphabet (`[\w+=,.@-]`, other characters become `-`),
/// at most 64 characters.
pub fn session_name(finding_id: &str) -> String {
    let mut name: String = std::iter::once("gdr-")
        .flat_map(str::chars)
        .chain(finding_id.chars())
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    name.truncate(64);
    name
}

/// Parses `ALLOWED_ACCOUNTS`: comma-separated 12-digit ids (blank: every account).
pub fn parse_accounts(text: &str) -> Result<Option<BTreeSet<String>>, String> {
    let ids: BTreeSet<String> = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if let Some(bad) = ids
        .iter()
        .find(|id| id.len() != 12 || !id.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!("{bad:?} is not a 12-digit account id"));
    }
    Ok((!ids.is_empty()).then_some(ids))
}

/// Parses `REGIONS`: comma-separated region names (blank: the home region only).
pub fn parse_regions(text: &str) -> Result<BTreeSet<String>, String> {
    let regions: BTreeSet<String> = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if let Some(bad) = regions.iter().find(|r| {
        r.len() > 32
            || !r
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            || !r.contains('-')
    }) {
        return Err(format!("{bad:?} is not a region name"));
    }
    Ok(regions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_fit_sts() {
        assert_eq!(session_name("abc123"), "gdr-abc123");
        let long = session_name(&"f".repeat(100));
        assert_eq!(long.len(), 64);
        assert_eq!(session_name("a b/c:d"), "gdr-a-b-c-d");
        assert_eq!(session_name("é"), "gdr--");
    }

    #[test]
    fn account_and_region_lists() {
        assert_eq!(parse_accounts(" ").unwrap(), None);
        assert_eq!(
            parse_accounts("111111111111, 222222222222,").unwrap(),
            Some(BTreeSet::from([
                "111111111111".to_owned(),
                "222222222222".to_owned()
            ]))
        );
        assert!(parse_accounts("11111111111").is_err());
        assert!(parse_accounts("11111111111x").is_err());
        assert_eq!(parse_regions("").unwrap(), BTreeSet::new());
        assert_eq!(parse_regions("eu-west-1,us-east-1").unwrap().len(), 2);
        assert!(parse_regions("EU_WEST").is_err());
        assert_eq!(partition("cn-north-1"), "aws-cn");
        assert_eq!(partition("us-gov-west-1"), "aws-us-gov");
        assert_eq!(partition("eu-west-1"), "aws");
    }

    #[tokio::test]
    async fn checks_before_any_call() {
        let config = SdkConfig::builder()
            .region(Region::new("eu-west-1"))
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let pool = ClientPool::new(
            Clients::new(&config),
            &config,
            AccountSettings {
                home_account: Some("999999999999".to_owned()),
                allowed_accounts: parse_accounts("111111111111").unwrap(),
                ..AccountSettings::default()
            },
        );
        assert_eq!(
            pool.role_arn("111111111111"),
            "arn:aws:iam::111111111111:role/GuardDutyResponderMember"
        );
        assert!(pool.check("111111111111", "eu-west-1").is_ok());
        assert!(pool.check("999999999999", "eu-west-1").is_ok(), "home");
        let e = pool.check("222222222222", "eu-west-1").unwrap_err();
        assert_eq!(e.reason, AccountReason::NotAllowed);
        assert!(e.to_string().contains("222222222222"));
        assert!(e.to_string().contains("eu-west-1"));
        let e = pool.check("111111111111", "us-east-1").unwrap_err();
        assert!(matches!(e.reason, AccountReason::RegionNotServed { .. }));
        assert!(e.to_string().contains("eu-west-1"), "{e}");
        assert_eq!(
            pool.check("1", "eu-west-1").unwrap_err().reason,
            AccountReason::BadAccount
        );
        // The home account in the home region is the home clients: no call.
        assert!(
            pool.clients("999999999999", "eu-west-1", "f").await.is_ok(),
            "no call needed"
        );
        assert_eq!(pool.assume_role_calls(), 0);
    }
}
