//! The Lambda function: EventBridge "GuardDuty Finding" events in, remediation
//! reports out. Init (once per container) reads the configuration, loads and validates
//! the bundled playbooks (refusing to start on any error) and builds the SDK clients.

mod config;
mod handler;
mod init_error;

mod bundled {
    include!(concat!(env!("OUT_DIR"), "/bundled.rs"));
}

use std::path::Path;
use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use responder_aws::ledger::Ledger;
use responder_aws::responder::Responder;
use responder_aws::verify::{DetectorSource, RetryPolicy, Verifier};
use responder_aws::{AccountSettings, ClientPool, Clients, ExecOptions, Executor};
use responder_core::Engine;
use responder_core::steps::Settings;
use serde_json::Value;

use crate::config::Config;
use crate::handler::App;

/// The playbooks compiled into the binary, validated like a folder would be.
fn bundled_engine() -> Result<Engine, Vec<responder_core::diagnostic::Diagnostic>> {
    let mut loaded = Vec::new();
    let mut errors = Vec::new();
    for (name, text) in bundled::BUNDLED {
        match responder_core::playbook::load_str(Path::new(name), text) {
            Ok(p) => loaded.push(p),
            Err(d) => errors.push(d),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if loaded.is_empty() {
        return Err(vec![responder_core::diagnostic::Diagnostic::error(
            Path::new("playbooks"),
            "no playbooks were bundled",
        )]);
    }
    Engine::from_playbooks(loaded)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from(|k| std::env::var(k).ok()).map_err(|e| {
        tracing::error!(error = %e, "invalid configuration: refusing to start");
        init_error::report(&e.to_string(), "Runtime.InvalidConfiguration");
        Error::from(e)
    })?;
    let (engine, source) = match &config.playbooks_dir {
        Some(dir) => (Engine::load(dir), dir.display().to_string()),
        None => (bundled_engine(), "the bundled playbooks".to_owned()),
    };
    let engine = engine.map_err(|diagnostics| {
        for d in &diagnostics {
            tracing::error!(file = %d.file.display(), line = ?d.line, field = ?d.field, "{d}");
        }
        tracing::error!(%source, "invalid playbooks: refusing to start rather than run half a policy");
        let message = format!("{} playbook error(s) in {source}", diagnostics.len());
        init_error::report(&message, "Runtime.InvalidPlaybooks");
        Error::from(message)
    })?;
    // Deployment settings are engine inputs: `responder plan` with the same settings
    // prints exactly what this function does.
    let engine = engine.with_settings(Settings {
        quarantine_group: config.quarantine_group.clone(),
        detector_id: config.detector_id.clone(),
        never_block: config.never_block.clone(),
    });
    let problems = engine.settings_problems();
    if !problems.is_empty() {
        for p in &problems {
            tracing::error!("{p}");
        }
        let message = format!("invalid QUARANTINE_GROUP: {}", problems.join("; "));
        init_error::report(&message, "Runtime.InvalidConfiguration");
        return Err(Error::from(message));
    }
    for w in engine.warnings() {
        tracing::warn!("{w}");
    }
    for w in config.warnings() {
        tracing::warn!("{w}");
    }
    // The standard chain: credentials, region, and AWS_ENDPOINT_URL (and per-service
    // AWS_ENDPOINT_URL_GUARDDUTY) for tests. Building clients makes no call.
    let sdk = Clients::load(None, None).await;
    let clients = Clients::new(&sdk);
    let verifier = config.verify.then(|| {
        Verifier::new(
            clients.guardduty.clone(),
            match &config.detector_id {
                Some(id) => DetectorSource::Fixed(id.clone()),
                None => DetectorSource::Discover,
            },
            RetryPolicy::default(),
        )
    });
    // Member accounts and other regions: clients built at first need (no call here).
    let pool = ClientPool::new(
        clients.clone(),
        &sdk,
        AccountSettings {
            member_role: config.member_role.clone(),
            home_account: config.home_account.clone(),
            allowed_accounts: config.allowed_accounts.clone(),
            regions: config.regions.clone(),
        },
    );
    let mut executor = Executor::new(
        clients,
        ExecOptions {
            dry_run: config.dry_run,
            topic_arn: config.topic_arn.clone(),
        },
    );
    if let Some(table) = &config.ledger_table {
        executor = executor.with_ledger(Ledger::from_config(&sdk, table));
    }
    let app = Arc::new(App {
        responder: Responder::new(engine, executor, verifier, config.max_destructive_per_hour)
            .with_accounts(pool)
            .with_max_per_account(config.max_destructive_per_hour_per_account),
    });
    tracing::info!(
        mode = if config.dry_run { "dry-run" } else { "enforce" },
        playbooks = app.responder.engine().playbooks().len(),
        verify = config.verify,
        ledger = config.ledger_table.as_deref().unwrap_or("none"),
        "ready"
    );
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let app = Arc::clone(&app);
        async move { app.handle(event).await }
    }))
    .await
}
