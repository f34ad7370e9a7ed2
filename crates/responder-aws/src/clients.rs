//! The SDK clients, built once from one shared configuration.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

/// One client per service the steps use.
#[derive(Debug, Clone)]
pub struct Clients {
    /// EC2.
    pub ec2: aws_sdk_ec2::Client,
    /// GuardDuty.
    pub guardduty: aws_sdk_guardduty::Client,
    /// Auto Scaling.
    pub autoscaling: aws_sdk_autoscaling::Client,
    /// Elastic Load Balancing v2.
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
    /// SNS.
    pub sns: aws_sdk_sns::Client,
}

impl Clients {
    /// Clients sharing one configuration.
    pub fn new(config: &SdkConfig) -> Clients {
        Clients {
            ec2: aws_sdk_ec2::Client::new(config),
            guardduty: aws_sdk_guardduty::Client::new(config),
            autoscaling: aws_sdk_autoscaling::Client::new(config),
            elbv2: aws_sdk_elasticloadbalancingv2::Client::new(config),
            sns: aws_sdk_sns::Client::new(config),
        }
    }

    /// Loads the standard AWS configuration chain (credentials, region, and
    /// `AWS_ENDPOINT_URL`), with the standard retry mode (backoff on throttling and
    /// 5xx) and a timeout on every call. `endpoint_url` and `region` override it.
    pub async fn load(endpoint_url: Option<&str>, region: Option<&str>) -> SdkConfig {
        Clients::load_profile(endpoint_url, region, None).await
    }

    /// [`Clients::load`] with a named profile of the shared config files (`--profile`;
    /// else `AWS_PROFILE`, as the SDK reads it): static keys, IAM Identity Center
    /// (SSO), `credential_process`, role assumption.
    pub async fn load_profile(
        endpoint_url: Option<&str>,
        region: Option<&str>,
        profile: Option<&str>,
    ) -> SdkConfig {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::standard().with_max_attempts(4))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_attempt_timeout(Duration::from_secs(10))
                    .operation_timeout(Duration::from_secs(30))
                    .build(),
            );
        if let Some(url) = endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some(r) = region {
            loader = loader.region(Region::new(r.to_owned()));
        }
        if let Some(p) = profile {
            loader = loader.profile_name(p);
        }
        loader.load().await
    }

    /// Configuration for a local emulator (moto): static test credentials, no
    /// credential chain. Refuses any endpoint that is not on this machine.
    pub async fn emulator(endpoint_url: &str, region: &str) -> Result<SdkConfig, String> {
        let host = endpoint_url
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split(['/', '?']).next())
            .unwrap_or_default();
        let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
        if !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
            return Err(format!(
                "{endpoint_url} is not a local emulator endpoint (127.0.0.1, localhost or [::1])"
            ));
        }
        Ok(aws_config::defaults(BehaviorVersion::latest())
            .credentials_provider(aws_sdk_ec2::config::Credentials::new(
                "test", "test", None, None, "emulator",
            ))
            .region(Region::new(region.to_owned()))
            .endpoint_url(endpoint_url)
            .retry_config(RetryConfig::standard().with_max_attempts(4))
            .load()
            .await)
    }
}
