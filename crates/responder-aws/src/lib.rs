//! Executes guardduty-responder plans through the EC2, GuardDuty, Auto Scaling, ELB
//! and SNS APIs: the only crate of the project that calls AWS.
//!
//! [`Executor::respond`] takes a finding and its plan (from `responder-core`) and
//! carries out the plan's steps, field for field, returning a [`report::Report`].
//! Isolation runs first and fast; every step checks the state it would create (tags
//! as state, client tokens, existing snapshots) so that a redelivered event takes
//! each action once; a failed step stops the destructive ones after it, and the
//! report says so.
//!
//! Modules, each importing only those listed before it: [`report`], `call` (AWS
//! errors), [`clients`], `tagging`, `instance` (the live view), `group_cache`,
//! `context` (one response's state), `steps` (one module per step), `executor`;
//! [`verify`] (GetFindings before acting) imports only `call`.

mod call;
pub mod clients;
mod context;
mod executor;
mod group_cache;
mod instance;
pub mod render;
pub mod report;
mod steps;
mod tagging;
pub mod verify;

pub use call::CallError;
pub use clients::Clients;
pub use context::ExecOptions;
pub use executor::Executor;
pub use report::{Outcome, Report, Status, StepReport};
pub use verify::{DetectorSource, RetryPolicy, Verification, Verifier, VerifyError};
