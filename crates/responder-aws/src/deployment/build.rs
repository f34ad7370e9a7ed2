//! The one builder: a [`Responder`] (clients, client pool, verifier, ledger,
//! executor, budget) from [`DeploymentSettings`], for the function, `responder run`
//! and the demo alike.

use aws_config::SdkConfig;
use aws_sdk_sts::config::ProvideCredentials;
use responder_core::Engine;

use super::DeploymentSettings;
use crate::accounts::ClientPool;
use crate::call::one_line;
use crate::clients::Clients;
use crate::context::ExecOptions;
use crate::executor::Executor;
use crate::ledger::Ledger;
use crate::responder::Responder;
use crate::verify::{DetectorSource, RetryPolicy, Verifier};

/// The SDK configuration and the home clients a responder is built on.
#[derive(Debug, Clone)]
pub struct Wiring<'a> {
    /// The configuration (credentials, region, endpoints): the client pool and the
    /// ledger are made from it.
    pub config: &'a SdkConfig,
    /// The home account's clients; [`Wiring::new`] makes them from `config`, the demo
    /// replaces the GuardDuty client with its local findings endpoint's.
    pub clients: Clients,
}

impl<'a> Wiring<'a> {
    /// Every client from `config`.
    pub fn new(config: &'a SdkConfig) -> Wiring<'a> {
        Wiring {
            config,
            clients: Clients::new(config),
        }
    }
}

impl DeploymentSettings {
    /// The SDK configuration: the standard chain with `--endpoint-url`, `--region`
    /// and `--profile` (the CLI's) on top. Makes no call.
    pub async fn sdk_config(&self) -> SdkConfig {
        Clients::load_profile(
            self.endpoint_url.as_deref(),
            self.region.as_deref(),
            self.profile.as_deref(),
        )
        .await
    }

    /// [`DeploymentSettings::sdk_config`] for a command run by a person: the region
    /// and the credentials are resolved now, so that a missing one is one line
    /// naming the fix rather than an SDK error at the first call.
    pub async fn checked_sdk_config(&self) -> Result<SdkConfig, String> {
        let config = self.sdk_config().await;
        if config.region().is_none() {
            return Err(
                "no AWS region: pass --region or set AWS_REGION (or give the profile a region)"
                    .to_owned(),
            );
        }
        let Some(provider) = config.credentials_provider() else {
            return Err(self.no_credentials("no credentials provider"));
        };
        match provider.provide_credentials().await {
            Ok(_) => Ok(config),
            // The chain found nothing anywhere: its list of attempts is noise.
            Err(e) if e.to_string() == "the credential provider was not enabled" => Err(self
                .no_credentials(
                    "none in the environment, the config files, web identity, the container or instance metadata",
                )),
            Err(e) => Err(self.no_credentials(&one_line(&e))),
        }
    }

    /// The endpoint a client of `service` (its endpoint id, e.g. `dynamodb`) calls in
    /// `region`, for messages about an unreachable one: `--endpoint-url`, else
    /// `AWS_ENDPOINT_URL_<SERVICE>`, else `AWS_ENDPOINT_URL`, else AWS's.
    pub fn endpoint_of(&self, service: &str, region: Option<&str>) -> String {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        self.endpoint_url
            .clone()
            .or_else(|| {
                var(&format!(
                    "AWS_ENDPOINT_URL_{}",
                    service.to_ascii_uppercase()
                ))
            })
            .or_else(|| var("AWS_ENDPOINT_URL"))
            .unwrap_or_else(|| {
                format!(
                    "https://{service}.{}.amazonaws.com",
                    region.unwrap_or("<region>")
                )
            })
    }

    /// The one-line credentials error: where they were looked for, why none, and
    /// the fix.
    fn no_credentials(&self, why: &str) -> String {
        let profile = self
            .profile
            .clone()
            .or_else(|| std::env::var("AWS_PROFILE").ok().filter(|p| !p.is_empty()));
        match profile {
            Some(p) => {
                let lower = why.to_ascii_lowercase();
                let fix = if lower.contains("sso") {
                    format!("run `aws sso login --profile {p}`")
                } else {
                    format!("check profile {p:?} in the AWS config files (AWS_CONFIG_FILE)")
                };
                format!("no AWS credentials from profile {p:?}: {why}; {fix}")
            }
            None => format!(
                "no AWS credentials: {why}; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or pass --profile NAME (or set AWS_PROFILE)"
            ),
        }
    }

    /// The ledger, when a table is set.
    pub fn ledger(&self, config: &SdkConfig) -> Option<Ledger> {
        self.ledger_table
            .as_deref()
            .map(|table| Ledger::from_config(config, table))
    }
}

/// `engine` under the settings that enter plans; the problems (one message each)
/// when they cannot be used with its playbooks (`Engine::settings_problems`): the
/// function refuses to start, the CLI to plan.
pub fn engine_with_settings(
    settings: &DeploymentSettings,
    engine: Engine,
) -> Result<Engine, Vec<String>> {
    let engine = engine.with_settings(settings.engine_settings());
    let problems = engine.settings_problems();
    if problems.is_empty() {
        Ok(engine)
    } else {
        Err(problems)
    }
}

/// The responder the settings describe. Builds clients only: no call is made.
pub fn responder(settings: &DeploymentSettings, engine: Engine, wiring: Wiring<'_>) -> Responder {
    let Wiring { config, clients } = wiring;
    let verifier = settings.verify.then(|| {
        Verifier::new(
            clients.guardduty.clone(),
            match &settings.detector_id {
                Some(id) => DetectorSource::Fixed(id.clone()),
                None => DetectorSource::Discover,
            },
            RetryPolicy::default(),
        )
    });
    // Member accounts and other regions: clients built at first need.
    let pool = ClientPool::new(clients.clone(), config, settings.account_settings());
    let mut executor = Executor::new(
        clients,
        ExecOptions {
            dry_run: settings.dry_run,
            topic_arn: settings.topic_arn.clone(),
        },
    );
    if let Some(ledger) = settings.ledger(config) {
        executor = executor.with_ledger(ledger);
    }
    Responder::new(
        engine,
        executor,
        verifier,
        settings.max_destructive_per_hour,
    )
    .with_accounts(pool)
    .with_max_per_account(settings.max_destructive_per_hour_per_account)
}
