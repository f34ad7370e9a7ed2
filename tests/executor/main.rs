//! The executor against moto: every step, the two seed cases with the shipped
//! playbooks, redelivery (sequential and concurrent), dry runs and vanished
//! instances. Each test has its own moto account and asserts on the state read back
//! from moto, not only on the report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod block_remote_ip;
mod common;
mod dry_run;
mod faults;
mod redelivery;
mod shipped;
mod steps;
mod trust_races;
mod vanished;
