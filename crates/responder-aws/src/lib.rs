//! Answers guardduty-responder findings through the GuardDuty, EC2, Auto Scaling,
//! ELB, SNS and DynamoDB APIs: the only crate of the project that calls AWS.
//!
//! [`responder::Responder::answer`] is the whole answer to an event's finding:
//! verification against GuardDuty, the plan (from `responder-core`) made from
//! GuardDuty's copy, the blast-radius budget, then [`Executor::respond_with`], which
//! carries out the plan's steps, field for field, returning a [`report::Report`].
//! Isolation runs first and fast; the ledger claims each step that must run once and
//! keeps the undo state; every step also checks the live state it would create, so a
//! redelivered event takes each action once; a failed step stops the destructive ones
//! after it, and the report says so.
//!
//! Modules, each importing only those listed before it: [`report`], `call` (AWS
//! errors), [`clients`], [`accounts`] (clients per account and region: the
//! member role assumed, cached until its credentials expire), [`ledger`] (the responder's own record in DynamoDB: step
//! claims, undo state, the blast-radius budget), [`verify`] (GetFindings before
//! acting), [`console`] (the console's calls for the CLI: findings, saved filters,
//! archive), `tagging`, `instance` (the live view), `context` (one response's state),
//! `steps` (one module per step), `executor`, [`responder`] (verify, plan, budget,
//! execute: the whole answer to one finding), [`deployment`] (every deployment
//! setting declared once, read from the function's environment or the CLI's flags,
//! checked by one validator, and the one builder of a `Responder` from them).

pub mod accounts;
mod call;
pub mod clients;
pub mod console;
mod context;
pub mod deployment;
mod executor;
pub mod expire;
mod instance;
pub mod ledger;
pub mod render;
pub mod report;
pub mod responder;
mod steps;
mod tagging;
pub mod verify;

pub use accounts::{AccountError, AccountReason, AccountSettings, ClientPool};
/// The SDK configuration the clients are built from (for callers without an SDK
/// dependency of their own, such as the CLI).
pub use aws_config::SdkConfig;
pub use call::CallError;
pub use clients::Clients;
pub use context::ExecOptions;
pub use executor::{
    Executor, FUNCTION_TIMEOUT, LEASE, LEASE_MARGIN, Prefetch, Response, Withhold, WithholdScope,
    claim_lease,
};
pub use report::{Outcome, Report, Status, StepReport};
pub use verify::{DetectorSource, RetryPolicy, Verification, Verifier, VerifyError};
