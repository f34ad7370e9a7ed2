//! Steps as playbooks name them, with their parameters and defaults.
//!
//! Written as a list of single-key maps: `- isolate: {cut_connections: true}`;
//! `- terminate: {}` takes every default.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What happens to the rest of the response when a step fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OnFailure {
    /// Stop: no later step runs, and the response is an error.
    Abort,
    /// Record the failure and go on; the response is still an error at the end.
    Continue,
}

/// One step of a playbook.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// Cut the instance off the network: every ENI into a quarantine group with no rules.
    Isolate(IsolateParams),
    /// Snapshot every EBS volume of the instance (evidence).
    Snapshot(SnapshotParams),
    /// Terminate the instance.
    Terminate(TerminateParams),
    /// Launch a clean, hardened replacement.
    Relaunch(RelaunchParams),
    /// Tag the instance.
    Tag(TagParams),
    /// Enable termination protection and set shutdown behaviour to stop.
    Protect(ProtectParams),
    /// Detach the instance from its Auto Scaling group.
    DetachFromAsg(DetachFromAsgParams),
    /// Deregister the instance from every load-balancer target group.
    DeregisterFromTargetGroups(CommonParams),
    /// Remove the instance's IAM instance profile (its credentials).
    RevokeInstanceProfile(CommonParams),
    /// Keep the instance's console output in the report.
    CaptureConsoleOutput(CaptureConsoleOutputParams),
    /// Stop the instance (memory is lost; disks are kept).
    Stop(StopParams),
    /// Undo an isolation and a profile revocation from the recorded state.
    Release(CommonParams),
    /// Archive the finding in GuardDuty after the response.
    ArchiveFinding(CommonParams),
    /// Publish the report to an SNS topic.
    Notify(NotifyParams),
}

/// The step names, in the order of [`Step`]'s variants.
pub const STEP_NAMES: &[&str] = &[
    "isolate",
    "snapshot",
    "terminate",
    "relaunch",
    "tag",
    "protect",
    "detach-from-asg",
    "deregister-from-target-groups",
    "revoke-instance-profile",
    "capture-console-output",
    "stop",
    "release",
    "archive-finding",
    "notify",
];

impl Step {
    /// The step's name as written in playbooks.
    pub fn name(&self) -> &'static str {
        match self {
            Step::Isolate(_) => "isolate",
            Step::Snapshot(_) => "snapshot",
            Step::Terminate(_) => "terminate",
            Step::Relaunch(_) => "relaunch",
            Step::Tag(_) => "tag",
            Step::Protect(_) => "protect",
            Step::DetachFromAsg(_) => "detach-from-asg",
            Step::DeregisterFromTargetGroups(_) => "deregister-from-target-groups",
            Step::RevokeInstanceProfile(_) => "revoke-instance-profile",
            Step::CaptureConsoleOutput(_) => "capture-console-output",
            Step::Stop(_) => "stop",
            Step::Release(_) => "release",
            Step::ArchiveFinding(_) => "archive-finding",
            Step::Notify(_) => "notify",
        }
    }

    /// True when the step changes or removes the instance, its network or its access.
    pub fn is_destructive(&self) -> bool {
        matches!(
            self,
            Step::Isolate(_)
                | Step::Terminate(_)
                | Step::Relaunch(_)
                | Step::Protect(_)
                | Step::DetachFromAsg(_)
                | Step::DeregisterFromTargetGroups(_)
                | Step::RevokeInstanceProfile(_)
                | Step::Stop(_)
                | Step::Release(_)
        )
    }

    /// True when the step acts on an EC2 instance (needs one in the finding).
    pub fn needs_instance(&self) -> bool {
        !matches!(self, Step::ArchiveFinding(_) | Step::Notify(_))
    }

    /// The failure policy: as written, or the step's default (abort for steps that
    /// guard later destructive ones, continue for bookkeeping).
    pub fn on_failure(&self) -> OnFailure {
        let (written, default) = match self {
            Step::Isolate(p) => (p.on_failure, OnFailure::Abort),
            Step::Snapshot(p) => (p.on_failure, OnFailure::Abort),
            Step::Terminate(p) => (p.on_failure, OnFailure::Abort),
            Step::Relaunch(p) => (p.on_failure, OnFailure::Abort),
            Step::Tag(p) => (p.on_failure, OnFailure::Continue),
            Step::Protect(p) => (p.on_failure, OnFailure::Abort),
            Step::DetachFromAsg(p) => (p.on_failure, OnFailure::Abort),
            Step::DeregisterFromTargetGroups(p) => (p.on_failure, OnFailure::Abort),
            Step::RevokeInstanceProfile(p) => (p.on_failure, OnFailure::Abort),
            Step::CaptureConsoleOutput(p) => (p.on_failure, OnFailure::Continue),
            Step::Stop(p) => (p.on_failure, OnFailure::Abort),
            Step::Release(p) => (p.on_failure, OnFailure::Abort),
            Step::ArchiveFinding(p) => (p.on_failure, OnFailure::Continue),
            Step::Notify(p) => (p.on_failure, OnFailure::Continue),
        };
        written.unwrap_or(default)
    }
}

/// Parameters every step takes.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommonParams {
    /// What to do when this step fails (default depends on the step).
    #[serde(default)]
    pub on_failure: Option<OnFailure>,
}

/// Default quarantine group name.
pub const DEFAULT_QUARANTINE_GROUP: &str = "guardduty-responder-quarantine";
/// Default connection-cutting ("untrack") group name.
pub const DEFAULT_UNTRACK_GROUP: &str = "guardduty-responder-untrack";

/// `isolate`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct IsolateParams {
    /// Name of the quarantine group (one per VPC, no rules), found or created.
    #[schemars(length(min = 1, max = 255))]
    pub quarantine_group: String,
    /// Cut tracked connections too: move every ENI through an all-open "untrack"
    /// group first, so that existing flows are untracked and die on the swap.
    pub cut_connections: bool,
    /// Name of the untrack group.
    #[schemars(length(min = 1, max = 255))]
    pub untrack_group: String,
    /// Shorten the connection-tracking idle timeouts of every ENI (Nitro only).
    pub connection_tracking: Option<ConnectionTracking>,
    /// Also deny all traffic with a network ACL on the subnet. Affects every
    /// instance in the subnet: opt-in only.
    pub network_acl: bool,
    /// Allow ingress to the quarantine group from forensics hosts.
    pub forensics_ingress: Option<ForensicsIngress>,
    /// What to do when this step fails (default: abort).
    pub on_failure: Option<OnFailure>,
}

impl Default for IsolateParams {
    fn default() -> Self {
        IsolateParams {
            quarantine_group: DEFAULT_QUARANTINE_GROUP.to_owned(),
            cut_connections: true,
            untrack_group: DEFAULT_UNTRACK_GROUP.to_owned(),
            connection_tracking: None,
            network_acl: false,
            forensics_ingress: None,
            on_failure: None,
        }
    }
}

/// Idle timeouts in seconds for an ENI's tracked connections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionTracking {
    /// Established TCP connections (60 to 432000; AWS default 432000).
    #[schemars(range(min = 60, max = 432_000))]
    pub tcp_established_timeout: Option<u32>,
    /// UDP flows seen in one direction (30 to 60).
    #[schemars(range(min = 30, max = 60))]
    pub udp_timeout: Option<u32>,
    /// UDP streams (60 to 180).
    #[schemars(range(min = 60, max = 180))]
    pub udp_stream_timeout: Option<u32>,
}

/// Where forensics traffic may come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ForensicsIngress {
    /// A security group of the forensics hosts.
    #[serde(default)]
    pub security_group_id: Option<String>,
    /// CIDR blocks of the forensics hosts.
    #[serde(default)]
    pub cidrs: Vec<String>,
    /// TCP ports to open (default 22).
    #[serde(default = "default_forensics_ports")]
    pub ports: Vec<u16>,
}

fn default_forensics_ports() -> Vec<u16> {
    vec![22]
}

/// `snapshot`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SnapshotParams {
    /// Wait until the snapshots complete before the next step.
    pub wait: bool,
    /// Upper bound on that wait, in seconds.
    #[schemars(range(min = 1, max = 3600))]
    pub wait_timeout_seconds: u32,
    /// Set `DeleteOnTermination=false` on every volume first, so a terminate keeps them.
    pub preserve_volumes: bool,
    /// Extra tags on the snapshots (values may use `{finding.id}` and other placeholders).
    pub tags: BTreeMap<String, String>,
    /// What to do when this step fails (default: abort).
    pub on_failure: Option<OnFailure>,
}

impl Default for SnapshotParams {
    fn default() -> Self {
        SnapshotParams {
            wait: false,
            wait_timeout_seconds: 600,
            preserve_volumes: true,
            tags: BTreeMap::new(),
            on_failure: None,
        }
    }
}

/// `terminate`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TerminateParams {
    /// Lift termination protection first. Without it, a protected instance stays.
    pub lift_termination_protection: bool,
    /// What to do when this step fails (default: abort).
    pub on_failure: Option<OnFailure>,
}

/// Where a replacement's configuration comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RelaunchSource {
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

/// `relaunch`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RelaunchParams {
    /// Where the replacement's configuration comes from.
    pub source: RelaunchSource,
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

impl Default for RelaunchParams {
    fn default() -> Self {
        RelaunchParams {
            source: RelaunchSource::Auto,
            metadata_tokens: MetadataTokens::Required,
            associate_public_ip: false,
            instance_type: None,
            copy_tags: true,
            tags: BTreeMap::new(),
            on_failure: None,
        }
    }
}

/// `tag`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TagParams {
    /// Tags to set on the instance (values may use placeholders). The response's own
    /// marker tags are always added.
    pub tags: BTreeMap<String, String>,
    /// What to do when this step fails (default: continue).
    pub on_failure: Option<OnFailure>,
}

/// `protect`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ProtectParams {
    /// Enable termination protection.
    pub termination: bool,
    /// Set instance-initiated shutdown behaviour to `stop` (not `terminate`).
    pub shutdown_behavior_stop: bool,
    /// What to do when this step fails (default: abort).
    pub on_failure: Option<OnFailure>,
}

impl Default for ProtectParams {
    fn default() -> Self {
        ProtectParams {
            termination: true,
            shutdown_behavior_stop: true,
            on_failure: None,
        }
    }
}

/// `detach-from-asg`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DetachFromAsgParams {
    /// Lower the group's desired capacity (default: no, so the group launches a replacement).
    pub decrement_desired_capacity: bool,
    /// What to do when this step fails (default: abort).
    pub on_failure: Option<OnFailure>,
}

/// `capture-console-output`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CaptureConsoleOutputParams {
    /// Ask for the latest output (Nitro) rather than the buffered one.
    pub latest: bool,
    /// What to do when this step fails (default: continue).
    pub on_failure: Option<OnFailure>,
}

impl Default for CaptureConsoleOutputParams {
    fn default() -> Self {
        CaptureConsoleOutputParams {
            latest: true,
            on_failure: None,
        }
    }
}

/// `stop`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct StopParams {
    /// Force the stop (no clean OS shutdown).
    pub force: bool,
    /// What to do when this step fails (default: abort).
    pub on_failure: Option<OnFailure>,
}

/// `notify`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyParams {
    /// SNS topic ARN; default: the deployment's configured topic.
    pub topic_arn: Option<String>,
    /// Message subject (placeholders allowed; cut to 100 characters).
    pub subject: Option<String>,
    /// What to do when this step fails (default: continue).
    pub on_failure: Option<OnFailure>,
}
