//! The quarantine and untrack groups: found by name in a VPC or created, their
//! ownership marker checked and their rules made what they must be, on every use.
//! Nothing is cached across responses: a group changed or deleted since the last
//! response is seen, because the lookup runs in the same round trip as the instance
//! describe (and the verification) and costs no time to isolation.

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

/// The tags a group gets as it is created: the deployment role may create groups only
/// with them (and a dry run must send them too, or it would be refused).
pub(super) fn creation_tags(name: &str, kind: Kind) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(ResourceType::SecurityGroup)
        .tags(tag(tags::ROLE, kind.role()))
        .tags(tag("Name", name))
        .build()
}

/// True when the group carries the responder's marker for `kind`: it was created by
/// the responder (the deployment role may set that tag only on the groups it creates).
/// A group that merely has the right name is somebody else's.
pub(super) fn is_ours(group: &SecurityGroup, kind: Kind) -> bool {
    group
        .tags()
        .iter()
        .any(|t| t.key() == Some(tags::ROLE) && t.value() == Some(kind.role()))
}

/// The groups with these names in this VPC: one call, whatever the number of names.
pub(super) async fn find_groups(
    ec2: &aws_sdk_ec2::Client,
    vpc: &str,
    names: &[&str],
) -> Result<Vec<SecurityGroup>, CallError> {
    let out = ec2
        .describe_security_groups()
        .filters(filter("group-name", names))
        .filters(filter("vpc-id", &[vpc]))
        .send()
        .await
        .map_err(err)?;
    Ok(out.security_groups().to_vec())
}

/// Finds the group by name among `found` (the VPC's lookup) or creates it, checks
/// that it is the responder's, and makes its rules exactly what they must be, on
/// every use: a group that gained a rule since the last response is put right before
/// any ENI goes into it. `Ok(None)` in a dry run when the group does not exist.
/// Returns the group id and whether this call created it.
pub(super) async fn ensure_group(
    ctx: &Ctx<'_>,
    vpc: &str,
    name: &str,
    kind: Kind,
    forensics: Option<&ForensicsIngress>,
    found: &[SecurityGroup],
) -> Result<Option<(String, bool)>, CallError> {
    let ec2 = ctx.ec2();
    let named = found
        .iter()
        .find(|g| g.group_name() == Some(name) && g.vpc_id().is_none_or(|v| v == vpc))
        .cloned();
    let (group, created) = match named {
        Some(g) => (g, false),
        None if ctx.dry_run => return Ok(None),
        None => match create_group(ec2, vpc, name, kind).await {
            Ok(fresh) => (fresh, true),
            // A concurrent delivery created it first: use theirs, as found now.
            Err(e) if e.code == "InvalidGroup.Duplicate" => {
                let again = find_groups(ec2, vpc, &[name]).await?;
                match again.into_iter().next() {
                    Some(g) => (g, false),
                    None => return Err(e),
                }
            }
            Err(e) => return Err(e),
        },
    };
    if !created && !is_ours(&group, kind) {
        return Err(CallError {
            code: "ResponderGroupNotOwned".to_owned(),
            message: format!(
                "{} ({name}) in {vpc} is not the responder's {} group: it lacks the {}={} tag the responder sets when it creates one. Refusing to put ENIs into a group someone else controls: delete or rename it, or configure another group name",
                group.group_id().unwrap_or_default(),
                kind.role(),
                tags::ROLE,
                kind.role()
            ),
        });
    }
    let id = group.group_id().unwrap_or_default().to_owned();
    if !ctx.dry_run {
        configure(ec2, &group, kind, forensics).await?;
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

/// Quarantine: no rules at all (forensics ingress aside). Untrack: everything open.
async fn configure(
    ec2: &aws_sdk_ec2::Client,
    group: &SecurityGroup,
    kind: Kind,
    forensics: Option<&ForensicsIngress>,
) -> Result<(), CallError> {
    let id = group.group_id().unwrap_or_default();
    match kind {
        Kind::Quarantine => {
            if !group.ip_permissions_egress().is_empty() {
                ignore_gone(
                    ec2.revoke_security_group_egress()
                        .group_id(id)
                        .set_ip_permissions(Some(group.ip_permissions_egress().to_vec()))
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(err),
                )?;
            }
            let wanted = forensics.map(forensics_rules).unwrap_or_default();
            let stray: Vec<IpPermission> = group
                .ip_permissions()
                .iter()
                .filter(|p| !wanted.contains(p))
                .cloned()
                .collect();
            if !stray.is_empty() {
                ignore_gone(
                    ec2.revoke_security_group_ingress()
                        .group_id(id)
                        .set_ip_permissions(Some(stray))
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(err),
                )?;
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

/// A concurrent delivery revoked the same rule first: the group is as it must be.
fn ignore_gone(r: Result<(), CallError>) -> Result<(), CallError> {
    match r {
        Err(e) if e.code == "InvalidPermission.NotFound" => Ok(()),
        other => other,
    }
}

fn ignore_duplicate(r: Result<(), CallError>) -> Result<(), CallError> {
    match r {
        Err(e) if e.code == "InvalidPermission.Duplicate" => Ok(()),
        other => other,
    }
}
