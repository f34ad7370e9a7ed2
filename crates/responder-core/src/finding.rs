//! The typed view of a GuardDuty finding that playbooks and steps need, with the raw
//! JSON kept beside it for matching any other field.
//!
//! Extraction is tolerant by design: real findings carry numbers as strings (`"-1"`),
//! `null` where a string is documented, and a dozen resource variants. A field of an
//! unexpected type reads as absent; only `id` and `type` are required.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;

use crate::finding_type::FindingType;
use crate::severity::SeverityLevel;

/// A decoded finding: typed fields plus the raw camelCase JSON.
#[derive(Debug, Clone)]
pub struct Finding {
    /// Finding id (`id`).
    pub id: String,
    /// Finding ARN (`arn`).
    pub arn: Option<String>,
    /// Finding type and its parts (`type`).
    pub finding_type: FindingType,
    /// Severity number (`severity`), 1.0 to 10.0.
    pub severity: Option<f64>,
    /// Account the finding is about (`accountId`).
    pub account_id: Option<String>,
    /// Region (`region`).
    pub region: Option<String>,
    /// Partition (`partition`).
    pub partition: Option<String>,
    /// Resource type (`resource.resourceType`), e.g. `Instance`, `AccessKey`.
    pub resource_type: Option<String>,
    /// Resource role (`service.resourceRole`): `TARGET` or `ACTOR`.
    pub resource_role: Option<String>,
    /// EC2 instance details, when the finding is about an instance.
    pub instance: Option<Instance>,
    /// Action type (`service.action.actionType`), e.g. `DNS_REQUEST`.
    pub action_type: Option<String>,
    /// Remote IPv4/IPv6 addresses named by the action.
    pub remote_ips: Vec<String>,
    /// Remote ports named by the action.
    pub remote_ports: Vec<u16>,
    /// Local ports named by the action.
    pub local_ports: Vec<u16>,
    /// Domain of a DNS request action.
    pub domain: Option<String>,
    /// How many times GuardDuty saw this activity (`service.count`).
    pub count: Option<u64>,
    /// Whether the finding is archived (`service.archived`).
    pub archived: bool,
    /// First time the activity was seen (`service.eventFirstSeen`), as given.
    pub first_seen: Option<String>,
    /// Last time the activity was seen (`service.eventLastSeen`), as given.
    pub last_seen: Option<String>,
    /// Creation time (`createdAt`), as given.
    pub created_at: Option<String>,
    /// Update time (`updatedAt`), as given.
    pub updated_at: Option<String>,
    /// Title, for people.
    pub title: Option<String>,
    /// The whole finding, camelCase keys.
    pub raw: Value,
}

/// EC2 instance details of a finding (`resource.instanceDetails`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Instance {
    /// Instance id.
    pub instance_id: String,
    /// Instance type, e.g. `t3.micro`.
    pub instance_type: Option<String>,
    /// AMI id.
    pub image_id: Option<String>,
    /// Availability zone.
    pub availability_zone: Option<String>,
    /// Instance state at detection time.
    pub state: Option<String>,
    /// Platform (`windows`), usually null.
    pub platform: Option<String>,
    /// Launch time: an ISO string, or epoch milliseconds rendered as a string.
    pub launch_time: Option<String>,
    /// IAM instance profile.
    pub iam_instance_profile: Option<InstanceProfile>,
    /// Every network interface listed by the finding.
    pub network_interfaces: Vec<NetworkInterface>,
    /// Instance tags at detection time.
    pub tags: Vec<Tag>,
    /// Outpost ARN, when on an Outpost.
    pub outpost_arn: Option<String>,
}

impl Instance {
    /// The value of one of the instance's tags, as the finding lists them.
    pub fn tag(&self, key: &str) -> Option<String> {
        self.tags
            .iter()
            .find(|t| t.key == key)
            .map(|t| t.value.clone())
    }
}

/// IAM instance profile of an instance.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct InstanceProfile {
    /// Profile ARN.
    pub arn: Option<String>,
    /// Profile id.
    pub id: Option<String>,
}

/// One network interface at detection time.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NetworkInterface {
    /// ENI id.
    pub network_interface_id: String,
    /// VPC id.
    pub vpc_id: Option<String>,
    /// Subnet id.
    pub subnet_id: Option<String>,
    /// Security groups attached at detection time.
    pub security_groups: Vec<SecurityGroup>,
    /// Primary private IPv4 address.
    pub private_ip_address: Option<String>,
    /// All private IPv4 addresses.
    pub private_ip_addresses: Vec<String>,
    /// Public IPv4 address.
    pub public_ip: Option<String>,
    /// IPv6 addresses.
    pub ipv6_addresses: Vec<String>,
}

/// A security group reference.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SecurityGroup {
    /// Group id.
    pub group_id: String,
    /// Group name.
    pub group_name: Option<String>,
}

/// A resource tag.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tag {
    /// Tag key.
    pub key: String,
    /// Tag value (may be empty).
    pub value: String,
}

impl Finding {
    /// Builds the typed view from a camelCase finding object.
    ///
    /// Fails only when `id` or `type` is missing or not a string.
    pub fn from_value(raw: Value) -> Result<Finding, MissingField> {
        let required = |key: &'static str| match raw.get(key) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            _ => Err(MissingField(key)),
        };
        let id = required("id")?;
        let type_name = required("type")?;
        let service = raw.get("service");
        let action = service.and_then(|s| s.get("action"));
        let mut remote_ips = Vec::new();
        let mut remote_ports = Vec::new();
        let mut local_ports = Vec::new();
        let mut domain = None;
        if let Some(action) = action {
            collect_action(
                action,
                &mut remote_ips,
                &mut remote_ports,
                &mut local_ports,
                &mut domain,
            );
            dedup_in_order(&mut remote_ips);
            dedup_in_order(&mut remote_ports);
            dedup_in_order(&mut local_ports);
        }
        Ok(Finding {
            finding_type: FindingType::parse(&type_name),
            id,
            arn: str_at(&raw, &["arn"]),
            severity: raw.get("severity").and_then(number),
            account_id: str_at(&raw, &["accountId"]),
            region: str_at(&raw, &["region"]),
            partition: str_at(&raw, &["partition"]),
            resource_type: str_at(&raw, &["resource", "resourceType"]),
            resource_role: service.and_then(|s| str_at(s, &["resourceRole"])),
            instance: raw.get("resource").and_then(|r| {
                r.get("instanceDetails")
                    .and_then(instance)
                    .or_else(|| instance_of_credentials(r))
            }),
            action_type: action.and_then(|a| str_at(a, &["actionType"])),
            remote_ips,
            remote_ports,
            local_ports,
            domain,
            count: service
                .and_then(|s| s.get("count"))
                .and_then(number)
                .map(|n| n as u64),
            archived: service
                .and_then(|s| s.get("archived"))
                .and_then(Value::as_bool)
                .unwrap_or(false),
            first_seen: service.and_then(|s| str_at(s, &["eventFirstSeen"])),
            last_seen: service.and_then(|s| str_at(s, &["eventLastSeen"])),
            created_at: str_at(&raw, &["createdAt"]),
            updated_at: str_at(&raw, &["updatedAt"]),
            title: str_at(&raw, &["title"]),
            raw,
        })
    }

    /// Console severity level of the finding, when it has a severity.
    pub fn severity_level(&self) -> Option<SeverityLevel> {
        self.severity.map(SeverityLevel::of)
    }

    /// The instance id, when the finding is about an EC2 instance.
    pub fn instance_id(&self) -> Option<&str> {
        self.instance.as_ref().map(|i| i.instance_id.as_str())
    }

    /// Instance tags (empty when there is no instance).
    pub fn instance_tags(&self) -> &[Tag] {
        self.instance.as_ref().map_or(&[], |i| i.tags.as_slice())
    }

    /// Whether GuardDuty generated this finding as a sample (`CreateSampleFindings`).
    ///
    /// `service.additionalInfo` says so in one of two ways: EventBridge events carry
    /// `sample` as a member (`true`, or the string `"true"`), while GetFindings answers
    /// carry it inside `value`, a JSON document held in a string
    /// (`{"value": "{\"sample\":true}", "type": "default"}`). Either counts.
    pub fn is_sample(&self) -> bool {
        let Some(info) = self
            .raw
            .get("service")
            .and_then(|s| s.get("additionalInfo"))
        else {
            return false;
        };
        if info.get("sample").is_some_and(truthy) {
            return true;
        }
        info.get("value")
            .and_then(Value::as_str)
            .and_then(|text| serde_json::from_str::<Value>(text).ok())
            .and_then(|inner| inner.get("sample").map(truthy))
            .unwrap_or(false)
    }
}

/// `true`, or a string that says true in any case.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::String(s) => s.trim().eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// A required field was absent or not a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("missing required field `{0}`")]
pub struct MissingField(pub &'static str);

fn str_at(value: &Value, path: &[&str]) -> Option<String> {
    let mut v = value;
    for key in path {
        v = v.get(key)?;
    }
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A number, or a string holding one (`"5"`, `"-1"`).
pub(crate) fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Object(_) => str_at(v, &["privateIpAddress"]),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

fn instance(details: &Value) -> Option<Instance> {
    let instance_id = str_at(details, &["instanceId"])?;
    let network_interfaces = details
        .get("networkInterfaces")
        .and_then(Value::as_array)
        .map(|enis| enis.iter().filter_map(network_interface).collect())
        .unwrap_or_default();
    let tags = details
        .get("tags")
        .and_then(Value::as_array)
        .map(|tags| tags.iter().filter_map(tag).collect())
        .unwrap_or_default();
    let iam_instance_profile = details.get("iamInstanceProfile").and_then(|p| {
        let profile = InstanceProfile {
            arn: str_at(p, &["arn"]),
            id: str_at(p, &["id"]),
        };
        (profile.arn.is_some() || profile.id.is_some()).then_some(profile)
    });
    Some(Instance {
        instance_id,
        instance_type: str_at(details, &["instanceType"]),
        image_id: str_at(details, &["imageId"]),
        availability_zone: str_at(details, &["availabilityZone"]),
        state: str_at(details, &["instanceState"]),
        platform: str_at(details, &["platform"]),
        launch_time: str_at(details, &["launchTime"]),
        iam_instance_profile,
        network_interfaces,
        tags,
        outpost_arn: str_at(details, &["outpostArn"]),
    })
}

/// Instance-credential findings (`InstanceCredentialExfiltration`) are about an access
/// key; the instance is the role session name, `principalId` = `AROA...:i-0abc...`.
fn instance_of_credentials(resource: &Value) -> Option<Instance> {
    let principal = str_at(resource, &["accessKeyDetails", "principalId"])?;
    let session = principal.rsplit_once(':')?.1;
    crate::ids::is_instance_id(session).then(|| Instance {
        instance_id: session.to_owned(),
        ..Instance::default()
    })
}

fn network_interface(eni: &Value) -> Option<NetworkInterface> {
    Some(NetworkInterface {
        network_interface_id: str_at(eni, &["networkInterfaceId"])?,
        vpc_id: str_at(eni, &["vpcId"]),
        subnet_id: str_at(eni, &["subnetId"]),
        security_groups: eni
            .get("securityGroups")
            .and_then(Value::as_array)
            .map(|groups| {
                groups
                    .iter()
                    .filter_map(|g| {
                        Some(SecurityGroup {
                            group_id: str_at(g, &["groupId"])?,
                            group_name: str_at(g, &["groupName"]),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default(),
        private_ip_address: str_at(eni, &["privateIpAddress"]),
        private_ip_addresses: strings(eni.get("privateIpAddresses")),
        public_ip: str_at(eni, &["publicIp"]),
        ipv6_addresses: strings(eni.get("ipv6Addresses")),
    })
}

fn tag(tag: &Value) -> Option<Tag> {
    Some(Tag {
        key: str_at(tag, &["key"])?,
        value: tag
            .get("value")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
    })
}

fn port(details: Option<&Value>) -> Option<u16> {
    details
        .and_then(|d| d.get("port"))
        .and_then(number)
        .filter(|p| (0.0..=65535.0).contains(p))
        .map(|p| p as u16)
}

/// Pushes the addresses; duplicates are removed once at the end ([`dedup_in_order`]),
/// not by scanning the list on every push, which was quadratic in probe IPs.
fn push_ip(ips: &mut Vec<String>, details: Option<&Value>) {
    let Some(details) = details else { return };
    for key in ["ipAddressV4", "ipAddressV6"] {
        if let Some(ip) = str_at(details, &[key]) {
            ips.push(ip);
        }
    }
}

fn push_port(ports: &mut Vec<u16>, port: Option<u16>) {
    ports.extend(port);
}

/// Keeps the first occurrence of each value, in order: O(n log n).
fn dedup_in_order<T: Ord + Clone>(items: &mut Vec<T>) {
    let mut seen = BTreeSet::new();
    items.retain(|x| seen.insert(x.clone()));
}

fn collect_action(
    action: &Value,
    remote_ips: &mut Vec<String>,
    remote_ports: &mut Vec<u16>,
    local_ports: &mut Vec<u16>,
    domain: &mut Option<String>,
) {
    if let Some(nc) = action.get("networkConnectionAction") {
        push_ip(remote_ips, nc.get("remoteIpDetails"));
        push_port(remote_ports, port(nc.get("remotePortDetails")));
        push_port(local_ports, port(nc.get("localPortDetails")));
    }
    if let Some(dns) = action.get("dnsRequestAction") {
        *domain = str_at(dns, &["domain"]);
    }
    if let Some(api) = action.get("awsApiCallAction") {
        push_ip(remote_ips, api.get("remoteIpDetails"));
        if domain.is_none() {
            *domain = str_at(api, &["domainDetails", "domain"]);
        }
    }
    if let Some(probes) = action
        .get("portProbeAction")
        .and_then(|p| p.get("portProbeDetails"))
        .and_then(Value::as_array)
    {
        for probe in probes {
            push_ip(remote_ips, probe.get("remoteIpDetails"));
            push_port(local_ports, port(probe.get("localPortDetails")));
        }
    }
    if let Some(k8s) = action.get("kubernetesApiCallAction") {
        push_ip(remote_ips, k8s.get("remoteIpDetails"));
    }
    if let Some(rds) = action.get("rdsLoginAttemptAction") {
        push_ip(remote_ips, rds.get("remoteIpDetails"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn required_fields() {
        assert_eq!(
            Finding::from_value(json!({"type": "X:EC2/Y"})).err(),
            Some(MissingField("id"))
        );
        assert_eq!(
            Finding::from_value(json!({"id": "1", "type": 5})).err(),
            Some(MissingField("type"))
        );
    }

    #[test]
    fn tolerant_types_and_missing_optionals() {
        let f = Finding::from_value(json!({
            "id": "1", "type": "Recon:EC2/PortProbeUnprotectedPort", "severity": "2",
            "service": {"count": 3, "archived": true, "action": {"actionType": "PORT_PROBE",
              "portProbeAction": {"portProbeDetails": [{"localPortDetails": {"port": "22"},
                "remoteIpDetails": {"ipAddressV4": "198.51.100.7", "organization": {"asn": "-1"}}}]}}},
            "resource": {"instanceDetails": {"instanceId": "i-1", "platform": null, "launchTime": 1_700_000_000_000u64,
              "tags": [{"key": "Name"}], "networkInterfaces": [{"networkInterfaceId": "eni-1", "securityGroups": [{"groupId": "sg-1"}]}]}}
        }))
        .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(f.severity, Some(2.0));
        assert_eq!(f.count, Some(3));
        assert!(f.archived);
        assert_eq!(f.local_ports, vec![22]);
        assert_eq!(f.remote_ips, vec!["198.51.100.7".to_owned()]);
        let i = f.instance.unwrap_or_default();
        assert_eq!(i.platform, None);
        assert_eq!(i.launch_time.as_deref(), Some("1700000000000"));
        assert_eq!(i.tags[0].value, "");
        assert_eq!(i.network_interfaces[0].security_groups[0].group_id, "sg-1");
        assert_eq!(f.account_id, None);
        let creds = Finding::from_value(json!({"id": "2", "type": "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
            "resource": {"resourceType": "AccessKey", "accessKeyDetails": {"principalId": "AROAEXAMPLE:i-0a1b2c3d4e5f60718"}}}))
        .unwrap();
        assert_eq!(creds.instance_id(), Some("i-0a1b2c3d4e5f60718"));
        let user = Finding::from_value(json!({"id": "3", "type": "Recon:IAMUser/MaliciousIPCaller",
            "resource": {"resourceType": "AccessKey", "accessKeyDetails": {"principalId": "AIDAEXAMPLE:alice"}}}))
        .unwrap();
        assert_eq!(user.instance_id(), None);
        assert_eq!(f.resource_type, None);
    }

    #[test]
    fn sample_in_either_form() {
        let with = |info: Value| {
            Finding::from_value(
                json!({"id": "1", "type": "X:EC2/Y", "service": {"additionalInfo": info}}),
            )
            .unwrap_or_else(|e| unreachable!("{e}"))
            .is_sample()
        };
        assert!(with(json!({"sample": true})));
        assert!(with(json!({"sample": "TRUE"})));
        assert!(with(
            json!({"value": "{\"threatListName\":\"x\",\"sample\":true}", "type": "default"})
        ));
        assert!(with(json!({"value": "{\"sample\":\"true\"}"})));
        assert!(!with(
            json!({"sample": false, "value": "{\"sample\":false}"})
        ));
        assert!(!with(json!({"value": "not json", "type": "default"})));
        assert!(!with(json!({"sample": 1})));
        assert!(!with(json!(null)));
        let none = Finding::from_value(json!({"id": "1", "type": "X:EC2/Y"}))
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert!(!none.is_sample());
    }
}
