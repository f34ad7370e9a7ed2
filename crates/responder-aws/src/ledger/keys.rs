//! What the ledger's items are about (a step of a response, a response, its meta),
//! their `pk`/`sk`, and the checks on every id that goes into a key.

use std::collections::HashMap;
use std::fmt;

use aws_sdk_dynamodb::types::AttributeValue;

use super::{Item, LedgerError};

/// The longest id (finding, instance, owner) the ledger accepts, in bytes.
pub const MAX_ID_BYTES: usize = 512;
/// The longest step name, in bytes (the sort key must stay under DynamoDB's 1024).
pub const MAX_STEP_BYTES: usize = 256;
/// The highest step index (three digits in the sort key).
pub const MAX_INDEX: usize = 999;

/// One step of one response: what a claim is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StepKey {
    /// The GuardDuty finding id.
    pub finding_id: String,
    /// The instance the response acts on.
    pub instance_id: String,
    /// The step's position in the plan (0-based, at most [`MAX_INDEX`]).
    pub index: usize,
    /// The step's YAML name (`isolate`, `terminate`, ...).
    pub step: String,
}

/// One response: a finding about an instance.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResponseKey {
    /// The GuardDuty finding id.
    pub finding_id: String,
    /// The instance the response acts on.
    pub instance_id: String,
}

/// What the response is, recorded with every item for people reading the history.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResponseMeta {
    /// The playbook that answered.
    pub playbook: String,
    /// The finding type.
    pub finding_type: String,
    /// The account the instance is in.
    pub account: String,
    /// The region the instance is in.
    pub region: String,
}

impl ResponseMeta {
    /// The meta of a response to this finding by this playbook.
    pub fn of(finding: &responder_core::Finding, playbook: impl Into<String>) -> ResponseMeta {
        ResponseMeta {
            playbook: playbook.into(),
            finding_type: finding.finding_type.name.clone(),
            account: finding.account_id.clone().unwrap_or_default(),
            region: finding.region.clone().unwrap_or_default(),
        }
    }
}

impl StepKey {
    /// The partition key of the step's item.
    pub fn pk(&self) -> String {
        format!("finding#{}", self.finding_id)
    }

    /// The sort key of the step's item.
    pub fn sk(&self) -> String {
        format!(
            "instance#{}#step#{:03}#{}",
            self.instance_id, self.index, self.step
        )
    }

    pub(super) fn validate(&self) -> Result<(), LedgerError> {
        validate_id("finding_id", &self.finding_id)?;
        validate_id("instance_id", &self.instance_id)?;
        validate_text("step", &self.step, MAX_STEP_BYTES)?;
        if self.index > MAX_INDEX {
            return Err(LedgerError::Invalid {
                field: "index",
                problem: format!("{} is over {MAX_INDEX}", self.index),
            });
        }
        Ok(())
    }

    pub(super) fn key(&self) -> Item {
        key_item(self.pk(), self.sk())
    }
}

impl fmt::Display for StepKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "finding {} instance {} step {} ({})",
            self.finding_id, self.instance_id, self.index, self.step
        )
    }
}

impl ResponseKey {
    pub(super) fn validate(&self) -> Result<(), LedgerError> {
        validate_id("finding_id", &self.finding_id)?;
        validate_id("instance_id", &self.instance_id)
    }
}

/// An id that goes into a key: non-empty, at most [`MAX_ID_BYTES`], no `#` (the key
/// separator) and no control characters.
pub(super) fn validate_id(field: &'static str, id: &str) -> Result<(), LedgerError> {
    validate_text(field, id, MAX_ID_BYTES)?;
    if id.contains('#') {
        return Err(LedgerError::Invalid {
            field,
            problem: "contains `#`, the key separator".to_owned(),
        });
    }
    Ok(())
}

pub(super) fn validate_text(field: &'static str, s: &str, max: usize) -> Result<(), LedgerError> {
    let problem = if s.is_empty() {
        "is empty".to_owned()
    } else if s.len() > max {
        format!("is {} bytes, over {max}", s.len())
    } else if s.chars().any(char::is_control) {
        "contains control characters".to_owned()
    } else {
        return Ok(());
    };
    Err(LedgerError::Invalid { field, problem })
}

pub(super) fn key_item(pk: String, sk: String) -> Item {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S(pk)),
        ("sk".to_owned(), AttributeValue::S(sk)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_validated() {
        let ok = StepKey {
            finding_id: "f".repeat(32),
            instance_id: "i-0123456789abcdef0".to_owned(),
            index: 3,
            step: "terminate".to_owned(),
        };
        assert!(ok.validate().is_ok());
        assert_eq!(ok.sk(), "instance#i-0123456789abcdef0#step#003#terminate");
        let bad = [
            StepKey {
                finding_id: String::new(),
                ..ok.clone()
            },
            StepKey {
                finding_id: "x".repeat(513),
                ..ok.clone()
            },
            StepKey {
                instance_id: "i-1#step#000".to_owned(),
                ..ok.clone()
            },
            StepKey {
                step: "a\u{1b}[31m".to_owned(),
                ..ok.clone()
            },
            StepKey {
                step: String::new(),
                ..ok.clone()
            },
            StepKey {
                index: 1000,
                ..ok.clone()
            },
        ];
        for key in bad {
            assert!(
                matches!(key.validate(), Err(LedgerError::Invalid { .. })),
                "{key:?} accepted"
            );
        }
        assert!(validate_id("finding_id", &"x".repeat(512)).is_ok());
    }
}
