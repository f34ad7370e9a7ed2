//! Severity levels as the GuardDuty console names them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Console severity level: Low 1.0-3.9, Medium 4.0-6.9, High 7.0-8.9, Critical 9.0-10.0.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum SeverityLevel {
    /// 1.0 to 3.9.
    Low,
    /// 4.0 to 6.9.
    Medium,
    /// 7.0 to 8.9.
    High,
    /// 9.0 to 10.0.
    Critical,
}

impl SeverityLevel {
    /// The level of a severity number.
    pub fn of(severity: f64) -> SeverityLevel {
        if severity >= 9.0 {
            SeverityLevel::Critical
        } else if severity >= 7.0 {
            SeverityLevel::High
        } else if severity >= 4.0 {
            SeverityLevel::Medium
        } else {
            SeverityLevel::Low
        }
    }

    /// The level's name as the console prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            SeverityLevel::Low => "low",
            SeverityLevel::Medium => "medium",
            SeverityLevel::High => "high",
            SeverityLevel::Critical => "critical",
        }
    }

    /// The level's range of severity numbers, `[low, high)`.
    pub fn range(self) -> (f64, f64) {
        match self {
            SeverityLevel::Low => (0.0, 4.0),
            SeverityLevel::Medium => (4.0, 7.0),
            SeverityLevel::High => (7.0, 9.0),
            SeverityLevel::Critical => (9.0, f64::INFINITY),
        }
    }
}

impl std::fmt::Display for SeverityLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries() {
        assert_eq!(SeverityLevel::of(1.0), SeverityLevel::Low);
        assert_eq!(SeverityLevel::of(3.9), SeverityLevel::Low);
        assert_eq!(SeverityLevel::of(3.95), SeverityLevel::Low);
        assert_eq!(SeverityLevel::of(4.0), SeverityLevel::Medium);
        assert_eq!(SeverityLevel::of(6.9), SeverityLevel::Medium);
        assert_eq!(SeverityLevel::of(7.0), SeverityLevel::High);
        assert_eq!(SeverityLevel::of(8.9), SeverityLevel::High);
        assert_eq!(SeverityLevel::of(9.0), SeverityLevel::Critical);
        assert_eq!(SeverityLevel::of(10.0), SeverityLevel::Critical);
    }
}
