//! `responder ledger create` and `responder history`: the ledger table, made and read.

use std::io::Write;

use responder_aws::Clients;
use responder_aws::ledger::{Created, Ledger, LedgerError, StepRecord, rfc3339_ms};

use crate::{Format, input, table};

/// Where the ledger is.
pub struct Target<'a> {
    /// The table name.
    pub table: &'a str,
    /// Endpoint override (moto, LocalStack).
    pub endpoint_url: Option<&'a str>,
    /// Region override.
    pub region: Option<&'a str>,
}

async fn ledger(target: &Target<'_>) -> Ledger {
    let config = Clients::load(target.endpoint_url, target.region).await;
    Ledger::from_config(&config, target.table)
}

/// Creates the table (or completes an existing one). Exit 0 when it is there, also
/// when it already was; 1 on error.
pub fn create(target: &Target<'_>) -> u8 {
    let Some(runtime) = input::runtime() else {
        return 1;
    };
    runtime.block_on(async {
        let ledger = ledger(target).await;
        match ledger.create_table().await {
            Ok(Created::Created) => {
                println!(
                    "created ledger table {} (on-demand, encrypted, point-in-time recovery, TTL on expires_at, index by-instance)",
                    target.table
                );
                0
            }
            Ok(Created::AlreadyExists) => {
                println!(
                    "ledger table {} already exists (TTL and point-in-time recovery checked)",
                    target.table
                );
                0
            }
            Err(e) => {
                eprintln!("cannot create ledger table {}: {e}", target.table);
                1
            }
        }
    })
}

/// Prints what was done, newest first. Exit 0 (also when nothing was recorded), 1
/// on error.
pub fn history(
    target: &Target<'_>,
    finding: Option<&str>,
    instance: Option<&str>,
    format: Format,
) -> u8 {
    let Some(runtime) = input::runtime() else {
        return 1;
    };
    let records = runtime.block_on(async {
        let ledger = ledger(target).await;
        ledger.history(finding, instance).await
    });
    let records = match records {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot read the ledger table {}: {e}", target.table);
            if matches!(&e, LedgerError::Call { code, .. } if code == "ResourceNotFoundException") {
                eprintln!(
                    "(no such table in this account and region: `responder ledger create --table {}` makes one)",
                    target.table
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
    // A closed pipe (`| head`) ends the output quietly.
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
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
