//! The ledger: the durable record, in one DynamoDB table, of what the responder itself
//! did. The responder's state comes from here (and from the finding and live
//! describes), never from tags that anyone who can tag an instance could pre-set.
//!
//! # The table
//!
//! Keys `pk` (S, HASH) and `sk` (S, RANGE); on-demand billing, server-side encryption
//! (KMS, AWS managed key), point-in-time recovery, TTL on `expires_at` (N, epoch
//! seconds). [`Ledger::create_table`] creates exactly this; the SAM template declares
//! the same.
//!
//! | item | `pk` | `sk` | kept |
//! | --- | --- | --- | --- |
//! | a step of a response | `finding#<finding_id>` | `instance#<instance_id>#step#<index:03>#<step>` | 400 days |
//! | a budget decision | `budget#decision#<YYYY-MM-DDTHH>` | `finding#<finding_id>#instance#<instance_id>` | 2 days |
//! | a budget counter | `budget#<scope>#<YYYY-MM-DDTHH>` | `count` (attribute `used`, N) | 2 days |
//! | a network ACL deny entry | `block#active` | `<expires RFC 3339>#<acl id>#<rule:05>#<in\|out>` | 30 days after it ended |
//!
//! Step items also carry `kind` = `step`, `finding_id`, `instance_id`, `step_index`,
//! `step`, the response's `playbook`, `finding_type`, `account` and `region`,
//! `status` (`claimed`, `done`, `failed`), `owner`, `claimed_at`, `lease_until` and
//! `finished_at` (N, epoch milliseconds), `attempts`, `outcome`, `resources` (L of S),
//! `state` (S, JSON text: what undoing the step needs) and `recorded_at` (S, RFC 3339
//! UTC with milliseconds, `2026-11-29T09:20:12.345Z`, so that it sorts as text).
//!
//! The global secondary index `by-instance` (HASH `instance_id`, RANGE `recorded_at`,
//! projection ALL) answers "what was done to this instance, newest first" whatever the
//! finding. Only step items have `instance_id`, so budget items stay out of it. GSI
//! reads are eventually consistent: [`Ledger::last_done`] and
//! [`Ledger::history`] by instance may miss a write of the last moment; claims never
//! read the index.
//!
//! # Why conditional writes
//!
//! The same finding can be delivered several times at once (EventBridge retries,
//! Lambda's asynchronous retries, several findings about one instance). Reading "was
//! this done?" and then acting lets two deliveries both act. Instead each destructive
//! step is *claimed* before it runs by one conditional write that DynamoDB applies
//! atomically: exactly one delivery gets [`Claim::Granted`], the others see
//! [`Claim::Held`] (someone is on it) or [`Claim::Done`] (it was done, with what it
//! created). No sleeps, no settle delays.
//!
//! # Leases and takeover
//!
//! A claim carries `lease_until`. An invocation that crashes (timeout, out of memory)
//! leaves its claim `claimed`; once the lease has expired, the next claim takes it
//! over ([`Claim::Granted`] with `took_over_from` naming the crashed owner), so a
//! crash delays a step by at most one lease and never blocks it forever. Choose a lease
//! longer than the step can take (the Lambda's timeout is a safe bound). [`Ledger::finish`]
//! is conditional on the owner still holding the claim, so an owner that was taken
//! over cannot overwrite its successor's record. A `failed` step may be claimed again
//! at once (a retry); a `done` one never.
//!
//! # Blast radius
//!
//! [`Ledger::budget`] counts destructive responses per hour in each scope (all, per
//! playbook, per account) with one `TransactWriteItems`: put the response's decision
//! item if absent, and add one to every scope's counter under `used < max`. Either
//! all of it happens or none: a response never consumes one scope's budget while being
//! refused by another. The decision item makes redelivery of the same finding in the
//! same hour return the first decision without counting again.
//!
//! Time is [`SystemTime`]; the `*_at` methods take `now` so that tests can drive lease
//! expiry without sleeping.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, IndexStatus,
    KeySchemaElement, KeyType, PointInTimeRecoverySpecification, PointInTimeRecoveryStatus,
    Projection, ProjectionType, Put, ReturnValue, ReturnValuesOnConditionCheckFailure,
    ScalarAttributeType, SseSpecification, SseType, TableStatus, TimeToLiveSpecification,
    TimeToLiveStatus, TransactWriteItem, Update,
};
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::call;

/// The table's partition key (S).
pub const PARTITION_KEY: &str = "pk";
/// The table's sort key (S).
pub const SORT_KEY: &str = "sk";
/// The global secondary index by instance.
pub const INDEX_BY_INSTANCE: &str = "by-instance";
/// [`INDEX_BY_INSTANCE`]'s partition key (S): the instance id of step items.
pub const INSTANCE_ATTRIBUTE: &str = "instance_id";
/// [`INDEX_BY_INSTANCE`]'s sort key (S, RFC 3339 UTC with milliseconds).
pub const RECORDED_AT_ATTRIBUTE: &str = "recorded_at";
/// The TTL attribute (N, epoch seconds).
pub const TTL_ATTRIBUTE: &str = "expires_at";
/// How long step records are kept.
pub const STEP_RETENTION: Duration = Duration::from_secs(400 * 24 * 3600);
/// How long budget items are kept.
pub const BUDGET_RETENTION: Duration = Duration::from_secs(2 * 24 * 3600);
/// The longest id (finding, instance, owner) the ledger accepts, in bytes.
pub const MAX_ID_BYTES: usize = 512;
/// The longest step name, in bytes (the sort key must stay under DynamoDB's 1024).
pub const MAX_STEP_BYTES: usize = 256;
/// The highest step index (three digits in the sort key).
pub const MAX_INDEX: usize = 999;
/// The most budget scopes one response may count in (a transaction holds 100 items).
pub const MAX_SCOPES: usize = 99;

/// How often `create_table` polls for ACTIVE, and for how long at most.
const POLL_INTERVAL: Duration = Duration::from_millis(500);
const POLL_ATTEMPTS: u32 = 240;
/// Bound on the retries of a claim whose competitor's record vanished, and of a
/// budget transaction that conflicted with another.
const CLAIM_ATTEMPTS: u32 = 5;
const BUDGET_ATTEMPTS: u32 = 12;

const KIND_STEP: &str = "step";
const KIND_DECISION: &str = "budget-decision";
const KIND_COUNTER: &str = "budget-counter";

type Item = HashMap<String, AttributeValue>;

/// The responder's ledger: a DynamoDB client and the table it writes.
#[derive(Debug, Clone)]
pub struct Ledger {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

/// What [`Ledger::create_table`] did.
// `Created::Created` reads as the sentence it is; the lint dislikes the repetition.
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// The table did not exist and was created.
    Created,
    /// The table existed (its TTL and point-in-time recovery were switched on if off).
    AlreadyExists,
}

/// One step of one response: what a claim is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StepKey {
    /// The GuardDuty finding id.
    pub finding_id: String,
    /// The instance the response acts on.
    pub instance_id: String,
    /// The step's position in the plan (0-based, at most [`MAX_INDEX`]).
    pub index: usize,
    /// The step's YAML name (`isolate`, `terminate`, ...).
    pub step: String,
}

/// One response: a finding about an instance.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResponseKey {
    /// The GuardDuty finding id.
    pub finding_id: String,
    /// The instance the response acts on.
    pub instance_id: String,
}

/// What the response is, recorded with every item for people reading the history.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResponseMeta {
    /// The playbook that answered.
    pub playbook: String,
    /// The finding type.
    pub finding_type: String,
    /// The account the instance is in.
    pub account: String,
    /// The region the instance is in.
    pub region: String,
}

impl ResponseMeta {
    /// The meta of a response to this finding by this playbook.
    pub fn of(finding: &responder_core::Finding, playbook: impl Into<String>) -> ResponseMeta {
        ResponseMeta {
            playbook: playbook.into(),
            finding_type: finding.finding_type.name.clone(),
            account: finding.account_id.clone().unwrap_or_default(),
            region: finding.region.clone().unwrap_or_default(),
        }
    }
}

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

/// What can go wrong with the ledger. Every variant says which item or call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// A DynamoDB call failed.
    #[error("DynamoDB {operation} failed: {code}: {message}")]
    Call {
        /// The API operation (`UpdateItem`, ...).
        operation: &'static str,
        /// The AWS error code, or `Transport`.
        code: String,
        /// The message.
        message: String,
    },
    /// An item in the table does not have the shape the ledger writes.
    #[error("ledger item {key}: `{field}` {problem}")]
    Corrupt {
        /// The item's `pk`/`sk`.
        key: String,
        /// The attribute.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
    /// An argument the ledger refuses (empty or oversized id, a finish that is not an
    /// end, ...).
    #[error("invalid {field}: {problem}")]
    Invalid {
        /// The argument.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// `finish` by an owner that does not hold the claim.
    #[error("{owner} does not hold the claim on {key} (holder: {}, status: {})",
        .holder.as_deref().unwrap_or("none"),
        .status.map_or("no record", RecordStatus::as_str))]
    NotHolder {
        /// The step.
        key: String,
        /// Who tried to finish.
        owner: String,
        /// Who holds the record now.
        holder: Option<String>,
        /// Its status now.
        status: Option<RecordStatus>,
    },
    /// The table is not usable as a ledger (other keys, no index, never active).
    #[error("table {table}: {problem}")]
    Table {
        /// The table name.
        table: String,
        /// What is wrong.
        problem: String,
    },
    /// A write kept conflicting with concurrent writes past the retry bound.
    #[error("DynamoDB {operation} still conflicting after {attempts} attempts")]
    Contended {
        /// The operation.
        operation: &'static str,
        /// Attempts made.
        attempts: u32,
    },
}

fn call_err<E>(operation: &'static str, e: E) -> LedgerError
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let c = call::err(e);
    LedgerError::Call {
        operation,
        code: c.code,
        message: c.message,
    }
}

fn build_err(what: &'static str, e: impl fmt::Display) -> LedgerError {
    LedgerError::Call {
        operation: what,
        code: "Internal".to_owned(),
        message: e.to_string(),
    }
}

impl StepKey {
    /// The partition key of the step's item.
    pub fn pk(&self) -> String {
        format!("finding#{}", self.finding_id)
    }

    /// The sort key of the step's item.
    pub fn sk(&self) -> String {
        format!(
            "instance#{}#step#{:03}#{}",
            self.instance_id, self.index, self.step
        )
    }

    fn validate(&self) -> Result<(), LedgerError> {
        validate_id("finding_id", &self.finding_id)?;
        validate_id("instance_id", &self.instance_id)?;
        validate_text("step", &self.step, MAX_STEP_BYTES)?;
        if self.index > MAX_INDEX {
            return Err(LedgerError::Invalid {
                field: "index",
                problem: format!("{} is over {MAX_INDEX}", self.index),
            });
        }
        Ok(())
    }

    fn key(&self) -> Item {
        key_item(self.pk(), self.sk())
    }
}

impl fmt::Display for StepKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "finding {} instance {} step {} ({})",
            self.finding_id, self.instance_id, self.index, self.step
        )
    }
}

impl ResponseKey {
    fn validate(&self) -> Result<(), LedgerError> {
        validate_id("finding_id", &self.finding_id)?;
        validate_id("instance_id", &self.instance_id)
    }
}

/// An id that goes into a key: non-empty, at most [`MAX_ID_BYTES`], no `#` (the key
/// separator) and no control characters.
fn validate_id(field: &'static str, id: &str) -> Result<(), LedgerError> {
    validate_text(field, id, MAX_ID_BYTES)?;
    if id.contains('#') {
        return Err(LedgerError::Invalid {
            field,
            problem: "contains `#`, the key separator".to_owned(),
        });
    }
    Ok(())
}

fn validate_text(field: &'static str, s: &str, max: usize) -> Result<(), LedgerError> {
    let problem = if s.is_empty() {
        "is empty".to_owned()
    } else if s.len() > max {
        format!("is {} bytes, over {max}", s.len())
    } else if s.chars().any(char::is_control) {
        "contains control characters".to_owned()
    } else {
        return Ok(());
    };
    Err(LedgerError::Invalid { field, problem })
}

fn key_item(pk: String, sk: String) -> Item {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S(pk)),
        ("sk".to_owned(), AttributeValue::S(sk)),
    ])
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl fmt::Display) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Milliseconds since the epoch (0 before it).
fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The time `ms` milliseconds after the epoch (none when the clock cannot hold it).
fn from_ms(ms: u64) -> Option<SystemTime> {
    UNIX_EPOCH.checked_add(Duration::from_millis(ms))
}

/// `now + retention` in epoch seconds, for the TTL attribute.
fn expires(now: SystemTime, retention: Duration) -> u64 {
    (epoch_ms(now) / 1000).saturating_add(retention.as_secs())
}

/// RFC 3339 UTC with milliseconds, fixed width (`2026-11-29T09:20:12.345Z`), so that
/// the text sorts as the time does.
pub fn rfc3339_ms(t: SystemTime) -> String {
    let ms = epoch_ms(t);
    let secs = ms / 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// The hour a budget counts in: `YYYY-MM-DDTHH` (UTC).
pub fn budget_hour(t: SystemTime) -> String {
    let mut s = rfc3339_ms(t);
    s.truncate(13);
    s
}

/// Days since 1970-01-01 to a (year, month, day) of the proleptic Gregorian calendar
/// (H. Hinnant's `civil_from_days`, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

fn ser_time<S: Serializer>(t: &SystemTime, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(&rfc3339_ms(*t))
}

fn ser_opt_time<S: Serializer>(t: &Option<SystemTime>, ser: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => ser.serialize_str(&rfc3339_ms(*t)),
        None => ser.serialize_none(),
    }
}

/// Reads typed attributes off an item, naming the item and field in every error.
struct Reader<'a> {
    item: &'a Item,
}

impl Reader<'_> {
    fn where_(&self) -> String {
        let part = |k: &str| match self.item.get(k) {
            Some(AttributeValue::S(v)) => v.clone(),
            _ => "?".to_owned(),
        };
        format!("{} / {}", part("pk"), part("sk"))
    }

    fn corrupt(&self, field: &str, problem: impl Into<String>) -> LedgerError {
        LedgerError::Corrupt {
            key: self.where_(),
            field: field.to_owned(),
            problem: problem.into(),
        }
    }

    fn opt_s(&self, field: &str) -> Result<Option<&str>, LedgerError> {
        match self.item.get(field) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::S(v)) => Ok(Some(v)),
            Some(_) => Err(self.corrupt(field, "is not a string")),
        }
    }

    fn s(&self, field: &str) -> Result<&str, LedgerError> {
        self.opt_s(field)?
            .ok_or_else(|| self.corrupt(field, "is missing"))
    }

    fn opt_u64(&self, field: &str) -> Result<Option<u64>, LedgerError> {
        match self.item.get(field) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::N(v)) => v
                .parse()
                .map(Some)
                .map_err(|_| self.corrupt(field, format!("is not a whole number: {v}"))),
            Some(_) => Err(self.corrupt(field, "is not a number")),
        }
    }

    fn u64(&self, field: &str) -> Result<u64, LedgerError> {
        self.opt_u64(field)?
            .ok_or_else(|| self.corrupt(field, "is missing"))
    }

    fn u32(&self, field: &str) -> Result<u32, LedgerError> {
        let v = self.u64(field)?;
        u32::try_from(v).map_err(|_| self.corrupt(field, format!("{v} is too large")))
    }

    fn bool(&self, field: &str) -> Result<bool, LedgerError> {
        match self.item.get(field) {
            Some(AttributeValue::Bool(b)) => Ok(*b),
            None => Err(self.corrupt(field, "is missing")),
            Some(_) => Err(self.corrupt(field, "is not a boolean")),
        }
    }

    fn strings(&self, field: &str) -> Result<Vec<String>, LedgerError> {
        match self.item.get(field) {
            None | Some(AttributeValue::Null(_)) => Ok(Vec::new()),
            Some(AttributeValue::L(list)) => list
                .iter()
                .map(|v| match v {
                    AttributeValue::S(s) => Ok(s.clone()),
                    _ => Err(self.corrupt(field, "holds a value that is not a string")),
                })
                .collect(),
            Some(AttributeValue::Ss(list)) => Ok(list.clone()),
            Some(_) => Err(self.corrupt(field, "is not a list")),
        }
    }

    fn json(&self, field: &str) -> Result<Value, LedgerError> {
        match self.opt_s(field)? {
            None => Ok(Value::Null),
            Some(text) => serde_json::from_str(text)
                .map_err(|e| self.corrupt(field, format!("is not JSON: {e}"))),
        }
    }

    fn status(&self) -> Result<RecordStatus, LedgerError> {
        let v = self.s("status")?;
        RecordStatus::parse(v).ok_or_else(|| self.corrupt("status", format!("unknown: {v}")))
    }

    fn opt_time(&self, field: &str) -> Result<Option<SystemTime>, LedgerError> {
        match self.opt_u64(field)? {
            None => Ok(None),
            Some(ms) => from_ms(ms)
                .map(Some)
                .ok_or_else(|| self.corrupt(field, format!("{ms} ms is out of range"))),
        }
    }

    fn time(&self, field: &str) -> Result<SystemTime, LedgerError> {
        self.opt_time(field)?
            .ok_or_else(|| self.corrupt(field, "is missing"))
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

/// `SET #a = :a, ...` over `attrs`, with names and values filled in.
struct Expr {
    sets: Vec<String>,
    names: HashMap<String, String>,
    values: Item,
}

impl Expr {
    fn new() -> Expr {
        Expr {
            sets: Vec::new(),
            names: HashMap::new(),
            values: HashMap::new(),
        }
    }

    fn set(&mut self, attrs: Vec<(&'static str, AttributeValue)>) {
        for (name, value) in attrs {
            self.names.insert(format!("#{name}"), name.to_owned());
            self.values.insert(format!(":{name}"), value);
            self.sets.push(format!("#{name} = :{name}"));
        }
    }

    fn name(&mut self, name: &str) -> &mut Expr {
        self.names.insert(format!("#{name}"), name.to_owned());
        self
    }

    fn value(&mut self, placeholder: &str, value: AttributeValue) -> &mut Expr {
        self.values.insert(placeholder.to_owned(), value);
        self
    }
}

impl Ledger {
    /// A ledger over `table`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Ledger {
        Ledger {
            client,
            table: table.into(),
        }
    }

    /// A ledger over `table` with a client built from `config` (as
    /// [`crate::Clients::load`] returns it).
    pub fn from_config(config: &aws_config::SdkConfig, table: impl Into<String>) -> Ledger {
        Ledger::new(aws_sdk_dynamodb::Client::new(config), table)
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The DynamoDB client.
    pub fn client(&self) -> &aws_sdk_dynamodb::Client {
        &self.client
    }

    /// Creates the table if missing (idempotent; waits until ACTIVE with a bounded
    /// poll): on-demand billing, server-side encryption, point-in-time recovery, TTL on
    /// `expires_at`, GSI `by-instance`. An existing table must have the ledger's keys
    /// and index; its TTL and point-in-time recovery are switched on if they are off
    /// (a creation interrupted half-way is completed).
    pub async fn create_table(&self) -> Result<Created, LedgerError> {
        let created = match self.describe().await? {
            Some(_) => Created::AlreadyExists,
            None => self.create().await?,
        };
        self.wait_active().await?;
        self.ensure_ttl().await?;
        self.ensure_pitr().await?;
        Ok(created)
    }

    async fn describe(
        &self,
    ) -> Result<Option<aws_sdk_dynamodb::types::TableDescription>, LedgerError> {
        match self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
        {
            Ok(out) => Ok(out.table),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(call_err("DescribeTable", e)),
        }
    }

    async fn create(&self) -> Result<Created, LedgerError> {
        let b = |e| build_err("CreateTable", e);
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
        };
        let key = |name: &str, kt: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kt)
                .build()
        };
        let gsi = GlobalSecondaryIndex::builder()
            .index_name(INDEX_BY_INSTANCE)
            .key_schema(key(INSTANCE_ATTRIBUTE, KeyType::Hash).map_err(b)?)
            .key_schema(key(RECORDED_AT_ATTRIBUTE, KeyType::Range).map_err(b)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .map_err(b)?;
        let result = self
            .client
            .create_table()
            .table_name(&self.table)
            .attribute_definitions(attr(PARTITION_KEY).map_err(b)?)
            .attribute_definitions(attr(SORT_KEY).map_err(b)?)
            .attribute_definitions(attr(INSTANCE_ATTRIBUTE).map_err(b)?)
            .attribute_definitions(attr(RECORDED_AT_ATTRIBUTE).map_err(b)?)
            .key_schema(key(PARTITION_KEY, KeyType::Hash).map_err(b)?)
            .key_schema(key(SORT_KEY, KeyType::Range).map_err(b)?)
            .global_secondary_indexes(gsi)
            .billing_mode(BillingMode::PayPerRequest)
            .sse_specification(
                SseSpecification::builder()
                    .enabled(true)
                    .sse_type(SseType::Kms)
                    .build(),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(Created::Created),
            // Another creator won the race: the table is there.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_in_use_exception()) =>
            {
                Ok(Created::AlreadyExists)
            }
            Err(e) => Err(call_err("CreateTable", e)),
        }
    }

    /// Polls until the table and its index are ACTIVE, checking that it has the
    /// ledger's keys and index.
    async fn wait_active(&self) -> Result<(), LedgerError> {
        for _ in 0..POLL_ATTEMPTS {
            let Some(t) = self.describe().await? else {
                tokio::time::sleep(POLL_INTERVAL).await;
                continue;
            };
            self.check_schema(&t)?;
            let index_active = t
                .global_secondary_indexes()
                .iter()
                .filter(|i| i.index_name() == Some(INDEX_BY_INSTANCE))
                .all(|i| matches!(i.index_status(), Some(IndexStatus::Active) | None));
            if t.table_status() == Some(&TableStatus::Active) && index_active {
                return Ok(());
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        Err(LedgerError::Table {
            table: self.table.clone(),
            problem: format!("not ACTIVE after {:?}", POLL_INTERVAL * POLL_ATTEMPTS),
        })
    }

    fn check_schema(
        &self,
        t: &aws_sdk_dynamodb::types::TableDescription,
    ) -> Result<(), LedgerError> {
        let key_of = |schema: &[KeySchemaElement]| {
            let mut keys: Vec<(String, String)> = schema
                .iter()
                .map(|k| {
                    (
                        k.attribute_name().to_owned(),
                        k.key_type().as_str().to_owned(),
                    )
                })
                .collect();
            keys.sort();
            keys
        };
        let want = |h: &str, r: &str| {
            let mut v = vec![
                (h.to_owned(), "HASH".to_owned()),
                (r.to_owned(), "RANGE".to_owned()),
            ];
            v.sort();
            v
        };
        let problem = if key_of(t.key_schema()) != want(PARTITION_KEY, SORT_KEY) {
            Some("its keys are not pk (HASH) and sk (RANGE)".to_owned())
        } else {
            match t
                .global_secondary_indexes()
                .iter()
                .find(|i| i.index_name() == Some(INDEX_BY_INSTANCE))
            {
                None => Some(format!("it has no index {INDEX_BY_INSTANCE}")),
                Some(i)
                    if key_of(i.key_schema())
                        != want(INSTANCE_ATTRIBUTE, RECORDED_AT_ATTRIBUTE) =>
                {
                    Some(format!(
                        "index {INDEX_BY_INSTANCE} is not instance_id (HASH), recorded_at (RANGE)"
                    ))
                }
                Some(_) => None,
            }
        };
        match problem {
            Some(problem) => Err(LedgerError::Table {
                table: self.table.clone(),
                problem: format!("not a ledger table: {problem}"),
            }),
            None => Ok(()),
        }
    }

    async fn ensure_ttl(&self) -> Result<(), LedgerError> {
        let out = self
            .client
            .describe_time_to_live()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| call_err("DescribeTimeToLive", e))?;
        let on = out.time_to_live_description().is_some_and(|d| {
            matches!(
                d.time_to_live_status(),
                Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
            ) && d.attribute_name() == Some(TTL_ATTRIBUTE)
        });
        if on {
            return Ok(());
        }
        let spec = TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name(TTL_ATTRIBUTE)
            .build()
            .map_err(|e| build_err("UpdateTimeToLive", e))?;
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(spec)
            .send()
            .await
            .map_err(|e| call_err("UpdateTimeToLive", e))?;
        Ok(())
    }

    async fn ensure_pitr(&self) -> Result<(), LedgerError> {
        let out = self
            .client
            .describe_continuous_backups()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| call_err("DescribeContinuousBackups", e))?;
        let on = out
            .continuous_backups_description()
            .and_then(|d| d.point_in_time_recovery_description())
            .and_then(|p| p.point_in_time_recovery_status())
            == Some(&PointInTimeRecoveryStatus::Enabled);
        if on {
            return Ok(());
        }
        let spec = PointInTimeRecoverySpecification::builder()
            .point_in_time_recovery_enabled(true)
            .build()
            .map_err(|e| build_err("UpdateContinuousBackups", e))?;
        self.client
            .update_continuous_backups()
            .table_name(&self.table)
            .point_in_time_recovery_specification(spec)
            .send()
            .await
            .map_err(|e| call_err("UpdateContinuousBackups", e))?;
        Ok(())
    }

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

    async fn get_item(&self, key: Item) -> Result<Option<Item>, LedgerError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| call_err("GetItem", e))?;
        Ok(out.item.filter(|i| !i.is_empty()))
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

/// The partition of the network ACL deny entries still in place (`block-remote-ip`):
/// sort keys start with the expiry time, so a Query with `sk <= now` finds what is
/// due without a scan.
pub const BLOCKS_ACTIVE: &str = "block#active";
/// How long a block record is kept after it ended (removed, superseded, not
/// created): long enough to answer "what did we block last month".
pub const BLOCK_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
const KIND_BLOCK: &str = "block";

/// Where a network ACL deny entry the responder created stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BlockStatus {
    /// Recorded before the entry was created, and in place until it expires.
    Active,
    /// Expired and deleted: the entry was still exactly the responder's.
    Removed,
    /// At expiry, the rule number held no entry, or another one (someone removed or
    /// replaced it): left as it is.
    Superseded,
    /// The CreateNetworkAclEntry after the record did not take effect (the number
    /// was taken, the call failed).
    NotCreated,
}

impl BlockStatus {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            BlockStatus::Active => "active",
            BlockStatus::Removed => "removed",
            BlockStatus::Superseded => "superseded",
            BlockStatus::NotCreated => "not-created",
        }
    }

    fn parse(s: &str) -> Option<BlockStatus> {
        [
            BlockStatus::Active,
            BlockStatus::Removed,
            BlockStatus::Superseded,
            BlockStatus::NotCreated,
        ]
        .into_iter()
        .find(|b| b.as_str() == s)
    }
}

/// One network ACL deny entry the responder created (or is about to): written
/// before the CreateNetworkAclEntry, so that no entry of ours exists without a
/// record that makes it expire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlockRecord {
    /// When the entry is due for removal.
    #[serde(serialize_with = "ser_time")]
    pub expires: SystemTime,
    /// The network ACL.
    pub network_acl_id: String,
    /// The entry's rule number.
    pub rule_number: i32,
    /// Outbound (`true`) or inbound.
    pub egress: bool,
    /// The denied block (`/32` or `/128`).
    pub cidr: String,
    /// The account of the ACL (the finding's).
    pub account: String,
    /// The region of the ACL.
    pub region: String,
    /// The finding that caused it.
    pub finding_id: String,
    /// The instance whose subnet it protects.
    pub instance_id: String,
    /// Where it stands.
    pub status: BlockStatus,
    /// Why it ended, for people (empty while active).
    pub note: String,
}

impl BlockRecord {
    /// `in` or `out`.
    pub fn direction(&self) -> &'static str {
        if self.egress { "out" } else { "in" }
    }

    /// The sort key: `<expires RFC 3339>#<acl id>#<rule number:05>#<in|out>`.
    pub fn sk(&self) -> String {
        format!(
            "{}#{}#{:05}#{}",
            rfc3339_ms(self.expires),
            self.network_acl_id,
            self.rule_number,
            self.direction()
        )
    }

    fn key(&self) -> Item {
        key_item(BLOCKS_ACTIVE.to_owned(), self.sk())
    }

    fn validate(&self) -> Result<(), LedgerError> {
        validate_id("network_acl_id", &self.network_acl_id)?;
        validate_id("finding_id", &self.finding_id)?;
        validate_id("instance_id", &self.instance_id)?;
        validate_text("cidr", &self.cidr, 64)?;
        if !(1..=32766).contains(&self.rule_number) {
            return Err(LedgerError::Invalid {
                field: "rule_number",
                problem: format!("{} is outside 1 to 32766", self.rule_number),
            });
        }
        Ok(())
    }
}

impl Reader<'_> {
    fn block_record(&self) -> Result<BlockRecord, LedgerError> {
        let status = self.s("status")?;
        let rule = self.u64("rule_number")?;
        Ok(BlockRecord {
            expires: self.time("expires_ms")?,
            network_acl_id: self.s("network_acl_id")?.to_owned(),
            rule_number: i32::try_from(rule)
                .map_err(|_| self.corrupt("rule_number", "is too large"))?,
            egress: self.bool("egress")?,
            cidr: self.s("cidr")?.to_owned(),
            account: self.opt_s("account")?.unwrap_or_default().to_owned(),
            region: self.opt_s("region")?.unwrap_or_default().to_owned(),
            finding_id: self.s("finding_id")?.to_owned(),
            instance_id: self.s("instance_id")?.to_owned(),
            status: BlockStatus::parse(status)
                .ok_or_else(|| self.corrupt("status", format!("unknown: {status}")))?,
            note: self.opt_s("note")?.unwrap_or_default().to_owned(),
        })
    }
}

impl Ledger {
    /// Records a deny entry about to be created, as [`BlockStatus::Active`]: a
    /// conditional put, so that the same record twice is one item; an ended record
    /// under the same key (a create of the same number that did not take effect
    /// before) is made active again, since the entry is about to exist.
    pub async fn record_block_at(
        &self,
        block: &BlockRecord,
        now: SystemTime,
    ) -> Result<(), LedgerError> {
        block.validate()?;
        let mut item = block.key();
        let attrs = [
            ("kind", s(KIND_BLOCK)),
            ("expires_ms", n(epoch_ms(block.expires))),
            ("network_acl_id", s(&block.network_acl_id)),
            ("rule_number", n(block.rule_number)),
            ("egress", AttributeValue::Bool(block.egress)),
            ("cidr", s(&block.cidr)),
            ("account", s(&block.account)),
            ("region", s(&block.region)),
            ("finding_id", s(&block.finding_id)),
            ("block_instance", s(&block.instance_id)),
            ("status", s(BlockStatus::Active.as_str())),
            ("recorded_at", s(rfc3339_ms(now))),
            // Kept while active and well past its expiry: the TTL never removes the
            // record of an entry still in place (the expiry runs every few minutes).
            (TTL_ATTRIBUTE, n(expires(block.expires, STEP_RETENTION))),
        ];
        item.extend(attrs.map(|(k, v)| (k.to_owned(), v)));
        // `instance_id` stays off block items: it would put them in the by-instance
        // index, which holds step records only. Stored as `block_instance`.
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR #status <> :active")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":active", s(BlockStatus::Active.as_str()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match e.into_service_error() {
                PutItemError::ConditionalCheckFailedException(_) => Ok(()),
                other => Err(call_err("PutItem", other)),
            },
        }
    }

    /// The active deny entries due at `now` (expiry at or before it), oldest first:
    /// one Query on [`BLOCKS_ACTIVE`], strongly consistent.
    pub async fn due_blocks(&self, now: SystemTime) -> Result<Vec<BlockRecord>, LedgerError> {
        // `~` sorts after `#`: every key whose time part is <= now.
        self.query_blocks(Some(format!("{}~", rfc3339_ms(now))), true)
            .await
    }

    /// Every block record, active or ended, oldest expiry first (for people and
    /// tests).
    pub async fn blocks(&self) -> Result<Vec<BlockRecord>, LedgerError> {
        self.query_blocks(None, false).await
    }

    async fn query_blocks(
        &self,
        up_to: Option<String>,
        active_only: bool,
    ) -> Result<Vec<BlockRecord>, LedgerError> {
        let mut expr = Expr::new();
        expr.name("kind")
            .value(":pk", s(BLOCKS_ACTIVE))
            .value(":kind", s(KIND_BLOCK));
        let mut key_condition = "pk = :pk".to_owned();
        if let Some(bound) = up_to {
            expr.value(":bound", s(bound));
            key_condition.push_str(" AND sk <= :bound");
        }
        let mut filter = "#kind = :kind".to_owned();
        if active_only {
            expr.name("status")
                .value(":active", s(BlockStatus::Active.as_str()));
            filter.push_str(" AND #status = :active");
        }
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(&key_condition)
                .filter_expression(&filter)
                .set_expression_attribute_names(Some(expr.names.clone()))
                .set_expression_attribute_values(Some(expr.values.clone()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| call_err("Query", e))?;
            for item in page.items() {
                let mut item = item.clone();
                if let Some(v) = item.remove("block_instance") {
                    item.insert("instance_id".to_owned(), v);
                }
                out.push(Reader { item: &item }.block_record()?);
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(out)
    }

    /// Ends an active block record: `status` (not Active) and a note for people; the
    /// record is then kept [`BLOCK_RETENTION`]. `Ok(false)` when it was no longer
    /// active (another expiry run ended it first).
    pub async fn end_block_at(
        &self,
        block: &BlockRecord,
        status: BlockStatus,
        note: &str,
        now: SystemTime,
    ) -> Result<bool, LedgerError> {
        block.validate()?;
        if status == BlockStatus::Active {
            return Err(LedgerError::Invalid {
                field: "status",
                problem: "an end is not active".to_owned(),
            });
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(block.key()))
            .update_expression("SET #status = :status, #note = :note, #ended = :ended, #ttl = :ttl")
            .condition_expression("#status = :active")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#note", "note")
            .expression_attribute_names("#ended", "ended_at")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":status", s(status.as_str()))
            .expression_attribute_values(":note", s(note))
            .expression_attribute_values(":ended", s(rfc3339_ms(now)))
            .expression_attribute_values(":ttl", n(expires(now, BLOCK_RETENTION)))
            .expression_attribute_values(":active", s(BlockStatus::Active.as_str()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) => match e.into_service_error() {
                UpdateItemError::ConditionalCheckFailedException(_) => Ok(false),
                other => Err(call_err("UpdateItem", other)),
            },
        }
    }
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (UTC; what [`rfc3339_ms`] writes and
/// `responder expire --now` takes); `None` for anything else or before 1970.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let t = text.strip_suffix('Z').or_else(|| text.strip_suffix('z'))?;
    let (date, time) = t.split_once(['T', 't'])?;
    let num = |s: &str, len: usize| -> Option<u64> {
        (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let mut d = date.split('-');
    let (y, m, day) = (num(d.next()?, 4)?, num(d.next()?, 2)?, num(d.next()?, 2)?);
    if d.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&day) || y < 1970 {
        return None;
    }
    let (hms, frac) = match time.split_once('.') {
        Some((hms, frac)) => (hms, Some(frac)),
        None => (time, None),
    };
    let mut h = hms.split(':');
    let (hh, mm, ss) = (num(h.next()?, 2)?, num(h.next()?, 2)?, num(h.next()?, 2)?);
    if h.next().is_some() || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let ms = match frac {
        None => 0,
        Some(f) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => {
            let mut digits: String = f.chars().take(3).collect();
            while digits.len() < 3 {
                digits.push('0');
            }
            digits.parse::<u64>().ok()?
        }
        Some(_) => return None,
    };
    let days = days_from_civil(y, m, day);
    let (_, m2, d2) = civil_from_days(days);
    if (m2, d2) != (m, day) {
        return None; // 2026-02-30 and the like
    }
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    from_ms(secs.checked_mul(1000)?.checked_add(ms)?)
}

/// (year, month, day) to days since 1970-01-01 (H. Hinnant's `days_from_civil`, for
/// dates from 1970 on).
fn days_from_civil(y: u64, m: u64, d: u64) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_parses_what_it_writes() {
        for ms in [0u64, 951_827_696_789, 1_798_536_012_005] {
            let t = UNIX_EPOCH + Duration::from_millis(ms);
            assert_eq!(parse_rfc3339(&rfc3339_ms(t)), Some(t));
        }
        assert_eq!(
            parse_rfc3339("2026-11-29T09:20:12Z"),
            Some(UNIX_EPOCH + Duration::from_millis(1_795_944_012_000))
        );
        for bad in [
            "",
            "2026-11-29",
            "2026-02-30T00:00:00Z",
            "2026-11-29T09:20:12",
            "1969-12-31T23:59:59Z",
            "2026-13-01T00:00:00Z",
            "2026-11-29T25:00:00Z",
            "2026-11-29T09:20:12.Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn block_keys_sort_by_expiry() {
        let b = BlockRecord {
            expires: UNIX_EPOCH + Duration::from_millis(1_798_536_012_005),
            network_acl_id: "acl-1".to_owned(),
            rule_number: 99,
            egress: true,
            cidr: "198.51.100.7/32".to_owned(),
            account: "111122223333".to_owned(),
            region: "us-east-1".to_owned(),
            finding_id: "f".to_owned(),
            instance_id: "i-1".to_owned(),
            status: BlockStatus::Active,
            note: String::new(),
        };
        assert_eq!(b.sk(), "2026-12-29T09:20:12.005Z#acl-1#00099#out");
        assert!(b.sk() <= format!("{}~", rfc3339_ms(b.expires)));
        assert!(b.validate().is_ok());
        assert!(
            BlockRecord {
                rule_number: 0,
                ..b.clone()
            }
            .validate()
            .is_err()
        );
        assert!(
            BlockRecord {
                network_acl_id: "acl#1".to_owned(),
                ..b
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn rfc3339_is_fixed_width_utc() {
        assert_eq!(rfc3339_ms(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        // 2000-02-29T12:34:56.789Z, a leap day in a century leap year.
        let t = UNIX_EPOCH + Duration::from_millis(951_827_696_789);
        assert_eq!(rfc3339_ms(t), "2000-02-29T12:34:56.789Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_798_536_012_005);
        assert_eq!(rfc3339_ms(t), "2026-12-29T09:20:12.005Z");
        assert_eq!(budget_hour(t), "2026-12-29T09");
        // Before the epoch reads as the epoch rather than panicking.
        let before = UNIX_EPOCH - Duration::from_secs(10);
        assert_eq!(rfc3339_ms(before), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn text_order_is_time_order() {
        // Offsets whose texts would sort wrongly with trimmed fractions or unpadded
        // fields; listed in time order.
        let offsets = [
            0u64,
            5,
            50,
            999,
            1000,
            9_000,
            61_000,
            3_600_000,
            86_400_000 * 400,
        ];
        let texts: Vec<String> = offsets
            .iter()
            .map(|ms| rfc3339_ms(UNIX_EPOCH + Duration::from_millis(1_700_000_000_000 + ms)))
            .collect();
        let mut sorted = texts.clone();
        sorted.sort();
        assert_eq!(texts, sorted);
        assert!(texts.iter().all(|t| t.len() == 24), "{texts:?}");
    }

    #[test]
    fn keys_are_validated() {
        let ok = StepKey {
            finding_id: "f".repeat(32),
            instance_id: "i-0123456789abcdef0".to_owned(),
            index: 3,
            step: "terminate".to_owned(),
        };
        assert!(ok.validate().is_ok());
        assert_eq!(ok.sk(), "instance#i-0123456789abcdef0#step#003#terminate");
        let bad = [
            StepKey {
                finding_id: String::new(),
                ..ok.clone()
            },
            StepKey {
                finding_id: "x".repeat(513),
                ..ok.clone()
            },
            StepKey {
                instance_id: "i-1#step#000".to_owned(),
                ..ok.clone()
            },
            StepKey {
                step: "a\u{1b}[31m".to_owned(),
                ..ok.clone()
            },
            StepKey {
                step: String::new(),
                ..ok.clone()
            },
            StepKey {
                index: 1000,
                ..ok.clone()
            },
        ];
        for key in bad {
            assert!(
                matches!(key.validate(), Err(LedgerError::Invalid { .. })),
                "{key:?} accepted"
            );
        }
        assert!(validate_id("finding_id", &"x".repeat(512)).is_ok());
    }

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
