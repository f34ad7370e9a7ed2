//! The quarantine and untrack groups: found by name in a VPC or created, and their
//! rules made what they must be. Remembered in the executor's group cache.

use aws_sdk_ec2::types::{
    IpPermission, IpRange, Ipv6Range, ResourceType, SecurityGroup, TagSpecification,
    UserIdGroupPair,
};
use responder_core::steps::isolate::ForensicsIngress;
use responder_core::tags;

use crate::call::{CallError, err};
use crate::context::Ctx;
use crate::tagging::{filter, tag};

/// Which group: its rules and its role tag.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// No rules at all (forensics ingress aside).
    Quarantine,
    /// Everything open: used briefly to cut tracked connections.
    Untrack,
}

impl Kind {
    fn role(self) -> &'static str {
        match self {
            Kind::Quarantine => "quarantine",
            Kind::Untrack => "untrack",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Kind::Quarantine => "guardduty-responder quarantine: no traffic in or out",
            Kind::Untrack => {
                "guardduty-responder untrack: all traffic, used briefly to cut tracked connections"
            }
        }
    }
}

/// Finds the group by name in the VPC or creates it, and makes its rules what they
/// must be. `Ok(None)` in a dry run when the group does not exist.
/// The tags a group gets as it is created: the deployment role may create groups only
/// with them (and a dry run must send them too, or it would be refused).
pub(super) fn creation_tags(name: &str, kind: Kind) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(ResourceType::SecurityGroup)
        .tags(tag(tags::ROLE, kind.role()))
        .tags(tag("Name", name))
        .build()
}

pub(super) async fn ensure_group(
    ctx: &Ctx<'_>,
    vpc: &str,
    name: &str,
    kind: Kind,
    forensics: Option<&ForensicsIngress>,
    prefound: Option<Option<SecurityGroup>>,
    trips: &mut u32,
) -> Result<Option<(String, bool)>, CallError> {
    if let Some(id) = ctx.groups.get(vpc, name) {
        return Ok(Some((id, false)));
    }
    let ec2 = ctx.ec2();
    let found = match prefound {
        Some(f) => f,
        None => {
            *trips += 1;
            find_group(ec2, vpc, name).await?
        }
    };
    let (group, created) = match found {
        Some(g) => (g, false),
        None if ctx.dry_run => return Ok(None),
        None => {
            *trips += 1;
            match create_group(ec2, vpc, name, kind).await {
                Ok(fresh) => (fresh, true),
                // Another invocation created it first: use theirs.
                Err(e) if e.code == "InvalidGroup.Duplicate" => {
                    match find_group(ec2, vpc, name).await? {
                        Some(g) => (g, false),
                        None => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            }
        }
    };
    let id = group.group_id().unwrap_or_default().to_owned();
    if !ctx.dry_run {
        configure(ec2, &group, kind, forensics, trips).await?;
        ctx.groups.insert(vpc, name, &id);
    }
    Ok(Some((id, created)))
}

/// Creates the group, tagged with its role; returns it as a new group is: with
/// exactly the default egress rule.
async fn create_group(
    ec2: &aws_sdk_ec2::Client,
    vpc: &str,
    name: &str,
    kind: Kind,
) -> Result<SecurityGroup, CallError> {
    let out = ec2
        .create_security_group()
        .group_name(name)
        .description(kind.description())
        .vpc_id(vpc)
        .tag_specifications(creation_tags(name, kind))
        .send()
        .await
        .map_err(err)?;
    let id = out.group_id().unwrap_or_default();
    Ok(SecurityGroup::builder()
        .group_id(id)
        .ip_permissions_egress(all_ipv4())
        .build())
}

fn all_ipv4() -> IpPermission {
    IpPermission::builder()
        .ip_protocol("-1")
        .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
        .build()
}

/// The group with this name in this VPC, if any.
pub(super) async fn find_group(
    ec2: &aws_sdk_ec2::Client,
    vpc: &str,
    name: &str,
) -> Result<Option<SecurityGroup>, CallError> {
    let out = ec2
        .describe_security_groups()
        .filters(filter("group-name", &[name]))
        .filters(filter("vpc-id", &[vpc]))
        .send()
        .await
        .map_err(err)?;
    Ok(out.security_groups().first().cloned())
}

/// Quarantine: no rules at all (forensics ingress aside). Untrack: everything open.
async fn configure(
    ec2: &aws_sdk_ec2::Client,
    group: &SecurityGroup,
    kind: Kind,
    forensics: Option<&ForensicsIngress>,
    trips: &mut u32,
) -> Result<(), CallError> {
    let id = group.group_id().unwrap_or_default();
    match kind {
        Kind::Quarantine => {
            if !group.ip_permissions_egress().is_empty() {
                *trips += 1;
                ec2.revoke_security_group_egress()
                    .group_id(id)
                    .set_ip_permissions(Some(group.ip_permissions_egress().to_vec()))
                    .send()
                    .await
                    .map_err(err)?;
            }
            let wanted = forensics.map(forensics_rules).unwrap_or_default();
            let stray: Vec<IpPermission> = group
                .ip_permissions()
                .iter()
                .filter(|p| !wanted.contains(p))
                .cloned()
                .collect();
            if !stray.is_empty() {
                ec2.revoke_security_group_ingress()
                    .group_id(id)
                    .set_ip_permissions(Some(stray))
                    .send()
                    .await
                    .map_err(err)?;
            }
            if !wanted.is_empty() {
                ignore_duplicate(
                    ec2.authorize_security_group_ingress()
                        .group_id(id)
                        .set_ip_permissions(Some(wanted))
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(err),
                )?;
            }
        }
        Kind::Untrack => {
            let all = IpPermission::builder()
                .ip_protocol("-1")
                .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
                .ipv6_ranges(Ipv6Range::builder().cidr_ipv6("::/0").build())
                .build();
            if group.ip_permissions().is_empty() {
                ignore_duplicate(
                    ec2.authorize_security_group_ingress()
                        .group_id(id)
                        .ip_permissions(all.clone())
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(err),
                )?;
            }
            let has_v6_egress = group.ip_permissions_egress().iter().any(|p| {
                p.ipv6_ranges()
                    .iter()
                    .any(|r| r.cidr_ipv6() == Some("::/0"))
            });
            if !has_v6_egress {
                let v6 = IpPermission::builder()
                    .ip_protocol("-1")
                    .ipv6_ranges(Ipv6Range::builder().cidr_ipv6("::/0").build())
                    .build();
                ignore_duplicate(
                    ec2.authorize_security_group_egress()
                        .group_id(id)
                        .ip_permissions(v6)
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(err),
                )?;
            }
        }
    }
    Ok(())
}

/// The planned forensics ingress as rules: one per port.
fn forensics_rules(f: &ForensicsIngress) -> Vec<IpPermission> {
    f.ports
        .iter()
        .map(|port| {
            let mut p = IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(i32::from(*port))
                .to_port(i32::from(*port));
            for cidr in &f.cidrs {
                if cidr.contains(':') {
                    p = p.ipv6_ranges(Ipv6Range::builder().cidr_ipv6(cidr).build());
                } else {
                    p = p.ip_ranges(IpRange::builder().cidr_ip(cidr).build());
                }
            }
            if let Some(g) = &f.security_group_id {
                p = p.user_id_group_pairs(UserIdGroupPair::builder().group_id(g).build());
            }
            p.build()
        })
        .collect()
}

fn ignore_duplicate(r: Result<(), CallError>) -> Result<(), CallError> {
    match r {
        Err(e) if e.code == "InvalidPermission.Duplicate" => Ok(()),
        other => other,
    }
}
