//! Finding type names: `ThreatPurpose:ResourceTypeAffected/ThreatFamilyName.DetectionMechanism!Artifact`.

use serde::Serialize;

/// A finding type and the parts of its name. Unknown and malformed names are kept
/// whole with the parts that could be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FindingType {
    /// The full type name, e.g. `CryptoCurrency:EC2/BitcoinTool.B!DNS`.
    pub name: String,
    /// `CryptoCurrency`.
    pub threat_purpose: Option<String>,
    /// `EC2`.
    pub resource_type_affected: Option<String>,
    /// `BitcoinTool`.
    pub threat_family: Option<String>,
    /// `B`.
    pub detection_mechanism: Option<String>,
    /// `DNS`.
    pub artifact: Option<String>,
}

impl FindingType {
    /// Splits a type name into its parts; never fails.
    pub fn parse(name: &str) -> FindingType {
        let (purpose, rest) = match name.split_once(':') {
            Some((p, r)) => (non_empty(p), r),
            None => (None, name),
        };
        let (resource, family_part) = match rest.split_once('/') {
            Some((r, f)) => (non_empty(r), f),
            None => (None, ""),
        };
        let (family_mech, artifact) = match family_part.split_once('!') {
            Some((f, a)) => (f, non_empty(a)),
            None => (family_part, None),
        };
        let (family, mechanism) = match family_mech.split_once('.') {
            Some((f, m)) => (non_empty(f), non_empty(m)),
            None => (non_empty(family_mech), None),
        };
        FindingType {
            name: name.to_owned(),
            threat_purpose: purpose,
            resource_type_affected: resource,
            threat_family: family,
            detection_mechanism: mechanism,
            artifact,
        }
    }

    /// True when the type's resource part is `EC2` (findings about an instance).
    pub fn is_ec2(&self) -> bool {
        self.resource_type_affected.as_deref() == Some("EC2")
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_parts() {
        let t = FindingType::parse("Backdoor:EC2/C&CActivity.B!DNS");
        assert_eq!(t.threat_purpose.as_deref(), Some("Backdoor"));
        assert_eq!(t.resource_type_affected.as_deref(), Some("EC2"));
        assert_eq!(t.threat_family.as_deref(), Some("C&CActivity"));
        assert_eq!(t.detection_mechanism.as_deref(), Some("B"));
        assert_eq!(t.artifact.as_deref(), Some("DNS"));
        assert!(t.is_ec2());
    }

    #[test]
    fn partial_and_malformed_names() {
        let t = FindingType::parse("Recon:EC2/PortProbeUnprotectedPort");
        assert_eq!(t.threat_family.as_deref(), Some("PortProbeUnprotectedPort"));
        assert_eq!(t.detection_mechanism, None);
        let odd = FindingType::parse("garbage");
        assert_eq!(odd.name, "garbage");
        assert_eq!(odd.threat_purpose, None);
        assert_eq!(odd.resource_type_affected, None);
        assert_eq!(FindingType::parse("").threat_family, None);
    }
}
