//! `isolate`: every ENI of the instance into a quarantine group with no rules, after a
//! hop through an all-open "untrack" group that ends the tracked connections.

use std::fmt;
use std::net::IpAddr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Check, Context, Declare, OnFailure, PlanInput, StepSpec};
use crate::plan::PlanError;

/// Default quarantine group name.
pub const DEFAULT_QUARANTINE_GROUP: &str = "guardduty-responder-quarantine";
/// Default connection-cutting ("untrack") group name.
pub const DEFAULT_UNTRACK_GROUP: &str = "guardduty-responder-untrack";

/// `isolate` as playbooks write it.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[schemars(rename = "IsolateParams")]
#[serde(deny_unknown_fields, default)]
pub struct Params {
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

impl Default for Params {
    fn default() -> Self {
        Params {
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

/// The isolation the executor carries out. The groups are found by name in each VPC
/// the instance's ENIs are in (as a live describe shows them), or created there.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Planned {
    /// The instance whose every ENI is isolated.
    pub instance_id: String,
    /// The quarantine group's name in every VPC: after the settings' override.
    pub quarantine_group: String,
    /// The untrack group's name, or null when connections are not cut.
    pub untrack_group: Option<String>,
    /// Idle timeouts set on every ENI after the move.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_tracking: Option<ConnectionTracking>,
    /// Replace the network ACL of every subnet of the instance with a deny-all one.
    pub network_acl: bool,
    /// Ingress kept open on the quarantine group for forensics hosts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forensics_ingress: Option<ForensicsIngress>,
}

impl Declare for Params {
    const SPEC: StepSpec = StepSpec {
        name: "isolate",
        summary: "Cut the instance off the network: every ENI into a quarantine group with no rules.",
        destructive: true,
        reversible: true,
        once: false,
        needs_instance: true,
        needs_live_instance: true,
        evidence: false,
        needs_evidence: false,
        default_on_failure: OnFailure::Abort,
        iam_actions: &[
            super::Iam::read("ec2:DescribeInstances"),
            super::Iam::read("ec2:DescribeSecurityGroups"),
            super::Iam::read("ec2:DescribeNetworkAcls"),
            // Groups: created only as the quarantine or untrack group, tagged only as
            // they are created, configured only when they carry that role tag.
            // (Request tags are in the context of the resources they tag: the VPC
            // side carries no condition, the new group's side does.)
            super::Iam::on("ec2:CreateSecurityGroup", &[super::Resource::SecurityGroup])
                .when(&[super::iam::CREATES_OWN_GROUP]),
            super::Iam::on("ec2:CreateSecurityGroup", &[super::Resource::Vpc]),
            super::Iam::on("ec2:CreateTags", &[super::Resource::SecurityGroup])
                .when(&[super::iam::created_by(&["CreateSecurityGroup"])]),
            super::Iam::on(
                "ec2:AuthorizeSecurityGroupIngress",
                &[super::Resource::SecurityGroup],
            )
            .when(&[super::iam::OWN_GROUP]),
            super::Iam::on(
                "ec2:AuthorizeSecurityGroupEgress",
                &[super::Resource::SecurityGroup],
            )
            .when(&[super::iam::OWN_GROUP]),
            super::Iam::on(
                "ec2:RevokeSecurityGroupIngress",
                &[super::Resource::SecurityGroup],
            )
            .when(&[super::iam::OWN_GROUP]),
            super::Iam::on(
                "ec2:RevokeSecurityGroupEgress",
                &[super::Resource::SecurityGroup],
            )
            .when(&[super::iam::OWN_GROUP]),
            // ENIs: their groups and connection tracking only, and only into the
            // responder's own groups.
            super::Iam::on(
                "ec2:ModifyNetworkInterfaceAttribute",
                &[super::Resource::NetworkInterface],
            )
            .when(&[super::iam::ENI_GROUPS_AND_TRACKING]),
            super::Iam::on(
                "ec2:ModifyNetworkInterfaceAttribute",
                &[super::Resource::SecurityGroup],
            )
            .when(&[super::iam::OWN_GROUP]),
            // The record and markers on the instance: the responder's own keys only.
            super::Iam::on("ec2:CreateTags", &[super::Resource::Instance])
                .when(&[super::iam::TAG_KEYS_SENT, super::iam::ONLY_OWN_TAG_KEYS]),
            // Opt-in subnet deny-all: created as such, swapped in only as such.
            super::Iam::on("ec2:CreateNetworkAcl", &[super::Resource::NetworkAcl])
                .when(&[super::iam::CREATES_DENY_ALL_ACL]),
            super::Iam::on("ec2:CreateNetworkAcl", &[super::Resource::Vpc]),
            super::Iam::on("ec2:CreateTags", &[super::Resource::NetworkAcl])
                .when(&[super::iam::created_by(&["CreateNetworkAcl"])]),
            super::Iam::on(
                "ec2:ReplaceNetworkAclAssociation",
                &[super::Resource::NetworkAcl],
            )
            .when(&[super::iam::OWN_DENY_ALL_ACL]),
        ],
    };
    type Planned = Planned;

    fn on_failure(&self) -> Option<OnFailure> {
        self.on_failure
    }

    fn plan(&self, input: &PlanInput<'_>) -> Result<Planned, PlanError> {
        Ok(Planned {
            instance_id: input.instance_id(),
            quarantine_group: input
                .settings
                .quarantine_group
                .clone()
                .unwrap_or_else(|| self.quarantine_group.clone()),
            untrack_group: self.cut_connections.then(|| self.untrack_group.clone()),
            connection_tracking: self.connection_tracking.clone(),
            network_acl: self.network_acl,
            forensics_ingress: self.forensics_ingress.clone(),
        })
    }

    fn validate(&self, context: &Context<'_>) -> Vec<Check> {
        let mut out = Vec::new();
        if context.index > 0 {
            out.push(Check::warning(
                "isolate always runs first; move it to the top so the file reads as it runs",
            ));
        }
        if self.network_acl {
            out.push(Check::warning(
                "network_acl denies all traffic for every instance in the instance's subnets, not only this one",
            ));
        }
        if let Some(ingress) = &self.forensics_ingress {
            for cidr in &ingress.cidrs {
                if !is_cidr(cidr) {
                    out.push(Check::error(format!(
                        "forensics_ingress: {cidr:?} is not a CIDR block"
                    )));
                }
            }
            if ingress.cidrs.is_empty() && ingress.security_group_id.is_none() {
                out.push(Check::error(
                    "forensics_ingress needs cidrs or security_group_id",
                ));
            }
        }
        if self.quarantine_group == self.untrack_group {
            out.push(Check::error(
                "quarantine_group and untrack_group must differ",
            ));
        }
        out
    }
}

impl fmt::Display for Planned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: every ENI -> {:?} in its VPC",
            self.instance_id, self.quarantine_group
        )?;
        if let Some(untrack) = &self.untrack_group {
            write!(f, ", cutting tracked connections through {untrack:?}")?;
        }
        if self.connection_tracking.is_some() {
            f.write_str(", shorter connection-tracking timeouts")?;
        }
        if self.network_acl {
            f.write_str(", and a deny-all network ACL on the subnets")?;
        }
        Ok(())
    }
}

fn is_cidr(s: &str) -> bool {
    let Some((ip, prefix)) = s.split_once('/') else {
        return false;
    };
    let Ok(ip) = ip.parse::<IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    prefix.parse::<u8>().is_ok_and(|p| p <= max)
}
