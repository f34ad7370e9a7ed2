//! Support for guardduty-responder's cross-crate tests: a moto server per test
//! process, one fresh moto account per test, a realistic fixture (VPC, two security
//! groups, an instance with two ENIs and two volumes and an instance profile), the
//! shipped example findings rewritten to describe it, and read-back helpers for
//! asserting on the state moto holds afterwards, and a fault-injecting proxy for
//! the failures moto cannot produce, and DynamoDB clients that keep DynamoDB's
//! atomicity on moto; and a reader of the deployment templates' IAM policies
//! ([`cfn`], [`iam`]).
//!
//! moto has no GuardDuty findings: [`guardduty::FindingsEndpoint`] is a local
//! GuardDuty REST-JSON endpoint (ListDetectors, GetFindings, ListFindings,
//! Archive/UnarchiveFindings) on 127.0.0.1, on its own thread, holding the detectors
//! and findings a test puts in it, with injectable faults, delayed visibility and
//! call counters. In-process clients come from `FindingsEndpoint::client`; the
//! function binary reaches it through `AWS_ENDPOINT_URL_GUARDDUTY`
//! (`FindingsEndpoint::env`) while EC2 and the rest use `AWS_ENDPOINT_URL` (moto).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod account;
pub mod cfn;
pub mod dynamodb;
pub mod fault;
pub mod finding;
pub mod fixture;
pub mod guardduty;
pub mod iam;
pub mod moto;
pub mod organization;
pub mod playbooks;
pub mod read;
pub mod record;
pub mod settings;
/// The local Runtime API, re-exported for the tests that drive the function binary.
pub mod runtime_api {
    pub use lambda_local::{Answer, NotReady, RuntimeApi, function_command};
}

pub use account::{TestAccount, fresh_account};
pub use fixture::{Fixture, FixtureOptions};
pub use guardduty::FindingsEndpoint;
