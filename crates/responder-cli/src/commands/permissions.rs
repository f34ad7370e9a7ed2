//! `responder permissions`: the IAM actions the playbooks need, derived from the
//! steps' own declarations (the same declarations the deployment templates are tested
//! against, statement by statement). Text: one action name a line. JSON: the names,
//! each step's grants with their resources and conditions, and the policy document
//! built from them (`Allow` statements, then the `Deny` statements every deployment
//! carries), with `${Partition}`, `${Region}`, `${Account}` and the template's
//! resources and parameters (`${LedgerTable.Arn}`, `${PlaybookTagKeys}`) as
//! placeholders; and `tag_keys`, the keys the playbooks' `tag` steps write besides the
//! markers: the templates' `PlaybookTagKeys` (comma-separated), the only other keys
//! the roles may write on instances. With `--all` (every step, no playbook) the list
//! is empty.

use std::collections::BTreeSet;
use std::path::Path;

use responder_core::steps::iam::{self, Iam};
use responder_core::steps::{self, StepSpec};

use crate::output::{self, outln};
use crate::{Format, input};

/// Exit 0, or 1 when the playbooks are invalid.
pub fn run(dir: &Path, all: bool, format: Format) -> u8 {
    let (specs, tag_keys): (BTreeSet<&'static str>, BTreeSet<String>) = if all {
        (steps::ALL.iter().map(|s| s.name).collect(), BTreeSet::new())
    } else {
        let Some(engine) = input::engine(dir) else {
            return 1;
        };
        let written = || {
            engine
                .playbooks()
                .iter()
                .flat_map(|p| p.playbook.steps.value.iter().map(|s| &s.value))
        };
        (
            written().map(|s| s.name()).collect(),
            steps::tag::playbook_keys(written()),
        )
    };
    let used: Vec<&StepSpec> = steps::ALL
        .iter()
        .copied()
        .filter(|s| specs.contains(s.name))
        .collect();
    let actions = steps::iam_actions(used.iter().copied());
    match format {
        Format::Text => {
            for a in &actions {
                outln!("{a}");
            }
        }
        Format::Json => {
            let by_step: serde_json::Map<String, serde_json::Value> = used
                .iter()
                .map(|s| (s.name.to_owned(), grants_json(s.iam_actions)))
                .collect();
            let doc = serde_json::json!({
                "actions": actions,
                "base": grants_json(steps::BASE_IAM_ACTIONS),
                "steps": by_step,
                "denies": grants_json(iam::DENIES),
                "tag_keys": tag_keys,
                "policy": iam::policy(&steps::iam_grants(used.iter().copied())),
            });
            output::out_json(&serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
    }
    0
}

/// Grants as JSON: `[{action, resources, conditions}]`.
fn grants_json(grants: &[Iam]) -> serde_json::Value {
    grants
        .iter()
        .map(|g| {
            serde_json::json!({
                "action": g.action,
                "resources": g.resources.iter().map(|r| r.arn()).collect::<Vec<_>>(),
                "conditions": g.condition_json(),
            })
        })
        .collect()
}
