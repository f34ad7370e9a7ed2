//! guardduty-responder's engine: from a GuardDuty finding to an explained plan of
//! remediation steps, with no AWS call and no clock.
//!
//! The data flow, one module each:
//! [`event`] (bytes to findings) → [`finding`] (typed view) → [`playbook`] (load and
//! validate) → [`matcher`] and [`select`] (which playbook answers, and why) →
//! [`plan`] (ordered steps with resolved parameters, one file per step in
//! [`steps`]). Executing a plan is the
//! `responder-aws` crate's job.

pub mod attributes;
pub mod casing;
pub mod catalogue;
pub mod console;
pub mod coverage;
pub mod diagnostic;
pub mod engine;
pub mod event;
pub mod event_pattern;
pub mod filter;
pub mod finding;
pub mod finding_type;
pub mod ids;
pub mod matcher;
pub mod plan;
pub mod playbook;
pub mod schema;
pub mod select;
pub mod sequence;
pub mod severity;
pub mod steps;
pub mod tags;
pub mod template;
pub mod testcase;
pub mod text;
pub mod timestamp;

pub use engine::Engine;
pub use event::{DecodeError, Findings, decode_bytes, decode_event, decode_value};
pub use finding::Finding;
pub use plan::Plan;
