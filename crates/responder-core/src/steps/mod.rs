//! The playbook steps: one file per step, named as playbooks write it.
//!
//! Each step file holds everything about its step: the parameters users write
//! (`Params`), its declaration ([`StepSpec`]: name, what kind of step it is, its
//! default failure policy, the IAM actions it needs), its checks on a playbook, and
//! how it is resolved against a finding into the instruction the executor obeys
//! (`Planned`). The list below is the only place the steps are enumerated; the
//! [`Step`] and [`Action`] enums, the names accepted in YAML, the JSON Schema and
//! [`ALL`] are derived from it.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Deserializer, EnumAccess, VariantAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

pub use self::iam::{Iam, Resource};
use crate::diagnostic::{Acknowledgement, Level};
use crate::finding::{Finding, Instance};
use crate::template::{self, TemplateError};

pub mod archive_finding;
pub mod block_remote_ip;
pub mod capture_console_output;
pub mod deregister_from_target_groups;
pub mod detach_from_asg;
pub mod iam;
pub mod isolate;
pub mod notify;
pub mod protect;
pub mod relaunch;
pub mod release;
pub mod revoke_instance_profile;
pub mod scan;
pub mod snapshot;
pub mod stop;
pub mod tag;
pub mod terminate;

/// What happens to the rest of the response when a step fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OnFailure {
    /// Stop: no later step runs, and the response is an error.
    Abort,
    /// Record the failure and go on; the response is still an error at the end.
    Continue,
}

/// Everything the engine and the executor need to know about a step, declared once
/// in the step's file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepSpec {
    /// The name playbooks write (`detach-from-asg`).
    pub name: &'static str,
    /// One sentence for people: the schema's description and `responder permissions`.
    pub summary: &'static str,
    /// Changes or removes the instance, its network or its access. Archived findings
    /// never reach a playbook with such a step unless it opts in.
    pub destructive: bool,
    /// Can be undone (`release`, a tag, an unarchive): past the blast-radius budget a
    /// response keeps its reversible steps and withholds the destructive ones that
    /// are not (terminate, stop, relaunch, revoke).
    pub reversible: bool,
    /// Taken exactly once per finding and instance: with a ledger, the executor
    /// claims the step with a conditional write before running it and records its
    /// outcome after, so concurrent and repeated deliveries never repeat it. Steps
    /// that are idempotent by nature and on the path to isolation (`isolate`, `tag`)
    /// are not claimed: a claim would be one more round trip before isolation.
    pub once: bool,
    /// Acts on the finding's EC2 instance: planning fails for findings without one,
    /// and the executor checks the instance still exists before running it.
    pub needs_instance: bool,
    /// Makes no sense once the instance is terminated: the executor skips it then,
    /// and validation refuses it after a `terminate`.
    pub needs_live_instance: bool,
    /// Keeps evidence: when it fails, the steps that need evidence are withheld.
    pub evidence: bool,
    /// Destroys or replaces the instance: withheld when an evidence step failed.
    pub needs_evidence: bool,
    /// Describes the instance itself, in the same round trip as its first calls
    /// (`isolate`: the describe beside the group lookups): the executor does not
    /// check the instance before it.
    pub describes_instance: bool,
    /// Takes the instance down (`terminate`): once it ran in this response, or a
    /// delivery of the same finding recorded it in the ledger, the instance counts as
    /// taken down by this response (a later `relaunch` replaces it; `isolate` does
    /// not call it gone).
    pub ends_instance: bool,
    /// The failure policy when the playbook does not say.
    pub default_on_failure: OnFailure,
    /// Every IAM action the step may call, each with the resources and conditions
    /// it needs, for `responder permissions` and the deployment templates' policies
    /// (tested statement by statement).
    pub iam_actions: &'static [Iam],
}

/// IAM grants every response needs whatever its steps: the executor describes the
/// instance; verification reads the finding from GuardDuty (`GetFindings`, and
/// `ListDetectors` when no `DETECTOR_ID` is set: neither has a resource-level
/// permission, so both are granted on `*`); the ledger records
/// and claims each step in the stack's table (transactions need no action of their
/// own: DynamoDB authorizes each item of a `TransactWriteItems` as its `PutItem`,
/// `UpdateItem` or `ConditionCheckItem`).
pub const BASE_IAM_ACTIONS: &[Iam] = &[
    Iam::read("ec2:DescribeInstances"),
    Iam::read("guardduty:GetFindings"),
    Iam::read("guardduty:ListDetectors"),
    Iam::on("dynamodb:GetItem", &[Resource::LedgerTable]),
    Iam::on("dynamodb:PutItem", &[Resource::LedgerTable]),
    Iam::on("dynamodb:UpdateItem", &[Resource::LedgerTable]),
    Iam::on("dynamodb:ConditionCheckItem", &[Resource::LedgerTable]),
    Iam::on(
        "dynamodb:Query",
        &[Resource::LedgerTable, Resource::LedgerIndex],
    ),
];

/// The IAM action names a set of steps needs: the base actions and every step's own.
pub fn iam_actions<'a>(specs: impl IntoIterator<Item = &'a StepSpec>) -> BTreeSet<&'static str> {
    iam_grants(specs).iter().map(|g| g.action).collect()
}

/// The IAM grants a set of steps needs, each scope once: the base grants and every
/// step's own, sorted.
pub fn iam_grants<'a>(specs: impl IntoIterator<Item = &'a StepSpec>) -> Vec<Iam> {
    let mut out: BTreeSet<Iam> = BASE_IAM_ACTIONS.iter().copied().collect();
    for spec in specs {
        out.extend(spec.iam_actions.iter().copied());
    }
    out.into_iter().collect()
}

/// A step's parameters, declared by its file.
pub trait Declare: Sized {
    /// The declaration.
    const SPEC: StepSpec;
    /// The resolved instruction.
    type Planned: Instruction;
    /// The failure policy as written, if any.
    fn on_failure(&self) -> Option<OnFailure>;
    /// Resolves the parameters against the finding.
    fn plan(&self, input: &PlanInput<'_>) -> Result<Self::Planned, PlanError>;
    /// Checks on the playbook beyond what the types enforce.
    fn validate(&self, _context: &Context<'_>) -> Vec<Check> {
        Vec::new()
    }
}

/// A step's resolved instruction (its `Planned`), as the executor sees every step.
pub trait Instruction {
    /// The instance the instruction acts on: every step whose spec says
    /// `needs_instance` names it (tested for each step); the others keep this
    /// default. Read through [`Action::instance_id`], which the spec decides.
    fn instance(&self) -> &str {
        ""
    }
}

/// What a step's planning sees.
pub struct PlanInput<'a> {
    /// The finding.
    pub finding: &'a Finding,
    /// The answering playbook's name.
    pub playbook: &'a str,
    /// The finding's instance, present whenever the step's spec says `needs_instance`.
    pub instance: Option<&'a Instance>,
    /// Deployment settings that override playbook parameters.
    pub settings: &'a Settings,
}

impl PlanInput<'_> {
    /// The instance id; empty for steps that do not act on an instance.
    pub fn instance_id(&self) -> String {
        self.instance
            .map(|i| i.instance_id.clone())
            .unwrap_or_default()
    }

    /// A template filled from the finding.
    pub fn render(&self, step: &'static str, text: &str) -> Result<String, PlanError> {
        template::render(text, self.finding, self.playbook)
            .map_err(|source| PlanError::Template { step, source })
    }

    /// Tag values filled from the finding, each cut to AWS's 256-character limit on
    /// tag values (a placeholder such as `{finding.title}` can be longer).
    pub fn render_tags(
        &self,
        step: &'static str,
        tags: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, PlanError> {
        tags.iter()
            .map(|(k, v)| Ok((k.clone(), crate::tags::truncate(&self.render(step, v)?))))
            .collect()
    }
}

/// Deployment settings that override step parameters (isolate's group,
/// archive-finding's detector, block-remote-ip's never-block list), read by each
/// step's planning through [`PlanInput`]. They are inputs of the engine, so
/// `responder plan` with the same settings prints what the Lambda does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// Quarantine group name for every isolate step (the Lambda's `QUARANTINE_GROUP`,
    /// the CLI's `--quarantine-group`).
    pub quarantine_group: Option<String>,
    /// The administrator's detector (the Lambda's `DETECTOR_ID`, the CLI's
    /// `--detector-id`): archive-finding archives there, not in the detector of the
    /// finding's ARN, which in an organization is the member's (only the
    /// administrator may archive member findings).
    pub detector_id: Option<String>,
    /// CIDR blocks no `block-remote-ip` step ever blocks, besides the step's defaults
    /// and the playbook's list (the Lambda's `NEVER_BLOCK_CIDRS`, the CLI's
    /// `--never-block`), canonical (`block_remote_ip::parse_never_block`).
    pub never_block: Vec<String>,
}

/// Why a step, and so the matched playbook, could not be planned for a finding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// An instance step, and the finding names no instance.
    #[error(
        "step {step} needs an EC2 instance and the finding has none (resource type {resource_type})"
    )]
    NoInstance {
        /// The step.
        step: &'static str,
        /// The finding's resource type.
        resource_type: String,
    },
    /// A template could not be filled.
    #[error("step {step}: {source}")]
    Template {
        /// The step.
        step: &'static str,
        /// What is wrong with the template.
        source: TemplateError,
    },
}

/// What a step's checks see of the playbook around it.
pub struct Context<'a> {
    /// The step's position in the file.
    pub index: usize,
    /// The steps written before it.
    pub earlier: Vec<&'a Step>,
    /// The steps written after it.
    pub later: Vec<&'a Step>,
    /// The warnings the playbook acknowledges.
    pub acknowledge: &'a [Acknowledgement],
}

impl Context<'_> {
    /// True when an earlier step has this name.
    pub fn after(&self, name: &str) -> bool {
        self.earlier.iter().any(|s| s.spec().name == name)
    }

    /// True when a later step has this name.
    pub fn before(&self, name: &str) -> bool {
        self.later.iter().any(|s| s.spec().name == name)
    }
}

/// One finding of a step's checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Error or warning.
    pub level: Level,
    /// For people.
    pub message: String,
}

impl Check {
    /// An error.
    pub fn error(message: impl Into<String>) -> Check {
        Check {
            level: Level::Error,
            message: message.into(),
        }
    }

    /// A warning.
    pub fn warning(message: impl Into<String>) -> Check {
        Check {
            level: Level::Warning,
            message: message.into(),
        }
    }
}

/// AWS tag keys are at most this long.
pub const MAX_TAG_KEY_CHARS: usize = 128;

/// Checks a step's own tags: keys that are not the responder's own (`tags::is_reserved`:
/// its marker keys, and `aws:`), that AWS accepts, and values whose every placeholder
/// exists. A playbook that wrote `guardduty-responder:isolated` would forge the marker
/// people and IAM conditions read.
pub fn check_tags(tags: &BTreeMap<String, String>) -> Vec<Check> {
    let mut out = Vec::new();
    for (k, v) in tags {
        if crate::tags::is_reserved(k) {
            out.push(Check::error(format!(
                "tags.{k}: keys starting with {:?} or \"aws:\" are the responder's own records and markers (or AWS's); a playbook cannot write them",
                crate::tags::PREFIX
            )));
        } else if k.trim().is_empty() || k.chars().count() > MAX_TAG_KEY_CHARS {
            out.push(Check::error(format!(
                "tags.{k}: a tag key is 1 to {MAX_TAG_KEY_CHARS} characters"
            )));
        }
        if let Err(e) = template::check(v) {
            out.push(Check::error(format!("tags.{k}: {e}")));
        }
    }
    out
}

/// One resolved step of a plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedStep {
    /// The action and its resolved parameters.
    #[serde(flatten)]
    pub action: Action,
    /// What a failure of this step does to the rest.
    pub on_failure: OnFailure,
}

impl Step {
    /// The step's name as written in playbooks.
    pub fn name(&self) -> &'static str {
        self.spec().name
    }

    /// The failure policy: as written, or the step's default.
    pub fn on_failure(&self) -> OnFailure {
        self.written_on_failure()
            .unwrap_or(self.spec().default_on_failure)
    }

    /// Resolves the step against the finding.
    pub fn plan(&self, input: &PlanInput<'_>) -> Result<PlannedStep, PlanError> {
        Ok(PlannedStep {
            action: self.resolve(input)?,
            on_failure: self.on_failure(),
        })
    }
}

impl Action {
    /// The step's name as written in playbooks.
    pub fn name(&self) -> &'static str {
        self.spec().name
    }
}

/// `{"action": name, ...the planned fields}`.
#[derive(Serialize)]
struct Tagged<'a, T> {
    action: &'static str,
    #[serde(flatten)]
    fields: &'a T,
}

fn step_schema(spec: &StepSpec, params: Schema) -> Value {
    let mut properties = Map::new();
    properties.insert(spec.name.to_owned(), params.to_value());
    let mut object = Map::new();
    object.insert("type".to_owned(), "object".into());
    object.insert("description".to_owned(), spec.summary.into());
    object.insert("properties".to_owned(), Value::Object(properties));
    object.insert("required".to_owned(), Value::Array(vec![spec.name.into()]));
    object.insert("additionalProperties".to_owned(), false.into());
    Value::Object(object)
}

/// Derives the step enums and their trait implementations from the one list of steps.
macro_rules! registry {
    ($($variant:ident => $module:ident),+ $(,)?) => {
        /// One step of a playbook, as written: a single-key map, `- isolate: {}`.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Step {
            $(
                #[doc = concat!("`", stringify!($module), "`: see [`", stringify!($module), "`].")]
                $variant($module::Params),
            )+
        }

        /// A step with every parameter resolved against the finding: the instruction
        /// the executor carries out.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Action {
            $(
                #[doc = concat!("See [`", stringify!($module), "::Planned`].")]
                $variant($module::Planned),
            )+
        }

        /// Every step's declaration, in the order of [`Step`]'s variants.
        pub const ALL: &[&StepSpec] = &[$(&<$module::Params as Declare>::SPEC),+];

        /// The names playbooks may write.
        pub const NAMES: &[&str] = &[$(<$module::Params as Declare>::SPEC.name),+];

        /// The declaration of the step playbooks (and the ledger's records) call
        /// `name`.
        pub fn spec_named(name: &str) -> Option<&'static StepSpec> {
            ALL.iter().copied().find(|s| s.name == name)
        }

        impl Step {
            /// The step's declaration.
            pub fn spec(&self) -> &'static StepSpec {
                match self {
                    $(Step::$variant(_) => &<$module::Params as Declare>::SPEC,)+
                }
            }

            fn written_on_failure(&self) -> Option<OnFailure> {
                match self {
                    $(Step::$variant(p) => p.on_failure(),)+
                }
            }

            fn resolve(&self, input: &PlanInput<'_>) -> Result<Action, PlanError> {
                match self {
                    $(Step::$variant(p) => p.plan(input).map(Action::$variant),)+
                }
            }

            /// The step's own checks on the playbook.
            pub fn validate(&self, context: &Context<'_>) -> Vec<Check> {
                match self {
                    $(Step::$variant(p) => p.validate(context),)+
                }
            }
        }

        impl Action {
            /// The step's declaration.
            pub fn spec(&self) -> &'static StepSpec {
                match self {
                    $(Action::$variant(_) => &<$module::Params as Declare>::SPEC,)+
                }
            }

            /// The instance the step acts on; `None` for the steps whose spec says
            /// they act on none (`needs_instance: false`).
            pub fn instance_id(&self) -> Option<&str> {
                let id = match self {
                    $(Action::$variant(a) => Instruction::instance(a),)+
                };
                self.spec().needs_instance.then_some(id)
            }

            /// One line for people: what the step will do.
            pub fn summary(&self) -> String {
                match self {
                    $(Action::$variant(a) => a.to_string(),)+
                }
            }
        }

        impl Serialize for Action {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                match self {
                    $(Action::$variant(fields) => Tagged {
                        action: <$module::Params as Declare>::SPEC.name,
                        fields,
                    }
                    .serialize(serializer),)+
                }
            }
        }

        impl<'de> Deserialize<'de> for Step {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Step, D::Error> {
                struct StepVisitor;
                impl<'de> Visitor<'de> for StepVisitor {
                    type Value = Step;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a step: a map with one key, the step's name")
                    }
                    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Step, A::Error> {
                        let (name, variant): (Cow<'de, str>, _) = data.variant()?;
                        $(
                            if name == <$module::Params as Declare>::SPEC.name {
                                return variant.newtype_variant().map(Step::$variant);
                            }
                        )+
                        Err(de::Error::unknown_variant(&name, NAMES))
                    }
                }
                deserializer.deserialize_enum("Step", NAMES, StepVisitor)
            }
        }

        impl JsonSchema for Step {
            fn schema_name() -> Cow<'static, str> {
                "Step".into()
            }

            fn json_schema(generator: &mut SchemaGenerator) -> Schema {
                let variants = vec![$(
                    step_schema(
                        &<$module::Params as Declare>::SPEC,
                        generator.subschema_for::<$module::Params>(),
                    ),
                )+];
                let mut object = Map::new();
                object.insert(
                    "description".to_owned(),
                    "One step of a playbook: a map with one key, the step's name.".into(),
                );
                object.insert("oneOf".to_owned(), Value::Array(variants));
                Schema::from(object)
            }
        }
    };
}
registry! {
    Isolate => isolate,
    Snapshot => snapshot,
    Terminate => terminate,
    Relaunch => relaunch,
    Tag => tag,
    Protect => protect,
    DetachFromAsg => detach_from_asg,
    DeregisterFromTargetGroups => deregister_from_target_groups,
    RevokeInstanceProfile => revoke_instance_profile,
    CaptureConsoleOutput => capture_console_output,
    Stop => stop,
    Release => release,
    ArchiveFinding => archive_finding,
    Notify => notify,
    Scan => scan,
    BlockRemoteIp => block_remote_ip,
}
