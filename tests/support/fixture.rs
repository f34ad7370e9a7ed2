//! A compromised-looking workload in its own moto account: a VPC, a subnet, two
//! security groups, an instance profile and one instance with two ENIs and two EBS
//! volumes; optionally inside an Auto Scaling group and registered in a target group.

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use aws_sdk_ec2::types::{
    AttributeBooleanValue, BlockDeviceMapping, EbsBlockDevice, Filter,
    IamInstanceProfileSpecification, InstanceNetworkInterfaceSpecification, InstanceType,
    LaunchTemplateBlockDeviceMappingRequest, LaunchTemplateEbsBlockDeviceRequest,
    LaunchTemplateIamInstanceProfileSpecificationRequest, LaunchTemplateTagSpecificationRequest,
    RequestLaunchTemplateData, ResourceType, ShutdownBehavior, Tag, TagSpecification,
};

use crate::account::{self, TestAccount};
use crate::{moto, read};

/// The ledger table of every test account.
pub const LEDGER_TABLE: &str = "guardduty-responder-ledger";

/// Name tag of the fixture instance.
pub const INSTANCE_NAME: &str = "web-1";
/// Instance type of the fixture instance.
pub const INSTANCE_TYPE: &str = "t3.micro";
/// Name of security group A (primary ENI).
pub const GROUP_A_NAME: &str = "web";
/// Name of security group B (second ENI).
pub const GROUP_B_NAME: &str = "admin";
/// Name of the instance profile.
pub const PROFILE_NAME: &str = "web-app";
/// Availability zone of the subnet.
pub const ZONE: &str = "us-east-1a";
/// Root device of the fixture image.
pub const ROOT_DEVICE: &str = "/dev/xvda";
/// The second volume's device.
pub const DATA_DEVICE: &str = "/dev/sdf";

/// What to build besides the default instance.
#[derive(Debug, Clone, Copy, Default)]
pub struct FixtureOptions {
    /// Launch the instance through a launch template and an Auto Scaling group of one
    /// (moto tags it `aws:autoscaling:groupName`). Such an instance has the group's
    /// network configuration: one ENI in group A.
    pub auto_scaling_group: bool,
    /// Create an ELBv2 target group in the VPC with the instance registered.
    pub target_group: bool,
}

/// One ENI as the fixture instance has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eni {
    /// ENI id.
    pub id: String,
    /// Attachment device index.
    pub device_index: i32,
    /// Subnet.
    pub subnet_id: String,
    /// VPC.
    pub vpc_id: String,
    /// Primary private IPv4 address.
    pub private_ip: String,
    /// Public IPv4 address, if any.
    pub public_ip: Option<String>,
    /// Security groups: (id, name).
    pub groups: Vec<(String, String)>,
}

/// The resources of one fixture, all in `account`.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// The account id (moto world) holding everything below.
    pub account: String,
    /// SDK configuration pointing at moto.
    pub config: SdkConfig,
    /// VPC (10.0.0.0/16).
    pub vpc_id: String,
    /// The subnet (10.0.1.0/24, public IPs mapped on launch).
    pub subnet_id: String,
    /// Security group A (on the primary ENI).
    pub group_a: String,
    /// Security group B (on the second ENI).
    pub group_b: String,
    /// The image the instance runs.
    pub image_id: String,
    /// The instance type.
    pub instance_type: String,
    /// The instance.
    pub instance_id: String,
    /// Its ENI ids, primary first.
    pub enis: Vec<String>,
    /// Its ENIs in detail, primary first.
    pub eni_details: Vec<Eni>,
    /// Its EBS volumes, root first.
    pub volumes: Vec<String>,
    /// The instance profile's name.
    pub profile_name: String,
    /// The instance profile's ARN.
    pub profile_arn: String,
    /// The instance's tags as launched (including `aws:` ones).
    pub tags: BTreeMap<String, String>,
    /// The launch template, when built with an Auto Scaling group.
    pub launch_template_id: Option<String>,
    /// The Auto Scaling group, when asked for.
    pub auto_scaling_group: Option<String>,
    /// The target group ARN, when asked for.
    pub target_group_arn: Option<String>,
}

impl Fixture {
    /// Builds the default fixture (and the optional parts) in a fresh account.
    pub async fn new(options: FixtureOptions) -> Fixture {
        Fixture::create(&account::fresh_account(), options).await
    }

    /// Builds the fixture in `account`.
    pub async fn create(account: &str, options: FixtureOptions) -> Fixture {
        let config = account::sdk_config(&moto::endpoint()).await;
        let ec2 = account::ec2(&config, account);
        let iam = account::iam(&config, account);

        let vpc_id = ec2
            .create_vpc()
            .cidr_block("10.0.0.0/16")
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateVpc: {e:?}"))
            .vpc()
            .and_then(|v| v.vpc_id())
            .expect("CreateVpc returned no VPC id")
            .to_owned();
        let subnet_id = ec2
            .create_subnet()
            .vpc_id(&vpc_id)
            .cidr_block("10.0.1.0/24")
            .availability_zone(ZONE)
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateSubnet: {e:?}"))
            .subnet()
            .and_then(|s| s.subnet_id())
            .expect("CreateSubnet returned no subnet id")
            .to_owned();
        // A public subnet: an instance launched here gets a public IP unless the
        // launch says otherwise. This makes "no public IP" on a replacement a real check.
        ec2.modify_subnet_attribute()
            .subnet_id(&subnet_id)
            .map_public_ip_on_launch(AttributeBooleanValue::builder().value(true).build())
            .send()
            .await
            .unwrap_or_else(|e| panic!("ModifySubnetAttribute: {e:?}"));

        let mut groups = Vec::new();
        for (name, description) in [(GROUP_A_NAME, "web tier"), (GROUP_B_NAME, "admin access")] {
            let id = ec2
                .create_security_group()
                .group_name(name)
                .description(description)
                .vpc_id(&vpc_id)
                .send()
                .await
                .unwrap_or_else(|e| panic!("CreateSecurityGroup {name}: {e:?}"))
                .group_id()
                .expect("CreateSecurityGroup returned no id")
                .to_owned();
            groups.push(id);
        }
        let (group_a, group_b) = (groups[0].clone(), groups[1].clone());

        // Several fixtures may share an account (the Lambda end-to-end tests use moto's
        // default account): the profile is account-wide, so reuse it when it exists.
        let profile_arn = match iam
            .create_instance_profile()
            .instance_profile_name(PROFILE_NAME)
            .send()
            .await
        {
            Ok(out) => out.instance_profile().map(|p| p.arn().to_owned()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_entity_already_exists_exception()) =>
            {
                iam.get_instance_profile()
                    .instance_profile_name(PROFILE_NAME)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("IAM GetInstanceProfile: {e:?}"))
                    .instance_profile()
                    .map(|p| p.arn().to_owned())
            }
            Err(e) => panic!("IAM CreateInstanceProfile: {e:?}"),
        }
        .expect("no instance profile");

        let image_id = ec2
            .describe_images()
            .filters(
                Filter::builder()
                    .name("name")
                    .values(moto::IMAGE_NAME)
                    .build(),
            )
            .send()
            .await
            .unwrap_or_else(|e| panic!("DescribeImages: {e:?}"))
            .images()
            .first()
            .and_then(|i| i.image_id())
            .unwrap_or_else(|| panic!("no image named {}", moto::IMAGE_NAME))
            .to_owned();

        let tags = [("Name", INSTANCE_NAME), ("env", "prod")];
        let mut launch_template_id = None;
        let mut auto_scaling_group = None;
        let instance_id = if options.auto_scaling_group {
            let lt = create_launch_template(&ec2, account, &image_id, &group_a, &tags).await;
            let asg = format!("web-asg-{account}");
            launch_into_group(&config, account, &asg, &lt, &subnet_id).await;
            let id = group_instance(&config, account, &asg).await;
            // moto's Auto Scaling path does not carry the template's instance profile:
            // associate it, so the fixture has a profile either way.
            if read::profile_association_state(&ec2, &id).await.is_none() {
                ec2.associate_iam_instance_profile()
                    .instance_id(&id)
                    .iam_instance_profile(
                        IamInstanceProfileSpecification::builder()
                            .name(PROFILE_NAME)
                            .build(),
                    )
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("AssociateIamInstanceProfile: {e:?}"));
            }
            launch_template_id = Some(lt);
            auto_scaling_group = Some(asg);
            id
        } else {
            run_instance(&ec2, &image_id, &subnet_id, &group_a, &group_b, &tags).await
        };

        let eni_details = describe_enis(&ec2, &instance_id).await;
        let enis = eni_details.iter().map(|e| e.id.clone()).collect();
        let volumes = describe_volumes(&ec2, &instance_id).await;
        let instance_tags = read::instance_tags(&ec2, &instance_id).await;

        let target_group_arn = if options.target_group {
            Some(create_target_group(&config, account, &vpc_id, &instance_id).await)
        } else {
            None
        };

        Fixture {
            account: account.to_owned(),
            config,
            vpc_id,
            subnet_id,
            group_a,
            group_b,
            image_id,
            instance_type: INSTANCE_TYPE.to_owned(),
            instance_id,
            enis,
            eni_details,
            volumes,
            profile_name: PROFILE_NAME.to_owned(),
            profile_arn,
            tags: instance_tags,
            launch_template_id,
            auto_scaling_group,
            target_group_arn,
        }
    }

    /// The account as a [`TestAccount`].
    /// The fixture account's ledger (the table is created on first use; moto keeps
    /// one per account, so tests never see each other's records).
    pub async fn ledger(&self) -> responder_aws::ledger::Ledger {
        let ledger = responder_aws::ledger::Ledger::new(
            crate::dynamodb::client(&self.config, &self.account),
            LEDGER_TABLE,
        );
        ledger
            .create_table()
            .await
            .expect("the ledger table on moto");
        ledger
    }

    pub fn test_account(&self) -> TestAccount {
        TestAccount {
            id: self.account.clone(),
            config: self.config.clone(),
        }
    }

    /// A new set of executor clients in the fixture's account.
    pub fn clients(&self) -> responder_aws::Clients {
        account::clients(&self.config, &self.account)
    }

    /// Raw EC2 client in the fixture's account.
    pub fn ec2(&self) -> aws_sdk_ec2::Client {
        account::ec2(&self.config, &self.account)
    }

    /// Raw Auto Scaling client in the fixture's account.
    pub fn autoscaling(&self) -> aws_sdk_autoscaling::Client {
        account::autoscaling(&self.config, &self.account)
    }

    /// Raw ELBv2 client in the fixture's account.
    pub fn elbv2(&self) -> aws_sdk_elasticloadbalancingv2::Client {
        account::elbv2(&self.config, &self.account)
    }

    /// Raw IAM client in the fixture's account.
    pub fn iam(&self) -> aws_sdk_iam::Client {
        account::iam(&self.config, &self.account)
    }

    /// The groups of the fixture's ENIs as launched, by ENI id (ids only).
    pub fn original_eni_groups(&self) -> BTreeMap<String, Vec<String>> {
        self.eni_details
            .iter()
            .map(|e| {
                (
                    e.id.clone(),
                    e.groups.iter().map(|(id, _)| id.clone()).collect(),
                )
            })
            .collect()
    }
}

fn tag_specification(resource: ResourceType, tags: &[(&str, &str)]) -> TagSpecification {
    tags.iter()
        .fold(
            TagSpecification::builder().resource_type(resource),
            |b, (k, v)| b.tags(Tag::builder().key(*k).value(*v).build()),
        )
        .build()
}

fn volume_mapping(device: &str) -> BlockDeviceMapping {
    BlockDeviceMapping::builder()
        .device_name(device)
        .ebs(
            EbsBlockDevice::builder()
                .volume_size(8)
                // Real AWS defaults the root volume to true; moto to false. Set it,
                // so that a step that must clear it has something to clear.
                .delete_on_termination(true)
                .build(),
        )
        .build()
}

async fn run_instance(
    ec2: &aws_sdk_ec2::Client,
    image_id: &str,
    subnet_id: &str,
    group_a: &str,
    group_b: &str,
    tags: &[(&str, &str)],
) -> String {
    let out = ec2
        .run_instances()
        .image_id(image_id)
        .instance_type(InstanceType::from(INSTANCE_TYPE))
        .min_count(1)
        .max_count(1)
        .network_interfaces(
            InstanceNetworkInterfaceSpecification::builder()
                .device_index(0)
                .subnet_id(subnet_id)
                .groups(group_a)
                .build(),
        )
        .network_interfaces(
            InstanceNetworkInterfaceSpecification::builder()
                .device_index(1)
                .subnet_id(subnet_id)
                .groups(group_b)
                .build(),
        )
        .block_device_mappings(volume_mapping(ROOT_DEVICE))
        .block_device_mappings(volume_mapping(DATA_DEVICE))
        .iam_instance_profile(
            IamInstanceProfileSpecification::builder()
                .name(PROFILE_NAME)
                .build(),
        )
        // moto defaults to stop; AWS too. Terminate makes `protect` observable.
        .instance_initiated_shutdown_behavior(ShutdownBehavior::Terminate)
        .tag_specifications(tag_specification(ResourceType::Instance, tags))
        .send()
        .await
        .unwrap_or_else(|e| panic!("RunInstances: {e:?}"));
    out.instances()
        .first()
        .and_then(|i| i.instance_id())
        .expect("RunInstances returned no instance")
        .to_owned()
}

async fn create_launch_template(
    ec2: &aws_sdk_ec2::Client,
    account: &str,
    image_id: &str,
    group_a: &str,
    tags: &[(&str, &str)],
) -> String {
    let tag_spec = tags
        .iter()
        .fold(
            LaunchTemplateTagSpecificationRequest::builder().resource_type(ResourceType::Instance),
            |b, (k, v)| b.tags(Tag::builder().key(*k).value(*v).build()),
        )
        .build();
    let data = RequestLaunchTemplateData::builder()
        .image_id(image_id)
        .instance_type(InstanceType::from(INSTANCE_TYPE))
        .security_group_ids(group_a)
        .iam_instance_profile(
            LaunchTemplateIamInstanceProfileSpecificationRequest::builder()
                .name(PROFILE_NAME)
                .build(),
        )
        .block_device_mappings(
            LaunchTemplateBlockDeviceMappingRequest::builder()
                .device_name(DATA_DEVICE)
                .ebs(
                    LaunchTemplateEbsBlockDeviceRequest::builder()
                        .volume_size(8)
                        .delete_on_termination(true)
                        .build(),
                )
                .build(),
        )
        .tag_specifications(tag_spec)
        .build();
    ec2.create_launch_template()
        .launch_template_name(format!("web-{account}"))
        .launch_template_data(data)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateLaunchTemplate: {e:?}"))
        .launch_template()
        .and_then(|t| t.launch_template_id())
        .expect("CreateLaunchTemplate returned no id")
        .to_owned()
}

async fn launch_into_group(
    config: &SdkConfig,
    account: &str,
    name: &str,
    launch_template_id: &str,
    subnet_id: &str,
) {
    let asg = account::autoscaling(config, account);
    asg.create_auto_scaling_group()
        .auto_scaling_group_name(name)
        .launch_template(
            aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                .launch_template_id(launch_template_id)
                .version("$Latest")
                .build(),
        )
        .min_size(1)
        .max_size(3)
        .desired_capacity(1)
        .vpc_zone_identifier(subnet_id)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateAutoScalingGroup: {e:?}"));
}

async fn group_instance(config: &SdkConfig, account: &str, name: &str) -> String {
    let asg = account::autoscaling(config, account);
    let out = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeAutoScalingGroups: {e:?}"));
    let group = out
        .auto_scaling_groups()
        .first()
        .unwrap_or_else(|| panic!("group {name} not found"));
    let instances = group.instances();
    assert_eq!(
        instances.len(),
        1,
        "the group of one launched {} instances",
        instances.len()
    );
    instances[0]
        .instance_id()
        .expect("group instance without id")
        .to_owned()
}

async fn create_target_group(
    config: &SdkConfig,
    account: &str,
    vpc_id: &str,
    instance_id: &str,
) -> String {
    use aws_sdk_elasticloadbalancingv2::types::{ProtocolEnum, TargetDescription, TargetTypeEnum};
    let elb = account::elbv2(config, account);
    let arn = elb
        .create_target_group()
        .name(format!("tg-{account}"))
        .protocol(ProtocolEnum::Http)
        .port(80)
        .vpc_id(vpc_id)
        .target_type(TargetTypeEnum::Instance)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateTargetGroup: {e:?}"))
        .target_groups()
        .first()
        .and_then(|t| t.target_group_arn())
        .expect("CreateTargetGroup returned no ARN")
        .to_owned();
    elb.register_targets()
        .target_group_arn(&arn)
        .targets(
            TargetDescription::builder()
                .id(instance_id)
                .port(80)
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("RegisterTargets: {e:?}"));
    arn
}

/// The ENIs attached to an instance, primary first, with their groups (id and name).
pub async fn describe_enis(ec2: &aws_sdk_ec2::Client, instance_id: &str) -> Vec<Eni> {
    let out = ec2
        .describe_network_interfaces()
        .filters(
            Filter::builder()
                .name("attachment.instance-id")
                .values(instance_id)
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeNetworkInterfaces: {e:?}"));
    let mut enis: Vec<Eni> = out
        .network_interfaces()
        .iter()
        .map(|n| Eni {
            id: n.network_interface_id().unwrap_or_default().to_owned(),
            device_index: n
                .attachment()
                .and_then(|a| a.device_index())
                .unwrap_or(i32::MAX),
            subnet_id: n.subnet_id().unwrap_or_default().to_owned(),
            vpc_id: n.vpc_id().unwrap_or_default().to_owned(),
            private_ip: n.private_ip_address().unwrap_or_default().to_owned(),
            public_ip: n
                .association()
                .and_then(|a| a.public_ip())
                .filter(|ip| !ip.is_empty())
                .map(str::to_owned),
            groups: n
                .groups()
                .iter()
                .map(|g| {
                    (
                        g.group_id().unwrap_or_default().to_owned(),
                        g.group_name().unwrap_or_default().to_owned(),
                    )
                })
                .collect(),
        })
        .collect();
    enis.sort_by_key(|e| e.device_index);
    enis
}

/// The EBS volumes of an instance, in the order of its block-device mappings (root first).
pub async fn describe_volumes(ec2: &aws_sdk_ec2::Client, instance_id: &str) -> Vec<String> {
    let instance = read::instance(ec2, instance_id)
        .await
        .unwrap_or_else(|| panic!("instance {instance_id} not found"));
    let root = instance
        .root_device_name()
        .unwrap_or(ROOT_DEVICE)
        .to_owned();
    let mut mapped: Vec<(bool, String, String)> = instance
        .block_device_mappings()
        .iter()
        .filter_map(|m| {
            let volume = m.ebs()?.volume_id()?.to_owned();
            let device = m.device_name().unwrap_or_default().to_owned();
            Some((device != root, device, volume))
        })
        .collect();
    mapped.sort();
    mapped.into_iter().map(|(_, _, v)| v).collect()
}
