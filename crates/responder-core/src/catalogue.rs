//! The catalogue of GuardDuty finding types (`data/finding-types.json`, embedded at
//! build time; its `sources` and `updated` fields say where each part comes from) and
//! the coverage gate over it.

use serde::{Deserialize, Serialize};

use crate::severity::SeverityLevel;

const CATALOGUE_JSON: &str = include_str!("../../../data/finding-types.json");

/// The data file: provenance and the entries.
#[derive(Debug, Clone, Deserialize)]
struct CatalogueFile {
    /// The entries, one per documented finding type.
    types: Vec<CatalogueEntry>,
}

/// One documented finding type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogueEntry {
    /// The type name.
    #[serde(rename = "type")]
    pub finding_type: String,
    /// The resource part of the name: EC2, IAMUser, S3, Runtime, ...
    pub resource: String,
    /// The `resource.resourceType` values this type's findings carry (`Instance`,
    /// `EKSCluster`, `AttackSequence`...); `None` where the sources do not say.
    #[serde(default)]
    pub resource_types: Option<Vec<String>>,
    /// The finding is about one or more EC2 instances: a `resource.resourceType` of
    /// `Instance` (EC2 and Runtime Monitoring types, Malware Protection for EC2), or
    /// the attack sequence over a group of instances. What the coverage gate checks.
    #[serde(default)]
    pub ec2_instance: bool,
    /// Documented default severity: Low, Medium, High, Critical, varies, or unknown.
    pub severity: Option<String>,
    /// `active` or `retired`.
    pub status: String,
}

impl CatalogueEntry {
    /// True for an active type whose default severity is High or Critical.
    pub fn is_high_or_critical(&self) -> bool {
        matches!(self.severity.as_deref(), Some("High" | "Critical"))
    }

    /// True for active types.
    pub fn is_active(&self) -> bool {
        self.status == "active"
    }

    /// The documented default severity as a level; `None` when it varies with the
    /// finding or no source gives it.
    pub fn level(&self) -> Option<SeverityLevel> {
        match self.severity.as_deref()? {
            "Low" => Some(SeverityLevel::Low),
            "Medium" => Some(SeverityLevel::Medium),
            "High" => Some(SeverityLevel::High),
            "Critical" => Some(SeverityLevel::Critical),
            _ => None,
        }
    }

    /// Findings of this type can be at `threshold` or above: the documented
    /// severity is at least `threshold`, or it varies or is unknown (a gate cannot
    /// rule those out).
    pub fn can_reach(&self, threshold: SeverityLevel) -> bool {
        self.level().is_none_or(|l| l >= threshold)
    }

    /// An active EC2-instance type that can reach `threshold`: one the coverage
    /// gate (`responder coverage --fail-on-uncovered`) requires a playbook for.
    pub fn gated(&self, threshold: SeverityLevel) -> bool {
        self.is_active() && self.ec2_instance && self.can_reach(threshold)
    }
}

/// The embedded catalogue. The data is checked by a unit test, so this cannot fail
/// in a released build; if it somehow does, the catalogue is empty.
pub fn catalogue() -> Vec<CatalogueEntry> {
    serde_json::from_str::<CatalogueFile>(CATALOGUE_JSON)
        .map(|f| f.types)
        .unwrap_or_default()
}

/// Who the remote address of a finding type is, when the playbook's steps act on it:
/// the rule `validate` applies to `block-remote-ip` and `release`. The catalogue
/// names the types; whether the instance is the actor or the target of the remote
/// traffic is from each type's description in the GuardDuty User Guide (the
/// catalogue's `source`), and the test below keeps every name here in the catalogue.
pub mod direction {
    /// The instance attacks the finding's remote address, whatever `resourceRole`
    /// says: the remote is its victim (a flooded DNS server, a scanned or
    /// brute-forced host, a mail server sent spam), chosen by whoever controls the
    /// instance. Blocking it would let the attacker pick which address the subnet
    /// loses. `*` matches any run of characters.
    pub const INSTANCE_ATTACKS_REMOTE: &[&str] = &[
        "Backdoor:EC2/DenialOfService.*",
        "Backdoor:EC2/Spambot",
        "Recon:EC2/Portscan",
        "Impact:EC2/PortSweep",
        "Impact:EC2/WinRMBruteForce",
    ];

    /// Either direction, told apart by `service.resourceRole`: `ACTOR` when the
    /// instance attacks the remote, `TARGET` when the remote attacks the instance.
    pub const EITHER_DIRECTION: &[&str] = &[
        "UnauthorizedAccess:EC2/SSHBruteForce",
        "UnauthorizedAccess:EC2/RDPBruteForce",
    ];

    /// Anyone on the internet causes these by sending traffic to the instance (its
    /// role is `TARGET`): probes, brute force against it, calls from Tor or a
    /// listed address. A step that undoes containment (`release`) on them would let
    /// an outsider release a quarantined instance at will.
    pub const OUTSIDER_TRIGGERED: &[&str] = &[
        "Recon:EC2/PortProbeUnprotectedPort",
        "Recon:EC2/PortProbeEMRUnprotectedPort",
        "UnauthorizedAccess:EC2/SSHBruteForce",
        "UnauthorizedAccess:EC2/RDPBruteForce",
        "UnauthorizedAccess:EC2/TorIPCaller",
        "UnauthorizedAccess:EC2/MaliciousIPCaller.Custom",
    ];

    /// True when `finding_type` matches one of `patterns` (`*`: any run of characters).
    pub fn listed(patterns: &[&str], finding_type: &str) -> bool {
        patterns.iter().any(|p| {
            globset::Glob::new(p).is_ok_and(|g| g.compile_matcher().is_match(finding_type))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_direction_rule_names_catalogued_ec2_types() {
        let all = entries();
        for list in [
            direction::INSTANCE_ATTACKS_REMOTE,
            direction::EITHER_DIRECTION,
            direction::OUTSIDER_TRIGGERED,
        ] {
            for pattern in list {
                let hits: Vec<&CatalogueEntry> = all
                    .iter()
                    .filter(|e| direction::listed(&[pattern], &e.finding_type))
                    .collect();
                assert!(!hits.is_empty(), "{pattern} names no catalogued type");
                assert!(hits.iter().all(|e| e.ec2_instance), "{pattern}");
            }
        }
        assert!(direction::listed(
            direction::INSTANCE_ATTACKS_REMOTE,
            "Backdoor:EC2/DenialOfService.UdpOnTcpPorts"
        ));
        assert!(!direction::listed(
            direction::INSTANCE_ATTACKS_REMOTE,
            "Backdoor:EC2/C&CActivity.B"
        ));
    }

    fn entries() -> Vec<CatalogueEntry> {
        serde_json::from_str::<CatalogueFile>(CATALOGUE_JSON)
            .unwrap()
            .types
    }

    fn entry(name: &str) -> CatalogueEntry {
        entries()
            .into_iter()
            .find(|e| e.finding_type == name)
            .unwrap_or_else(|| panic!("{name} is not in the catalogue"))
    }

    #[test]
    fn catalogue_parses_and_is_complete() {
        let c = entries();
        assert_eq!(c.len(), 223);
        assert_eq!(catalogue(), c);
        assert!(
            c.iter()
                .any(|e| e.finding_type == "CryptoCurrency:EC2/BitcoinTool.B!DNS")
        );
        assert!(
            c.iter()
                .any(|e| e.finding_type == "Behavior:EC2/NetworkPortUnusual")
        );
        assert_eq!(c.iter().filter(|e| e.is_active()).count(), 196);
        let mut names: Vec<&str> = c.iter().map(|e| e.finding_type.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), c.len(), "a type is listed twice");
    }

    #[test]
    fn the_new_families_are_listed_with_severity_and_resource_type() {
        for t in [
            "AttackSequence:EC2/CompromisedInstanceGroup",
            "AttackSequence:ECS/CompromisedCluster",
            "AttackSequence:EKS/CompromisedCluster",
            "AttackSequence:IAM/CompromisedCredentials",
            "AttackSequence:S3/CompromisedData",
        ] {
            let e = entry(t);
            assert_eq!(e.severity.as_deref(), Some("Critical"), "{t}");
            assert_eq!(e.resource_types, Some(vec!["AttackSequence".to_owned()]));
        }
        let shell = entry("Execution:Runtime/ReverseShell");
        assert_eq!(shell.severity.as_deref(), Some("High"));
        assert!(shell.ec2_instance);
        let rt = shell.resource_types.unwrap();
        for r in ["Instance", "EKSCluster", "ECSCluster", "Container"] {
            assert!(rt.iter().any(|x| x == r), "{r}");
        }
        assert!(entry("Impact:Runtime/CryptoMinerExecuted").ec2_instance);
        assert!(entry("Trojan:Runtime/DGADomainRequest.C!DNS").ec2_instance);
        let malware = entry("Execution:EC2/MaliciousFile");
        assert_eq!(malware.severity.as_deref(), Some("varies"));
        assert!(malware.ec2_instance);
        for t in ["!Snapshot", "!AMI", "!RecoveryPoint"] {
            let e = entry(&format!("Execution:EC2/MaliciousFile{t}"));
            assert!(
                !e.ec2_instance,
                "{t}: a snapshot, image or backup, no instance"
            );
            assert!(e.is_active());
        }
        assert!(entry("AttackSequence:EC2/CompromisedInstanceGroup").ec2_instance);
        assert!(!entry("AttackSequence:EKS/CompromisedCluster").ec2_instance);
        assert!(!entry("Recon:IAMUser/MaliciousIPCaller").ec2_instance);
    }

    #[test]
    fn the_gate_counts_varying_and_unknown_severities_as_possibly_high() {
        let high = SeverityLevel::High;
        assert!(entry("Execution:Runtime/ReverseShell").gated(high));
        assert!(!entry("Execution:Runtime/NewBinaryExecuted").gated(high));
        assert!(entry("Execution:Runtime/NewBinaryExecuted").gated(SeverityLevel::Medium));
        assert!(entry("Execution:EC2/MaliciousFile").gated(SeverityLevel::Critical));
        assert!(entry("Persistence:Runtime/SensitiveFileModified").gated(high));
        assert!(!entry("Recon:EC2/PortProbeUnprotectedPort").gated(high));
        assert!(entry("Recon:EC2/PortProbeUnprotectedPort").gated(SeverityLevel::Low));
        // Retired types are never gated.
        assert!(!entry("PrivilegeEscalation:Runtime/RuncContainerEscape").gated(high));
        assert!(
            entry("AttackSequence:EC2/CompromisedInstanceGroup").gated(SeverityLevel::Critical)
        );
        assert!(!entry("CryptoCurrency:EC2/BitcoinTool.B!DNS").gated(SeverityLevel::Critical));
    }
}
