//! Which playbook would answer each catalogued finding type, band by band: the
//! report behind `responder coverage` and its gate.
//!
//! Coverage is judged the way `plan` judges a finding: for each type, synthetic
//! findings of that type are selected by the [`Engine`] (every criterion of every
//! playbook, excludes and priorities included). One finding is made per severity
//! in each band, in GuardDuty's steps of 0.1 (low 1.0-3.9, medium 4.0-6.9, high
//! 7.0-8.9, critical 9.0-10.0), per resource type (`Instance` for the types about
//! EC2 instances, the catalogued `resource.resourceType` values otherwise) and per
//! resource role ([`roles`]: `TARGET` and `ACTOR` for an instance, as GuardDuty gives
//! either for several types; `TARGET` for other resources; none for Runtime
//! Monitoring types, whose findings carry no role). A
//! band is covered when every one of its findings is answered, partial when some
//! are. The synthetic findings carry nothing else: no account, region, tag, action or
//! other field, so a playbook that needs one of those covers nothing here, and an
//! `exclude` on one of them excludes nothing.

use serde::Serialize;
use serde_json::{Value, json};

use crate::catalogue::CatalogueEntry;
use crate::engine::Engine;
use crate::finding::Finding;
use crate::severity::SeverityLevel;

/// The four console bands, lowest first.
pub const BANDS: [SeverityLevel; 4] = [
    SeverityLevel::Low,
    SeverityLevel::Medium,
    SeverityLevel::High,
    SeverityLevel::Critical,
];

/// The resource roles synthetic findings of a type are made with, on a resource
/// type. GuardDuty's user guide (finding details, "Resource role"): the role is
/// `TARGET`, or for an instance also `ACTOR`; Runtime Monitoring findings carry none.
pub fn roles(
    entry: &CatalogueEntry,
    resource_type: Option<&str>,
) -> &'static [Option<&'static str>] {
    if entry.resource == "Runtime" {
        &[None]
    } else if resource_type == Some("Instance") {
        &[Some("TARGET"), Some("ACTOR")]
    } else {
        &[Some("TARGET")]
    }
}

/// The instance id the synthetic findings about an instance carry.
const PROBE_INSTANCE: &str = "i-0c0ffee0c0ffee000";

/// The severities tried in a band, in tenths: GuardDuty's severities have one
/// decimal.
fn tenths(level: SeverityLevel) -> std::ops::RangeInclusive<u32> {
    match level {
        SeverityLevel::Low => 10..=39,
        SeverityLevel::Medium => 40..=69,
        SeverityLevel::High => 70..=89,
        SeverityLevel::Critical => 90..=100,
    }
}

/// How much of a band the playbooks answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Every synthetic finding in the band is answered.
    Covered,
    /// Some are, some are not.
    Partial,
    /// None is.
    None,
}

impl Status {
    /// `covered`, `partial` or `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Covered => "covered",
            Status::Partial => "partial",
            Status::None => "none",
        }
    }
}

/// Synthetic findings of one kind that no playbook answers: a role, a resource
/// type, and a run of severities.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gap {
    /// `TARGET` or `ACTOR`; `None` for findings that carry no role.
    pub role: Option<&'static str>,
    /// The `resource.resourceType` of the findings, when the catalogue gives one.
    pub resource_type: Option<String>,
    /// The lowest severity of the run.
    pub from: f64,
    /// The highest severity of the run.
    pub to: f64,
}

impl std::fmt::Display for Gap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.role.unwrap_or("no role"))?;
        if let Some(rt) = &self.resource_type
            && rt != "Instance"
        {
            write!(f, " on {rt}")?;
        }
        if self.from == self.to {
            write!(f, " at {:.1}", self.from)
        } else {
            write!(f, " at {:.1}-{:.1}", self.from, self.to)
        }
    }
}

/// One band of one type.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Band {
    /// The band.
    pub level: SeverityLevel,
    /// How much of it is answered.
    pub status: Status,
    /// The playbooks `plan` picks for its findings, in the order first met.
    pub playbooks: Vec<String>,
    /// What is not answered.
    pub gaps: Vec<Gap>,
}

/// One catalogued type and its four bands.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeCoverage {
    /// The catalogue's entry.
    pub entry: CatalogueEntry,
    /// Low, medium, high, critical.
    pub bands: [Band; 4],
}

impl TypeCoverage {
    /// Every playbook that answers some finding of the type, in band order.
    pub fn playbooks(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for name in self.bands.iter().flat_map(|b| &b.playbooks) {
            if !out.contains(&name.as_str()) {
                out.push(name);
            }
        }
        out
    }

    /// The band of `level`.
    pub fn band(&self, level: SeverityLevel) -> &Band {
        &self.bands[BANDS.iter().position(|b| *b == level).unwrap_or(0)]
    }

    /// The bands a gate at `threshold` checks: none for a retired type or one not
    /// about EC2 instances; the documented band when the catalogue gives one and it
    /// is at `threshold` or above (none when below); every band from `threshold` up
    /// when the severity varies or is not documented.
    pub fn gated_bands(&self, threshold: SeverityLevel) -> Vec<SeverityLevel> {
        if !self.entry.gated(threshold) {
            return Vec::new();
        }
        match self.entry.level() {
            Some(l) => vec![l],
            None => BANDS.into_iter().filter(|b| *b >= threshold).collect(),
        }
    }

    /// The gated bands not fully covered: what a gate at `threshold` fails on.
    pub fn failing_bands(&self, threshold: SeverityLevel) -> Vec<&Band> {
        self.gated_bands(threshold)
            .into_iter()
            .map(|l| self.band(l))
            .filter(|b| b.status != Status::Covered)
            .collect()
    }

    /// Every band is covered.
    pub fn fully_covered(&self) -> bool {
        self.bands.iter().all(|b| b.status == Status::Covered)
    }

    /// Some band is answered, at least in part.
    pub fn answered(&self) -> bool {
        self.bands.iter().any(|b| b.status != Status::None)
    }
}

/// The resource types a type's synthetic findings are made with.
fn resource_types(entry: &CatalogueEntry) -> Vec<Option<String>> {
    let listed = entry.resource_types.clone().unwrap_or_default();
    if entry.ec2_instance && listed.iter().any(|r| r == "Instance") {
        return vec![Some("Instance".to_owned())];
    }
    if listed.is_empty() {
        return vec![None];
    }
    listed.into_iter().map(Some).collect()
}

/// The synthetic finding: the type, the severity, the role, the resource type (with
/// an instance when it is `Instance`), nothing else.
fn synthetic(entry: &CatalogueEntry, severity: f64, role: Option<&str>, rt: Option<&str>) -> Value {
    let mut resource = json!({});
    if let Some(rt) = rt {
        resource["resourceType"] = json!(rt);
        if rt == "Instance" {
            resource["instanceDetails"] = json!({"instanceId": PROBE_INSTANCE});
        }
    }
    let mut service = json!({"archived": false});
    if let Some(role) = role {
        service["resourceRole"] = json!(role);
    }
    json!({
        "schemaVersion": "2.0",
        "id": "coverage-probe",
        "type": entry.finding_type,
        "severity": severity,
        "resource": resource,
        "service": service,
    })
}

/// The coverage of each entry by the engine's playbooks, in the entries' order.
pub fn coverage(engine: &Engine, entries: &[CatalogueEntry]) -> Vec<TypeCoverage> {
    entries.iter().map(|e| of_type(engine, e)).collect()
}

fn of_type(engine: &Engine, entry: &CatalogueEntry) -> TypeCoverage {
    let rts = resource_types(entry);
    let bands = BANDS.map(|level| {
        let mut playbooks: Vec<String> = Vec::new();
        let mut gaps: Vec<Gap> = Vec::new();
        let (mut answered, mut total) = (0usize, 0usize);
        for rt in &rts {
            for &role in roles(entry, rt.as_deref()) {
                let mut open: Option<Gap> = None;
                for k in tenths(level) {
                    let severity = f64::from(k) / 10.0;
                    total += 1;
                    let winner =
                        Finding::from_value(synthetic(entry, severity, role, rt.as_deref()))
                            .ok()
                            .and_then(|f| engine.select(&f, false).winner)
                            .map(|i| engine.playbooks()[i].playbook.name());
                    match winner {
                        Some(name) => {
                            answered += 1;
                            if !playbooks.iter().any(|p| p == name) {
                                playbooks.push(name.to_owned());
                            }
                            gaps.extend(open.take());
                        }
                        None => match open.as_mut() {
                            Some(g) => g.to = severity,
                            None => {
                                open = Some(Gap {
                                    role,
                                    resource_type: rt.clone(),
                                    from: severity,
                                    to: severity,
                                });
                            }
                        },
                    }
                }
                gaps.extend(open);
            }
        }
        let status = if answered == total {
            Status::Covered
        } else if answered > 0 {
            Status::Partial
        } else {
            Status::None
        };
        Band {
            level,
            status,
            playbooks,
            gaps,
        }
    });
    TypeCoverage {
        entry: entry.clone(),
        bands,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::catalogue;
    use crate::playbook::load_str;
    use std::path::Path;

    fn engine(playbooks: &[&str]) -> Engine {
        let loaded = playbooks
            .iter()
            .enumerate()
            .map(|(i, text)| load_str(Path::new(&format!("p{i}.yaml")), text).unwrap())
            .collect();
        Engine::from_playbooks(loaded).unwrap()
    }

    fn of(engine: &Engine, name: &str) -> TypeCoverage {
        let entry = catalogue()
            .into_iter()
            .find(|e| e.finding_type == name)
            .unwrap();
        of_type(engine, &entry)
    }

    const NOTIFY: &str = "steps:\n  - notify: {}\n";

    #[test]
    fn severity_criteria_are_honoured_band_by_band() {
        let e = engine(&[&format!(
            "name: probes\nmatch:\n  finding_types: 'Recon:EC2/PortProbe*'\n  severity: low\n  resource_types: [Instance]\n{NOTIFY}"
        )]);
        let c = of(&e, "Recon:EC2/PortProbeEMRUnprotectedPort");
        assert_eq!(c.band(SeverityLevel::Low).status, Status::Covered);
        assert_eq!(c.band(SeverityLevel::Low).playbooks, vec!["probes"]);
        assert_eq!(c.band(SeverityLevel::High).status, Status::None);
        assert_eq!(
            c.gated_bands(SeverityLevel::High),
            vec![SeverityLevel::High]
        );
        assert_eq!(c.failing_bands(SeverityLevel::High).len(), 1);
        assert_eq!(c.playbooks(), vec!["probes"]);
    }

    #[test]
    fn part_of_a_band_or_one_role_is_partial() {
        let e = engine(&[&format!(
            "name: upper\nmatch:\n  finding_types: 'Impact:EC2/PortSweep'\n  severity: {{gte: 7.5}}\n  resource_types: [Instance]\n{NOTIFY}"
        )]);
        let high = of(&e, "Impact:EC2/PortSweep")
            .band(SeverityLevel::High)
            .clone();
        assert_eq!(high.status, Status::Partial);
        assert_eq!(
            high.gaps
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            vec!["TARGET at 7.0-7.4", "ACTOR at 7.0-7.4"]
        );
        let e = engine(&[&format!(
            "name: actor\nmatch:\n  finding_types: 'Impact:EC2/PortSweep'\n  resource_roles: ACTOR\n  resource_types: [Instance]\n{NOTIFY}"
        )]);
        let c = of(&e, "Impact:EC2/PortSweep");
        for b in &c.bands {
            assert_eq!(b.status, Status::Partial);
            assert_eq!(b.gaps.len(), 1);
            assert_eq!(b.gaps[0].role, Some("TARGET"));
        }
    }

    #[test]
    fn one_critical_wildcard_covers_no_high_band() {
        let e = engine(&[&format!(
            "name: all\nmatch:\n  finding_types: ['*']\n  resource_types: [Instance]\n  severity: critical\n{NOTIFY}"
        )]);
        let c = of(&e, "CryptoCurrency:EC2/BitcoinTool.B");
        assert_eq!(c.band(SeverityLevel::Critical).status, Status::Covered);
        assert_eq!(c.band(SeverityLevel::High).status, Status::None);
        assert!(!c.failing_bands(SeverityLevel::High).is_empty());
        // The attack sequence is about no instance: resource type AttackSequence.
        let seq = of(&e, "AttackSequence:EC2/CompromisedInstanceGroup");
        assert_eq!(seq.band(SeverityLevel::Critical).status, Status::None);
        // A type whose severity varies is gated on every band from the threshold up.
        let m = of(&e, "Execution:EC2/MaliciousFile");
        assert_eq!(
            m.gated_bands(SeverityLevel::High),
            vec![SeverityLevel::High, SeverityLevel::Critical]
        );
        assert_eq!(m.failing_bands(SeverityLevel::High).len(), 1);
        assert!(m.failing_bands(SeverityLevel::Critical).is_empty());
    }

    #[test]
    fn runtime_findings_carry_no_role() {
        let e = engine(&[&format!(
            "name: target\nmatch:\n  finding_types: 'Execution:Runtime/*'\n  resource_roles: TARGET\n  resource_types: [Instance]\n{NOTIFY}"
        )]);
        let c = of(&e, "Execution:Runtime/ReverseShell");
        assert!(!c.answered());
        assert_eq!(
            c.band(SeverityLevel::High).gaps[0].to_string(),
            "no role at 7.0-8.9"
        );
    }

    #[test]
    fn criteria_the_probe_does_not_carry_cover_nothing_and_exclude_nothing() {
        let e = engine(&[&format!(
            "name: acct\nmatch:\n  finding_types: 'Trojan:EC2/*'\n  accounts: ['123456789012']\n{NOTIFY}"
        )]);
        assert!(!of(&e, "Trojan:EC2/DropPoint").answered());
        let e = engine(&[&format!(
            "name: ex\nmatch:\n  finding_types: 'Trojan:EC2/*'\nexclude:\n  - tags: [exempt]\n{NOTIFY}"
        )]);
        assert!(of(&e, "Trojan:EC2/DropPoint").fully_covered());
    }
}
