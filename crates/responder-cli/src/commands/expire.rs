//! `responder expire`: removes `block-remote-ip`'s deny entries that are due, as the
//! function does on its schedule (with the caller's credentials, in the caller's
//! account: entries made in member accounts are left to the function, which assumes
//! the member role).

use std::time::SystemTime;

use responder_aws::Clients;
use responder_aws::deployment::DeploymentSettings;
use responder_aws::expire::{Acting, Expired, ExpiryOutcome, expire_due};
use responder_aws::ledger::{parse_rfc3339, rfc3339_ms};

use crate::output::{self, errln};
use crate::{Format, input, table};

/// What to expire, where.
pub struct ExpireArgs<'a> {
    /// The ledger table, endpoint and region.
    pub settings: &'a DeploymentSettings,
    /// The time to expire at (RFC 3339 UTC), for tests; default now.
    pub now: Option<&'a str>,
    /// Output format.
    pub format: Format,
}

/// Exit 0 when every due entry was handled (removed, or left as superseded), 1 when
/// one could not be (it stays recorded; run again) or the ledger cannot be read, 2
/// on a bad `--now`.
pub fn run(args: &ExpireArgs<'_>) -> u8 {
    let now = match args.now {
        None => SystemTime::now(),
        Some(text) => match parse_rfc3339(text) {
            Some(t) => t,
            None => {
                errln!("--now {text:?}: expected RFC 3339, e.g. 2026-11-29T12:00:00Z");
                return 2;
            }
        },
    };
    let Some(runtime) = input::runtime() else {
        return 1;
    };
    let results = runtime.block_on(async {
        let config = args.settings.checked_sdk_config().await?;
        let clients = Clients::new(&config);
        let ledger = args
            .settings
            .ledger(&config)
            .ok_or("--ledger-table (or --table, or LEDGER_TABLE) is required")?;
        let results = expire_due(&ledger, Acting::Clients(&clients), now).await;
        Ok::<_, String>((ledger.table().to_owned(), results))
    });
    let (table, results) = match results {
        Ok(r) => r,
        Err(message) => {
            errln!("error: {message}");
            return 2;
        }
    };
    let results = match results {
        Ok(r) => r,
        Err(e) => {
            errln!(
                "cannot read the ledger table {table}: {e}{}",
                crate::commands::ledger::unreachable(args.settings, &e)
            );
            return 1;
        }
    };
    match args.format {
        Format::Json => output::out_json(
            &serde_json::to_string_pretty(&serde_json::json!({
                "now": rfc3339_ms(now),
                "entries": results,
            }))
            .unwrap_or_default(),
        ),
        Format::Text if results.is_empty() => {
            output::out_text(&format!("no deny entry due at {}\n", rfc3339_ms(now)))
        }
        Format::Text => output::out_text(&text_table(&results)),
    }
    u8::from(results.iter().any(|r| r.outcome == ExpiryOutcome::Failed))
}

/// Outcome, expiry, ACL, rule, direction, block, finding, detail.
fn text_table(results: &[Expired]) -> String {
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|r| {
            vec![
                r.outcome.to_string(),
                rfc3339_ms(r.block.expires),
                r.block.network_acl_id.clone(),
                r.block.rule_number.to_string(),
                r.block.direction().to_owned(),
                r.block.cidr.clone(),
                responder_core::text::escape(&r.block.finding_id).into_owned(),
                responder_core::text::escape(&r.detail).into_owned(),
            ]
        })
        .collect();
    table::render(
        &[
            "outcome", "expired", "acl", "rule", "dir", "block", "finding", "detail",
        ],
        &rows,
    )
}
