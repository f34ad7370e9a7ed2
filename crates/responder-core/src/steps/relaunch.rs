//! `relaunch`: a clean, hardened replacement for the instance: from its launch
//! template, by its Auto Scaling group, or as a copy of its configuration.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Check, Context, Declare, OnFailure, PlanError, PlanInput, StepSpec, check_tags};
use crate::finding::Instance;
use crate::tags;

/// `relaunch` as playbooks write it.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[schemars(rename = "RelaunchParams")]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Where the replacement's configuration comes from.
    pub source: Source,
    /// IMDS token setting; `required` (IMDSv2 only) unless asked otherwise.
    pub metadata_tokens: MetadataTokens,
    /// Give the replacement a public IP (default: no).
    pub associate_public_ip: bool,
    /// Override the instance type.
    pub instance_type: Option<String>,
    /// Copy the compromised instance's own tags (not `aws:` ones) to the replacement.
    pub copy_tags: bool,
    /// Extra tags on the replacement.
    pub tags: BTreeMap<String, String>,
    /// What to do when this step fails (default: abort).
    pub on_failure: Option<OnFailure>,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            source: Source::Auto,
            metadata_tokens: MetadataTokens::Required,
            associate_public_ip: false,
            instance_type: None,
            copy_tags: true,
            tags: BTreeMap::new(),
            on_failure: None,
        }
    }
}

/// Where a replacement's configuration comes from, as playbooks write it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(rename = "RelaunchSource")]
pub enum Source {
    /// Launch template if the instance has one, else its Auto Scaling group, else a clone.
    #[default]
    Auto,
    /// The instance's launch template (tag `aws:ec2launchtemplate:id`).
    LaunchTemplate,
    /// Let the instance's Auto Scaling group replace it.
    AutoScalingGroup,
    /// Copy the configuration: AMI, type, subnet, original groups, profile, key, tags.
    Clone,
}

/// Instance metadata service token setting of a replacement.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum MetadataTokens {
    /// IMDSv2 only (hardened default).
    #[default]
    Required,
    /// IMDSv1 allowed.
    Optional,
}

/// Where the replacement comes from, resolved once, here, from the finding's instance
/// (its `aws:` tags, which only AWS services can set). The executor does not resolve
/// it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ReplacementSource {
    /// `RunInstances` from this launch template; null when the playbook asked for the
    /// launch template and the finding names none (the step then fails).
    LaunchTemplate {
        /// The template id.
        launch_template_id: Option<String>,
    },
    /// Nothing launched: the Auto Scaling group replaces the instance itself.
    AutoScalingGroup {
        /// The group's name, when the finding names it.
        auto_scaling_group: Option<String>,
    },
    /// `RunInstances` with the live instance's AMI, type, primary subnet, recorded
    /// original groups, instance profile and key pair.
    Clone,
}

/// The replacement the executor launches, unless one tagged as replacing this
/// instance for this finding already runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Planned {
    /// The instance being replaced.
    pub instance_id: String,
    /// Where the configuration comes from.
    pub source: ReplacementSource,
    /// `RunInstances` idempotency token: the same finding and instance never launch twice.
    pub client_token: String,
    /// IMDS token setting of the replacement.
    pub metadata_tokens: MetadataTokens,
    /// Whether the replacement's primary interface gets a public IP.
    pub associate_public_ip: bool,
    /// Instance type override (a clone otherwise keeps the instance's type).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    /// Copy the live instance's own tags (not `aws:` nor the responder's).
    pub copy_tags: bool,
    /// Tags on the replacement: the markers, `replaces`, and the playbook's own.
    pub tags: BTreeMap<String, String>,
}

impl super::Instruction for Planned {
    fn instance(&self) -> &str {
        &self.instance_id
    }
}

impl Declare for Params {
    const SPEC: StepSpec = StepSpec {
        name: "relaunch",
        summary: "Launch a clean, hardened replacement.",
        destructive: true,
        reversible: false,
        once: true,
        needs_instance: true,
        needs_live_instance: false,
        evidence: false,
        needs_evidence: true,
        describes_instance: false,
        ends_instance: false,
        default_on_failure: OnFailure::Abort,
        iam_actions: &[
            super::Iam::read("ec2:DescribeInstances"),
            // Only instances launched with the `replaces` marker (the request tags are
            // in the context of the instance, which every launch needs); what it is
            // launched from and into carries no condition.
            super::Iam::on("ec2:RunInstances", &[super::Resource::Instance])
                .when(&[super::iam::LAUNCHES_REPLACEMENT]),
            super::Iam::on(
                "ec2:RunInstances",
                &[
                    super::Resource::NetworkInterface,
                    super::Resource::Volume,
                    super::Resource::Subnet,
                    super::Resource::SecurityGroup,
                    super::Resource::LaunchTemplate,
                    super::Resource::KeyPair,
                    super::Resource::Image,
                    // The AMI's (or the launch template's) snapshots.
                    super::Resource::Snapshot,
                ],
            ),
            // The replacement's tags, and a launch template's tags on its volumes
            // and network interfaces, as they are created.
            super::Iam::on(
                "ec2:CreateTags",
                &[
                    super::Resource::Instance,
                    super::Resource::Volume,
                    super::Resource::NetworkInterface,
                ],
            )
            .when(&[super::iam::created_by(&["RunInstances"])]),
            // Volumes under a customer managed key: EC2's grant on the keys the
            // deployment lists (none by default).
            super::Iam::on("kms:CreateGrant", &[super::Resource::EbsKey])
                .when(&[super::iam::GRANT_FOR_AWS_RESOURCE]),
            // A twin launch of a concurrent delivery.
            super::Iam::on("ec2:TerminateInstances", &[super::Resource::Instance]),
            // Only the instance roles the deployment lists, to EC2 only.
            super::Iam::on("iam:PassRole", &[super::Resource::InstanceRole])
                .when(&[super::iam::PASSED_TO_EC2]),
        ],
    };
    type Planned = Planned;

    fn on_failure(&self) -> Option<OnFailure> {
        self.on_failure
    }

    fn plan(&self, input: &PlanInput<'_>) -> Result<Planned, PlanError> {
        let instance_id = input.instance_id();
        let mut tags = tags::markers(input.finding, input.playbook);
        tags.insert(tags::REPLACES.to_owned(), instance_id.clone());
        tags.extend(input.render_tags(Self::SPEC.name, &self.tags)?);
        Ok(Planned {
            client_token: client_token(&input.finding.id, &instance_id),
            source: resolve(self.source, input.instance),
            instance_id,
            metadata_tokens: self.metadata_tokens,
            associate_public_ip: self.associate_public_ip,
            instance_type: self.instance_type.clone(),
            copy_tags: self.copy_tags,
            tags,
        })
    }

    fn validate(&self, context: &Context<'_>) -> Vec<Check> {
        let mut out = check_tags(&self.tags);
        // The planner launches the replacement before a terminate, wherever the
        // playbook writes it, so that a failed launch never leaves fewer instances.
        if !context.after("terminate") && !context.after("stop") && !context.before("terminate") {
            out.push(Check::error(
                "relaunch without a terminate or an earlier stop would run the replacement beside the compromised instance for good",
            ));
        }
        out
    }
}

fn resolve(source: Source, instance: Option<&Instance>) -> ReplacementSource {
    let template = instance.and_then(|i| i.tag(tags::LAUNCH_TEMPLATE));
    let group = instance.and_then(|i| i.tag(tags::AUTO_SCALING_GROUP));
    match source {
        Source::LaunchTemplate => ReplacementSource::LaunchTemplate {
            launch_template_id: template,
        },
        Source::AutoScalingGroup => ReplacementSource::AutoScalingGroup {
            auto_scaling_group: group,
        },
        Source::Clone => ReplacementSource::Clone,
        Source::Auto => match (template, group) {
            (Some(t), _) => ReplacementSource::LaunchTemplate {
                launch_template_id: Some(t),
            },
            (None, Some(g)) => ReplacementSource::AutoScalingGroup {
                auto_scaling_group: Some(g),
            },
            (None, None) => ReplacementSource::Clone,
        },
    }
}

/// The idempotency token of a replacement: the same finding and instance always
/// give the same token (at most 64 ASCII characters, as EC2 requires).
pub fn client_token(finding_id: &str, instance_id: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::new()
        .chain_update(finding_id)
        .chain_update("\n")
        .chain_update(instance_id)
        .finalize();
    // Written digit by digit: `format!` per byte was 8 % of planning a small finding.
    let mut token = String::with_capacity(4 + 48);
    token.push_str("gdr-");
    for b in digest.iter().take(24) {
        token.push(char::from(HEX[usize::from(b >> 4)]));
        token.push(char::from(HEX[usize::from(b & 15)]));
    }
    token
}

impl fmt::Display for Planned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "replace {} ", self.instance_id)?;
        match &self.source {
            ReplacementSource::LaunchTemplate {
                launch_template_id: Some(t),
            } => write!(f, "from launch template {t}")?,
            ReplacementSource::LaunchTemplate { .. } => {
                f.write_str("from its launch template (the finding names none: fails)")?
            }
            ReplacementSource::AutoScalingGroup { auto_scaling_group } => write!(
                f,
                "by Auto Scaling group {} (nothing launched here)",
                auto_scaling_group.as_deref().unwrap_or("(unnamed)")
            )?,
            ReplacementSource::Clone => f.write_str("as a clone of its configuration")?,
        }
        write!(
            f,
            ", IMDSv2 {}, {}",
            match self.metadata_tokens {
                MetadataTokens::Required => "required",
                MetadataTokens::Optional => "optional",
            },
            if self.associate_public_ip {
                "public IP"
            } else {
                "no public IP"
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_token_is_stable_and_short() {
        let a = client_token("f1", "i-1");
        assert_eq!(a, client_token("f1", "i-1"));
        assert_ne!(a, client_token("f1", "i-2"));
        assert_ne!(a, client_token("f2", "i-1"));
        assert!(a.len() <= 64 && a.is_ascii());
    }
}
