//! GuardDuty events about a fixture: the shipped example findings with the account,
//! instance, image, network interfaces and profile replaced by the fixture's real ones.

use serde_json::{Value, json};

use crate::account::REGION;
use crate::fixture::{Fixture, ZONE};
use crate::moto::workspace_root;

/// The instance id the example findings are written about.
const EXAMPLE_INSTANCE: &str = "i-0a1b2c3d4e5f60718";

/// The shipped `CryptoCurrency:EC2/BitcoinTool.B!DNS` example (answered by
/// `crypto-mining-ec2`), about the fixture.
pub fn bitcoin_dns_event(f: &Fixture) -> Value {
    event_about("bitcoin-dns.json", f)
}

/// The shipped `Behavior:EC2/NetworkPortUnusual` example (answered by
/// `unusual-network-behaviour-ec2`), about the fixture.
pub fn network_port_unusual_event(f: &Fixture) -> Value {
    event_about("network-port-unusual.json", f)
}

/// Decodes an event into its one finding.
pub fn finding(event: &Value) -> responder_core::Finding {
    let mut all = responder_core::decode_value(event.clone())
        .unwrap_or_else(|e| panic!("the event does not decode: {e}"));
    assert_eq!(all.len(), 1, "expected one finding in the event");
    all.remove(0)
        .unwrap_or_else(|e| panic!("the finding does not decode: {e}"))
}

/// Removes an ENI from the finding's `networkInterfaces` (as if it had been attached
/// after detection).
pub fn without_eni(mut event: Value, eni_id: &str) -> Value {
    if let Some(Value::Array(list)) =
        event.pointer_mut("/detail/resource/instanceDetails/networkInterfaces")
    {
        list.retain(|n| n.get("networkInterfaceId").and_then(Value::as_str) != Some(eni_id));
    }
    event
}

/// Loads `playbooks/tests/findings/<file>` and rewrites it to describe the fixture.
pub fn event_about(file: &str, f: &Fixture) -> Value {
    let path = workspace_root().join("playbooks/tests/findings").join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut event: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));

    let detail = event
        .get_mut("detail")
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("{file} has no detail object"));
    let old_id = detail
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("00000000000000000000")
        .to_owned();
    // 32 characters, unique per fixture (the account is unique per fixture).
    let id = format!("{}{}", &old_id[..20.min(old_id.len())], f.account);
    let detector = detail
        .get("service")
        .and_then(|s| s.get("detectorId"))
        .and_then(Value::as_str)
        .unwrap_or("12abc34d567e8fa901bc2d34e56789f0")
        .to_owned();
    detail.insert("id".into(), json!(id));
    detail.insert("accountId".into(), json!(f.account));
    detail.insert("region".into(), json!(REGION));
    detail.insert(
        "arn".into(),
        json!(format!(
            "arn:aws:guardduty:{REGION}:{}:detector/{detector}/finding/{id}",
            f.account
        )),
    );
    for key in ["title", "description"] {
        if let Some(Value::String(s)) = detail.get_mut(key) {
            *s = s.replace(EXAMPLE_INSTANCE, &f.instance_id);
        }
    }

    let primary = f.eni_details.first();
    if let Some(details) = detail
        .get_mut("resource")
        .and_then(|r| r.get_mut("instanceDetails"))
        .and_then(Value::as_object_mut)
    {
        details.insert("instanceId".into(), json!(f.instance_id));
        details.insert("imageId".into(), json!(f.image_id));
        details.insert("instanceType".into(), json!(f.instance_type));
        details.insert("availabilityZone".into(), json!(ZONE));
        details.insert(
            "iamInstanceProfile".into(),
            json!({ "arn": f.profile_arn, "id": format!("AIPA{}", f.account) }),
        );
        details.insert(
            "tags".into(),
            Value::Array(
                f.tags
                    .iter()
                    .map(|(k, v)| json!({ "key": k, "value": v }))
                    .collect(),
            ),
        );
        let enis: Vec<Value> = f
            .eni_details
            .iter()
            .map(|e| {
                let dns = format!("ip-{}.ec2.internal", e.private_ip.replace('.', "-"));
                json!({
                    "ipv6Addresses": [],
                    "networkInterfaceId": e.id,
                    "privateDnsName": dns,
                    "privateIpAddress": e.private_ip,
                    "privateIpAddresses": [
                        { "privateDnsName": dns, "privateIpAddress": e.private_ip }
                    ],
                    "subnetId": e.subnet_id,
                    "vpcId": e.vpc_id,
                    "securityGroups": e.groups.iter()
                        .map(|(id, name)| json!({ "groupName": name, "groupId": id }))
                        .collect::<Vec<_>>(),
                    "publicDnsName": e.public_ip.as_ref()
                        .map(|ip| format!("ec2-{}.compute-1.amazonaws.com", ip.replace('.', "-")))
                        .unwrap_or_default(),
                    "publicIp": e.public_ip,
                })
            })
            .collect();
        details.insert("networkInterfaces".into(), Value::Array(enis));
    }

    // The action names the primary ENI and its address in some finding types.
    if let (Some(eni), Some(action)) = (
        primary,
        detail
            .get_mut("service")
            .and_then(|s| s.get_mut("action"))
            .and_then(|a| a.get_mut("networkConnectionAction"))
            .and_then(Value::as_object_mut),
    ) {
        action.insert("localNetworkInterface".into(), json!(eni.id));
        action.insert(
            "localIpDetails".into(),
            json!({ "ipAddressV4": eni.private_ip }),
        );
    }

    let envelope = event
        .as_object_mut()
        .unwrap_or_else(|| panic!("{file} is not an object"));
    envelope.insert("account".into(), json!(f.account));
    envelope.insert("region".into(), json!(REGION));
    envelope.insert("id".into(), json!(format!("event-{id}")));
    event
}
