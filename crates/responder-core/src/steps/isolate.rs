//! `isolate`: every ENI of the instance into a quarantine group with no rules, after a
//! hop through an all-open "untrack" group that ends the tracked connections.

use std::fmt;
use std::net::IpAddr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Check, Context, Declare, OnFailure, PlanError, PlanInput, StepSpec};
use crate::diagnostic::Acknowledgement;

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
    /// The connection-tracking idle timeouts set on every ENI (Nitro only), so that a
    /// tracked flow the moves did not end (an idle reverse shell) expires once idle
    /// that long. Default `true`: the minimums EC2 accepts (TCP established 60 s, UDP
    /// 30 s, UDP stream 60 s). `false` leaves the ENIs' timeouts as they are; a map
    /// sets the timeouts it names, the others at their minimums.
    pub connection_tracking: ConnectionTrackingParam,
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
            connection_tracking: ConnectionTrackingParam::Enabled(true),
            network_acl: false,
            forensics_ingress: None,
            on_failure: None,
        }
    }
}

/// `connection_tracking` as playbooks write it: `true` (the minimums), `false` (leave
/// the ENIs' timeouts alone), or explicit timeouts.
#[derive(Debug, Clone, PartialEq, Eq, JsonSchema)]
#[serde(untagged)]
pub enum ConnectionTrackingParam {
    /// `true`: every timeout at its minimum; `false`: no change to the ENIs.
    Enabled(bool),
    /// Explicit timeouts; the ones not named are set to their minimums.
    Timeouts(ConnectionTracking),
}

impl<'de> Deserialize<'de> for ConnectionTrackingParam {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = ConnectionTrackingParam;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, false, or a map of timeouts (tcp_established_timeout, udp_timeout, udp_stream_timeout)")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(ConnectionTrackingParam::Enabled(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                ConnectionTracking::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(ConnectionTrackingParam::Timeouts)
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl ConnectionTrackingParam {
    /// The timeouts to set, or `None` when the playbook opted out.
    pub fn timeouts(&self) -> Option<Timeouts> {
        match self {
            ConnectionTrackingParam::Enabled(false) => None,
            ConnectionTrackingParam::Enabled(true) => Some(Timeouts::MINIMUMS),
            ConnectionTrackingParam::Timeouts(t) => Some(Timeouts {
                tcp_established_timeout: t
                    .tcp_established_timeout
                    .unwrap_or(Timeouts::MINIMUMS.tcp_established_timeout),
                udp_timeout: t.udp_timeout.unwrap_or(Timeouts::MINIMUMS.udp_timeout),
                udp_stream_timeout: t
                    .udp_stream_timeout
                    .unwrap_or(Timeouts::MINIMUMS.udp_stream_timeout),
            }),
        }
    }
}

/// Idle timeouts in seconds for an ENI's tracked connections, as a playbook names
/// them (each optional: unnamed ones are set to their minimums).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionTracking {
    /// Established TCP connections (60 to 432000; EC2's default is 432000, five days).
    #[schemars(range(min = 60, max = 432_000))]
    pub tcp_established_timeout: Option<u32>,
    /// UDP flows seen in one direction or one request-response (30 to 60; default 30).
    #[schemars(range(min = 30, max = 60))]
    pub udp_timeout: Option<u32>,
    /// UDP streams, more than one request-response (60 to 180; default 180).
    #[schemars(range(min = 60, max = 180))]
    pub udp_stream_timeout: Option<u32>,
}

/// The idle timeouts the executor sets on every ENI (ModifyNetworkInterfaceAttribute's
/// ConnectionTrackingSpecification), every one resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Timeouts {
    /// Idle established TCP connections, seconds.
    pub tcp_established_timeout: u32,
    /// Idle UDP flows seen in one direction or one request-response, seconds.
    pub udp_timeout: u32,
    /// Idle UDP streams, seconds.
    pub udp_stream_timeout: u32,
}

impl Timeouts {
    /// The smallest values EC2 accepts (EC2 API reference,
    /// ConnectionTrackingSpecificationRequest): a dormant tracked flow expires within
    /// a minute.
    pub const MINIMUMS: Timeouts = Timeouts {
        tcp_established_timeout: 60,
        udp_timeout: 30,
        udp_stream_timeout: 60,
    };
}

/// The range EC2 accepts for each timeout: (field, min, max).
const TIMEOUT_RANGES: [(&str, u32, u32); 3] = [
    ("tcp_established_timeout", 60, 432_000),
    ("udp_timeout", 30, 60),
    ("udp_stream_timeout", 60, 180),
];

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
    /// Idle timeouts set on every ENI after the move, or null when the playbook opted
    /// out (`connection_tracking: false`).
    pub connection_tracking: Option<Timeouts>,
    /// Replace the network ACL of every subnet of the instance with a deny-all one.
    pub network_acl: bool,
    /// Ingress kept open on the quarantine group for forensics hosts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forensics_ingress: Option<ForensicsIngress>,
}

impl super::Instruction for Planned {
    fn instance(&self) -> &str {
        &self.instance_id
    }
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
        describes_instance: true,
        ends_instance: false,
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
            // ENIs: their groups and connection tracking only. Into which groups is
            // no condition: release restores the original groups, whichever they are,
            // so a role tag condition here would look like a bound and be none
            // (docs/security.md, limit/move-eni-into-any-group).
            super::Iam::on(
                "ec2:ModifyNetworkInterfaceAttribute",
                &[super::Resource::NetworkInterface],
            )
            .when(&[super::iam::ENI_GROUPS_AND_TRACKING]),
            super::Iam::on(
                "ec2:ModifyNetworkInterfaceAttribute",
                &[super::Resource::SecurityGroup],
            ),
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
            // The swap is authorized on the subnet too; which subnet cannot be scoped
            // (the code swaps only the subnets of the instance's live ENIs).
            super::Iam::on(
                "ec2:ReplaceNetworkAclAssociation",
                &[super::Resource::Subnet],
            ),
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
            connection_tracking: self.connection_tracking.timeouts(),
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
        if let ConnectionTrackingParam::Timeouts(t) = &self.connection_tracking {
            let values = [
                t.tcp_established_timeout,
                t.udp_timeout,
                t.udp_stream_timeout,
            ];
            for ((field, min, max), value) in TIMEOUT_RANGES.iter().zip(values) {
                if let Some(v) = value.filter(|v| !(*min..=*max).contains(v)) {
                    out.push(Check::error(format!(
                        "connection_tracking.{field}: {v} is outside the {min} to {max} seconds EC2 accepts"
                    )));
                }
            }
        }
        if let Some(ingress) = &self.forensics_ingress {
            for cidr in &ingress.cidrs {
                match cidr_prefix(cidr) {
                    None => out.push(Check::error(format!(
                        "forensics_ingress: {cidr:?} is not a CIDR block"
                    ))),
                    Some((v4, prefix)) if prefix < if v4 { MIN_V4_PREFIX } else { MIN_V6_PREFIX } => {
                        out.push(Check::error(format!(
                            "forensics_ingress: {cidr:?} is too wide: the quarantine group would admit \
                             that much of the internet to the compromised instance; name the forensics \
                             hosts (at least /{MIN_V4_PREFIX} for IPv4, /{MIN_V6_PREFIX} for IPv6) or a security group"
                        )))
                    }
                    Some(_) if !context.acknowledge.contains(&Acknowledgement::PublicForensicsIngress)
                        && is_public(cidr) =>
                    {
                        out.push(Check::error(format!(
                            "forensics_ingress: {cidr:?} is public address space: whoever holds an address in it (anyone can rent one in a cloud's public ranges) reaches the compromised instance on ports {:?}; name private forensics hosts, a security group, or acknowledge public-forensics-ingress",
                            ingress.ports
                        )))
                    }
                    Some(_) => {}
                }
            }
            if ingress.cidrs.is_empty() && ingress.security_group_id.is_none() {
                out.push(Check::error(
                    "forensics_ingress needs cidrs or security_group_id",
                ));
            }
        }
        for (field, name) in [
            ("quarantine_group", &self.quarantine_group),
            ("untrack_group", &self.untrack_group),
        ] {
            if let Some(why) = group_name_problem(name) {
                out.push(Check::error(format!("{field} {name:?}: {why}")));
            }
        }
        if self
            .quarantine_group
            .eq_ignore_ascii_case(&self.untrack_group)
        {
            out.push(Check::error(
                "quarantine_group and untrack_group must differ: the untrack group is opened to all traffic",
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
        if let Some(t) = &self.connection_tracking {
            write!(
                f,
                ", idle tracked flows expire after {} s (TCP), {} s (UDP), {} s (UDP streams)",
                t.tcp_established_timeout, t.udp_timeout, t.udp_stream_timeout
            )?;
        }
        if self.network_acl {
            f.write_str(", and a deny-all network ACL on the subnets")?;
        }
        Ok(())
    }
}

/// Narrowest forensics IPv4 prefix length refused: shorter prefixes (0.0.0.0/0, /1 to
/// /7) are a large share of the internet, not a set of forensics hosts.
pub const MIN_V4_PREFIX: u8 = 8;
/// The IPv6 counterpart of [`MIN_V4_PREFIX`] (::/0 to /31; a /32 is one ISP's block).
pub const MIN_V6_PREFIX: u8 = 32;

/// Address space nobody on the internet can hold: private (RFC 1918), shared (CGNAT,
/// 100.64.0.0/10), IPv6 unique local (fc00::/7, EC2's fd00:ec2::/32 included),
/// loopback, link-local and the documentation ranges.
pub const NON_PUBLIC: &[&str] = &[
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "192.0.2.0/24",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "fc00::/7",
    "fe80::/10",
    "::1/128",
    "2001:db8::/32",
];

/// True when the CIDR block is not wholly inside [`NON_PUBLIC`].
fn is_public(cidr: &str) -> bool {
    let Ok(block) = cidr.parse::<super::block_remote_ip::Cidr>() else {
        return true;
    };
    !NON_PUBLIC.iter().any(|n| {
        n.parse::<super::block_remote_ip::Cidr>()
            .is_ok_and(|n| n.prefix <= block.prefix && n.contains(block.addr))
    })
}

/// `Some((is_ipv4, prefix length))` for a CIDR block, `None` for anything else.
fn cidr_prefix(s: &str) -> Option<(bool, u8)> {
    let (ip, prefix) = s.split_once('/')?;
    let ip = ip.parse::<IpAddr>().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = prefix.parse::<u8>().ok().filter(|p| *p <= max)?;
    Some((ip.is_ipv4(), prefix))
}

/// Why a name cannot be one of the responder's groups: `default` (any case) is the
/// VPC's default group, which every instance without other groups is in, and which
/// the responder would then strip of its rules or open to all traffic; EC2 refuses
/// names starting with `sg-`, and such a name points at an existing group anyway.
pub fn group_name_problem(name: &str) -> Option<&'static str> {
    if name.eq_ignore_ascii_case("default") {
        Some(
            "is the VPC's default group, shared by other instances; name a group of the responder's own",
        )
    } else if name.to_ascii_lowercase().starts_with("sg-") {
        Some("EC2 group names cannot start with \"sg-\" (a group id is not a name)")
    } else if name.trim().is_empty() {
        Some("is empty")
    } else {
        None
    }
}
