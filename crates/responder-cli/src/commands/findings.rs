//! `responder findings`: the GuardDuty console's findings view in the terminal.
//!
//! ListFindings with the criteria (a saved filter, a criteria file, a playbook's match
//! where GuardDuty can express it, `--since`, archived left out unless asked), then
//! GetFindings in batches (`responder_aws::console`). What ListFindings cannot filter
//! (`Matches` criteria, the parts of a playbook it cannot say) is filtered here, on
//! the same engine. Text: the severity counters, the table, `--details` panels; JSON:
//! the console export's shape (an array of camelCase findings), which
//! `responder plan -` reads.

use std::path::Path;

use responder_aws::Clients;
use responder_aws::console::{Console, Sort};
use responder_aws::deployment::DeploymentSettings;
use responder_core::console::{SeverityCounts, details_panel, table};
use responder_core::filter::{
    Condition, ExportMode, FindingCriteria, criteria_holds, export, parse_criteria,
};
use responder_core::playbook::load::LoadedPlaybook;
use responder_core::{Finding, decode_value, select};
use serde_json::Value;

use crate::output::{self, errln, outln};
use crate::{Format, input};

/// Which findings.
#[derive(Debug)]
pub struct Selection<'a> {
    /// A saved filter's name.
    pub filter: Option<&'a str>,
    /// A criteria file.
    pub criteria: Option<&'a Path>,
    /// A playbook's name (in `playbooks`).
    pub playbook: Option<&'a str>,
    /// The playbook folder.
    pub playbooks: &'a Path,
    /// Only findings updated in this span (`7d`, `12h`, `30m`, `2w`).
    pub since: Option<&'a str>,
    /// Archived findings too.
    pub include_archived: bool,
    /// At most this many findings.
    pub limit: Option<usize>,
}

/// Where GuardDuty is: the endpoint, region and detector settings (else the
/// region's only detector).
#[derive(Debug)]
pub struct Target<'a> {
    /// The command's deployment settings.
    pub settings: &'a DeploymentSettings,
}

impl Target<'_> {
    /// The SDK configuration, its region and credentials checked; `Err(2)` once the
    /// one-line reason is printed.
    pub async fn config(&self) -> Result<responder_aws::SdkConfig, u8> {
        self.settings.checked_sdk_config().await.map_err(|message| {
            errln!("error: {message}");
            2
        })
    }
}

/// Exit 0 when listed; 2 on bad input (an unknown saved filter, detector, criteria
/// file, playbook, a failed call) or when any finding GuardDuty returned could not be
/// read (reported, the others listed).
pub fn run(target: &Target<'_>, sel: &Selection<'_>, format: Format, details: bool) -> u8 {
    let since_ms = match sel.since.map(parse_since).transpose() {
        Ok(s) => s.map(|span| responder_core::timestamp::now_millis() - span),
        Err(e) => {
            errln!("--since: {e}");
            return 2;
        }
    };
    let playbook = match sel.playbook {
        Some(name) => match load_playbook(sel.playbooks, name) {
            Some(p) => Some(p),
            None => return 2,
        },
        None => None,
    };
    let file_criteria = match sel.criteria {
        Some(path) => match input::read(path)
            .and_then(|b| String::from_utf8(b).map_err(|e| e.to_string()))
            .and_then(|t| parse_criteria(&t).map_err(|e| e.to_string()))
        {
            Ok(c) => Some(c),
            Err(e) => {
                errln!("{}: {e}", input::label(path));
                return 2;
            }
        },
        None => None,
    };
    let Some(runtime) = input::runtime() else {
        return 2;
    };
    runtime.block_on(async {
        let config = match target.config().await {
            Ok(c) => c,
            Err(code) => return code,
        };
        let console = match Console::open(
            Clients::new(&config).guardduty,
            target.settings.detector_id.clone(),
        )
        .await
        {
            Ok(c) => c,
            Err(e) => {
                errln!("{e}");
                return 2;
            }
        };
        // The criteria as given (evaluated locally too), and the local rule.
        let mut criteria = FindingCriteria::default();
        if let Some(name) = sel.filter {
            match console.get_filter(name).await {
                Ok(f) => criteria = f.criteria,
                Err(e) => {
                    errln!("{e}");
                    return 2;
                }
            }
        }
        if let Some(c) = file_criteria {
            criteria = c;
        }
        if let Some(p) = &playbook {
            match export(p, ExportMode::Superset) {
                Ok(e) => criteria = e.criteria,
                Err(e) => {
                    errln!("playbook {}: {e}", p.playbook.name());
                    return 2;
                }
            }
        }
        if let Some(ms) = since_ms {
            let c = Condition {
                greater_than_or_equal: Some(ms),
                ..Condition::default()
            };
            if let Err(e) = criteria.and("updatedAt", c) {
                errln!("--since: {e}");
                return 2;
            }
        }
        if !sel.include_archived {
            let c = Condition {
                equals: Some(vec!["false".to_owned()]),
                ..Condition::default()
            };
            if let Err(e) = criteria.and("service.archived", c) {
                errln!("criteria: {e}");
                return 2;
            }
        }
        let (server, dropped) = criteria.for_list_findings();
        let local = dropped || playbook.is_some();
        let sort = Sort {
            attribute: "severity".to_owned(),
            descending: true,
        };
        // With a local filter the limit applies after it.
        let list_limit = if local { None } else { sel.limit };
        let ids = match console
            .list_finding_ids(&server, Some(&sort), list_limit)
            .await
        {
            Ok(ids) => ids,
            Err(e) => {
                errln!("{e}");
                return 2;
            }
        };
        let raw = match console.get_findings(&ids).await {
            Ok(r) => r,
            Err(e) => {
                errln!("{e}");
                return 2;
            }
        };
        let mut code = 0;
        let mut findings: Vec<Finding> = Vec::with_capacity(raw.len());
        let decoded = decode_value(Value::Array(raw.clone())).unwrap_or_default();
        for (i, result) in decoded.into_iter().enumerate() {
            match result {
                Ok(f) => findings.push(f),
                Err(e) => {
                    let id = raw
                        .get(i)
                        .and_then(|f| f.get("id"))
                        .and_then(Value::as_str)
                        .unwrap_or("?");
                    errln!("finding {id}: cannot be read: {e}");
                    code = 2;
                }
            }
        }
        findings.retain(|f| match &playbook {
            Some(p) => select::evaluate(p, f, false).is_ok(),
            None => !local || criteria_holds(&criteria, f.raw()),
        });
        if let Some(l) = sel.limit {
            findings.truncate(l);
        }
        findings.sort_by(|a, b| {
            b.severity
                .unwrap_or(0.0)
                .total_cmp(&a.severity.unwrap_or(0.0))
                .then_with(|| b.updated_at.cmp(&a.updated_at))
                .then_with(|| a.id.cmp(&b.id))
        });
        match format {
            Format::Json => {
                let out: Vec<&Value> = findings.iter().map(|f| f.raw()).collect();
                output::out_json(&serde_json::to_string_pretty(&out).unwrap_or_default());
            }
            Format::Text => {
                let mut counts = SeverityCounts::default();
                findings.iter().for_each(|f| counts.observe(f));
                outln!("{counts}  (detector {})", console.detector());
                if !findings.is_empty() {
                    outln!();
                    output::out_text(&table(&findings));
                }
                if details {
                    for f in &findings {
                        outln!();
                        output::out_text(&details_panel(f));
                    }
                }
            }
        }
        code
    })
}

/// The playbook named `name` in `dir`, the folder loaded and validated as `run` loads
/// it; `None` (reported) when the folder has errors or no such playbook.
pub fn load_playbook(dir: &Path, name: &str) -> Option<LoadedPlaybook> {
    let engine = input::engine(dir)?;
    let found = engine
        .playbooks()
        .iter()
        .find(|p| p.playbook.name() == name)
        .cloned();
    if found.is_none() {
        let names: Vec<&str> = engine
            .playbooks()
            .iter()
            .map(|p| p.playbook.name())
            .collect();
        errln!(
            "no playbook named {name:?} in {} (there are: {})",
            dir.display(),
            names.join(", ")
        );
    }
    found
}

/// A span such as `7d`, `12h`, `30m`, `2w` in milliseconds.
pub fn parse_since(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let (number, unit) = t.split_at(t.len().saturating_sub(1));
    let n: i64 = number
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{text:?} is not a span such as 7d, 12h, 30m or 2w"))?;
    let unit_ms: i64 = match unit {
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => return Err(format!("{text:?} is not a span such as 7d, 12h, 30m or 2w")),
    };
    n.checked_mul(unit_ms)
        .filter(|ms| *ms < 100 * 365 * 86_400_000)
        .ok_or_else(|| format!("{text:?} is too long"))
}

#[cfg(test)]
mod tests {
    use super::parse_since;

    #[test]
    fn spans() {
        assert_eq!(parse_since("7d"), Ok(7 * 86_400_000));
        assert_eq!(parse_since("12h"), Ok(12 * 3_600_000));
        assert_eq!(parse_since("2w"), Ok(14 * 86_400_000));
        for bad in ["", "d", "7", "7y", "-1d", "0d", "99999999999w"] {
            assert!(parse_since(bad).is_err(), "{bad}");
        }
    }
}
