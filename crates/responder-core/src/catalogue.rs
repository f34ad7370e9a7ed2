//! The catalogue of GuardDuty finding types (a copy of `data/finding-types.json`,
//! embedded at build time) and playbook coverage over it.

use serde::{Deserialize, Serialize};

const CATALOGUE_JSON: &str = include_str!("../../../data/finding-types.json");

/// One documented finding type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogueEntry {
    /// The type name.
    #[serde(rename = "type")]
    pub finding_type: String,
    /// The resource part of the name: EC2, IAMUser, S3, Runtime, ...
    pub resource: String,
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
}

/// The embedded catalogue. The data is checked by a unit test, so this cannot fail
/// in a released build; if it somehow does, the catalogue is empty.
pub fn catalogue() -> Vec<CatalogueEntry> {
    serde_json::from_str(CATALOGUE_JSON).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_parses_and_is_complete() {
        let c: Vec<CatalogueEntry> = serde_json::from_str(CATALOGUE_JSON).unwrap();
        assert_eq!(c.len(), 223);
        assert!(
            c.iter()
                .any(|e| e.finding_type == "CryptoCurrency:EC2/BitcoinTool.B!DNS")
        );
        assert!(
            c.iter()
                .any(|e| e.finding_type == "Behavior:EC2/NetworkPortUnusual")
        );
        assert_eq!(c.iter().filter(|e| e.is_active()).count(), 196);
    }
}
