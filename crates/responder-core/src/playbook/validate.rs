//! Semantic checks over a set of playbooks, beyond what the YAML schema can say.

use std::collections::BTreeMap;

use super::load::LoadedPlaybook;
use crate::catalogue::catalogue;
use crate::diagnostic::{Acknowledgement, Diagnostic, Level};
use crate::matcher::criteria::{Criteria, SeverityCriterion};
use crate::severity::SeverityLevel;
use crate::steps::Context;

/// Resource parts of finding types that can be about an EC2 instance.
const INSTANCE_RESOURCES: &[&str] = &["EC2", "Runtime"];

/// The resource type of attack-sequence findings: instance steps fan out to the
/// sequence's instances ([`crate::sequence`]).
const SEQUENCE_RESOURCE: &str = "AttackSequence";

/// Every problem found in the set: errors make the set unusable, warnings do not.
pub fn validate(playbooks: &[LoadedPlaybook]) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut names: BTreeMap<&str, &LoadedPlaybook> = BTreeMap::new();
    for p in playbooks {
        if let Some(first) = names.insert(p.playbook.name(), p) {
            out.push(
                Diagnostic::error(
                    &p.file,
                    format!(
                        "duplicate playbook name {:?} (also in {})",
                        p.playbook.name(),
                        first.file.display()
                    ),
                )
                .at(p.playbook.name.referenced)
                .field("name"),
            );
        }
        check_playbook(p, &mut out);
    }
    check_ties(playbooks, &mut out);
    out
}

fn check_playbook(lp: &LoadedPlaybook, out: &mut Vec<Diagnostic>) {
    let p = &lp.playbook;
    let file = &lp.file;
    let name = p.name();
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        out.push(
            Diagnostic::error(
                file,
                "names are 1 to 64 characters: letters, digits, '.', '_', '-'",
            )
            .at(p.name.referenced)
            .field("name"),
        );
    }
    if let Some(max) = p.limits.max_instances
        && !(1..=super::model::MAX_MAX_INSTANCES).contains(&max)
    {
        out.push(
            Diagnostic::error(
                file,
                format!(
                    "max_instances is {max}: an attack sequence is answered on 1 to {} instances",
                    super::model::MAX_MAX_INSTANCES
                ),
            )
            .field("limits.max_instances"),
        );
    }
    if p.matches.value.is_empty() {
        out.push(
            Diagnostic::error(
                file,
                "empty match: it would answer every finding; name at least one criterion",
            )
            .at(p.matches.referenced)
            .field("match"),
        );
    }
    for (i, c) in p.exclude.iter().enumerate() {
        if c.value.is_empty() {
            out.push(
                Diagnostic::error(file, "empty exclude block: it would exclude every finding")
                    .at(c.referenced)
                    .field(format!("exclude[{i}]")),
            );
        }
    }
    if p.steps.value.is_empty() {
        out.push(
            Diagnostic::error(file, "no steps")
                .at(p.steps.referenced)
                .field("steps"),
        );
    }
    let acknowledged = |a: Acknowledgement| p.acknowledge.contains(&a);
    let instance_possible = can_match_instances(&p.matches.value);
    let restricted_to_instances = p
        .matches
        .value
        .resource_types
        .as_ref()
        .is_some_and(|r| r.iter().all(|t| t == "Instance" || t == SEQUENCE_RESOURCE));
    let mut seen: Vec<&str> = Vec::new();
    let mut warned_resource = false;
    for (i, spanned) in p.steps.value.iter().enumerate() {
        let step = &spanned.value;
        let at = |d: Diagnostic| {
            d.at(spanned.referenced)
                .field(format!("steps[{i}].{}", step.name()))
        };
        if seen.contains(&step.name()) {
            out.push(at(Diagnostic::error(
                file,
                format!("{} appears twice", step.name()),
            )
            .warning()));
        }
        if step.spec().needs_instance {
            if let Err(why) = &instance_possible {
                out.push(at(Diagnostic::error(
                    file,
                    format!("{} acts on an EC2 instance, but {why}", step.name()),
                )));
            } else if !restricted_to_instances
                && !acknowledged(Acknowledgement::AnyResourceType)
                && !warned_resource
            {
                warned_resource = true;
                out.push(at(Diagnostic::error(
                    file,
                    format!(
                        "{} acts on an EC2 instance, but the match does not restrict resource_types to [Instance]; \
                         findings about other resources will fail to plan (add resource_types: [Instance] or acknowledge any-resource-type)",
                        step.name()
                    ),
                )
                .warning()));
            }
        }
        if seen.contains(&"terminate") && step.spec().needs_live_instance {
            out.push(at(Diagnostic::error(
                file,
                format!(
                    "{} after terminate: the instance is gone by then",
                    step.name()
                ),
            )));
        }
        let context = Context {
            index: i,
            earlier: p.steps.value[..i].iter().map(|s| &s.value).collect(),
            later: p.steps.value[i + 1..].iter().map(|s| &s.value).collect(),
            acknowledge: &p.acknowledge,
        };
        for check in step.validate(&context) {
            let d = Diagnostic::error(file, check.message);
            out.push(at(if check.level == Level::Warning {
                d.warning()
            } else {
                d
            }));
        }
        seen.push(step.name());
    }
}

/// `Err(why)` when no finding this match accepts can be about an EC2 instance.
fn can_match_instances(c: &Criteria) -> Result<(), String> {
    let credentials = c.finding_types.as_ref().is_some_and(|t| {
        t.iter()
            .all(|p| p.contains("InstanceCredentialExfiltration"))
    });
    if credentials {
        // About an access key, but the key is an instance's: the instance is known.
        return Ok(());
    }
    if let Some(types) = &c.resource_types
        && !types
            .iter()
            .any(|t| t == "Instance" || t == SEQUENCE_RESOURCE)
    {
        return Err(format!("the match only accepts resource types {types:?}"));
    }
    if let Some(patterns) = &c.finding_types {
        let possible = patterns.iter().any(|p| match resource_part(p) {
            Some(r) => r.contains(['*', '?', '[', '{']) || INSTANCE_RESOURCES.contains(&r),
            None => true,
        });
        if !possible {
            return Err(format!(
                "the finding types {patterns:?} are not about EC2 instances"
            ));
        }
    }
    Ok(())
}

fn resource_part(pattern: &str) -> Option<&str> {
    let rest = pattern.split_once(':')?.1;
    Some(rest.split_once('/')?.0)
}

/// Equal-priority playbooks that can answer the same finding make the choice depend
/// on names: an error. Overlap is judged on types (against the catalogue), severity,
/// and the list criteria; tags and fields are assumed to overlap.
fn check_ties(playbooks: &[LoadedPlaybook], out: &mut Vec<Diagnostic>) {
    let catalogue = catalogue();
    for (i, a) in playbooks.iter().enumerate() {
        for b in &playbooks[i + 1..] {
            if a.playbook.priority != b.playbook.priority || a.playbook.name() == b.playbook.name()
            {
                continue;
            }
            if let Some(example) = overlap(a, b, &catalogue) {
                out.push(
                    Diagnostic::error(
                        &b.file,
                        format!(
                            "tie: {} and {} ({}) have the same priority {} and can both match {example}; give one a higher priority",
                            b.playbook.name(),
                            a.playbook.name(),
                            a.file.display(),
                            b.playbook.priority
                        ),
                    )
                    .at(b.playbook.name.referenced)
                    .field("priority"),
                );
            }
        }
    }
}

fn overlap(
    a: &LoadedPlaybook,
    b: &LoadedPlaybook,
    catalogue: &[crate::catalogue::CatalogueEntry],
) -> Option<String> {
    let (ca, cb) = (&a.playbook.matches.value, &b.playbook.matches.value);
    let lists_disjoint = disjoint(&ca.accounts, &cb.accounts)
        || disjoint(&ca.regions, &cb.regions)
        || disjoint(&ca.resource_types, &cb.resource_types)
        || disjoint(&ca.action_types, &cb.action_types)
        || match (&ca.resource_roles, &cb.resource_roles) {
            (Some(x), Some(y)) => !x.iter().any(|r| y.contains(r)),
            _ => false,
        };
    if lists_disjoint || !severity_overlaps(&ca.severity, &cb.severity) {
        return None;
    }
    let probes = catalogue
        .iter()
        .map(|e| e.finding_type.as_str())
        .chain(ca.finding_types.iter().flatten().map(String::as_str))
        .chain(cb.finding_types.iter().flatten().map(String::as_str));
    for t in probes {
        if a.matches.matches_type(t) && b.matches.matches_type(t) {
            return Some(format!("findings of type {t}"));
        }
    }
    None
}

fn disjoint(a: &Option<Vec<String>>, b: &Option<Vec<String>>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => !x.iter().any(|v| y.contains(v)),
        _ => false,
    }
}

fn severity_holds(c: &SeverityCriterion, s: f64) -> bool {
    match c {
        SeverityCriterion::Levels(l) => l.contains(&SeverityLevel::of(s)),
        SeverityCriterion::Range(r) => r.contains(s),
    }
}

/// Both criteria accept some severity between 0.0 and 10.0, in steps of 0.05.
fn severity_overlaps(a: &Option<SeverityCriterion>, b: &Option<SeverityCriterion>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => (0..=200).any(|k| {
            let s = f64::from(k) / 20.0;
            severity_holds(x, s) && severity_holds(y, s)
        }),
        _ => true,
    }
}
