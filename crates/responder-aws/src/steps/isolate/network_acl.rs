//! Opt-in: a deny-all network ACL on every subnet of the instance. It affects every
//! instance in those subnets; the report says so.

use aws_sdk_ec2::types::{NetworkAcl, ResourceType, TagSpecification};
use responder_core::tags;

use crate::call::{CallError, err};
use crate::context::Ctx;
use crate::instance::InstanceView;
use crate::tagging::{filter, tag};

/// Role tag value of the ACLs created here.
const DENY_ALL: &str = "deny-all";

/// Replaces the ACL of every subnet the live ENIs are in; one note per subnet.
pub(super) async fn deny_all(ctx: &Ctx<'_>, view: &InstanceView) -> Result<Vec<String>, CallError> {
    let ec2 = ctx.ec2();
    let mut notes = Vec::new();
    let mut subnets: Vec<(String, String)> = view
        .enis
        .iter()
        .filter_map(|e| Some((e.subnet_id.clone()?, e.vpc_id.clone()?)))
        .collect();
    subnets.sort();
    subnets.dedup();
    for (subnet, vpc) in subnets {
        let current = ec2
            .describe_network_acls()
            .filters(filter("association.subnet-id", &[&subnet]))
            .send()
            .await
            .map_err(err)?;
        let Some(acl) = current.network_acls().first() else {
            continue;
        };
        if is_deny_all(acl) {
            notes.push(format!(
                "subnet {subnet} already has the deny-all network ACL"
            ));
            continue;
        }
        let Some(assoc) = acl
            .associations()
            .iter()
            .find(|a| a.subnet_id() == Some(subnet.as_str()))
            .and_then(|a| a.network_acl_association_id())
        else {
            continue;
        };
        let original = acl.network_acl_id().unwrap_or_default();
        // A new network ACL denies everything until entries are added.
        let new = ec2
            .create_network_acl()
            .vpc_id(&vpc)
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::NetworkAcl)
                    .tags(tag(tags::ROLE, DENY_ALL))
                    .tags(tag(tags::ORIGINAL_ACL, original))
                    .tags(tag(tags::FINDING_ID, &ctx.finding.id))
                    .build(),
            )
            .send()
            .await
            .map_err(err)?;
        let new_id = new
            .network_acl()
            .and_then(|a| a.network_acl_id())
            .unwrap_or_default()
            .to_owned();
        ec2.replace_network_acl_association()
            .association_id(assoc)
            .network_acl_id(&new_id)
            .send()
            .await
            .map_err(err)?;
        notes.push(format!(
            "network ACL {new_id} now denies all traffic for EVERY instance in subnet {subnet} (was {original})"
        ));
    }
    Ok(notes)
}

fn is_deny_all(acl: &NetworkAcl) -> bool {
    acl.tags()
        .iter()
        .any(|t| t.key() == Some(tags::ROLE) && t.value() == Some(DENY_ALL))
}
