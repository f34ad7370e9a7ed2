//! Semantic checks over a set of playbooks, beyond what the YAML schema can say.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::load::{Diagnostic, LoadedPlaybook};
use super::model::{Acknowledgement, Criteria, SeverityCriterion};
use super::steps::Step;
use crate::catalogue::catalogue;
use crate::severity::SeverityLevel;
use crate::template;

/// Resource parts of finding types that can be about an EC2 instance.
const INSTANCE_RESOURCES: &[&str] = &["EC2", "Runtime"];

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
        if c.is_empty() {
            out.push(
                Diagnostic::error(file, "empty exclude block: it would exclude every finding")
                    .field(format!("exclude[{i}]")),
            );
        }
    }
    if p.steps.is_empty() {
        out.push(Diagnostic::error(file, "no steps").field("steps"));
    }
    let acknowledged = |a: Acknowledgement| p.acknowledge.contains(&a);
    let instance_possible = can_match_instances(&p.matches.value);
    let restricted_to_instances = p
        .matches
        .value
        .resource_types
        .as_ref()
        .is_some_and(|r| r.iter().all(|t| t == "Instance"));
    let mut seen: Vec<&str> = Vec::new();
    let mut warned_resource = false;
    for (i, spanned) in p.steps.iter().enumerate() {
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
        if step.needs_instance() {
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
        let after_terminate = seen.contains(&"terminate");
        if after_terminate
            && !matches!(
                step,
                Step::Relaunch(_) | Step::ArchiveFinding(_) | Step::Notify(_) | Step::Tag(_)
            )
        {
            out.push(at(Diagnostic::error(
                file,
                format!(
                    "{} after terminate: the instance is gone by then",
                    step.name()
                ),
            )));
        }
        match step {
            Step::Isolate(params) => {
                if i > 0 {
                    out.push(at(Diagnostic::error(
                        file,
                        "isolate always runs first; move it to the top so the file reads as it runs",
                    )
                    .warning()));
                }
                if params.network_acl {
                    out.push(at(Diagnostic::error(
                        file,
                        "network_acl denies all traffic for every instance in the instance's subnets, not only this one",
                    )
                    .warning()));
                }
                if let Some(ingress) = &params.forensics_ingress {
                    for cidr in &ingress.cidrs {
                        if !is_cidr(cidr) {
                            out.push(at(Diagnostic::error(
                                file,
                                format!("forensics_ingress: {cidr:?} is not a CIDR block"),
                            )));
                        }
                    }
                    if ingress.cidrs.is_empty() && ingress.security_group_id.is_none() {
                        out.push(at(Diagnostic::error(
                            file,
                            "forensics_ingress needs cidrs or security_group_id",
                        )));
                    }
                }
                if params.quarantine_group == params.untrack_group {
                    out.push(at(Diagnostic::error(
                        file,
                        "quarantine_group and untrack_group must differ",
                    )));
                }
            }
            Step::Terminate(params) => {
                if !seen.contains(&"snapshot")
                    && !acknowledged(Acknowledgement::TerminateWithoutSnapshot)
                {
                    out.push(at(Diagnostic::error(
                        file,
                        "terminate without an earlier snapshot destroys the evidence (add a snapshot step, or acknowledge terminate-without-snapshot)",
                    )
                    .warning()));
                }
                let protects = p.steps[..i]
                    .iter()
                    .any(|s| matches!(&s.value, Step::Protect(pp) if pp.termination));
                if protects && !params.lift_termination_protection {
                    out.push(at(Diagnostic::error(
                        file,
                        "an earlier protect step enables termination protection, so this terminate would fail; set lift_termination_protection: true",
                    )));
                }
            }
            Step::Relaunch(_) if !seen.contains(&"terminate") && !seen.contains(&"stop") => {
                out.push(at(Diagnostic::error(
                        file,
                        "relaunch without an earlier terminate or stop would run the replacement beside the compromised instance",
                    )));
            }
            _ => {}
        }
        for (what, t) in templates(step) {
            if let Err(e) = template::check(t) {
                out.push(at(Diagnostic::error(file, format!("{what}: {e}"))));
            }
        }
        if let Step::Notify(n) = step
            && let Some(arn) = &n.topic_arn
            && !(arn.starts_with("arn:")
                && arn.split(':').nth(2) == Some("sns")
                && arn.split(':').count() == 6)
        {
            out.push(at(Diagnostic::error(
                file,
                format!("topic_arn {arn:?} is not an SNS topic ARN"),
            )));
        }
        seen.push(step.name());
    }
}

fn templates(step: &Step) -> Vec<(String, &str)> {
    let tags = match step {
        Step::Snapshot(p) => Some(&p.tags),
        Step::Relaunch(p) => Some(&p.tags),
        Step::Tag(p) => Some(&p.tags),
        _ => None,
    };
    let mut out: Vec<(String, &str)> = tags
        .into_iter()
        .flatten()
        .map(|(k, v)| (format!("tags.{k}"), v.as_str()))
        .collect();
    if let Step::Notify(n) = step
        && let Some(s) = &n.subject
    {
        out.push(("subject".to_owned(), s.as_str()));
    }
    out
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
        && !types.iter().any(|t| t == "Instance")
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

fn is_cidr(s: &str) -> bool {
    let Some((ip, prefix)) = s.split_once('/') else {
        return false;
    };
    let Ok(ip) = ip.parse::<IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    prefix.parse::<u8>().is_ok_and(|p| p <= max)
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
