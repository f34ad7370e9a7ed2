//! `responder ledger create` and `responder history`: the ledger table, made and read.

use responder_aws::deployment::DeploymentSettings;
use responder_aws::ledger::{Created, Ledger, LedgerError, StepRecord, rfc3339_ms};

use crate::output::{self, errln, outln};
use crate::{Format, input, table};

/// The ledger the settings name (`--ledger-table` is required by these commands, so
/// the reader has checked it is there).
/// What to add to a ledger error: the endpoint, when it could not be reached.
pub fn unreachable(settings: &DeploymentSettings, e: &LedgerError) -> String {
    match e {
        LedgerError::Call { code, .. } if code == "Transport" => format!(
            " (endpoint {} unreachable)",
            settings.endpoint_of("dynamodb", settings.region.as_deref())
        ),
        _ => String::new(),
    }
}

async fn ledger(settings: &DeploymentSettings) -> Option<Ledger> {
    let config = match settings.checked_sdk_config().await {
        Ok(c) => c,
        Err(message) => {
            errln!("error: {message}");
            return None;
        }
    };
    let ledger = settings.ledger(&config);
    if ledger.is_none() {
        errln!("error: --ledger-table (or --table, or LEDGER_TABLE) is required");
    }
    ledger
}

/// Creates the table (or completes an existing one). Exit 0 when it is there, also
/// when it already was; 1 on error.
pub fn create(settings: &DeploymentSettings) -> u8 {
    let Some(runtime) = input::runtime() else {
        return 1;
    };
    runtime.block_on(async {
        let Some(ledger) = ledger(settings).await else {
            return 2;
        };
        let table = ledger.table();
        match ledger.create_table().await {
            Ok(Created::Created) => {
                outln!(
                    "created ledger table {table} (on-demand, encrypted, point-in-time recovery, TTL on expires_at, index by-instance)"
                );
                0
            }
            Ok(Created::AlreadyExists) => {
                outln!(
                    "ledger table {table} already exists (TTL and point-in-time recovery checked)"
                );
                0
            }
            Err(e) => {
                errln!(
                    "cannot create ledger table {table}: {e}{}",
                    unreachable(settings, &e)
                );
                1
            }
        }
    })
}

/// Prints what was done, newest first. Exit 0 (also when nothing was recorded), 1
/// on error.
pub fn history(
    settings: &DeploymentSettings,
    finding: Option<&str>,
    instance: Option<&str>,
    format: Format,
) -> u8 {
    let Some(runtime) = input::runtime() else {
        return 1;
    };
    let records = runtime.block_on(async {
        let ledger = ledger(settings).await?;
        Some((
            ledger.table().to_owned(),
            ledger.history(finding, instance).await,
        ))
    });
    let Some((table, records)) = records else {
        return 2;
    };
    let records = match records {
        Ok(r) => r,
        Err(e) => {
            errln!(
                "cannot read the ledger table {table}: {e}{}",
                unreachable(settings, &e)
            );
            if matches!(&e, LedgerError::Call { code, .. } if code == "ResourceNotFoundException") {
                errln!(
                    "(no such table in this account and region: `responder ledger create --ledger-table {table}` makes one)"
                );
            }
            return 1;
        }
    };
    let text = match format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(&records).unwrap_or_default();
            s.push('\n');
            s
        }
        Format::Text if records.is_empty() => "no records\n".to_owned(),
        Format::Text => history_table(&records),
    };
    // A closed pipe (`| head`) ends the output quietly. JSON as serde_json made it;
    // the text table's cells are escaped already.
    match format {
        Format::Json => output::out_json(text.trim_end_matches('\n')),
        Format::Text => output::out_text(&text),
    }
    0
}

/// The text table: time, finding, instance, step, status, outcome, resources.
pub fn history_table(records: &[StepRecord]) -> String {
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            vec![
                rfc3339_ms(r.recorded_at),
                printable(&r.finding_id),
                printable(&r.instance_id),
                printable(&format!("{} {}", r.index, r.step)),
                r.status.to_string(),
                or_dash(printable(&r.outcome)),
                or_dash(printable(&r.resources.join(","))),
            ]
        })
        .collect();
    table::render(
        &[
            "time",
            "finding",
            "instance",
            "step",
            "status",
            "outcome",
            "resources",
        ],
        &rows,
    )
}

fn or_dash(s: String) -> String {
    if s.is_empty() { "-".to_owned() } else { s }
}

/// Control characters (terminal escapes included) shown escaped, never sent raw.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("i-0a\u{1b}[2J"), "i-0a\\u{1b}[2J");
        assert_eq!(printable("snap-1\nsnap-2"), "snap-1\\nsnap-2");
        assert_eq!(printable("plain"), "plain");
    }
}
