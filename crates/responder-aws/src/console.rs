//! The GuardDuty console's calls, for the `responder findings`, `filter` and `archive`
//! commands: findings listed by criteria (ListFindings, paged) and read in batches
//! (GetFindings, 50 ids a call, [`GET_IN_FLIGHT`] calls at a time, each within the
//! SDK's retry and throttling behaviour), saved filters read and written
//! (GetFilter, CreateFilter/UpdateFilter with action NOOP), findings archived and
//! unarchived.
//!
//! Findings come back as GuardDuty's raw JSON (camelCase, the console export's shape),
//! read from the answer's body, so one finding the SDK's types cannot hold does not
//! lose its page: the caller decodes each one and reports the bad ones. Criteria are
//! `responder_core::filter`'s, converted here to and from the SDK's.

use aws_sdk_guardduty::types::{
    Condition as SdkCondition, FilterAction, FindingCriteria as SdkCriteria, OrderBy, SortCriteria,
};
use futures::stream::{self, StreamExt, TryStreamExt};
use responder_core::filter::{Condition, FindingCriteria};
use serde_json::Value;

use crate::call::{self, CallError};
use crate::verify::{CaptureBody, DetectorSource, RetryPolicy, Verifier, VerifyError};

/// GetFindings takes at most this many ids.
pub const GET_BATCH: usize = 50;
/// GetFindings calls in flight at once.
pub const GET_IN_FLIGHT: usize = 4;
/// ListFindings page size (the API's maximum).
const LIST_PAGE: i32 = 50;

/// A console call that failed; one line naming what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsoleError {
    /// No detector given and ListDetectors did not name exactly one.
    #[error("{0}")]
    Detector(String),
    /// A call failed (after the SDK's retries).
    #[error("GuardDuty {operation} on detector {detector}: {error}")]
    Api {
        /// The operation.
        operation: &'static str,
        /// The detector id used.
        detector: String,
        /// Code and message.
        error: CallError,
    },
    /// GetFilter: no saved filter by that name.
    #[error("no saved filter named {name:?} in detector {detector}")]
    NoFilter {
        /// The name asked for.
        name: String,
        /// The detector.
        detector: String,
    },
    /// Archive/unarchive refused to a member account.
    #[error(
        "GuardDuty {operation} on detector {detector} refused ({error}): only the administrator account may archive or unarchive the findings of member accounts; run this with the administrator account's credentials and detector"
    )]
    MemberArchive {
        /// `ArchiveFindings` or `UnarchiveFindings`.
        operation: &'static str,
        /// The detector.
        detector: String,
        /// What GuardDuty said.
        error: CallError,
    },
    /// An answer that is not what the API documents.
    #[error("GuardDuty {operation} answered something unreadable: {message}")]
    Answer {
        /// The operation.
        operation: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A criterion the SDK cannot carry (a deprecated bound beyond 32 bits).
    #[error("criteria: {0}")]
    Criteria(String),
}

/// A saved filter as GetFilter answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedFilter {
    /// Its name.
    pub name: String,
    /// `NOOP` or `ARCHIVE`.
    pub action: String,
    /// Its description, if any.
    pub description: Option<String>,
    /// Its criteria.
    pub criteria: FindingCriteria,
}

/// What [`Console::put_filter`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterWrite {
    /// CreateFilter: there was none by that name.
    Created,
    /// UpdateFilter: the filter by that name now has these criteria.
    Updated,
}

/// ListFindings' sort: an attribute, descending or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sort {
    /// The attribute (`severity`, `updatedAt`).
    pub attribute: String,
    /// Descending.
    pub descending: bool,
}

/// One detector's findings, filters and archive.
#[derive(Debug, Clone)]
pub struct Console {
    client: aws_sdk_guardduty::Client,
    detector: String,
}

impl Console {
    /// The console on `detector`, else the client region's only detector
    /// (ListDetectors, as the verifier finds it).
    pub async fn open(
        client: aws_sdk_guardduty::Client,
        detector: Option<String>,
    ) -> Result<Console, ConsoleError> {
        let detector = match detector.filter(|d| !d.trim().is_empty()) {
            Some(d) => d,
            None => {
                let verifier = Verifier::new(
                    client.clone(),
                    DetectorSource::Discover,
                    RetryPolicy::default(),
                );
                verifier
                    .detector_id()
                    .await
                    .map(str::to_owned)
                    .map_err(|e| match e {
                        VerifyError::Api { error, .. } => ConsoleError::Detector(format!(
                            "GuardDuty ListDetectors failed: {error}"
                        )),
                        other => ConsoleError::Detector(
                            other
                                .to_string()
                                .replace("set DETECTOR_ID", "pass --detector-id"),
                        ),
                    })?
            }
        };
        Ok(Console { client, detector })
    }

    /// The detector in use.
    pub fn detector(&self) -> &str {
        &self.detector
    }

    fn api(&self, operation: &'static str, error: CallError) -> ConsoleError {
        ConsoleError::Api {
            operation,
            detector: self.detector.clone(),
            error,
        }
    }

    /// The ids of the findings that meet `criteria` (which must hold no `matches`:
    /// ListFindings does not take them), every page, at most `limit`.
    pub async fn list_finding_ids(
        &self,
        criteria: &FindingCriteria,
        sort: Option<&Sort>,
        limit: Option<usize>,
    ) -> Result<Vec<String>, ConsoleError> {
        let sdk_criteria = to_sdk(criteria)?;
        let sort = sort.map(|s| {
            SortCriteria::builder()
                .attribute_name(&s.attribute)
                .order_by(if s.descending {
                    OrderBy::Desc
                } else {
                    OrderBy::Asc
                })
                .build()
        });
        let mut ids = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let want = limit.map_or(LIST_PAGE, |l| {
                i32::try_from(l.saturating_sub(ids.len()))
                    .unwrap_or(LIST_PAGE)
                    .clamp(1, LIST_PAGE)
            });
            let page = self
                .client
                .list_findings()
                .detector_id(&self.detector)
                .finding_criteria(sdk_criteria.clone())
                .set_sort_criteria(sort.clone())
                .max_results(want)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| self.api("ListFindings", call::err(e)))?;
            ids.extend(page.finding_ids().iter().cloned());
            if limit.is_some_and(|l| ids.len() >= l) {
                ids.truncate(limit.unwrap_or(ids.len()));
                break;
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => break,
            }
        }
        Ok(ids)
    }

    /// The findings with these ids, as GuardDuty's raw JSON, in batches of
    /// [`GET_BATCH`] with [`GET_IN_FLIGHT`] calls at a time; ids GuardDuty does not
    /// return are left out. The answer's order is the batches' order.
    pub async fn get_findings(&self, ids: &[String]) -> Result<Vec<Value>, ConsoleError> {
        let pages: Vec<Vec<Value>> = stream::iter(ids.chunks(GET_BATCH))
            .map(|batch| self.get_batch(batch))
            .buffered(GET_IN_FLIGHT)
            .try_collect()
            .await?;
        Ok(pages.into_iter().flatten().collect())
    }

    async fn get_batch(&self, batch: &[String]) -> Result<Vec<Value>, ConsoleError> {
        let capture = CaptureBody::default();
        let sent = self
            .client
            .get_findings()
            .detector_id(&self.detector)
            .set_finding_ids(Some(batch.to_vec()))
            .customize()
            .interceptor(capture.clone())
            .send()
            .await;
        let body = match (sent, capture.take()) {
            (Ok(_), Some((_, body))) => body,
            // The SDK could not hold one of the findings in its types: the page is
            // read from its JSON, and each finding is decoded (or reported) alone.
            (Err(_), Some((status, body))) if (200..300).contains(&status) => body,
            (Err(e), _) => return Err(self.api("GetFindings", call::err(e))),
            (Ok(_), None) => {
                return Err(ConsoleError::Answer {
                    operation: "GetFindings",
                    message: "the body could not be read".to_owned(),
                });
            }
        };
        let answer: Value = serde_json::from_slice(&body).map_err(|e| ConsoleError::Answer {
            operation: "GetFindings",
            message: format!("not JSON: {e}"),
        })?;
        match answer.get("findings") {
            Some(Value::Array(findings)) => Ok(findings.clone()),
            _ => Err(ConsoleError::Answer {
                operation: "GetFindings",
                message: "no `findings` list".to_owned(),
            }),
        }
    }

    /// The saved filter `name` (GetFilter).
    pub async fn get_filter(&self, name: &str) -> Result<SavedFilter, ConsoleError> {
        let out = self
            .client
            .get_filter()
            .detector_id(&self.detector)
            .filter_name(name)
            .send()
            .await
            .map_err(|e| {
                let error = call::err(e);
                if is_no_such_resource(&error) {
                    ConsoleError::NoFilter {
                        name: name.to_owned(),
                        detector: self.detector.clone(),
                    }
                } else {
                    self.api("GetFilter", error)
                }
            })?;
        Ok(SavedFilter {
            name: out.name().unwrap_or(name).to_owned(),
            action: out
                .action()
                .map_or_else(String::new, |a| a.as_str().to_owned()),
            description: out.description().map(str::to_owned),
            criteria: out.finding_criteria().map(from_sdk).unwrap_or_default(),
        })
    }

    /// Creates the saved filter `name` with these criteria and action NOOP, or updates
    /// the one by that name (its criteria, description and action).
    pub async fn put_filter(
        &self,
        name: &str,
        criteria: &FindingCriteria,
        description: &str,
    ) -> Result<FilterWrite, ConsoleError> {
        let sdk_criteria = to_sdk(criteria)?;
        let exists = match self.get_filter(name).await {
            Ok(_) => true,
            Err(ConsoleError::NoFilter { .. }) => false,
            Err(e) => return Err(e),
        };
        if exists {
            self.client
                .update_filter()
                .detector_id(&self.detector)
                .filter_name(name)
                .action(FilterAction::Noop)
                .description(description)
                .finding_criteria(sdk_criteria)
                .send()
                .await
                .map_err(|e| self.api("UpdateFilter", call::err(e)))?;
            Ok(FilterWrite::Updated)
        } else {
            self.client
                .create_filter()
                .detector_id(&self.detector)
                .name(name)
                .action(FilterAction::Noop)
                .description(description)
                .finding_criteria(sdk_criteria)
                .send()
                .await
                .map_err(|e| self.api("CreateFilter", call::err(e)))?;
            Ok(FilterWrite::Created)
        }
    }

    /// Archives (or, with `unarchive`, unarchives) the findings. A refusal because
    /// the caller is a member account says that only the administrator may.
    pub async fn archive(&self, ids: &[String], unarchive: bool) -> Result<(), ConsoleError> {
        let operation = if unarchive {
            "UnarchiveFindings"
        } else {
            "ArchiveFindings"
        };
        for batch in ids.chunks(GET_BATCH) {
            let result = if unarchive {
                self.client
                    .unarchive_findings()
                    .detector_id(&self.detector)
                    .set_finding_ids(Some(batch.to_vec()))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(call::err)
            } else {
                self.client
                    .archive_findings()
                    .detector_id(&self.detector)
                    .set_finding_ids(Some(batch.to_vec()))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(call::err)
            };
            if let Err(error) = result {
                let text = error.message.to_ascii_lowercase();
                return Err(
                    if error.is_denied()
                        || text.contains("member")
                        || text.contains("administrator")
                    {
                        ConsoleError::MemberArchive {
                            operation,
                            detector: self.detector.clone(),
                            error,
                        }
                    } else {
                        self.api(operation, error)
                    },
                );
            }
        }
        Ok(())
    }
}

/// GuardDuty's (and moto's) answer for a filter that does not exist.
fn is_no_such_resource(e: &CallError) -> bool {
    e.is_not_found() || e.message.to_ascii_lowercase().contains("no such resource")
}

/// Core criteria as the SDK's, deprecated operators folded into the current ones.
pub fn to_sdk(criteria: &FindingCriteria) -> Result<SdkCriteria, ConsoleError> {
    let mut out = SdkCriteria::builder();
    for (attribute, c) in &criteria.criterion {
        let c = c
            .normalized()
            .map_err(|e| ConsoleError::Criteria(format!("{attribute}: {e}")))?;
        out = out.criterion(
            attribute,
            SdkCondition::builder()
                .set_equals(c.equals)
                .set_not_equals(c.not_equals)
                .set_greater_than(c.greater_than)
                .set_greater_than_or_equal(c.greater_than_or_equal)
                .set_less_than(c.less_than)
                .set_less_than_or_equal(c.less_than_or_equal)
                .set_matches(c.matches)
                .set_not_matches(c.not_matches)
                .build(),
        );
    }
    Ok(out.build())
}

/// The SDK's criteria as core criteria, every operator kept as given.
#[allow(deprecated)]
pub fn from_sdk(criteria: &SdkCriteria) -> FindingCriteria {
    let mut out = FindingCriteria::default();
    for (attribute, c) in criteria.criterion().into_iter().flatten() {
        out.criterion.insert(
            attribute.clone(),
            Condition {
                equals: c.equals.clone(),
                not_equals: c.not_equals.clone(),
                greater_than: c.greater_than,
                greater_than_or_equal: c.greater_than_or_equal,
                less_than: c.less_than,
                less_than_or_equal: c.less_than_or_equal,
                matches: c.matches.clone(),
                not_matches: c.not_matches.clone(),
                eq: c.eq.clone(),
                neq: c.neq.clone(),
                gt: c.gt.map(i64::from),
                gte: c.gte.map(i64::from),
                lt: c.lt.map(i64::from),
                lte: c.lte.map(i64::from),
            },
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criteria_convert_both_ways() {
        let core = responder_core::filter::parse_criteria(
            r#"{"Criterion": {"type": {"Matches": ["Backdoor:*"]}, "severity": {"Gte": 7, "LessThan": 9},
                "region": {"Equals": ["us-east-1"], "NotEquals": ["eu-west-1"]}}}"#,
        )
        .unwrap_or_default();
        let sdk = to_sdk(&core).unwrap_or_else(|e| unreachable!("{e}"));
        let back = from_sdk(&sdk);
        assert_eq!(back.criterion["severity"].greater_than_or_equal, Some(7));
        assert_eq!(
            back.criterion["severity"].gte, None,
            "folded into the current operator"
        );
        assert_eq!(
            back.criterion["type"].matches,
            Some(vec!["Backdoor:*".to_owned()])
        );
        assert_eq!(
            back.criterion["region"].not_equals,
            Some(vec!["eu-west-1".to_owned()])
        );
    }
}
