//! `tag`: tags on the instance, with the response's marker tags.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Check, Context, Declare, OnFailure, PlanError, PlanInput, StepSpec, check_tags};
use crate::tags;

/// `tag` as playbooks write it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[schemars(rename = "TagParams")]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Tags to set on the instance (values may use placeholders). The response's own
    /// marker tags are always added.
    pub tags: BTreeMap<String, String>,
    /// What to do when this step fails (default: continue).
    pub on_failure: Option<OnFailure>,
}

/// The tags the executor writes on the instance (`CreateTags` overwrites: idempotent).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Planned {
    /// The instance.
    pub instance_id: String,
    /// The marker tags and the playbook's own, placeholders filled.
    pub tags: BTreeMap<String, String>,
}

impl super::Instruction for Planned {
    fn instance(&self) -> &str {
        &self.instance_id
    }
}

impl Declare for Params {
    const SPEC: StepSpec = StepSpec {
        name: "tag",
        summary: "Tag the instance.",
        destructive: false,
        reversible: true,
        once: false,
        needs_instance: true,
        needs_live_instance: false,
        evidence: false,
        needs_evidence: false,
        describes_instance: false,
        ends_instance: false,
        default_on_failure: OnFailure::Continue,
        // The markers and the playbooks' own keys (`PlaybookTagKeys` in the
        // templates: `responder permissions` lists them), no other.
        iam_actions: &[
            super::Iam::on("ec2:CreateTags", &[super::Resource::Instance]).when(&[
                super::iam::TAG_KEYS_SENT,
                super::iam::ONLY_PLAYBOOK_TAG_KEYS,
            ]),
        ],
    };
    type Planned = Planned;

    fn on_failure(&self) -> Option<OnFailure> {
        self.on_failure
    }

    fn plan(&self, input: &PlanInput<'_>) -> Result<Planned, PlanError> {
        let mut tags = tags::markers(input.finding, input.playbook);
        tags.extend(input.render_tags(Self::SPEC.name, &self.tags)?);
        Ok(Planned {
            instance_id: input.instance_id(),
            tags,
        })
    }

    fn validate(&self, _context: &Context<'_>) -> Vec<Check> {
        check_tags(&self.tags)
    }
}

/// The keys the `tag` steps among `steps` write besides the markers, sorted, each once:
/// what the deployment templates' `PlaybookTagKeys` parameter lists (the instance
/// grant of this step allows only these and the responder's own keys).
pub fn playbook_keys<'a>(steps: impl IntoIterator<Item = &'a super::Step>) -> BTreeSet<String> {
    steps
        .into_iter()
        .filter_map(|s| match s {
            super::Step::Tag(p) => Some(p.tags.keys().cloned()),
            _ => None,
        })
        .flatten()
        .collect()
}

impl fmt::Display for Planned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tags: Vec<String> = self.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        write!(f, "{}: {}", self.instance_id, tags.join(", "))
    }
}
