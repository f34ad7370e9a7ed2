//! State read back from moto, for assertions. Every helper makes bounded calls (no
//! polling) and panics with the AWS error when a call fails unexpectedly.

use std::collections::BTreeMap;

use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{Filter, Instance, InstanceAttributeName, SecurityGroup};

/// Tag key of a replacement naming the instance it replaces.
pub const REPLACES_TAG: &str = "guardduty-responder:replaces";

/// Prefix of the tags recording an instance's groups before isolation.
pub const ORIGINAL_GROUPS_TAG: &str = "guardduty-responder:original-groups";

/// The default quarantine group name.
pub const QUARANTINE_GROUP: &str = "guardduty-responder-quarantine";

/// The default untrack (connection-cutting) group name.
pub const UNTRACK_GROUP: &str = "guardduty-responder-untrack";

fn filter(name: &str, values: &[&str]) -> Filter {
    values
        .iter()
        .fold(Filter::builder().name(name), |b, v| b.values(*v))
        .build()
}

/// The instance as DescribeInstances shows it; `None` when moto does not know it.
pub async fn instance(ec2: &aws_sdk_ec2::Client, instance_id: &str) -> Option<Instance> {
    match ec2
        .describe_instances()
        .instance_ids(instance_id)
        .send()
        .await
    {
        Ok(out) => out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .find(|i| i.instance_id() == Some(instance_id))
            .cloned(),
        Err(e) if e.code() == Some("InvalidInstanceID.NotFound") => None,
        Err(e) => panic!("DescribeInstances {instance_id}: {e:?}"),
    }
}

/// Every instance of the account, with its state name.
pub async fn all_instances(ec2: &aws_sdk_ec2::Client) -> BTreeMap<String, String> {
    let out = ec2
        .describe_instances()
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeInstances: {e:?}"));
    out.reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter_map(|i| {
            Some((
                i.instance_id()?.to_owned(),
                i.state()
                    .and_then(|s| s.name())
                    .map(|n| n.as_str().to_owned())
                    .unwrap_or_default(),
            ))
        })
        .collect()
}

/// The groups of every ENI attached to the instance, by ENI id (DescribeNetworkInterfaces
/// filtered on `attachment.instance-id`; never `Instance.SecurityGroups`, which moto
/// leaves empty when groups are set per ENI).
pub async fn eni_groups(
    ec2: &aws_sdk_ec2::Client,
    instance_id: &str,
) -> BTreeMap<String, Vec<String>> {
    let out = ec2
        .describe_network_interfaces()
        .filters(filter("attachment.instance-id", &[instance_id]))
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeNetworkInterfaces {instance_id}: {e:?}"));
    groups_by_eni(out.network_interfaces())
}

/// The groups of the given ENIs, by ENI id, whether attached or not (useful after
/// the instance is terminated: the fixture's ENIs survive it).
pub async fn groups_of_enis(
    ec2: &aws_sdk_ec2::Client,
    eni_ids: &[String],
) -> BTreeMap<String, Vec<String>> {
    let out = ec2
        .describe_network_interfaces()
        .set_network_interface_ids(Some(eni_ids.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeNetworkInterfaces {eni_ids:?}: {e:?}"));
    groups_by_eni(out.network_interfaces())
}

fn groups_by_eni(enis: &[aws_sdk_ec2::types::NetworkInterface]) -> BTreeMap<String, Vec<String>> {
    enis.iter()
        .map(|n| {
            let mut groups: Vec<String> = n
                .groups()
                .iter()
                .filter_map(|g| g.group_id().map(str::to_owned))
                .collect();
            groups.sort();
            (
                n.network_interface_id().unwrap_or_default().to_owned(),
                groups,
            )
        })
        .collect()
}

/// The instance's state name (`running`, `stopped`, `terminated`, ...), or `None`
/// when moto does not know the instance.
pub async fn instance_state(ec2: &aws_sdk_ec2::Client, instance_id: &str) -> Option<String> {
    instance(ec2, instance_id).await.and_then(|i| {
        i.state()
            .and_then(|s| s.name())
            .map(|n| n.as_str().to_owned())
    })
}

/// The instance's tags (empty when the instance is unknown).
pub async fn instance_tags(
    ec2: &aws_sdk_ec2::Client,
    instance_id: &str,
) -> BTreeMap<String, String> {
    instance(ec2, instance_id)
        .await
        .map(|i| {
            i.tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// A snapshot with its source volume and tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// Snapshot id.
    pub id: String,
    /// The volume it was taken from.
    pub volume_id: String,
    /// State (`completed` on moto).
    pub state: String,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
}

/// Snapshots of the account carrying the tag `key=value`, sorted by volume.
pub async fn snapshots_tagged(
    ec2: &aws_sdk_ec2::Client,
    key: &str,
    value: &str,
) -> Vec<SnapshotInfo> {
    let out = ec2
        .describe_snapshots()
        .filters(filter(&format!("tag:{key}"), &[value]))
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeSnapshots tag:{key}={value}: {e:?}"));
    let mut snaps: Vec<SnapshotInfo> = out
        .snapshots()
        .iter()
        .map(|s| SnapshotInfo {
            id: s.snapshot_id().unwrap_or_default().to_owned(),
            volume_id: s.volume_id().unwrap_or_default().to_owned(),
            state: s
                .state()
                .map(|st| st.as_str().to_owned())
                .unwrap_or_default(),
            tags: s
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
                .collect(),
        })
        .collect();
    snaps.sort_by(|a, b| (&a.volume_id, &a.id).cmp(&(&b.volume_id, &b.id)));
    snaps
}

/// Every snapshot `account` owns. moto lists about 1300 snapshots of its default
/// AMIs in every account and ignores `OwnerIds=self`, hence the `owner-id` filter.
pub async fn all_snapshots(ec2: &aws_sdk_ec2::Client, account: &str) -> Vec<String> {
    let out = ec2
        .describe_snapshots()
        .filters(filter("owner-id", &[account]))
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeSnapshots: {e:?}"));
    let mut ids: Vec<String> = out
        .snapshots()
        .iter()
        .filter(|s| s.owner_id() == Some(account))
        .filter_map(|s| s.snapshot_id().map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

/// Instances tagged `guardduty-responder:replaces=<instance_id>` that are not
/// terminated (or shutting down), sorted.
pub async fn replacements(ec2: &aws_sdk_ec2::Client, instance_id: &str) -> Vec<String> {
    let out = ec2
        .describe_instances()
        .filters(filter(&format!("tag:{REPLACES_TAG}"), &[instance_id]))
        .filters(filter(
            "instance-state-name",
            &["pending", "running", "stopping", "stopped"],
        ))
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeInstances tag:{REPLACES_TAG}: {e:?}"));
    let mut ids: Vec<String> = out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter_map(|i| i.instance_id().map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

/// `MetadataOptions.HttpTokens` of the instance (`required` or `optional`).
pub async fn http_tokens(ec2: &aws_sdk_ec2::Client, instance_id: &str) -> Option<String> {
    instance(ec2, instance_id).await.and_then(|i| {
        i.metadata_options()
            .and_then(|m| m.http_tokens())
            .map(|t| t.as_str().to_owned())
    })
}

/// The instance's public IPv4 address, if it has one (instance view or any ENI).
pub async fn public_ip(ec2: &aws_sdk_ec2::Client, instance_id: &str) -> Option<String> {
    let i = instance(ec2, instance_id).await?;
    if let Some(ip) = i.public_ip_address().filter(|ip| !ip.is_empty()) {
        return Some(ip.to_owned());
    }
    i.network_interfaces()
        .iter()
        .filter_map(|n| n.association().and_then(|a| a.public_ip()))
        .find(|ip| !ip.is_empty())
        .map(str::to_owned)
}

/// The state of the instance's profile association (`associated`, ...), or `None`
/// when it has none.
pub async fn profile_association_state(
    ec2: &aws_sdk_ec2::Client,
    instance_id: &str,
) -> Option<String> {
    let out = ec2
        .describe_iam_instance_profile_associations()
        .filters(filter("instance-id", &[instance_id]))
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeIamInstanceProfileAssociations: {e:?}"));
    out.iam_instance_profile_associations()
        .iter()
        .filter(|a| a.instance_id() == Some(instance_id))
        .find_map(|a| a.state().map(|s| s.as_str().to_owned()))
}

/// The ARN of the instance's associated profile, if any.
pub async fn profile_arn(ec2: &aws_sdk_ec2::Client, instance_id: &str) -> Option<String> {
    let out = ec2
        .describe_iam_instance_profile_associations()
        .filters(filter("instance-id", &[instance_id]))
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeIamInstanceProfileAssociations: {e:?}"));
    out.iam_instance_profile_associations()
        .iter()
        .filter(|a| a.instance_id() == Some(instance_id))
        .find_map(|a| {
            a.iam_instance_profile()
                .and_then(|p| p.arn())
                .map(str::to_owned)
        })
}

/// The `DisableApiTermination` attribute.
pub async fn disable_api_termination(ec2: &aws_sdk_ec2::Client, instance_id: &str) -> bool {
    ec2.describe_instance_attribute()
        .instance_id(instance_id)
        .attribute(InstanceAttributeName::DisableApiTermination)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeInstanceAttribute disableApiTermination: {e:?}"))
        .disable_api_termination()
        .and_then(|v| v.value())
        .unwrap_or(false)
}

/// The `InstanceInitiatedShutdownBehavior` attribute (`stop` or `terminate`).
pub async fn shutdown_behavior(ec2: &aws_sdk_ec2::Client, instance_id: &str) -> Option<String> {
    ec2.describe_instance_attribute()
        .instance_id(instance_id)
        .attribute(InstanceAttributeName::InstanceInitiatedShutdownBehavior)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeInstanceAttribute shutdown behaviour: {e:?}"))
        .instance_initiated_shutdown_behavior()
        .and_then(|v| v.value())
        .map(str::to_owned)
}

/// `DeleteOnTermination` of each EBS mapping of the instance, by device name.
pub async fn delete_on_termination(
    ec2: &aws_sdk_ec2::Client,
    instance_id: &str,
) -> BTreeMap<String, Option<bool>> {
    instance(ec2, instance_id)
        .await
        .map(|i| {
            i.block_device_mappings()
                .iter()
                .filter_map(|m| {
                    Some((
                        m.device_name()?.to_owned(),
                        m.ebs().and_then(|e| e.delete_on_termination()),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The security groups named `name` in the VPC.
pub async fn groups_named(
    ec2: &aws_sdk_ec2::Client,
    vpc_id: &str,
    name: &str,
) -> Vec<SecurityGroup> {
    ec2.describe_security_groups()
        .filters(filter("group-name", &[name]))
        .filters(filter("vpc-id", &[vpc_id]))
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeSecurityGroups {name}: {e:?}"))
        .security_groups()
        .to_vec()
}

/// The subnet of the instance (its primary ENI's).
pub async fn subnet(ec2: &aws_sdk_ec2::Client, instance_id: &str) -> Option<String> {
    instance(ec2, instance_id)
        .await
        .and_then(|i| i.subnet_id().map(str::to_owned))
}
