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
//! errors), [`clients`], [`ledger`] (the responder's own record in DynamoDB: step
//! claims, undo state, the blast-radius budget), [`verify`] (GetFindings before
//! acting), `tagging`, `instance` (the live view), `context` (one response's state),
//! `steps` (one module per step), `executor`, [`responder`] (verify, plan, budget,
//! execute: the whole answer to one finding).

mod call;
pub mod clients;
mod context;
mod executor;
mod instance;
pub mod ledger;
pub mod render;
pub mod report;
pub mod responder;
mod steps;
mod tagging;
pub mod verify;

pub use call::CallError;
pub use clients::Clients;
pub use context::ExecOptions;
pub use executor::{Executor, Prefetch, Response, Withhold, WithholdScope};
pub use report::{Outcome, Report, Status, StepReport};
pub use verify::{DetectorSource, RetryPolicy, Verification, Verifier, VerifyError};
