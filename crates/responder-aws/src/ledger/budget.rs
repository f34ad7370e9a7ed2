//! The blast-radius budget: destructive responses counted per hour in each scope,
//! atomically, with one decision per response per hour.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use serde::Serialize;

use super::item::{Reader, epoch_ms, expires, n, rfc3339_ms, s};
use super::keys::{key_item, validate_text};
use super::{
    BUDGET_RETENTION, Item, Ledger, LedgerError, MAX_ID_BYTES, ResponseKey, ResponseMeta,
    TTL_ATTRIBUTE, build_err, call_err,
};

/// The most budget scopes one response may count in (a transaction holds 100 items).
pub const MAX_SCOPES: usize = 99;
/// Bound on the retries of a budget transaction that conflicted with another.
const BUDGET_ATTEMPTS: u32 = 12;
const KIND_DECISION: &str = "budget-decision";
const KIND_COUNTER: &str = "budget-counter";

/// The answer to a budget request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "lowercase")]
pub enum Budget {
    /// The response may take its destructive steps. `scope_counts` holds, per scope,
    /// `(scope, used, max)`: `used` is the counter as read after the decision (later
    /// responses may have counted since).
    Granted {
        /// `(scope, used, max)` per scope.
        scope_counts: Vec<(String, u32, u32)>,
    },
    /// A scope's budget for the hour is spent: withhold the destructive steps.
    Exhausted {
        /// The first scope found full.
        scope: String,
        /// Its counter when the decision was taken.
        used: u32,
        /// Its maximum.
        max: u32,
    },
}

impl Budget {
    /// True when granted.
    pub fn is_granted(&self) -> bool {
        matches!(self, Budget::Granted { .. })
    }
}

/// The hour a budget counts in: `YYYY-MM-DDTHH` (UTC).
pub fn budget_hour(t: SystemTime) -> String {
    let mut s = rfc3339_ms(t);
    s.truncate(13);
    s
}

impl Ledger {
    /// The blast-radius budget. Decides once per (finding, instance) per hour whether
    /// this response may take its destructive steps, counting atomically in each scope
    /// (a TransactWriteItems: put the decision item if absent + increment every counter
    /// under `count < max`). Redelivery of the same finding returns the first decision
    /// and does not count twice. Scopes are e.g. ("all", 10), ("playbook#crypto", 3),
    /// later ("account#111122223333", 5). A scope with max 0 is always exhausted.
    pub async fn budget(
        &self,
        key: &ResponseKey,
        meta: &ResponseMeta,
        scopes: &[(String, u32)],
        now: SystemTime,
    ) -> Result<Budget, LedgerError> {
        key.validate()?;
        validate_scopes(scopes)?;
        let hour = budget_hour(now);
        let decision_key = key_item(
            format!("budget#decision#{hour}"),
            format!("finding#{}#instance#{}", key.finding_id, key.instance_id),
        );
        let counter_key = |scope: &str| counter_key(scope, &hour);
        let scopes_json = serde_json::to_string(scopes).map_err(|e| LedgerError::Invalid {
            field: "scopes",
            problem: e.to_string(),
        })?;
        let decision = |granted: bool| {
            let mut item = decision_key.clone();
            item.extend(
                [
                    ("kind", s(KIND_DECISION)),
                    ("granted", AttributeValue::Bool(granted)),
                    ("scopes", s(scopes_json.clone())),
                    ("playbook", s(&meta.playbook)),
                    ("finding_type", s(&meta.finding_type)),
                    ("account", s(&meta.account)),
                    ("region", s(&meta.region)),
                    ("decided_at", n(epoch_ms(now))),
                    (TTL_ATTRIBUTE, n(expires(now, BUDGET_RETENTION))),
                ]
                .map(|(k, v)| (k.to_owned(), v)),
            );
            item
        };

        // A scope that allows nothing needs no counting.
        if let Some((scope, max)) = scopes.iter().find(|(_, max)| *max == 0) {
            let used = self.counter(counter_key(scope)).await?;
            return self
                .record_exhausted(decision(false), &decision_key, scope, used, *max)
                .await;
        }

        let b = |e| build_err("TransactWriteItems", e);
        let mut items = vec![
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(decision(true)))
                        .condition_expression("attribute_not_exists(pk)")
                        .build()
                        .map_err(b)?,
                )
                .build(),
        ];
        for (scope, max) in scopes {
            items.push(
                TransactWriteItem::builder()
                    .update(
                        Update::builder()
                            .table_name(&self.table)
                            .set_key(Some(counter_key(scope)))
                            .update_expression(
                                "ADD used :one SET #max = :max, #kind = :kind, #ttl = :ttl",
                            )
                            .condition_expression("attribute_not_exists(used) OR used < :max")
                            .expression_attribute_names("#max", "max")
                            .expression_attribute_names("#kind", "kind")
                            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                            .expression_attribute_values(":one", n(1))
                            .expression_attribute_values(":max", n(max))
                            .expression_attribute_values(":kind", s(KIND_COUNTER))
                            .expression_attribute_values(":ttl", n(expires(now, BUDGET_RETENTION)))
                            .return_values_on_condition_check_failure(
                                ReturnValuesOnConditionCheckFailure::AllOld,
                            )
                            .build()
                            .map_err(b)?,
                    )
                    .build(),
            );
        }

        for attempt in 0..BUDGET_ATTEMPTS {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let reasons = match result {
                Ok(_) => return self.granted(scopes, &hour).await,
                Err(e) => match e.into_service_error() {
                    TransactWriteItemsError::TransactionCanceledException(t) => {
                        t.cancellation_reasons.unwrap_or_default()
                    }
                    other if is_conflict(&other) => {
                        backoff(attempt).await;
                        continue;
                    }
                    other => return Err(call_err("TransactWriteItems", other)),
                },
            };
            let code = |i: usize| reasons.get(i).and_then(|r| r.code()).unwrap_or("None");
            // Decided before (a redelivery): the first decision stands.
            if (code(0) == "ConditionalCheckFailed" || reasons.is_empty())
                && let Some(stored) = self.get_item(decision_key.clone()).await?
            {
                return self.decode_decision(&stored).await;
            }
            // A full scope: record the refusal so that a redelivery gets it too.
            for (i, (scope, max)) in scopes.iter().enumerate() {
                let full = if reasons.is_empty() {
                    self.counter(counter_key(scope)).await? >= *max
                } else {
                    code(i + 1) == "ConditionalCheckFailed"
                };
                if !full {
                    continue;
                }
                let from_reason = reasons
                    .get(i + 1)
                    .and_then(|r| r.item())
                    .map(|item| Reader { item }.u32("used"))
                    .transpose()?;
                let used = match from_reason {
                    Some(u) => u,
                    None => self.counter(counter_key(scope)).await?,
                };
                return self
                    .record_exhausted(decision(false), &decision_key, scope, used, *max)
                    .await;
            }
            // Conflicts with concurrent transactions (or nothing said): again.
            backoff(attempt).await;
        }
        Err(LedgerError::Contended {
            operation: "TransactWriteItems",
            attempts: BUDGET_ATTEMPTS,
        })
    }

    /// Stores an exhausted decision unless one exists, and returns the stored one.
    async fn record_exhausted(
        &self,
        mut item: Item,
        decision_key: &Item,
        scope: &str,
        used: u32,
        max: u32,
    ) -> Result<Budget, LedgerError> {
        item.insert("scope".to_owned(), s(scope));
        item.insert("used".to_owned(), n(used));
        item.insert("max".to_owned(), n(max));
        for attempt in 0..BUDGET_ATTEMPTS {
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item.clone()))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await;
            match result {
                Ok(_) => {
                    return Ok(Budget::Exhausted {
                        scope: scope.to_owned(),
                        used,
                        max,
                    });
                }
                Err(e) => match e.into_service_error() {
                    PutItemError::ConditionalCheckFailedException(_) => {
                        let stored = self.get_item(decision_key.clone()).await?;
                        if let Some(stored) = stored {
                            return self.decode_decision(&stored).await;
                        }
                    }
                    other if is_conflict(&other) => {}
                    other => return Err(call_err("PutItem", other)),
                },
            }
            backoff(attempt).await;
        }
        Err(LedgerError::Contended {
            operation: "PutItem",
            attempts: BUDGET_ATTEMPTS,
        })
    }

    async fn decode_decision(&self, item: &Item) -> Result<Budget, LedgerError> {
        let r = Reader { item };
        if r.bool("granted")? {
            let scopes: Vec<(String, u32)> = match r.opt_s("scopes")? {
                Some(text) => serde_json::from_str(text)
                    .map_err(|e| r.corrupt("scopes", format!("is not a scope list: {e}")))?,
                None => Vec::new(),
            };
            // The decision's own hour: its pk is `budget#decision#<hour>`.
            let pk = r.s("pk")?;
            let hour = pk.rsplit('#').next().unwrap_or_default();
            self.granted(&scopes, hour).await
        } else {
            Ok(Budget::Exhausted {
                scope: r.s("scope")?.to_owned(),
                used: r.u32("used")?,
                max: r.u32("max")?,
            })
        }
    }

    async fn granted(&self, scopes: &[(String, u32)], hour: &str) -> Result<Budget, LedgerError> {
        let counts = futures::future::try_join_all(
            scopes
                .iter()
                .map(|(scope, _)| self.counter(counter_key(scope, hour))),
        )
        .await?;
        Ok(Budget::Granted {
            scope_counts: scopes
                .iter()
                .zip(counts)
                .map(|((scope, max), used)| (scope.clone(), used, *max))
                .collect(),
        })
    }

    /// A counter's `used` (0 when it does not exist).
    async fn counter(&self, key: Item) -> Result<u32, LedgerError> {
        match self.get_item(key).await? {
            Some(item) => Reader { item: &item }.u32("used"),
            None => Ok(0),
        }
    }
}

/// The key of a scope's counter for an hour.
fn counter_key(scope: &str, hour: &str) -> Item {
    key_item(format!("budget#{scope}#{hour}"), "count".to_owned())
}

fn validate_scopes(scopes: &[(String, u32)]) -> Result<(), LedgerError> {
    if scopes.len() > MAX_SCOPES {
        return Err(LedgerError::Invalid {
            field: "scopes",
            problem: format!("{} scopes, over {MAX_SCOPES}", scopes.len()),
        });
    }
    let mut seen = std::collections::HashSet::new();
    for (scope, _) in scopes {
        validate_text("scope", scope, MAX_ID_BYTES)?;
        if scope == "decision" || !seen.insert(scope.as_str()) {
            return Err(LedgerError::Invalid {
                field: "scopes",
                problem: format!("scope {scope:?} is reserved or given twice"),
            });
        }
    }
    Ok(())
}

/// True for errors that a retry after a pause resolves (a write that met a
/// concurrent transaction).
fn is_conflict(e: &(impl aws_sdk_dynamodb::error::ProvideErrorMetadata + ?Sized)) -> bool {
    matches!(
        e.code(),
        Some("TransactionConflictException" | "TransactionInProgressException")
    )
}

/// A growing pause with jitter (from the clock's nanoseconds: no RNG needed).
async fn backoff(attempt: u32) {
    let base = 20u64 << attempt.min(5);
    let jitter = u64::from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0),
    ) % base;
    tokio::time::sleep(Duration::from_millis(base + jitter)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_validated() {
        let dup = [("all".to_owned(), 1), ("all".to_owned(), 2)];
        assert!(validate_scopes(&dup).is_err());
        assert!(validate_scopes(&[(String::new(), 1)]).is_err());
        assert!(validate_scopes(&[("decision".to_owned(), 1)]).is_err());
        let many: Vec<(String, u32)> = (0..100).map(|i| (format!("s{i}"), 1)).collect();
        assert!(validate_scopes(&many).is_err());
        assert!(validate_scopes(&[("all".to_owned(), 10), ("playbook#x".to_owned(), 3)]).is_ok());
    }
}
