//! The typed view of a GuardDuty finding that playbooks and steps need, with the raw
//! JSON kept beside it for matching any other field.
//!
//! Extraction is tolerant by design: real findings carry numbers as strings (`"-1"`),
//! `null` where a string is documented, and a dozen resource variants. A field of an
//! unexpected type reads as absent; only `id` and `type` are required.
//!
//! The typed view is decoded straight from the bytes ([`wire`]: serde visitors, no
//! DOM). The raw JSON is kept as the finding's bytes and parsed into a `Value` only
//! when something asks for it ([`Finding::raw`]: `fields` criteria, mostly), once.
//! PascalCase input is read the same way, its keys rewritten as they are read
//! ([`wire::KeyCase`]).

use std::collections::BTreeSet;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub(crate) mod wire;

use wire::{Element, Scalar, Wire};

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
    /// The detector that raised the finding (`service.detectorId`), when a string.
    pub detector_id: Option<String>,
    /// The attack sequence the finding belongs to (`associatedAttackSequenceArn`),
    /// when a string.
    pub attack_sequence_arn: Option<String>,
    /// The finding whose malware scan raised this one
    /// (`service.ebsVolumeScanDetails.triggerFindingId`), when a string.
    pub scan_trigger_finding_id: Option<String>,
    /// See [`Finding::is_sample`].
    sample: bool,
    /// The whole finding, camelCase keys: see [`Finding::raw`].
    raw: Raw,
}

/// The raw JSON of a finding: given as a `Value`, or as the bytes it was decoded from
/// (parsed on first use).
#[derive(Debug, Clone, Default)]
struct Raw {
    /// The JSON text: the finding, or an EventBridge envelope whose `detail` it is.
    text: Option<Box<[u8]>>,
    /// Whether the finding is the `detail` of `text`.
    in_detail: bool,
    /// Whether the finding's keys are PascalCase (rewritten when parsed).
    pascal: bool,
    /// The parsed finding.
    value: OnceLock<Value>,
}

impl Raw {
    fn of_value(value: Value) -> Raw {
        Raw {
            text: None,
            in_detail: false,
            pascal: false,
            value: OnceLock::from(value),
        }
    }

    fn get(&self) -> &Value {
        self.value.get_or_init(|| {
            let parsed = self
                .text
                .as_deref()
                .and_then(|t| serde_json::from_slice::<Value>(t).ok());
            let value = match parsed {
                Some(Value::Object(mut map)) if self.in_detail => {
                    map.remove("detail").unwrap_or(Value::Null)
                }
                Some(v) => v,
                None => Value::Null,
            };
            if self.pascal {
                crate::casing::to_camel_case(value)
            } else {
                value
            }
        })
    }
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
        let wire = match Element::deserialize(&raw) {
            Ok(Element::Object(wire)) => *wire,
            _ => return Err(MissingField("id")),
        };
        Finding::from_wire(wire, Raw::of_value(raw))
    }

    /// The typed view of a finding decoded from `text` (the finding itself, or the
    /// EventBridge envelope whose `detail` it is when `in_detail`), which is kept as
    /// the raw JSON.
    /// `pascal`: the finding's keys are PascalCase ([`Finding::raw`] rewrites them).
    pub(crate) fn from_text(
        wire: Wire,
        text: &[u8],
        in_detail: bool,
        pascal: bool,
    ) -> Result<Finding, MissingField> {
        let raw = Raw {
            text: Some(text.into()),
            in_detail,
            pascal,
            value: OnceLock::new(),
        };
        Finding::from_wire(wire, raw)
    }

    /// The typed view of a camelCase finding given as a parsed `Value`.
    pub(crate) fn from_wire_and_value(wire: Wire, raw: Value) -> Result<Finding, MissingField> {
        Finding::from_wire(wire, Raw::of_value(raw))
    }

    fn from_wire(wire: Wire, raw: Raw) -> Result<Finding, MissingField> {
        let required = |v: Option<Value>, key: &'static str| match v {
            Some(Value::String(s)) if !s.is_empty() => Ok(s),
            _ => Err(MissingField(key)),
        };
        let id = required(wire.id, "id")?;
        let type_name = required(wire.type_, "type")?;
        let service = wire.service.unwrap_or_default();
        let mut remote_ips = Vec::new();
        let mut remote_ports = Vec::new();
        let mut local_ports = Vec::new();
        let mut domain = None;
        let mut action_type = None;
        if let Some(action) = service.action {
            action_type = action.action_type.text();
            collect_action(
                action.network_connection,
                action.dns_request,
                action.aws_api_call,
                action.port_probe,
                [action.kubernetes_api_call, action.rds_login_attempt],
                &mut remote_ips,
                &mut remote_ports,
                &mut local_ports,
                &mut domain,
            );
            dedup_in_order(&mut remote_ips);
            dedup_in_order(&mut remote_ports);
            dedup_in_order(&mut local_ports);
        }
        let sample = service.additional_info.is_some_and(|info| {
            info.sample.truthy()
                || info.value.into_string().is_some_and(|text| {
                    matches!(
                        serde_json::from_str::<wire::Obj<wire::AdditionalInfo>>(&text),
                        Ok(wire::Obj(Some(inner))) if inner.sample.truthy()
                    )
                })
        });
        let (resource_type, instance) = match wire.resource {
            Some(r) => {
                let credentials = r.principal_id;
                let instance = r
                    .instance_details
                    .and_then(instance)
                    .or_else(|| instance_of_credentials(credentials));
                (r.resource_type.and_then(value_text), instance)
            }
            None => (None, None),
        };
        Ok(Finding {
            finding_type: FindingType::parse(&type_name),
            id,
            arn: wire.arn.and_then(value_text),
            severity: wire.severity.as_ref().and_then(number),
            account_id: wire.account_id.and_then(value_text),
            region: wire.region.and_then(value_text),
            partition: wire.partition.text(),
            resource_type,
            resource_role: service.resource_role.text(),
            instance,
            action_type,
            remote_ips,
            remote_ports,
            local_ports,
            domain,
            count: service.count.number().map(|n| n as u64),
            archived: matches!(service.archived, Scalar::Bool(true)),
            first_seen: service.event_first_seen.text(),
            last_seen: service.event_last_seen.text(),
            created_at: wire.created_at.text(),
            updated_at: wire.updated_at.text(),
            title: wire.title.text(),
            detector_id: service.detector_id.into_string(),
            attack_sequence_arn: wire.associated_attack_sequence_arn.into_string(),
            scan_trigger_finding_id: service.trigger_finding_id.into_string(),
            sample,
            raw,
        })
    }

    /// The whole finding as JSON, camelCase keys (PascalCase input was rewritten).
    ///
    /// A finding decoded from bytes parses them on the first call and keeps the result:
    /// read the typed fields when they say what you need.
    pub fn raw(&self) -> &Value {
        self.raw.get()
    }

    /// The whole finding as JSON, camelCase keys, owned (see [`Finding::raw`]).
    pub fn into_raw(mut self) -> Value {
        self.raw.get();
        self.raw.value.take().unwrap_or(Value::Null)
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
        self.sample
    }
}

/// A required field was absent or not a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("missing required field `{0}`")]
pub struct MissingField(pub &'static str);

/// A non-empty string, or a number rendered as text.
fn value_text(value: Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s),
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

fn instance(details: wire::InstanceDetails) -> Option<Instance> {
    let instance_id = details.instance_id.and_then(value_text)?;
    let network_interfaces = details
        .network_interfaces
        .0
        .into_iter()
        .flatten()
        .filter_map(network_interface)
        .collect();
    let tags = details
        .tags
        .0
        .into_iter()
        .flatten()
        .filter_map(tag)
        .collect();
    let iam_instance_profile = details.iam_instance_profile.and_then(|p| {
        let profile = InstanceProfile {
            arn: p.arn.text(),
            id: p.id.text(),
        };
        (profile.arn.is_some() || profile.id.is_some()).then_some(profile)
    });
    Some(Instance {
        instance_id,
        instance_type: details.instance_type.text(),
        image_id: details.image_id.text(),
        availability_zone: details.availability_zone.text(),
        state: details.instance_state.text(),
        platform: details.platform.text(),
        launch_time: details.launch_time.text(),
        iam_instance_profile,
        network_interfaces,
        tags,
        outpost_arn: details.outpost_arn.text(),
    })
}

/// Instance-credential findings (`InstanceCredentialExfiltration`) are about an access
/// key; the instance is the role session name, `principalId` = `AROA...:i-0abc...`.
fn instance_of_credentials(principal_id: Scalar) -> Option<Instance> {
    let principal = principal_id.text()?;
    let session = principal.rsplit_once(':')?.1;
    crate::ids::is_instance_id(session).then(|| Instance {
        instance_id: session.to_owned(),
        ..Instance::default()
    })
}

fn network_interface(eni: wire::Eni) -> Option<NetworkInterface> {
    Some(NetworkInterface {
        network_interface_id: eni.network_interface_id.text()?,
        vpc_id: eni.vpc_id.text(),
        subnet_id: eni.subnet_id.text(),
        security_groups: eni
            .security_groups
            .0
            .into_iter()
            .flatten()
            .filter_map(|g| {
                Some(SecurityGroup {
                    group_id: g.group_id.text()?,
                    group_name: g.group_name.text(),
                })
            })
            .collect(),
        private_ip_address: eni.private_ip_address.text(),
        private_ip_addresses: eni.private_ip_addresses.0,
        public_ip: eni.public_ip.text(),
        ipv6_addresses: eni.ipv6_addresses.0,
    })
}

fn tag(tag: wire::TagWire) -> Option<Tag> {
    Some(Tag {
        key: tag.key.text()?,
        value: tag.value.into_string().unwrap_or_default(),
    })
}

fn port(details: Option<wire::PortDetails>) -> Option<u16> {
    details
        .and_then(|d| d.port.number())
        .filter(|p| (0.0..=65535.0).contains(p))
        .map(|p| p as u16)
}

/// Pushes the addresses; duplicates are removed once at the end ([`dedup_in_order`]),
/// not by scanning the list on every push, which was quadratic in probe IPs.
fn push_ip(ips: &mut Vec<String>, details: Option<wire::Ips>) {
    let Some(details) = details else { return };
    for ip in [details.v4, details.v6] {
        if let Some(ip) = ip.text() {
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

/// The action's addresses, ports and domain, read in a fixed order of action kinds
/// (whatever order the input lists them in).
#[allow(clippy::too_many_arguments)]
fn collect_action(
    connection: Option<wire::Connection>,
    dns: Option<wire::Dns>,
    api: Option<wire::ApiCall>,
    probes: Option<wire::List<wire::Probe2>>,
    others: [Option<wire::Remote>; 2],
    remote_ips: &mut Vec<String>,
    remote_ports: &mut Vec<u16>,
    local_ports: &mut Vec<u16>,
    domain: &mut Option<String>,
) {
    if let Some(nc) = connection {
        push_ip(remote_ips, nc.remote_ip);
        push_port(remote_ports, port(nc.remote_port));
        push_port(local_ports, port(nc.local_port));
    }
    if let Some(dns) = dns {
        *domain = dns.domain.text();
    }
    if let Some(api) = api {
        push_ip(remote_ips, api.remote_ip);
        if domain.is_none() {
            *domain = api.domain.and_then(|d| d.domain.text());
        }
    }
    for probe in probes.into_iter().flat_map(|p| p.0).flatten() {
        push_ip(remote_ips, probe.remote_ip);
        push_port(local_ports, port(probe.local_port));
    }
    for remote in others.into_iter().flatten() {
        push_ip(remote_ips, remote.remote_ip);
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
