//! The Lambda function: EventBridge "GuardDuty Finding" events in, remediation
//! reports out. Init (once per container) reads the deployment settings from the
//! environment (`responder_aws::deployment`, the reader `responder run` uses too),
//! loads and validates the bundled playbooks (refusing to start on any error) and
//! builds the responder with the one builder.

mod handler;
mod init_error;

mod bundled {
    include!(concat!(env!("OUT_DIR"), "/bundled.rs"));
}

use std::path::Path;
use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use responder_aws::deployment::{self, DeploymentSettings, Wiring};
use responder_core::Engine;
use serde_json::Value;

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
    // Every setting is declared once in responder_aws::deployment and judged by the
    // same reader as `responder run`'s flags.
    let settings = DeploymentSettings::from_env(|k| std::env::var(k).ok()).map_err(|e| {
        tracing::error!(error = %e, "invalid configuration: refusing to start");
        init_error::report(&e.to_string(), "Runtime.InvalidConfiguration");
        Error::from(e.to_string())
    })?;
    let (engine, source) = match &settings.playbooks_dir {
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
    let engine = deployment::engine_with_settings(&settings, engine).map_err(|problems| {
        for p in &problems {
            tracing::error!("{p}");
        }
        let message = format!("invalid QUARANTINE_GROUP: {}", problems.join("; "));
        init_error::report(&message, "Runtime.InvalidConfiguration");
        Error::from(message)
    })?;
    for w in engine.warnings() {
        tracing::warn!("{w}");
    }
    for w in settings.warnings() {
        tracing::warn!("{w}");
    }
    // The standard chain: credentials, region, and AWS_ENDPOINT_URL (and per-service
    // AWS_ENDPOINT_URL_GUARDDUTY) for tests. Building clients makes no call.
    let sdk = settings.sdk_config().await;
    let app = Arc::new(App {
        responder: deployment::responder(&settings, engine, Wiring::new(&sdk)),
    });
    tracing::info!(
        mode = if settings.dry_run {
            "dry-run"
        } else {
            "enforce"
        },
        playbooks = app.responder.engine().playbooks().len(),
        verify = settings.verify,
        ledger = settings.ledger_table.as_deref().unwrap_or("none"),
        "ready"
    );
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let app = Arc::clone(&app);
        async move { app.handle(event).await }
    }))
    .await
}
