//! Executes guardduty-responder plans through the EC2, GuardDuty, Auto Scaling, ELB
//! and SNS APIs: the only crate of the project that calls AWS.
//!
//! [`Executor::respond`] takes a finding and its plan (from `responder-core`) and
//! returns a [`report::Report`]. Isolation runs first and fast; every step checks the
//! state it would create (tags as state, client tokens, existing snapshots) so that a
//! redelivered event takes each action once; a failed step stops the destructive ones
//! after it, and the report says so.

mod access;
mod call;
pub mod clients;
mod evidence;
mod executor;
mod isolate;
mod lifecycle;
mod outbound;
pub mod report;
mod state;

pub use clients::Clients;
pub use executor::{ExecOptions, Executor};
pub use report::{Outcome, Report, Status, StepReport};
