//! GuardDuty finding criteria (saved filters, ListFindings) and playbook criteria, both
//! ways, and a local evaluator of GuardDuty criteria.
//!
//! - [`FindingCriteria`]: the API's `findingCriteria` (`criterion`: attribute name →
//!   [`Condition`]), read from a file in the CLI's or the API's casing
//!   ([`parse_criteria`]: unknown attributes and operators are errors naming them).
//! - [`criteria_holds`]: whether a finding (camelCase JSON) meets criteria, as
//!   GuardDuty decides it: a condition on a list field holds when any element meets
//!   it (`NotEquals`, `NotMatches`: when no element does, absent included); the
//!   number bounds of one condition must hold on one element; `updatedAt` compares in
//!   epoch milliseconds; `Matches` patterns take `*` for any run of characters.
//! - [`export`]: a playbook's `match` (and `exclude`, and its archived rule) as
//!   criteria; what GuardDuty cannot express is an [`Inexpressible`] naming the part.
//! - [`import`]: criteria as a playbook `match` and `exclude` ([`Imported::to_yaml`]).
//!
//! Export then import selects the same findings as the playbook: tested over the
//! whole corpus for every shipped playbook (`tests/filter_roundtrip.rs`).

use std::fmt;

mod criteria;
mod evaluate;
mod export;
mod import;
#[cfg(test)]
mod tests;

pub use criteria::{
    ATTRIBUTES, Condition, CriteriaFileError, FindingCriteria, MAX_VALUES, TIMESTAMP_ATTRIBUTES,
    criteria_from_value, merge, parse_criteria,
};
pub use evaluate::{condition_holds, criteria_holds, wildcard};
pub use export::{ExportMode, Exported, export};
pub use import::{Imported, import};

/// A part of a playbook GuardDuty criteria cannot say, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inexpressible {
    /// Where: `match.tags`, `exclude[0]`, `match.fields.<path>.exists`.
    pub part: String,
    /// Why not.
    pub why: String,
}

impl fmt::Display for Inexpressible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.part, self.why)
    }
}

/// The parts that cannot be expressed, all of them, on one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct Inexpressibles(pub Vec<Inexpressible>);
