//! `responder filter import` and `responder filter export`: GuardDuty saved filters
//! and playbooks, both ways (`responder_core::filter` translates, exactly or not at
//! all; `responder_aws::console` calls GetFilter, CreateFilter and UpdateFilter).

use std::path::Path;

use responder_aws::Clients;
use responder_aws::console::{Console, FilterWrite};
use responder_core::filter::{ExportMode, export, import};

use crate::commands::findings::{Target, load_playbook};
use crate::input;
use crate::output::{self, errln, outln};

async fn open(target: &Target<'_>) -> Result<Console, u8> {
    let config = target.config().await?;
    Console::open(
        Clients::new(&config).guardduty,
        target.settings.detector_id.clone(),
    )
    .await
    .map_err(|e| {
        errln!("{e}");
        2
    })
}

/// Prints the playbook `match`/`exclude` that selects the findings the saved filter
/// `name` selects. Exit 0, or 2 (one line on stderr) when the filter or detector does
/// not exist or a criterion cannot be expressed.
pub fn import_filter(target: &Target<'_>, name: &str) -> u8 {
    let Some(runtime) = input::runtime() else {
        return 2;
    };
    runtime.block_on(async {
        let console = match open(target).await {
            Ok(c) => c,
            Err(code) => return code,
        };
        let filter = match console.get_filter(name).await {
            Ok(f) => f,
            Err(e) => {
                errln!("{e}");
                return 2;
            }
        };
        match import(&filter.criteria) {
            Ok(imported) => {
                outln!(
                    "# Saved filter {name:?} of detector {} (action {}), as playbook criteria.",
                    console.detector(),
                    filter.action
                );
                output::out_text(&imported.to_yaml());
                0
            }
            Err(e) => {
                errln!("saved filter {name:?} cannot be expressed as a playbook match: {e}");
                2
            }
        }
    })
}

/// How `filter export` goes.
#[derive(Debug)]
pub struct ExportArgs<'a> {
    /// The playbook folder.
    pub playbooks: &'a Path,
    /// The playbook's name.
    pub playbook: &'a str,
    /// The saved filter's name.
    pub name: &'a str,
    /// Leave out `exclude` blocks GuardDuty cannot express (the filter then shows
    /// those findings too).
    pub allow_broader: bool,
    /// Print the criteria (the CLI's `--finding-criteria` JSON) instead of saving.
    pub print_only: bool,
}

/// Creates or updates the saved filter (action NOOP) that selects what the playbook
/// answers. Exit 0, or 2 (one line on stderr) for a part that cannot be expressed, an
/// unknown playbook or detector, or a failed call.
pub fn export_filter(target: &Target<'_>, args: &ExportArgs<'_>) -> u8 {
    let Some(p) = load_playbook(args.playbooks, args.playbook) else {
        return 2;
    };
    let mode = if args.allow_broader {
        ExportMode::DropExcludes
    } else {
        ExportMode::Exact
    };
    let exported = match export(&p, mode) {
        Ok(e) => e,
        Err(e) => {
            let hint = if args.allow_broader {
                ""
            } else {
                " (--allow-broader leaves out exclude blocks that cannot be expressed)"
            };
            errln!(
                "playbook {} cannot be expressed as GuardDuty criteria: {e}{hint}",
                args.playbook
            );
            return 2;
        }
    };
    for d in &exported.dropped {
        errln!("warning: left out {d}; the saved filter also shows the findings it excludes");
    }
    if args.print_only {
        let json = serde_json::json!({ "Criterion": wire(&exported.criteria) });
        output::out_json(&serde_json::to_string_pretty(&json).unwrap_or_default());
        return 0;
    }
    let Some(runtime) = input::runtime() else {
        return 2;
    };
    runtime.block_on(async {
        let console = match open(target).await {
            Ok(c) => c,
            Err(code) => return code,
        };
        let description = format!("guardduty-responder playbook {}", args.playbook);
        match console
            .put_filter(args.name, &exported.criteria, &description)
            .await
        {
            Ok(w) => {
                outln!(
                    "{} saved filter {:?} on detector {} from playbook {} ({} attributes, action NOOP)",
                    match w {
                        FilterWrite::Created => "created",
                        FilterWrite::Updated => "updated",
                    },
                    args.name,
                    console.detector(),
                    args.playbook,
                    exported.criteria.criterion.len()
                );
                0
            }
            Err(e) => {
                errln!("{e}");
                2
            }
        }
    })
}

/// The criteria in the AWS CLI's casing (`Equals`, `GreaterThanOrEqual`, ...).
fn wire(c: &responder_core::filter::FindingCriteria) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for (attribute, condition) in &c.criterion {
        let mut ops = serde_json::Map::new();
        if let Ok(serde_json::Value::Object(m)) = serde_json::to_value(condition) {
            for (k, v) in m {
                let mut chars = k.chars();
                let pascal: String = chars
                    .next()
                    .map(|f| f.to_ascii_uppercase())
                    .into_iter()
                    .chain(chars)
                    .collect();
                ops.insert(pascal, v);
            }
        }
        out.insert(attribute.clone(), serde_json::Value::Object(ops));
    }
    serde_json::Value::Object(out)
}
