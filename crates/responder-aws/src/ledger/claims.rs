//! Step claims: a conditional write before a step runs, leases and takeover of a
//! crashed owner's claim, the owner's finish, first-writer-wins records
//! (`record_once`), and the history by finding or instance.

use std::fmt;
use std::time::{Duration, SystemTime};

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use serde::Serialize;
use serde_json::Value;

use super::item::{Expr, Reader, epoch_ms, expires, n, rfc3339_ms, s, ser_opt_time, ser_time};
use super::keys::{validate_id, validate_text};
use super::{
    INDEX_BY_INSTANCE, Item, Ledger, LedgerError, MAX_ID_BYTES, MAX_STEP_BYTES, ResponseMeta,
    STEP_RETENTION, StepKey, TTL_ATTRIBUTE, call_err,
};

/// Bound on the retries of a claim whose competitor's record vanished.
const CLAIM_ATTEMPTS: u32 = 5;
const KIND_STEP: &str = "step";

/// How a step ended, and what it left.
#[derive(Debug, Clone, PartialEq)]
pub struct Finish {
    /// `Done` or `Failed` (`Claimed` is refused: it is not an end).
    pub status: RecordStatus,
    /// A short outcome kind: `done`, `already-done`, `failed`, ...
    pub outcome: String,
    /// The resources the step created or changed (ids).
    pub resources: Vec<String>,
    /// The state undoing the step needs (any JSON; `null` for none).
    pub state: Value,
}

/// Where a step record stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordStatus {
    /// Claimed and running (or crashed: see the lease).
    Claimed,
    /// Finished: never run again.
    Done,
    /// Finished with a failure: may be claimed again.
    Failed,
}

impl RecordStatus {
    /// The stored form: `claimed`, `done`, `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordStatus::Claimed => "claimed",
            RecordStatus::Done => "done",
            RecordStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<RecordStatus> {
        match s {
            "claimed" => Some(RecordStatus::Claimed),
            "done" => Some(RecordStatus::Done),
            "failed" => Some(RecordStatus::Failed),
            _ => None,
        }
    }
}

impl fmt::Display for RecordStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The answer to a claim.
// `Done` carries the record unboxed, as the executor matches on it: a claim is one
// value returned per step, never stored in bulk, so its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// Run the step. `took_over_from` names the owner of an expired claim taken over.
    Granted {
        /// The crashed owner whose expired lease was taken over, if any.
        took_over_from: Option<String>,
    },
    /// The step finished before: do not run it again; here is what it did.
    Done(StepRecord),
    /// Another owner holds a live claim on the step.
    Held {
        /// The holder.
        owner: String,
        /// When its lease expires (then the step may be taken over).
        lease_until: SystemTime,
    },
}

/// One step record as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepRecord {
    /// The GuardDuty finding id.
    pub finding_id: String,
    /// The instance.
    pub instance_id: String,
    /// The step's position in the plan.
    pub index: usize,
    /// The step's YAML name.
    pub step: String,
    /// The playbook that answered.
    pub playbook: String,
    /// The finding type.
    pub finding_type: String,
    /// The instance's account.
    pub account: String,
    /// The instance's region.
    pub region: String,
    /// Claimed, done or failed.
    pub status: RecordStatus,
    /// The outcome kind (empty while claimed).
    pub outcome: String,
    /// Resources created or changed.
    pub resources: Vec<String>,
    /// The undo state (JSON; `null` when none).
    pub state: Value,
    /// The claim's owner (none for [`Ledger::record_once`] records).
    pub owner: Option<String>,
    /// How many claims were granted on this step (retries and takeovers included).
    pub attempts: u32,
    /// When it was last claimed.
    #[serde(serialize_with = "ser_opt_time")]
    pub claimed_at: Option<SystemTime>,
    /// When it finished.
    #[serde(serialize_with = "ser_opt_time")]
    pub finished_at: Option<SystemTime>,
    /// Until when the claim holds (claimed records only).
    #[serde(serialize_with = "ser_opt_time")]
    pub lease_until: Option<SystemTime>,
    /// The time the index sorts on: the last claim or finish.
    #[serde(serialize_with = "ser_time")]
    pub recorded_at: SystemTime,
}

impl StepRecord {
    /// The record's key.
    pub fn key(&self) -> StepKey {
        StepKey {
            finding_id: self.finding_id.clone(),
            instance_id: self.instance_id.clone(),
            index: self.index,
            step: self.step.clone(),
        }
    }
}

impl Reader<'_> {
    fn status(&self) -> Result<RecordStatus, LedgerError> {
        let v = self.s("status")?;
        RecordStatus::parse(v).ok_or_else(|| self.corrupt("status", format!("unknown: {v}")))
    }
    fn step_record(&self) -> Result<StepRecord, LedgerError> {
        let index = self.u64("step_index")?;
        let recorded_at = self.time("recorded_ms")?;
        Ok(StepRecord {
            finding_id: self.s("finding_id")?.to_owned(),
            instance_id: self.s("instance_id")?.to_owned(),
            index: usize::try_from(index)
                .map_err(|_| self.corrupt("step_index", "is too large"))?,
            step: self.s("step")?.to_owned(),
            playbook: self.opt_s("playbook")?.unwrap_or_default().to_owned(),
            finding_type: self.opt_s("finding_type")?.unwrap_or_default().to_owned(),
            account: self.opt_s("account")?.unwrap_or_default().to_owned(),
            region: self.opt_s("region")?.unwrap_or_default().to_owned(),
            status: self.status()?,
            outcome: self.opt_s("outcome")?.unwrap_or_default().to_owned(),
            resources: self.strings("resources")?,
            state: self.json("state")?,
            owner: self.opt_s("owner")?.map(str::to_owned),
            attempts: u32::try_from(self.opt_u64("attempts")?.unwrap_or(0)).unwrap_or(u32::MAX),
            claimed_at: self.opt_time("claimed_at")?,
            finished_at: self.opt_time("finished_at")?,
            lease_until: self.opt_time("lease_until")?,
            recorded_at,
        })
    }
}

fn record_of(item: &Item) -> Result<StepRecord, LedgerError> {
    Reader { item }.step_record()
}

/// The attributes every step item carries, whoever writes it.
fn step_attributes(
    key: &StepKey,
    meta: &ResponseMeta,
    now: SystemTime,
) -> Vec<(&'static str, AttributeValue)> {
    vec![
        ("kind", s(KIND_STEP)),
        ("finding_id", s(&key.finding_id)),
        ("instance_id", s(&key.instance_id)),
        ("step_index", n(key.index)),
        ("step", s(&key.step)),
        ("playbook", s(&meta.playbook)),
        ("finding_type", s(&meta.finding_type)),
        ("account", s(&meta.account)),
        ("region", s(&meta.region)),
        ("recorded_at", s(rfc3339_ms(now))),
        ("recorded_ms", n(epoch_ms(now))),
        (TTL_ATTRIBUTE, n(expires(now, STEP_RETENTION))),
    ]
}

fn finish_attributes(
    finish: &Finish,
    now: SystemTime,
) -> Result<Vec<(&'static str, AttributeValue)>, LedgerError> {
    if finish.status == RecordStatus::Claimed {
        return Err(LedgerError::Invalid {
            field: "status",
            problem: "a finish must be done or failed, not claimed".to_owned(),
        });
    }
    let state = serde_json::to_string(&finish.state).map_err(|e| LedgerError::Invalid {
        field: "state",
        problem: e.to_string(),
    })?;
    Ok(vec![
        ("status", s(finish.status.as_str())),
        ("outcome", s(&finish.outcome)),
        (
            "resources",
            AttributeValue::L(finish.resources.iter().map(s).collect()),
        ),
        ("state", s(state)),
        ("finished_at", n(epoch_ms(now))),
    ])
}

impl Ledger {
    /// Claims one step of one response before it runs: a conditional write. Granted
    /// when no record exists, or when the existing claim is `Claimed` (not finished)
    /// and its lease expired (a crashed invocation: takeover, and
    /// `Claim::Granted{took_over_from: Some(owner)}`). `Done(record)` when the step
    /// finished before (status Done). `Held{owner, lease_until}` when another live
    /// owner holds it. A Failed record may be claimed again (retry). The same owner
    /// claiming again is granted (an SDK retry of a claim that went through).
    pub async fn claim(
        &self,
        key: &StepKey,
        meta: &ResponseMeta,
        owner: &str,
        lease: Duration,
    ) -> Result<Claim, LedgerError> {
        self.claim_at(key, meta, owner, lease, SystemTime::now())
            .await
    }

    /// [`Ledger::claim`] at `now` (the clock the lease is compared with).
    pub async fn claim_at(
        &self,
        key: &StepKey,
        meta: &ResponseMeta,
        owner: &str,
        lease: Duration,
        now: SystemTime,
    ) -> Result<Claim, LedgerError> {
        key.validate()?;
        validate_text("owner", owner, MAX_ID_BYTES)?;
        let lease_until = now.checked_add(lease).ok_or_else(|| LedgerError::Invalid {
            field: "lease",
            problem: format!("{lease:?} overflows the clock"),
        })?;
        let mut expr = Expr::new();
        expr.set(step_attributes(key, meta, now));
        expr.set(vec![
            ("status", s(RecordStatus::Claimed.as_str())),
            ("owner", s(owner)),
            ("claimed_at", n(epoch_ms(now))),
            ("lease_until", n(epoch_ms(lease_until))),
        ]);
        expr.name("finished_at")
            .name("attempts")
            .value(":one", n(1))
            .value(":claimed", s(RecordStatus::Claimed.as_str()))
            .value(":failed", s(RecordStatus::Failed.as_str()))
            .value(":now", n(epoch_ms(now)));
        // The resources and state of an earlier failed attempt stay until `finish`
        // replaces them; the outcome and end time go.
        let update = format!(
            "SET {} REMOVE #finished_at, #outcome ADD #attempts :one",
            expr.sets.join(", ")
        );
        expr.name("outcome");
        let condition = "attribute_not_exists(pk) OR #status = :failed \
             OR (#status = :claimed AND (#lease_until < :now OR #owner = :owner))";
        for _ in 0..CLAIM_ATTEMPTS {
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key.key()))
                .update_expression(&update)
                .condition_expression(condition)
                .set_expression_attribute_names(Some(expr.names.clone()))
                .set_expression_attribute_values(Some(expr.values.clone()))
                .return_values(ReturnValue::AllOld)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            let failed_item = match result {
                Ok(out) => {
                    let old = out.attributes.unwrap_or_default();
                    let r = Reader { item: &old };
                    let took_over_from = match (r.opt_s("status")?, r.opt_s("owner")?) {
                        (Some("claimed"), Some(previous)) if previous != owner => {
                            Some(previous.to_owned())
                        }
                        _ => None,
                    };
                    return Ok(Claim::Granted { took_over_from });
                }
                Err(e) => match e.into_service_error() {
                    UpdateItemError::ConditionalCheckFailedException(c) => c.item,
                    other => return Err(call_err("UpdateItem", other)),
                },
            };
            let current = match failed_item {
                Some(item) if !item.is_empty() => Some(item),
                _ => self.get_item(key.key()).await?,
            };
            // Gone between the write and the read (a TTL expiry): claim again.
            let Some(current) = current else { continue };
            let record = record_of(&current)?;
            match record.status {
                RecordStatus::Done => return Ok(Claim::Done(record)),
                RecordStatus::Claimed => {
                    let r = Reader { item: &current };
                    return Ok(Claim::Held {
                        owner: r.s("owner")?.to_owned(),
                        lease_until: r.time("lease_until")?,
                    });
                }
                // Failed since: claimable now, try again.
                RecordStatus::Failed => continue,
            }
        }
        Err(LedgerError::Contended {
            operation: "UpdateItem",
            attempts: CLAIM_ATTEMPTS,
        })
    }

    /// Finishes a claim (conditional on `owner` still holding it): status Done or
    /// Failed, the outcome kind (a short string like "done", "already-done",
    /// "failed"), the resources and the undo state (any JSON). Finishing again with
    /// the same status and outcome is accepted (an SDK retry of a finish that went
    /// through); anything else by a non-holder is [`LedgerError::NotHolder`].
    pub async fn finish(
        &self,
        key: &StepKey,
        owner: &str,
        finish: Finish,
    ) -> Result<(), LedgerError> {
        self.finish_at(key, owner, finish, SystemTime::now()).await
    }

    /// [`Ledger::finish`] at `now`.
    pub async fn finish_at(
        &self,
        key: &StepKey,
        owner: &str,
        finish: Finish,
        now: SystemTime,
    ) -> Result<(), LedgerError> {
        key.validate()?;
        validate_text("owner", owner, MAX_ID_BYTES)?;
        let mut expr = Expr::new();
        expr.set(finish_attributes(&finish, now)?);
        expr.set(vec![
            ("recorded_at", s(rfc3339_ms(now))),
            ("recorded_ms", n(epoch_ms(now))),
            (TTL_ATTRIBUTE, n(expires(now, STEP_RETENTION))),
        ]);
        expr.name("owner")
            .name("lease_until")
            .value(":owner", s(owner))
            .value(":claimed", s(RecordStatus::Claimed.as_str()));
        let update = format!("SET {} REMOVE #lease_until", expr.sets.join(", "));
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key.key()))
            .update_expression(update)
            .condition_expression("#owner = :owner AND #status = :claimed")
            .set_expression_attribute_names(Some(expr.names))
            .set_expression_attribute_values(Some(expr.values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let failed_item = match result {
            Ok(_) => return Ok(()),
            Err(e) => match e.into_service_error() {
                UpdateItemError::ConditionalCheckFailedException(c) => c.item,
                other => return Err(call_err("UpdateItem", other)),
            },
        };
        let current = match failed_item {
            Some(item) if !item.is_empty() => Some(item),
            _ => self.get_item(key.key()).await?,
        };
        let record = current.as_ref().map(record_of).transpose()?;
        if let Some(r) = &record
            && r.owner.as_deref() == Some(owner)
            && r.status == finish.status
            && r.outcome == finish.outcome
        {
            return Ok(());
        }
        Err(LedgerError::NotHolder {
            key: key.to_string(),
            owner: owner.to_owned(),
            holder: record.as_ref().and_then(|r| r.owner.clone()),
            status: record.as_ref().map(|r| r.status),
        })
    }

    /// Records state without a claim, first writer wins (conditional put): returns
    /// the record that is stored afterwards (yours or the earlier one). Used by
    /// `isolate` to record the ENIs' original groups. `record.status` must be Done or
    /// Failed.
    pub async fn record_once(
        &self,
        key: &StepKey,
        meta: &ResponseMeta,
        record: Finish,
    ) -> Result<StepRecord, LedgerError> {
        self.record_once_at(key, meta, record, SystemTime::now())
            .await
    }

    /// [`Ledger::record_once`] at `now`.
    pub async fn record_once_at(
        &self,
        key: &StepKey,
        meta: &ResponseMeta,
        record: Finish,
        now: SystemTime,
    ) -> Result<StepRecord, LedgerError> {
        key.validate()?;
        let mut item = key.key();
        let attrs = step_attributes(key, meta, now)
            .into_iter()
            .chain(finish_attributes(&record, now)?)
            .chain([("attempts", n(1))]);
        item.extend(attrs.map(|(k, v)| (k.to_owned(), v)));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item.clone()))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let failed_item = match result {
            Ok(_) => return record_of(&item),
            Err(e) => match e.into_service_error() {
                PutItemError::ConditionalCheckFailedException(c) => c.item,
                other => return Err(call_err("PutItem", other)),
            },
        };
        let current = match failed_item {
            Some(item) if !item.is_empty() => Some(item),
            _ => self.get_item(key.key()).await?,
        };
        match current {
            Some(current) => record_of(&current),
            // The earlier record vanished (TTL) between the write and the read.
            None => Err(LedgerError::Contended {
                operation: "PutItem",
                attempts: 1,
            }),
        }
    }

    /// The latest Done record of `step` for this instance, whatever the finding (GSI
    /// by-instance, newest first).
    pub async fn last_done(
        &self,
        instance_id: &str,
        step: &str,
    ) -> Result<Option<StepRecord>, LedgerError> {
        validate_id("instance_id", instance_id)?;
        validate_text("step", step, MAX_STEP_BYTES)?;
        let mut expr = Expr::new();
        expr.name("instance_id")
            .name("step")
            .name("status")
            .name("kind")
            .value(":instance", s(instance_id))
            .value(":step", s(step))
            .value(":done", s(RecordStatus::Done.as_str()))
            .value(":kind", s(KIND_STEP));
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(INDEX_BY_INSTANCE)
                .key_condition_expression("#instance_id = :instance")
                .filter_expression("#step = :step AND #status = :done AND #kind = :kind")
                .set_expression_attribute_names(Some(expr.names.clone()))
                .set_expression_attribute_values(Some(expr.values.clone()))
                .scan_index_forward(false)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| call_err("Query", e))?;
            if let Some(item) = out.items().first() {
                return record_of(item).map(Some);
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(None),
            }
        }
    }

    /// One record (a strongly consistent read).
    pub async fn get(&self, key: &StepKey) -> Result<Option<StepRecord>, LedgerError> {
        key.validate()?;
        self.get_item(key.key())
            .await?
            .as_ref()
            .map(record_of)
            .transpose()
    }

    /// What was done: by finding (Query on pk), by instance (GSI), or both filters,
    /// newest first. With neither, every step record (a Scan: for small tables and
    /// local use).
    pub async fn history(
        &self,
        finding_id: Option<&str>,
        instance_id: Option<&str>,
    ) -> Result<Vec<StepRecord>, LedgerError> {
        if let Some(f) = finding_id {
            validate_id("finding_id", f)?;
        }
        if let Some(i) = instance_id {
            validate_id("instance_id", i)?;
        }
        let mut expr = Expr::new();
        expr.name("kind").value(":kind", s(KIND_STEP));
        let (operation, key_condition, index) = match (finding_id, instance_id) {
            (Some(f), None) => {
                expr.value(":pk", s(format!("finding#{f}")));
                ("Query", Some("pk = :pk"), None)
            }
            (Some(f), Some(i)) => {
                expr.value(":pk", s(format!("finding#{f}")))
                    .value(":prefix", s(format!("instance#{i}#")));
                ("Query", Some("pk = :pk AND begins_with(sk, :prefix)"), None)
            }
            (None, Some(i)) => {
                expr.name("instance_id").value(":instance", s(i));
                (
                    "Query",
                    Some("#instance_id = :instance"),
                    Some(INDEX_BY_INSTANCE),
                )
            }
            (None, None) => ("Scan", None, None),
        };
        let mut records = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let (items, next) = if let Some(kc) = key_condition {
                let out = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .set_index_name(index.map(str::to_owned))
                    .key_condition_expression(kc)
                    .filter_expression("#kind = :kind")
                    .set_expression_attribute_names(Some(expr.names.clone()))
                    .set_expression_attribute_values(Some(expr.values.clone()))
                    .scan_index_forward(false)
                    .set_consistent_read(index.is_none().then_some(true))
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map_err(|e| call_err(operation, e))?;
                (out.items.unwrap_or_default(), out.last_evaluated_key)
            } else {
                let out = self
                    .client
                    .scan()
                    .table_name(&self.table)
                    .filter_expression("#kind = :kind")
                    .set_expression_attribute_names(Some(expr.names.clone()))
                    .set_expression_attribute_values(Some(expr.values.clone()))
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map_err(|e| call_err(operation, e))?;
                (out.items.unwrap_or_default(), out.last_evaluated_key)
            };
            for item in &items {
                records.push(record_of(item)?);
            }
            match next {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        records.sort_by(|a, b| {
            b.recorded_at
                .cmp(&a.recorded_at)
                .then_with(|| a.finding_id.cmp(&b.finding_id))
                .then_with(|| a.instance_id.cmp(&b.instance_id))
                .then_with(|| b.index.cmp(&a.index))
        });
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::super::keys::key_item;
    use super::*;

    #[test]
    fn corrupt_items_are_errors_naming_the_field() {
        let mut item = key_item(
            "finding#f".to_owned(),
            "instance#i#step#000#isolate".to_owned(),
        );
        item.insert("finding_id".to_owned(), s("f"));
        item.insert("instance_id".to_owned(), s("i"));
        item.insert("step".to_owned(), s("isolate"));
        item.insert("step_index".to_owned(), s("zero"));
        match record_of(&item) {
            Err(LedgerError::Corrupt { field, key, .. }) => {
                assert_eq!(field, "step_index");
                assert!(key.contains("finding#f"), "{key}");
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
        item.insert("step_index".to_owned(), n(0));
        item.insert("recorded_ms".to_owned(), n(5));
        item.insert("status".to_owned(), s("exploded"));
        assert!(
            matches!(record_of(&item), Err(LedgerError::Corrupt { field, .. }) if field == "status")
        );
        item.insert("status".to_owned(), s("done"));
        item.insert("state".to_owned(), s("{not json"));
        assert!(
            matches!(record_of(&item), Err(LedgerError::Corrupt { field, .. }) if field == "state")
        );
        item.insert("state".to_owned(), s("{\"a\":1}"));
        let r = record_of(&item).expect("a valid item decodes");
        assert_eq!(r.state, serde_json::json!({"a": 1}));
        assert_eq!(r.status, RecordStatus::Done);
    }
}
