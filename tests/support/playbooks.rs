//! Plans for tests: from the shipped playbooks, or from one playbook written inline.

use std::path::Path;

use responder_core::playbook::load_str;
use responder_core::{Engine, Finding, Plan};

use crate::moto::workspace_root;

/// The engine over the shipped `playbooks/` folder.
pub fn shipped_engine() -> Engine {
    let dir = workspace_root().join("playbooks");
    Engine::load(&dir).unwrap_or_else(|d| {
        let lines: Vec<String> = d.iter().map(ToString::to_string).collect();
        panic!("the shipped playbooks do not load:\n{}", lines.join("\n"))
    })
}

/// The plan the shipped playbooks make for the finding.
pub fn shipped_plan(finding: &Finding) -> Plan {
    shipped_engine()
        .plan(finding, false)
        .unwrap_or_else(|e| panic!("no plan for {}: {e}", finding.id))
}

/// The plan of one playbook given as YAML text (it must load, validate without
/// errors and match the finding).
pub fn plan_with(yaml: &str, finding: &Finding) -> Plan {
    let file = Path::new("inline-test-playbook.yaml");
    let loaded =
        load_str(file, yaml).unwrap_or_else(|d| panic!("test playbook does not load: {d}"));
    let engine = Engine::from_playbooks(vec![loaded]).unwrap_or_else(|d| {
        let lines: Vec<String> = d.iter().map(ToString::to_string).collect();
        panic!("test playbook is invalid:\n{}", lines.join("\n"))
    });
    let plan = engine
        .plan(finding, false)
        .unwrap_or_else(|e| panic!("no plan for {}: {e}", finding.id));
    assert!(
        plan.playbook.is_some(),
        "the test playbook does not match {}: {}",
        finding.finding_type.name,
        plan.decision
    );
    plan
}

/// A one-playbook YAML text in enforce mode that answers EC2 crypto-mining findings
/// (the `bitcoin_dns_event`), with the given `steps:` body (YAML list items).
pub fn enforce_playbook(steps: &str) -> String {
    playbook_text("enforce", steps)
}

/// Like [`enforce_playbook`] in `mode: dry-run`.
pub fn dry_run_playbook(steps: &str) -> String {
    playbook_text("dry-run", steps)
}

fn playbook_text(mode: &str, steps: &str) -> String {
    format!(
        "name: test-playbook\n\
         priority: 100\n\
         mode: {mode}\n\
         acknowledge: [terminate-without-snapshot]\n\
         match:\n  finding_types: [\"CryptoCurrency:EC2/*\"]\n  resource_types: [Instance]\n\
         steps:\n{steps}\n"
    )
}
