//! The one builder: a [`Responder`] (clients, client pool, verifier, ledger,
//! executor, budget) from [`DeploymentSettings`], for the function, `responder run`
//! and the demo alike.

use aws_config::SdkConfig;
use responder_core::Engine;

use super::DeploymentSettings;
use crate::accounts::ClientPool;
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
    /// The SDK configuration: the standard chain with `--endpoint-url` and
    /// `--region` (the CLI's) on top. Makes no call.
    pub async fn sdk_config(&self) -> SdkConfig {
        Clients::load(self.endpoint_url.as_deref(), self.region.as_deref()).await
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
