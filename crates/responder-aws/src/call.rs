//! Turning SDK errors into outcomes: DryRun answers, denials, and AWS error codes.

use aws_sdk_ec2::error::ProvideErrorMetadata;

use crate::report::Outcome;

/// An AWS call that failed, with its error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct CallError {
    /// AWS error code (`InvalidInstanceID.NotFound`), or `Transport`/`Internal`.
    pub code: String,
    /// Message.
    pub message: String,
}

impl CallError {
    /// An error of our own.
    pub fn internal(message: impl Into<String>) -> CallError {
        CallError {
            code: "Internal".to_owned(),
            message: message.into(),
        }
    }

    /// True for DryRun's "would have succeeded".
    pub fn is_dry_run_ok(&self) -> bool {
        self.code == "DryRunOperation"
    }

    /// True for permission errors.
    pub fn is_denied(&self) -> bool {
        matches!(
            self.code.as_str(),
            "UnauthorizedOperation" | "AccessDenied" | "AccessDeniedException" | "AuthFailure"
        )
    }

    /// True when the resource does not exist (any `*.NotFound` code).
    pub fn is_not_found(&self) -> bool {
        self.code.ends_with(".NotFound") || self.code.ends_with("NotFound")
    }

    /// The outcome of a call made with `DryRun=true`.
    pub fn dry_run_outcome(&self) -> Outcome {
        if self.is_dry_run_ok() {
            Outcome::WouldSucceed
        } else if self.is_denied() {
            Outcome::Denied {
                code: self.code.clone(),
                message: self.message.clone(),
            }
        } else {
            self.failed()
        }
    }

    /// A failed outcome.
    pub fn failed(&self) -> Outcome {
        Outcome::Failed {
            code: self.code.clone(),
            message: self.message.clone(),
        }
    }
}

/// Converts any SDK error.
pub fn err<E>(e: E) -> CallError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match e.code() {
        Some(code) => CallError {
            code: code.to_owned(),
            message: e.message().unwrap_or_default().to_owned(),
        },
        None => CallError {
            code: "Transport".to_owned(),
            message: one_line(&e),
        },
    }
}

/// An error and its sources as one line (`a: b: c`), each message once, no debug
/// structures: what a person reads in a terminal or a log line.
pub fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(e) = next {
        let text = e
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}
