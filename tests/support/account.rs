//! Accounts on the shared moto server: each test gets its own 12-digit account id,
//! which moto treats as a separate world (the `x-moto-account-id` header).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ec2::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_ec2::config::{ConfigBag, Credentials, Intercept, RuntimeComponents};
use aws_sdk_ec2::error::BoxError;

use crate::moto;

/// The region every test uses.
pub const REGION: &str = "us-east-1";

/// The header moto reads the account from.
pub const ACCOUNT_HEADER: &str = "x-moto-account-id";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A 12-digit account id no other call, test or test binary gets: the process id
/// (7 digits), a per-process counter (3 digits) and the seconds clock (2 digits).
pub fn fresh_account() -> String {
    let pid = std::process::id() % 10_000_000;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed) % 1000;
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        % 100;
    format!("{pid:07}{n:03}{secs:02}")
}

/// The SDK configuration for a moto endpoint: static test credentials, us-east-1,
/// bounded retries and timeouts.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(60))
                .operation_timeout(Duration::from_secs(120))
                .build(),
        )
        .load()
        .await
}

/// Adds `x-moto-account-id` to every request, so that moto acts in that account.
#[derive(Debug, Clone)]
pub struct AccountHeader(pub String);

impl Intercept for AccountHeader {
    fn name(&self) -> &'static str {
        "MotoAccountHeader"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        context
            .request_mut()
            .headers_mut()
            .insert(ACCOUNT_HEADER, self.0.clone());
        Ok(())
    }
}

/// The executor's clients, every one acting in `account`; their user agent names
/// [`crate::record::RESPONDER_APP`], so that a recording tells the responder's calls
/// from set-up and assertions.
pub fn clients(config: &SdkConfig, account: &str) -> responder_aws::Clients {
    let config = &config
        .to_builder()
        .app_name(crate::record::responder_app())
        .build();
    responder_aws::Clients {
        ec2: ec2(config, account),
        guardduty: aws_sdk_guardduty::Client::from_conf(
            aws_sdk_guardduty::config::Builder::from(config)
                .interceptor(AccountHeader(account.to_owned()))
                .build(),
        ),
        autoscaling: autoscaling(config, account),
        elbv2: elbv2(config, account),
        sns: aws_sdk_sns::Client::from_conf(
            aws_sdk_sns::config::Builder::from(config)
                .interceptor(AccountHeader(account.to_owned()))
                .build(),
        ),
    }
}

/// A raw EC2 client in `account` (setup and assertions).
pub fn ec2(config: &SdkConfig, account: &str) -> aws_sdk_ec2::Client {
    aws_sdk_ec2::Client::from_conf(
        aws_sdk_ec2::config::Builder::from(config)
            .interceptor(AccountHeader(account.to_owned()))
            .build(),
    )
}

/// A raw Auto Scaling client in `account`.
pub fn autoscaling(config: &SdkConfig, account: &str) -> aws_sdk_autoscaling::Client {
    aws_sdk_autoscaling::Client::from_conf(
        aws_sdk_autoscaling::config::Builder::from(config)
            .interceptor(AccountHeader(account.to_owned()))
            .build(),
    )
}

/// A raw ELBv2 client in `account`.
pub fn elbv2(config: &SdkConfig, account: &str) -> aws_sdk_elasticloadbalancingv2::Client {
    aws_sdk_elasticloadbalancingv2::Client::from_conf(
        aws_sdk_elasticloadbalancingv2::config::Builder::from(config)
            .interceptor(AccountHeader(account.to_owned()))
            .build(),
    )
}

/// A raw IAM client in `account`.
pub fn iam(config: &SdkConfig, account: &str) -> aws_sdk_iam::Client {
    aws_sdk_iam::Client::from_conf(
        aws_sdk_iam::config::Builder::from(config)
            .interceptor(AccountHeader(account.to_owned()))
            .build(),
    )
}

/// A fresh account on the shared moto server, with its configuration.
#[derive(Debug, Clone)]
pub struct TestAccount {
    /// The 12-digit account id.
    pub id: String,
    /// The SDK configuration pointing at moto.
    pub config: SdkConfig,
}

impl TestAccount {
    /// A new account on the shared server (starting the server if needed).
    pub async fn new() -> TestAccount {
        let endpoint = moto::endpoint();
        TestAccount {
            id: fresh_account(),
            config: sdk_config(&endpoint).await,
        }
    }

    /// The executor's clients in this account (a new set on every call, as a new
    /// Lambda container would build).
    pub fn clients(&self) -> responder_aws::Clients {
        clients(&self.config, &self.id)
    }

    /// Raw EC2 client.
    pub fn ec2(&self) -> aws_sdk_ec2::Client {
        ec2(&self.config, &self.id)
    }

    /// Raw Auto Scaling client.
    pub fn autoscaling(&self) -> aws_sdk_autoscaling::Client {
        autoscaling(&self.config, &self.id)
    }

    /// Raw ELBv2 client.
    pub fn elbv2(&self) -> aws_sdk_elasticloadbalancingv2::Client {
        elbv2(&self.config, &self.id)
    }

    /// Raw IAM client.
    pub fn iam(&self) -> aws_sdk_iam::Client {
        iam(&self.config, &self.id)
    }
}
