//! The playbook file format: what a finding must look like (criteria, in
//! [`crate::matcher::criteria`]), and what to do about it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use crate::diagnostic::Acknowledgement;
use crate::matcher::criteria::Criteria;
use crate::steps::Step;

/// One playbook: a file in `playbooks/`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Playbook {
    /// Unique name, used in reports, tags and test cases.
    #[schemars(with = "String", regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"))]
    pub name: Spanned<String>,
    /// What the playbook is for, for people.
    #[serde(default)]
    pub description: Option<String>,
    /// Higher wins when several playbooks match one finding (default 0).
    #[serde(default)]
    pub priority: i32,
    /// `enforce` acts; `dry-run` (the default) only plans and reports.
    #[serde(default)]
    pub mode: Mode,
    /// Criteria a finding must meet, all of them.
    #[serde(rename = "match")]
    #[schemars(with = "Criteria")]
    pub matches: Spanned<Criteria>,
    /// Findings meeting any of these criteria blocks are left alone.
    #[serde(default)]
    #[schemars(with = "Vec<Criteria>")]
    pub exclude: Vec<Spanned<Criteria>>,
    /// Let archived findings match even though the playbook has destructive steps.
    #[serde(default)]
    pub include_archived: bool,
    /// Validation warnings the author has considered and accepts.
    #[serde(default)]
    pub acknowledge: Vec<Acknowledgement>,
    /// Bounds on how much this playbook may destroy.
    #[serde(default)]
    pub limits: Limits,
    /// The steps, in order. `isolate` always runs first when present.
    #[schemars(with = "Vec<Step>", length(min = 1))]
    pub steps: Spanned<Vec<Spanned<Step>>>,
}

impl Playbook {
    /// The playbook's name.
    pub fn name(&self) -> &str {
        &self.name.value
    }

    /// True when any step changes or removes the instance or its access.
    pub fn is_destructive(&self) -> bool {
        self.steps.value.iter().any(|s| s.value.spec().destructive)
    }
}

/// Bounds on a playbook's destructive responses, beside the deployment's
/// `MAX_DESTRUCTIVE_PER_HOUR`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// At most this many responses of this playbook per hour take steps that cannot
    /// be undone (terminate, stop, relaunch, revoke); past it, responses keep their
    /// reversible steps (isolate, snapshot, tag, notify) and say what was withheld.
    /// Counted in the ledger, across every container and delivery.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub max_per_hour: Option<u32>,
    /// An attack sequence (`AttackSequence:EC2/...`) is answered on at most this
    /// many of its instances, in instance id order (1 to 100; default
    /// [`DEFAULT_MAX_INSTANCES`]); the plan lists the others as not answered.
    #[serde(default)]
    #[schemars(range(min = 1, max = 100))]
    pub max_instances: Option<u32>,
}

/// Instances of an attack sequence answered when the playbook sets no
/// `limits.max_instances`: a sequence is a correlation, and each member answered
/// counts against the blast-radius budget anyway.
pub const DEFAULT_MAX_INSTANCES: u32 = 10;

/// The largest `limits.max_instances` accepted.
pub const MAX_MAX_INSTANCES: u32 = 100;

impl Limits {
    /// `max_instances`, or its default.
    pub fn max_instances(&self) -> u32 {
        self.max_instances.unwrap_or(DEFAULT_MAX_INSTANCES)
    }
}

/// Whether a playbook acts or only reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Plan and report only; against an API, every call is made with `DryRun=true`.
    #[default]
    DryRun,
    /// Act.
    Enforce,
}

impl Mode {
    /// `enforce` or `dry-run`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::DryRun => "dry-run",
            Mode::Enforce => "enforce",
        }
    }
}
