//! Semantic checks over a set of playbooks, beyond what the YAML schema can say.

use std::collections::BTreeMap;

use super::load::LoadedPlaybook;
use crate::catalogue::{catalogue, direction};
use crate::diagnostic::{Acknowledgement, Diagnostic, Level};
use crate::matcher::criteria::{Criteria, ResourceRole, SeverityCriterion};
use crate::severity::SeverityLevel;
use crate::steps::{Context, Step};

/// Resource parts of finding types that can be about an EC2 instance.
const INSTANCE_RESOURCES: &[&str] = &["EC2", "Runtime"];

/// The resource type of attack-sequence findings: instance steps fan out to the
/// sequence's instances ([`crate::sequence`]).
const SEQUENCE_RESOURCE: &str = "AttackSequence";

/// The most instances of an attack sequence answered without the
/// `many-sequence-instances` acknowledgement.
pub const ACKNOWLEDGED_MAX_INSTANCES: u32 = 25;

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
        out.extend(p.lints.iter().cloned());
    }
    check_ties(playbooks, &mut out);
    check_group_names(playbooks, &mut out);
    out
}

/// An untrack group is opened to all traffic; named like another playbook's
/// quarantine group, it makes that group all-open in every VPC where both run, and
/// the other playbook's isolation then fails (or isolates into an open group).
fn check_group_names(playbooks: &[LoadedPlaybook], out: &mut Vec<Diagnostic>) {
    let isolates = |lp: &'_ LoadedPlaybook| {
        lp.playbook
            .steps
            .value
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match &s.value {
                Step::Isolate(p) => Some((i, s.referenced, p.clone())),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    for lp in playbooks {
        for (i, at, p) in isolates(lp) {
            if !p.cut_connections {
                continue;
            }
            for other in playbooks
                .iter()
                .filter(|o| o.playbook.name() != lp.playbook.name())
            {
                for (_, _, q) in isolates(other) {
                    if q.quarantine_group.eq_ignore_ascii_case(&p.untrack_group) {
                        out.push(
                            Diagnostic::error(
                                &lp.file,
                                format!(
                                    "untrack_group {:?} is the quarantine group of playbook {} ({}): the untrack group is opened to all traffic, so that playbook's quarantine would be all-open in every VPC where this one ran",
                                    p.untrack_group,
                                    other.playbook.name(),
                                    other.file.display()
                                ),
                            )
                            .at(at)
                            .field(format!("steps[{i}].isolate.untrack_group")),
                        );
                    }
                }
            }
        }
    }
}

/// Exclude blocks that hold whenever the type matches (a block of `finding_types`
/// only): the types they name never reach the playbook.
fn excluded_type(lp: &LoadedPlaybook, finding_type: &str) -> bool {
    lp.playbook
        .exclude
        .iter()
        .zip(&lp.excludes)
        .any(|(written, compiled)| {
            let mut rest = written.value.clone();
            let types = rest.finding_types.take();
            types.is_some() && rest.is_empty() && compiled.matches_type(finding_type)
        })
}

/// The catalogued EC2 types the playbook may answer that `listed` names, with a
/// resource role the match allows.
fn answered_types(lp: &LoadedPlaybook, patterns: &[&str], role: ResourceRole) -> Vec<String> {
    let roles_allow = lp
        .playbook
        .matches
        .value
        .resource_roles
        .as_ref()
        .is_none_or(|r| r.contains(&role));
    if !roles_allow {
        return Vec::new();
    }
    catalogue()
        .into_iter()
        .filter(|e| e.ec2_instance && direction::listed(patterns, &e.finding_type))
        .filter(|e| lp.matches.matches_type(&e.finding_type) && !excluded_type(lp, &e.finding_type))
        .map(|e| e.finding_type)
        .collect()
}

/// The levers a step would hand to whoever controls the finding's remote side
/// ([`crate::catalogue::direction`]): `block-remote-ip` where the instance attacks
/// the remote (its victim would be blocked), `release` where an outsider triggers
/// the finding (it would release a quarantined instance).
fn lever(lp: &LoadedPlaybook, step: &Step) -> Option<String> {
    let list = |types: Vec<String>| {
        let n = types.len();
        let shown: Vec<String> = types.into_iter().take(4).collect();
        format!(
            "{}{}",
            shown.join(", "),
            if n > 4 {
                format!(" and {} more", n - 4)
            } else {
                String::new()
            }
        )
    };
    match step {
        Step::BlockRemoteIp(_) => {
            let mut types =
                answered_types(lp, direction::INSTANCE_ATTACKS_REMOTE, ResourceRole::Actor);
            types.extend(answered_types(
                lp,
                direction::EITHER_DIRECTION,
                ResourceRole::Actor,
            ));
            (!types.is_empty()).then(|| format!(
                "the match accepts {}, where the instance attacks the finding's remote address: blocking it would let whoever controls the instance choose which address the subnet loses (exclude those types, or restrict resource_roles to [TARGET])",
                list(types)
            ))
        }
        Step::Release(_) => {
            let types = answered_types(lp, direction::OUTSIDER_TRIGGERED, ResourceRole::Target);
            (!types.is_empty()).then(|| format!(
                "the match accepts {}, which anyone can cause by sending the instance traffic: release would let an outsider undo a quarantine (restrict resource_roles to [ACTOR] or the types to ones only the instance causes)",
                list(types)
            ))
        }
        _ => None,
    }
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
    if let Some(max) = p.limits.max_instances
        && max > ACKNOWLEDGED_MAX_INSTANCES
        && max <= super::model::MAX_MAX_INSTANCES
        && !p
            .acknowledge
            .contains(&Acknowledgement::ManySequenceInstances)
    {
        out.push(
            Diagnostic::error(
                file,
                format!(
                    "max_instances is {max}, more than {ACKNOWLEDGED_MAX_INSTANCES}: a sequence names every instance of a group (an Auto Scaling group, a VPC), and each answered member is isolated; acknowledge many-sequence-instances if you mean it"
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
        if let Some(why) = lever(lp, step) {
            out.push(at(Diagnostic::error(file, why)));
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
