//! Verification before acting: the finding an event carries is only a claim, so it is
//! fetched from GuardDuty (GetFindings) and the response is planned from GuardDuty's
//! copy, never from the event's.
//!
//! The detector is the configured one (`DETECTOR_ID`) or the one ListDetectors names
//! in the client's region (exactly one expected, found once per container), never the
//! detector id inside the finding's ARN: in an organization that is the member
//! account's detector, which the administrator's credentials cannot read.
//!
//! Outcomes:
//! - [`Verification::Verified`]: GuardDuty has the finding, unarchived, with the same
//!   id, type, account, region and resource as the event; its copy is returned.
//! - [`Verification::Unverified`]: no action. Not found after [`RetryPolicy::attempts`]
//!   GetFindings calls (new findings can take a moment to be readable), archived, or
//!   a field that differs. The invocation succeeds: retrying would not change it.
//! - [`VerifyError`]: GuardDuty could not be asked (throttling or 5xx after the SDK's
//!   own retries, access denied, no or several detectors). The invocation must fail
//!   so that Lambda retries it.
//!
//! GuardDuty's copy is read from the raw GetFindings answer (camelCase JSON, the
//! shape `responder_core::Finding` is built from) through a per-call interceptor, so
//! that the whole finding reaches the planner as GuardDuty wrote it; the SDK's typed
//! output is not converted back.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_sdk_guardduty::config::interceptors::AfterDeserializationInterceptorContextRef;
use aws_sdk_guardduty::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_guardduty::error::BoxError;
use responder_core::Finding;
use responder_core::casing;
use serde_json::Value;
use tokio::sync::OnceCell;

use crate::call::{self, CallError};

/// At most this many ListDetectors pages are read (GuardDuty allows one detector per
/// account and region, so one page is the norm).
const MAX_DETECTOR_PAGES: usize = 10;

/// Where the detector id comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DetectorSource {
    /// The configured detector (`DETECTOR_ID`).
    Fixed(String),
    /// ListDetectors in the client's region; exactly one detector is expected.
    Discover,
}

/// How often a finding GuardDuty does not (yet) return is asked for again.
///
/// Only "not found" is retried here; throttling and server errors are the SDK's
/// retry configuration's business.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// GetFindings calls in all (0 counts as 1).
    pub attempts: u32,
    /// Pause between two calls.
    pub delay: Duration,
}

impl Default for RetryPolicy {
    /// 3 attempts, 300 ms apart: a finding that EventBridge delivered is readable
    /// within that in practice, and an invented one costs under a second.
    fn default() -> RetryPolicy {
        RetryPolicy {
            attempts: 3,
            delay: Duration::from_millis(300),
        }
    }
}

/// What GuardDuty says about the event's finding.
#[derive(Debug, Clone)]
pub enum Verification {
    /// GuardDuty's copy, decoded; the plan is made from it.
    Verified {
        /// GuardDuty's copy of the finding.
        finding: Box<Finding>,
        /// `service.additionalInfo.sample` is true: a `CreateSampleFindings` finding,
        /// which must never reach a destructive step.
        sample: bool,
    },
    /// No action: `reason` says which check failed (not found after N attempts,
    /// archived, or which of type/account/region/resource differs).
    Unverified {
        /// For the report and the log line.
        reason: String,
    },
}

impl Verification {
    /// True for [`Verification::Verified`].
    pub fn is_verified(&self) -> bool {
        matches!(self, Verification::Verified { .. })
    }
}

/// GuardDuty could not be asked: the invocation must fail and be retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A GuardDuty call failed (throttling or 5xx after the SDK's retries, access
    /// denied, an unknown detector, a transport error).
    #[error("GuardDuty {operation} failed: {error}")]
    Api {
        /// `ListDetectors` or `GetFindings`.
        operation: &'static str,
        /// The error code and message.
        error: CallError,
    },
    /// ListDetectors found no detector: GuardDuty is not enabled in this region.
    #[error(
        "no GuardDuty detector in {region}: enable GuardDuty there or set DETECTOR_ID to the detector that receives the findings"
    )]
    NoDetector {
        /// The client's region.
        region: String,
    },
    /// ListDetectors found several detectors and none is configured.
    #[error(
        "{} GuardDuty detectors in {region} ({}): set DETECTOR_ID to the one whose findings this function answers",
        ids.len(), ids.join(", ")
    )]
    SeveralDetectors {
        /// The client's region.
        region: String,
        /// Every detector listed.
        ids: Vec<String>,
    },
    /// GuardDuty answered something that is not a GetFindings answer, or a finding
    /// without an id or type.
    #[error("GuardDuty GetFindings answered an unreadable finding: {0}")]
    Answer(String),
}

/// Fetches findings from GuardDuty and compares them with the events' copies.
#[derive(Debug)]
pub struct Verifier {
    client: aws_sdk_guardduty::Client,
    detector: DetectorSource,
    retry: RetryPolicy,
    /// The discovered detector id, kept for the container's life.
    discovered: OnceCell<String>,
}

impl Verifier {
    /// A verifier over `client` (whose region is the one asked), reading findings
    /// from `detector`.
    pub fn new(
        client: aws_sdk_guardduty::Client,
        detector: DetectorSource,
        retry: RetryPolicy,
    ) -> Verifier {
        Verifier {
            client,
            detector,
            retry,
            discovered: OnceCell::new(),
        }
    }

    /// A verifier like this one (same retry policy) over `client`, typically the
    /// administrator's GuardDuty in another region, whose detector it discovers
    /// (a configured `DETECTOR_ID` is the home region's).
    pub fn in_region(&self, client: aws_sdk_guardduty::Client) -> Verifier {
        Verifier::new(client, DetectorSource::Discover, self.retry)
    }

    /// Fetches the finding from GuardDuty and compares it with the event's copy.
    ///
    /// Not found is asked again per the [`RetryPolicy`], then is
    /// [`Verification::Unverified`]; any other API failure is a [`VerifyError`].
    pub async fn verify(&self, event: &Finding) -> Result<Verification, VerifyError> {
        let detector = self.detector_id().await?;
        let attempts = self.retry.attempts.max(1);
        let mut found = None;
        for attempt in 1..=attempts {
            found = self.get_finding(detector, &event.id).await?;
            if found.is_some() {
                break;
            }
            if attempt < attempts {
                tokio::time::sleep(self.retry.delay).await;
            }
        }
        let Some(raw) = found else {
            return Ok(Verification::Unverified {
                reason: format!(
                    "finding {} not found in GuardDuty detector {detector} after {attempts} GetFindings call{}",
                    event.id,
                    if attempts == 1 { "" } else { "s" }
                ),
            });
        };
        let copy = decode(raw)?;
        Ok(compare(event, copy))
    }

    /// The detector to read from: the configured one, or the one ListDetectors
    /// names (asked once; a failure is not cached, the next call asks again).
    pub async fn detector_id(&self) -> Result<&str, VerifyError> {
        match &self.detector {
            DetectorSource::Fixed(id) => Ok(id),
            DetectorSource::Discover => self
                .discovered
                .get_or_try_init(|| self.discover())
                .await
                .map(String::as_str),
        }
    }

    async fn discover(&self) -> Result<String, VerifyError> {
        let region = self
            .client
            .config()
            .region()
            .map_or_else(|| "the client's region".to_owned(), |r| r.to_string());
        let mut ids: Vec<String> = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_DETECTOR_PAGES {
            let page = self
                .client
                .list_detectors()
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| VerifyError::Api {
                    operation: "ListDetectors",
                    error: call::err(e),
                })?;
            ids.extend(page.detector_ids().iter().cloned());
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => break,
            }
        }
        ids.sort();
        ids.dedup();
        match ids.len() {
            0 => Err(VerifyError::NoDetector { region }),
            1 => Ok(ids.remove(0)),
            _ => Err(VerifyError::SeveralDetectors { region, ids }),
        }
    }

    /// One GetFindings call for `id`: GuardDuty's copy as raw JSON, or `None` when
    /// the answer does not contain it.
    async fn get_finding(&self, detector: &str, id: &str) -> Result<Option<Value>, VerifyError> {
        let capture = CaptureBody::default();
        let sent = self
            .client
            .get_findings()
            .detector_id(detector)
            .finding_ids(id)
            .customize()
            .interceptor(capture.clone())
            .send()
            .await;
        let body = match (sent, capture.take()) {
            (Ok(_), Some((_, body))) => body,
            // A successful answer the SDK could not read into its types (a field of
            // another type than its model says, as some exports write `launchTime`):
            // the finding is read from the JSON, tolerantly, as every other copy is.
            (Err(e), Some((status, body))) if (200..300).contains(&status) => {
                tracing::warn!(
                    finding_id = id,
                    error = %call::err(e),
                    "GetFindings answer read without the SDK's types"
                );
                body
            }
            (Err(e), _) => {
                return Err(VerifyError::Api {
                    operation: "GetFindings",
                    error: call::err(e),
                });
            }
            (Ok(_), None) => {
                return Err(VerifyError::Answer(
                    "the answer's body could not be read".to_owned(),
                ));
            }
        };
        let answer: Value = serde_json::from_slice(&body)
            .map_err(|e| VerifyError::Answer(format!("not JSON: {e}")))?;
        let findings = answer
            .get("findings")
            .and_then(Value::as_array)
            .ok_or_else(|| VerifyError::Answer("no `findings` list".to_owned()))?;
        Ok(findings
            .iter()
            .find(|f| f.get("id").and_then(Value::as_str) == Some(id))
            .cloned())
    }
}

/// GuardDuty's copy as a typed finding. The API answers camelCase; a PascalCase
/// copy (a proxy that re-serialised it) is converted as the CLI's decoder does. The
/// decoder's check for unexpanded `${...}` template placeholders is deliberately not
/// applied: it guards hand-written test files, while GuardDuty's copy may quote
/// attacker-chosen text (user agents, command lines) that contains `${`.
fn decode(raw: Value) -> Result<Finding, VerifyError> {
    let raw = match raw {
        Value::Object(map) if casing::is_pascal_case(&map) => {
            casing::to_camel_case(Value::Object(map))
        }
        other => other,
    };
    Finding::from_value(raw).map_err(|e| VerifyError::Answer(e.to_string()))
}

/// The event's copy against GuardDuty's: same identity, resource and not archived.
fn compare(event: &Finding, copy: Finding) -> Verification {
    let checks: [(&str, Option<&str>, Option<&str>); 6] = [
        ("id", Some(&event.id), Some(&copy.id)),
        (
            "type",
            Some(&event.finding_type.name),
            Some(&copy.finding_type.name),
        ),
        (
            "accountId",
            event.account_id.as_deref(),
            copy.account_id.as_deref(),
        ),
        ("region", event.region.as_deref(), copy.region.as_deref()),
        (
            "resource.resourceType",
            event.resource_type.as_deref(),
            copy.resource_type.as_deref(),
        ),
        (
            "resource.instanceDetails.instanceId",
            event.instance_id(),
            copy.instance_id(),
        ),
    ];
    for (field, said, actual) in checks {
        if said != actual {
            return Verification::Unverified {
                reason: format!(
                    "the event's {field} ({}) differs from GuardDuty's copy ({}) of finding {}",
                    shown(said),
                    shown(actual),
                    copy.id
                ),
            };
        }
    }
    if copy.archived {
        return Verification::Unverified {
            reason: format!("finding {} is archived in GuardDuty", copy.id),
        };
    }
    let sample = copy.is_sample();
    Verification::Verified {
        finding: Box::new(copy),
        sample,
    }
}

/// A field value for a reason: quoted (Debug, so control characters are escaped), or
/// `absent`.
fn shown(value: Option<&str>) -> String {
    value.map_or_else(|| "absent".to_owned(), |v| format!("{v:?}"))
}

/// Keeps the status and raw body of the last response of the call it is added to
/// (each attempt overwrites the previous one's).
#[derive(Debug, Clone, Default)]
pub(crate) struct CaptureBody(Arc<Mutex<Option<Captured>>>);

/// An HTTP status and the body that came with it.
type Captured = (u16, Vec<u8>);

impl CaptureBody {
    pub(crate) fn take(&self) -> Option<Captured> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

impl Intercept for CaptureBody {
    fn name(&self) -> &'static str {
        "GetFindingsBodyCapture"
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // Non-streaming answers are read into memory before deserialization, so the
        // bytes are there whether or not the SDK could deserialize them.
        let response = context.response();
        let captured = response
            .body()
            .bytes()
            .map(|b| (response.status().as_u16(), b.to_vec()));
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = captured;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn finding(value: Value) -> Finding {
        Finding::from_value(value).unwrap_or_else(|e| unreachable!("{e}"))
    }

    fn base() -> Value {
        json!({
            "id": "abc", "type": "CryptoCurrency:EC2/BitcoinTool.B!DNS", "accountId": "111122223333",
            "region": "us-east-1",
            "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": "i-0123456789abcdef0"}},
            "service": {"archived": false}
        })
    }

    #[test]
    fn compare_names_the_differing_field() {
        let event = finding(base());
        assert!(compare(&event, finding(base())).is_verified());
        for (pointer, value, field) in [
            ("/type", json!("Recon:EC2/Portscan"), "type"),
            ("/accountId", json!("444455556666"), "accountId"),
            ("/region", json!("eu-west-1"), "region"),
            ("/resource/resourceType", json!("AccessKey"), "resourceType"),
            (
                "/resource/instanceDetails/instanceId",
                json!("i-0fedcba9876543210"),
                "instanceId",
            ),
        ] {
            let mut other = base();
            if let Some(slot) = other.pointer_mut(pointer) {
                *slot = value;
            }
            match compare(&event, finding(other)) {
                Verification::Unverified { reason } => assert!(reason.contains(field), "{reason}"),
                v => panic!("{pointer}: {v:?}"),
            }
        }
        let mut archived = base();
        archived["service"]["archived"] = json!(true);
        match compare(&event, finding(archived)) {
            Verification::Unverified { reason } => assert!(reason.contains("archived"), "{reason}"),
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn a_copy_without_the_instance_differs() {
        let event = finding(base());
        let mut copy = base();
        copy["resource"] = json!({"resourceType": "Instance"});
        assert!(!compare(&event, finding(copy)).is_verified());
    }

    #[test]
    fn pascal_case_copies_decode() {
        let copy = decode(json!({"Id": "abc", "Type": "Recon:EC2/Portscan", "AccountId": "1"}))
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(copy.account_id.as_deref(), Some("1"));
        assert!(decode(json!({"type": "Recon:EC2/Portscan"})).is_err());
    }
}
