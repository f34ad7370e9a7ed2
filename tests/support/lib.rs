//! Support for guardduty-responder's cross-crate tests: a moto server per test
//! process, one fresh moto account per test, a realistic fixture (VPC, two security
//! groups, an instance with two ENIs and two volumes and an instance profile), the
//! shipped example findings rewritten to describe it, and read-back helpers for
//! asserting on the state moto holds afterwards, and a fault-injecting proxy for
//! the failures moto cannot produce, and DynamoDB clients that keep DynamoDB's
//! atomicity on moto.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod account;
pub mod dynamodb;
pub mod fault;
pub mod finding;
pub mod fixture;
pub mod moto;
pub mod playbooks;
pub mod read;
/// The local Runtime API, re-exported for the tests that drive the function binary.
pub mod runtime_api {
    pub use lambda_local::{Answer, RuntimeApi, function_command};
}

pub use account::{TestAccount, fresh_account};
pub use fixture::{Fixture, FixtureOptions};
