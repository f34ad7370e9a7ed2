//! `block-remote-ip`: network ACL deny entries, inbound and outbound, on the subnet
//! of the instance for each remote address of the finding (GuardDuty's verified
//! copy), removed again after `expire_after_hours`.
//!
//! The attacker on the instance chooses which remote address appears in a finding:
//! it can connect to the NAT gateway, the VPC's DNS resolver, a partner or S3 on
//! purpose, so that blocking the "attacker" cuts the whole subnet off from them. So
//! only single addresses are ever blocked (`/32`, `/128`), and never one on the
//! never-block list: the defaults below, the VPC's own CIDR blocks (from a live
//! describe, checked by the executor) and the playbook's `never_block`. Skipped
//! addresses are reported with the reason.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Check, Context, Declare, OnFailure, PlanError, PlanInput, StepSpec};
use crate::diagnostic::Acknowledgement;

/// Default hours before the entries are removed.
pub const DEFAULT_EXPIRE_AFTER_HOURS: u32 = 24;
/// The longest expiry a playbook may ask for (30 days): a deny entry nobody
/// remembers is a subnet outage waiting for the address's next owner.
pub const MAX_EXPIRE_AFTER_HOURS: u32 = 720;
/// The longest expiry accepted without the `long-block-expiry` acknowledgement.
pub const ACKNOWLEDGED_EXPIRE_AFTER_HOURS: u32 = 72;
/// Default bound on the addresses one response blocks: a port probe from hundreds of
/// addresses would otherwise fill the ACL (and each address costs two entries).
pub const DEFAULT_MAX_ADDRESSES: u32 = 5;
/// EC2's default limit of rules per network ACL, per direction and address family.
pub const DEFAULT_ENTRY_LIMIT: u32 = 20;
/// The highest rules-per-ACL quota EC2 grants on request.
pub const MAX_ENTRY_LIMIT: u32 = 40;

/// Never blocked, whatever the playbook says: loopback, unspecified, link-local
/// (the instance metadata service, the Amazon DNS and time servers at
/// 169.254.169.x, and IPv6 link-local), private address space (RFC 1918, the shared
/// CGNAT range 100.64.0.0/10, IPv6 unique local fc00::/7: peered VPCs, on-premises
/// networks, DNS servers of DHCP options, which an instance that floods them would
/// otherwise aim the block at), the EC2 IPv6 service range (fd00:ec2::/32: metadata,
/// DNS, NTP over IPv6), multicast and broadcast. An IPv6 address that carries an
/// IPv4 address ([`embedded_ipv4`]) is never blocked when that address is not. The
/// first range that holds an address is the reason reported.
pub const DEFAULT_NEVER_BLOCK: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "224.0.0.0/4",
    "255.255.255.255/32",
    "::/128",
    "::1/128",
    // Before fc00::/7, which holds it: the reason given is the narrowest range.
    "fd00:ec2::/32",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
];

/// `block-remote-ip` as playbooks write it.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[schemars(rename = "BlockRemoteIpParams")]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Hours until the deny entries are removed (by a scheduled invocation or
    /// `responder expire`), 1 to 720. Default 24.
    #[schemars(range(min = 1, max = 720))]
    pub expire_after_hours: u32,
    /// CIDR blocks never blocked, besides the defaults (loopback, link-local,
    /// fd00:ec2::/32, multicast) and the VPC's own CIDR blocks: your partners, your
    /// on-premises ranges, the public ranges of services the subnet needs.
    pub never_block: Vec<String>,
    /// The most addresses one response blocks (1 to 20, default 5); further ones are
    /// reported as skipped.
    #[schemars(range(min = 1, max = 20))]
    pub max_addresses: u32,
    /// The rules a network ACL may hold per direction and address family (EC2's
    /// quota: 20 by default, up to 40 on request). With no room the step fails and
    /// nobody else's entry is touched.
    #[schemars(range(min = 1, max = 40))]
    pub entry_limit: u32,
    /// What to do when this step fails (default: continue).
    pub on_failure: Option<OnFailure>,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            expire_after_hours: DEFAULT_EXPIRE_AFTER_HOURS,
            never_block: Vec::new(),
            max_addresses: DEFAULT_MAX_ADDRESSES,
            entry_limit: DEFAULT_ENTRY_LIMIT,
            on_failure: None,
        }
    }
}

/// An address the step does not block, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The address as the finding gives it (escaped for display by the report).
    pub address: String,
    /// Why it is not blocked.
    pub reason: String,
}

/// The deny entries the executor creates, and what it must never block.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Planned {
    /// The instance whose subnets' network ACLs get the entries (the subnets a live
    /// describe shows, never the finding's).
    pub instance_id: String,
    /// The single-address CIDR blocks to deny (`/32`, `/128`), inbound and outbound,
    /// in the finding's order.
    pub cidrs: Vec<String>,
    /// Addresses of the finding not blocked, with the reason.
    pub skipped: Vec<Skipped>,
    /// The never-block list (defaults, the deployment's, the playbook's): the
    /// executor checks it again,
    /// together with the live VPC's CIDR blocks.
    pub never_block: Vec<String>,
    /// Hours until the entries are removed.
    pub expire_after_hours: u32,
    /// Rules per direction and address family the ACL may hold.
    pub entry_limit: u32,
}

impl super::Instruction for Planned {
    fn instance(&self) -> &str {
        &self.instance_id
    }
}

/// A CIDR block, IPv4 or IPv6, host bits ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The network address as written.
    pub addr: IpAddr,
    /// The prefix length.
    pub prefix: u8,
}

impl Cidr {
    /// The block of one address: `/32` or `/128`.
    pub fn host(addr: IpAddr) -> Cidr {
        Cidr {
            addr,
            prefix: if addr.is_ipv4() { 32 } else { 128 },
        }
    }

    /// True when `ip` is in the block. An IPv6 address that carries an IPv4 address
    /// ([`embedded_ipv4`]: mapped, compatible, NAT64, 6to4, Teredo) is in an IPv4
    /// block when the address it carries is; otherwise never across address families.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = unmap(ip);
        if let (IpAddr::V4(_), IpAddr::V6(v6)) = (self.addr, ip)
            && let Some(v4) = embedded_ipv4(v6)
        {
            return self.contains(IpAddr::V4(v4));
        }
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        let (ip, prefix) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not a CIDR block (address/prefix)"))?;
        let addr = unmap(
            ip.parse::<IpAddr>()
                .map_err(|_| format!("{s:?}: {ip:?} is not an IP address"))?,
        );
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {max}"))?;
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The IPv4 address an IPv6 address carries to an IPv4 host, in the forms that do:
/// IPv4-mapped (`::ffff:0:0/96`), IPv4-compatible (`::/96`, deprecated), NAT64's
/// well-known prefix (`64:ff9b::/96`, RFC 6052), 6to4 (`2002::/16`, the IPv4 address
/// in bits 16 to 47, RFC 3056) and a Teredo client (`2001::/32`, the last 32 bits
/// inverted, RFC 4380). Traffic to such an address reaches that IPv4 host, so a
/// never-blocked IPv4 address stays never-blocked in each of these forms.
pub fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let n = u128::from(ip);
    let low = Ipv4Addr::from(n as u32);
    let prefix96 = n >> 32;
    let segments = ip.segments();
    // Mapped, compatible, NAT64: the last 32 bits.
    if matches!(prefix96, 0xffff | 0 | 0x0064_ff9b_0000_0000_0000_0000) {
        Some(low)
    } else if segments[0] == 0x2002 {
        Some(Ipv4Addr::from((n >> 80) as u32))
    } else if segments[0] == 0x2001 && segments[1] == 0 {
        Some(Ipv4Addr::from(!(n as u32)))
    } else {
        None
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) as its IPv4 address.
fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// A deployment's never-block list as written (`NEVER_BLOCK_CIDRS`,
/// `--never-block`): CIDR blocks separated by commas or spaces, each in its
/// canonical form; an error names the first block that is not one.
pub fn parse_never_block(text: &str) -> Result<Vec<String>, String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(|c| c.parse::<Cidr>().map(|c| c.to_string()))
        .collect()
}

/// The first never-block block that holds `ip`, if any.
pub fn never_blocked(ip: IpAddr, never_block: &[String]) -> Option<&str> {
    never_block
        .iter()
        .find(|c| c.parse::<Cidr>().is_ok_and(|c| c.contains(ip)))
        .map(String::as_str)
}

impl Declare for Params {
    const SPEC: StepSpec = StepSpec {
        name: "block-remote-ip",
        summary: "Deny the finding's remote addresses (each a /32 or /128, never one on the never-block list or in the VPC) in the network ACL of the instance's subnets, inbound and outbound, until they expire.",
        destructive: true,
        reversible: true,
        once: true,
        needs_instance: true,
        needs_live_instance: true,
        evidence: false,
        needs_evidence: false,
        describes_instance: false,
        ends_instance: false,
        default_on_failure: OnFailure::Continue,
        iam_actions: &[
            super::Iam::read("ec2:DescribeInstances"),
            super::Iam::read("ec2:DescribeNetworkAcls"),
            super::Iam::read("ec2:DescribeVpcs"),
            // Entries are only added (never replaced) and removed by expiry, which
            // deletes only an entry still exactly as the ledger records it.
            super::Iam::on("ec2:CreateNetworkAclEntry", &[super::Resource::NetworkAcl]),
            super::Iam::on("ec2:DeleteNetworkAclEntry", &[super::Resource::NetworkAcl]),
        ],
    };
    type Planned = Planned;

    fn on_failure(&self) -> Option<OnFailure> {
        self.on_failure
    }

    fn plan(&self, input: &PlanInput<'_>) -> Result<Planned, PlanError> {
        let never_block: Vec<String> = DEFAULT_NEVER_BLOCK
            .iter()
            .map(|s| (*s).to_owned())
            .chain(input.settings.never_block.iter().cloned())
            .chain(self.never_block.iter().filter_map(|c| {
                // Validation refuses bad blocks; a planner given one anyway keeps the
                // valid ones, in their canonical form.
                c.parse::<Cidr>().ok().map(|c| c.to_string())
            }))
            .collect();
        let max = usize::try_from(self.max_addresses).unwrap_or(usize::MAX);
        let mut cidrs: Vec<String> = Vec::new();
        let mut skipped = Vec::new();
        for address in &input.finding.remote_ips {
            let reason = match address.trim().parse::<IpAddr>().map(unmap) {
                Err(_) => Some("not an IP address".to_owned()),
                Ok(ip) => match never_blocked(ip, &never_block) {
                    Some(block) => Some(format!("on the never-block list ({block})")),
                    None if cidrs.len() >= max => Some(format!(
                        "over max_addresses ({}): the ACL has room for few entries",
                        self.max_addresses
                    )),
                    None => {
                        let cidr = Cidr::host(ip).to_string();
                        if !cidrs.contains(&cidr) {
                            cidrs.push(cidr);
                        }
                        None
                    }
                },
            };
            if let Some(reason) = reason {
                skipped.push(Skipped {
                    address: address.clone(),
                    reason,
                });
            }
        }
        Ok(Planned {
            instance_id: input.instance_id(),
            cidrs,
            skipped,
            never_block,
            expire_after_hours: self.expire_after_hours,
            entry_limit: self.entry_limit,
        })
    }

    fn validate(&self, context: &Context<'_>) -> Vec<Check> {
        let mut out = Vec::new();
        let acknowledged = |a: Acknowledgement| context.acknowledge.contains(&a);
        if self.max_addresses > DEFAULT_MAX_ADDRESSES
            && self.max_addresses <= DEFAULT_ENTRY_LIMIT
            && !acknowledged(Acknowledgement::ManyBlockedAddresses)
        {
            out.push(Check::error(format!(
                "max_addresses: {} is more than {DEFAULT_MAX_ADDRESSES}: every address costs two of the {DEFAULT_ENTRY_LIMIT} rules per direction of an ACL the whole subnet shares, and the finding's addresses are partly the attacker's choice; acknowledge many-blocked-addresses if you mean it",
                self.max_addresses
            )));
        }
        if self.expire_after_hours > ACKNOWLEDGED_EXPIRE_AFTER_HOURS
            && self.expire_after_hours <= MAX_EXPIRE_AFTER_HOURS
            && !acknowledged(Acknowledgement::LongBlockExpiry)
        {
            out.push(Check::error(format!(
                "expire_after_hours: {} is more than {ACKNOWLEDGED_EXPIRE_AFTER_HOURS}: an address changes hands and the entry outlives its reason; acknowledge long-block-expiry if you mean it",
                self.expire_after_hours
            )));
        }
        if !(1..=MAX_EXPIRE_AFTER_HOURS).contains(&self.expire_after_hours) {
            out.push(Check::error(format!(
                "expire_after_hours: {} is outside 1 to {MAX_EXPIRE_AFTER_HOURS}: a deny entry must expire, and within 30 days",
                self.expire_after_hours
            )));
        }
        if !(1..=DEFAULT_ENTRY_LIMIT).contains(&self.max_addresses) {
            out.push(Check::error(format!(
                "max_addresses: {} is outside 1 to {DEFAULT_ENTRY_LIMIT}",
                self.max_addresses
            )));
        }
        if !(1..=MAX_ENTRY_LIMIT).contains(&self.entry_limit) {
            out.push(Check::error(format!(
                "entry_limit: {} is outside 1 to {MAX_ENTRY_LIMIT} (EC2's rules-per-ACL quota)",
                self.entry_limit
            )));
        }
        for (i, c) in self.never_block.iter().enumerate() {
            if let Err(e) = c.parse::<Cidr>() {
                out.push(Check::error(format!("never_block[{i}]: {e}")));
            }
        }
        out
    }
}

impl fmt::Display for Planned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.cidrs.is_empty() {
            write!(f, "{}: no address to block", self.instance_id)?;
        } else {
            write!(
                f,
                "{}: deny {} in and out in its subnets' network ACLs for {} h",
                self.instance_id,
                self.cidrs.join(", "),
                self.expire_after_hours
            )?;
        }
        for s in &self.skipped {
            write!(
                f,
                "; not {} ({})",
                crate::text::escape(&s.address),
                s.reason
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_parse_and_contain() {
        let c: Cidr = "10.0.0.0/16".parse().unwrap();
        assert!(c.contains("10.0.255.1".parse().unwrap()));
        assert!(!c.contains("10.1.0.1".parse().unwrap()));
        assert!(!c.contains("::1".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("198.51.100.7".parse().unwrap()));
        let v6: Cidr = "fd00:ec2::/32".parse().unwrap();
        assert!(v6.contains("fd00:ec2::254".parse().unwrap()));
        assert!(!v6.contains("2001:db8::1".parse().unwrap()));
        // An IPv4-mapped address is its IPv4 address.
        assert!(c.contains("::ffff:10.0.3.4".parse().unwrap()));
        for bad in ["10.0.0.0", "10.0.0.0/33", "x/8", "::/129", "", "/8"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        assert_eq!(
            Cidr::host("2001:db8::1".parse().unwrap()).to_string(),
            "2001:db8::1/128"
        );
    }

    #[test]
    fn defaults_are_valid_blocks() {
        for c in DEFAULT_NEVER_BLOCK {
            assert!(c.parse::<Cidr>().is_ok(), "{c}");
        }
        let list: Vec<String> = DEFAULT_NEVER_BLOCK.iter().map(|s| s.to_string()).collect();
        for ip in [
            "127.0.0.1",
            "169.254.169.253",
            "fd00:ec2::23",
            "::1",
            "fe80::1",
            "0.0.0.0",
        ] {
            assert!(never_blocked(ip.parse().unwrap(), &list).is_some(), "{ip}");
        }
        assert!(never_blocked("198.51.100.7".parse().unwrap(), &list).is_none());
    }

    #[test]
    fn private_space_and_every_ipv6_form_of_a_never_blocked_address_are_never_blocked() {
        let list: Vec<String> = DEFAULT_NEVER_BLOCK.iter().map(|s| s.to_string()).collect();
        for ip in [
            // RFC 1918, CGNAT, IPv6 unique local.
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.254",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.254",
            "fd12:3456::1",
            // The metadata service, loopback and private addresses inside IPv6.
            "::ffff:169.254.169.254",
            "::169.254.169.254",
            "64:ff9b::169.254.169.254",
            "64:ff9b::10.0.0.2",
            "2002:a9fe:a9fe::1",
            "2002:c0a8:0101:5::9",
            "2001:0:4136:e378:8000:63bf:f5ff:fffd",
            "64:ff9b::127.0.0.1",
        ] {
            let addr: IpAddr = ip.parse().unwrap();
            assert!(never_blocked(addr, &list).is_some(), "{ip}");
        }
        for ip in [
            "198.51.100.7",
            "172.32.0.1",
            "100.128.0.1",
            "64:ff9b::198.51.100.7",
            "2002:c633:6407::1",
            "2001:db8::1",
        ] {
            let addr: IpAddr = ip.parse().unwrap();
            assert!(never_blocked(addr, &list).is_none(), "{ip}");
        }
        // A VPC's own block holds the IPv6 forms of its addresses too.
        let vpc: Cidr = "10.0.0.0/16".parse().unwrap();
        assert!(vpc.contains("64:ff9b::a00:5".parse().unwrap()));
        assert!(vpc.contains("2002:a00:5::1".parse().unwrap()));
        assert!(!vpc.contains("64:ff9b::a01:5".parse().unwrap()));
        assert_eq!(
            embedded_ipv4("2001:0:4136:e378:8000:63bf:f5ff:fffd".parse().unwrap()),
            Some(Ipv4Addr::new(10, 0, 0, 2))
        );
    }

    fn planned(params: &Params, ips: &[&str]) -> Planned {
        let mut finding = crate::finding::Finding::from_value(serde_json::json!({
            "id": "f1", "type": "Backdoor:EC2/C&CActivity.B",
            "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": "i-0123456789abcdef0"}}
        }))
        .unwrap();
        finding.remote_ips = ips.iter().map(|s| s.to_string()).collect();
        let settings = crate::steps::Settings::default();
        let input = PlanInput {
            finding: &finding,
            playbook: "p",
            instance: finding.instance.as_ref(),
            settings: &settings,
        };
        params.plan(&input).unwrap()
    }

    #[test]
    fn plans_single_addresses_and_skips_the_never_block_list() {
        let params = Params {
            never_block: vec!["203.0.113.0/24".to_owned()],
            ..Params::default()
        };
        let p = planned(
            &params,
            &[
                "198.51.100.7",
                "2001:db8::66",
                "169.254.169.254",
                "127.0.0.1",
                "fd00:ec2::254",
                "203.0.113.9",
                "0.0.0.0",
                "not an ip",
                "198.51.100.7",
                "::ffff:198.51.100.8",
            ],
        );
        assert_eq!(p.instance_id, "i-0123456789abcdef0");
        assert_eq!(
            p.cidrs,
            ["198.51.100.7/32", "2001:db8::66/128", "198.51.100.8/32"]
        );
        let skipped: Vec<&str> = p.skipped.iter().map(|s| s.address.as_str()).collect();
        assert_eq!(
            skipped,
            [
                "169.254.169.254",
                "127.0.0.1",
                "fd00:ec2::254",
                "203.0.113.9",
                "0.0.0.0",
                "not an ip"
            ]
        );
        assert!(
            p.skipped[3].reason.contains("203.0.113.0/24"),
            "{:?}",
            p.skipped[3]
        );
        assert!(p.never_block.contains(&"203.0.113.0/24".to_owned()));
        assert_eq!(p.expire_after_hours, DEFAULT_EXPIRE_AFTER_HOURS);
        let line = p.to_string();
        assert!(
            line.contains("deny 198.51.100.7/32, 2001:db8::66/128"),
            "{line}"
        );
        assert!(line.contains("not 169.254.169.254"), "{line}");
    }

    #[test]
    fn the_deployments_list_is_never_blocked_either() {
        assert_eq!(
            parse_never_block(" 198.51.100.0/24, 2001:DB8::/32  192.0.2.1/32,").unwrap(),
            ["198.51.100.0/24", "2001:db8::/32", "192.0.2.1/32"]
        );
        assert!(
            parse_never_block("198.51.100.0/24,nope")
                .unwrap_err()
                .contains("nope")
        );
        assert!(parse_never_block("").unwrap().is_empty());
        let mut finding = crate::finding::Finding::from_value(serde_json::json!({
            "id": "f1", "type": "Backdoor:EC2/C&CActivity.B",
            "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": "i-0123456789abcdef0"}}
        }))
        .unwrap();
        finding.remote_ips = vec!["198.51.100.7".to_owned(), "192.0.2.9".to_owned()];
        let settings = crate::steps::Settings {
            never_block: parse_never_block("198.51.100.0/24").unwrap(),
            ..crate::steps::Settings::default()
        };
        let input = PlanInput {
            finding: &finding,
            playbook: "p",
            instance: finding.instance.as_ref(),
            settings: &settings,
        };
        let p = Params::default().plan(&input).unwrap();
        assert_eq!(p.cidrs, ["192.0.2.9/32"]);
        assert!(p.skipped[0].reason.contains("198.51.100.0/24"));
    }

    #[test]
    fn plans_at_most_max_addresses() {
        let params = Params {
            max_addresses: 2,
            ..Params::default()
        };
        let p = planned(&params, &["198.51.100.1", "198.51.100.2", "198.51.100.3"]);
        assert_eq!(p.cidrs, ["198.51.100.1/32", "198.51.100.2/32"]);
        assert_eq!(p.skipped.len(), 1);
        assert!(p.skipped[0].reason.contains("max_addresses"));
        let none = planned(&Params::default(), &[]);
        assert!(none.cidrs.is_empty());
        assert!(none.to_string().contains("no address to block"));
    }
}
