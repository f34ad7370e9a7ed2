//! Key casing: the AWS CLI and boto3 print findings in PascalCase, EventBridge and the
//! REST API deliver camelCase. Everything downstream works on camelCase, so PascalCase
//! input is rewritten once, here.

use serde_json::{Map, Value};

/// PascalCase member names whose camelCase wire name is not the lower-cased first
/// letter (from the GuardDuty API model's `jsonName` traits), keyed by the parent key
/// they occur under (`*` for any parent).
const RENAMED: &[(&str, &str, &str)] = &[
    ("productCodes", "Code", "productCodeId"),
    ("productCodes", "ProductType", "productCodeType"),
    ("geoLocation", "Latitude", "lat"),
    ("geoLocation", "Longitude", "lon"),
    ("*", "SourceIps", "sourceIPs"),
    ("*", "DNSLogs", "dnsLogs"),
    ("task", "TaskCreatedAt", "createdAt"),
];

/// True when the object's keys look like PascalCase finding keys (the CLI's output).
pub fn is_pascal_case(finding: &Map<String, Value>) -> bool {
    let mut pascal = 0usize;
    let mut camel = 0usize;
    for key in finding.keys() {
        match key.chars().next() {
            Some(c) if c.is_ascii_uppercase() => pascal += 1,
            Some(c) if c.is_ascii_lowercase() => camel += 1,
            _ => {}
        }
    }
    pascal > camel
}

/// Rewrites every object key from PascalCase to the camelCase GuardDuty uses on the wire.
///
/// Only keys change; values, including tag keys and values, stay as they are.
pub fn to_camel_case(value: Value) -> Value {
    rewrite(value, "")
}

/// Objects whose keys are data (resource names), not member names.
const DATA_MAPS: &[&str] = &["affectedResources"];

fn rewrite(value: Value, parent: &str) -> Value {
    match value {
        Value::Object(map) => {
            let data_keys = DATA_MAPS.contains(&parent);
            let mut out = Map::with_capacity(map.len());
            for (key, child) in map {
                // Member names are identifiers; keys such as `AWS::EC2::Instance` are data.
                let member = !data_keys && key.bytes().all(|b| b.is_ascii_alphanumeric());
                let camel = if member { camel_key(parent, &key) } else { key };
                let child = rewrite(child, &camel);
                out.insert(camel, child);
            }
            Value::Object(out)
        }
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| rewrite(v, parent)).collect())
        }
        other => other,
    }
}

fn camel_key(parent: &str, key: &str) -> String {
    if let Some((_, _, to)) = RENAMED
        .iter()
        .find(|(p, from, _)| *from == key && (*p == "*" || *p == parent))
    {
        return (*to).to_owned();
    }
    let mut chars = key.chars();
    match chars.next() {
        Some(first) if first.is_ascii_uppercase() => {
            let mut s = String::with_capacity(key.len());
            s.push(first.to_ascii_lowercase());
            s.push_str(chars.as_str());
            s
        }
        _ => key.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rewrites_nested_keys_and_keeps_values() {
        let v = json!({"AccountId": "1", "Resource": {"InstanceDetails": {"Tags": [{"Key": "Name", "Value": "Web"}],
            "ProductCodes": [{"Code": "abc", "ProductType": "marketplace"}]}},
            "Service": {"Action": {"NetworkConnectionAction": {"RemoteIpDetails": {"GeoLocation": {"Latitude": 1, "Longitude": 2}, "IpAddressV4": "1.2.3.4"}}}}});
        let out = to_camel_case(v);
        assert_eq!(
            out,
            json!({"accountId": "1", "resource": {"instanceDetails": {"tags": [{"key": "Name", "value": "Web"}],
            "productCodes": [{"productCodeId": "abc", "productCodeType": "marketplace"}]}},
            "service": {"action": {"networkConnectionAction": {"remoteIpDetails": {"geoLocation": {"lat": 1, "lon": 2}, "ipAddressV4": "1.2.3.4"}}}}})
        );
    }

    #[test]
    fn data_keys_stay() {
        let v = json!({"AffectedResources": {"AWS::EC2::Instance": "i-1", "Odd": 1}, "Labels": {"app.kubernetes.io/name": "x"}});
        assert_eq!(
            to_camel_case(v),
            json!({"affectedResources": {"AWS::EC2::Instance": "i-1", "Odd": 1}, "labels": {"app.kubernetes.io/name": "x"}})
        );
    }

    #[test]
    fn detects_casing() {
        let pascal = json!({"AccountId": "1", "Id": "x", "type": "odd"});
        let camel = json!({"accountId": "1", "id": "x"});
        assert!(is_pascal_case(pascal.as_object().unwrap_or(&Map::new())));
        assert!(!is_pascal_case(camel.as_object().unwrap_or(&Map::new())));
    }
}
