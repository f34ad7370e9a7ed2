//! The instance as EC2 describes it now: the live state every step acts on.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::Instance;

use crate::call::{CallError, err};
use crate::tagging::filter;

/// The instance as EC2 describes it now.
#[derive(Debug, Clone, Default)]
pub(crate) struct InstanceView {
    pub id: String,
    pub state: String,
    pub subnet_id: Option<String>,
    pub image_id: Option<String>,
    pub instance_type: Option<String>,
    pub key_name: Option<String>,
    pub profile_arn: Option<String>,
    /// Attached ENIs, primary first.
    pub enis: Vec<EniView>,
    pub tags: BTreeMap<String, String>,
    /// `(device name, volume id)` of every EBS volume.
    pub volumes: Vec<(String, String)>,
}

/// One attached ENI.
#[derive(Debug, Clone, Default)]
pub(crate) struct EniView {
    pub id: String,
    pub vpc_id: Option<String>,
    pub subnet_id: Option<String>,
    pub device_index: i32,
    pub groups: Vec<String>,
}

impl InstanceView {
    /// Terminated, or on its way there.
    pub fn is_terminated(&self) -> bool {
        matches!(self.state.as_str(), "terminated" | "shutting-down")
    }

    /// The VPCs of the attached ENIs, sorted, once each.
    pub fn vpcs(&self) -> Vec<String> {
        let mut vpcs: Vec<String> = self.enis.iter().filter_map(|e| e.vpc_id.clone()).collect();
        vpcs.sort();
        vpcs.dedup();
        vpcs
    }

    fn from_sdk(i: &Instance) -> InstanceView {
        let mut enis: Vec<EniView> = i
            .network_interfaces()
            .iter()
            .map(|n| EniView {
                id: n.network_interface_id().unwrap_or_default().to_owned(),
                vpc_id: n.vpc_id().map(str::to_owned),
                subnet_id: n.subnet_id().map(str::to_owned),
                device_index: n.attachment().and_then(|a| a.device_index()).unwrap_or(0),
                groups: n
                    .groups()
                    .iter()
                    .filter_map(|g| g.group_id().map(str::to_owned))
                    .collect(),
            })
            .collect();
        enis.sort_by_key(|e| e.device_index);
        InstanceView {
            id: i.instance_id().unwrap_or_default().to_owned(),
            state: i
                .state()
                .and_then(|s| s.name())
                .map(|n| n.as_str().to_owned())
                .unwrap_or_default(),
            subnet_id: i.subnet_id().map(str::to_owned),
            image_id: i.image_id().map(str::to_owned),
            instance_type: i.instance_type().map(|t| t.as_str().to_owned()),
            key_name: i.key_name().map(str::to_owned),
            profile_arn: i
                .iam_instance_profile()
                .and_then(|p| p.arn())
                .map(str::to_owned),
            enis,
            tags: i
                .tags()
                .iter()
                .filter_map(|t| {
                    Some((
                        t.key()?.to_owned(),
                        t.value().unwrap_or_default().to_owned(),
                    ))
                })
                .collect(),
            volumes: i
                .block_device_mappings()
                .iter()
                .filter_map(|b| {
                    Some((
                        b.device_name()?.to_owned(),
                        b.ebs()?.volume_id()?.to_owned(),
                    ))
                })
                .collect(),
        }
    }
}

/// Describes one instance; `None` when EC2 does not know it.
pub(crate) async fn describe(
    ec2: &aws_sdk_ec2::Client,
    id: &str,
) -> Result<Option<InstanceView>, CallError> {
    let out = ec2
        .describe_instances()
        .filters(filter("instance-id", &[id]))
        .send()
        .await
        .map_err(err);
    match out {
        Ok(out) => Ok(out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .find(|i| i.instance_id() == Some(id))
            .map(InstanceView::from_sdk)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}
