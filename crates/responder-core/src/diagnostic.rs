//! What checking playbooks says: how serious a problem is ([`Level`]), where it is
//! ([`Diagnostic`]: file, line, column, field), and the warnings a playbook may accept
//! by name ([`Acknowledgement`]). Below both the steps (whose own checks use them)
//! and the playbook loader and validator, so neither imports the other for them.

use std::fmt;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// The playbooks can be used; someone should look.
    Warning,
    /// The playbooks cannot be used.
    Error,
}

/// One problem in a playbook, located where possible.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub level: Level,
    /// The file.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// 1-based column, when known.
    pub column: Option<u64>,
    /// The field concerned, e.g. `steps[2].terminate`, when known.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl Diagnostic {
    /// An error about a whole file.
    pub fn error(file: &Path, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            level: Level::Error,
            file: file.to_owned(),
            line: None,
            column: None,
            field: None,
            message: message.into(),
        }
    }

    /// Sets the location.
    pub fn at(mut self, loc: serde_saphyr::Location) -> Diagnostic {
        if loc != serde_saphyr::Location::UNKNOWN {
            self.line = Some(loc.line());
            self.column = Some(loc.column());
        }
        self
    }

    /// Sets the field.
    pub fn field(mut self, field: impl Into<String>) -> Diagnostic {
        self.field = Some(field.into());
        self
    }

    /// Turns it into a warning.
    pub fn warning(mut self) -> Diagnostic {
        self.level = Level::Warning;
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        let level = match self.level {
            Level::Error => "error",
            Level::Warning => "warning",
        };
        write!(f, ": {level}: ")?;
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Warnings a playbook may acknowledge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Acknowledgement {
    /// Terminating without an earlier snapshot destroys the evidence.
    TerminateWithoutSnapshot,
    /// The playbook may match findings that are not about an EC2 instance.
    AnyResourceType,
    /// `isolate`'s `forensics_ingress` admits a CIDR block of public address space
    /// (anything but private, shared, ULA and documentation ranges) to the
    /// compromised instance: whoever holds an address in it can reach the instance.
    PublicForensicsIngress,
    /// `block-remote-ip` blocks more than its default 5 addresses per response: each
    /// costs two of the 20 rules an ACL holds per direction, shared by the subnet.
    ManyBlockedAddresses,
    /// `block-remote-ip` keeps its deny entries longer than 72 hours: an address
    /// changes hands, and the entry outlives the reason for it.
    LongBlockExpiry,
    /// An attack sequence may be answered on more than 25 instances
    /// (`limits.max_instances`): a sequence names every instance of a group, and each
    /// answered member is isolated.
    ManySequenceInstances,
}
