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
//!
//! # Layout
//!
//! `keys` (what the items are about, and the checks on every id that goes into a
//! key), `item` (the DynamoDB item codec: attribute values, times, the reader that
//! names the item and field of every error), `table` (creating and checking the
//! table), `claims` (step claims, leases, finish, first-writer-wins records, the
//! history), `budget` (the blast-radius budget) and `blocks` (the network ACL deny
//! entries of `block-remote-ip`). Each adds its own `impl Ledger` block.

mod blocks;
mod budget;
mod claims;
mod item;
mod keys;
mod table;

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::call;

pub use blocks::{BLOCK_RETENTION, BLOCKS_ACTIVE, BlockRecord, BlockStatus};
pub use budget::{Budget, MAX_SCOPES, budget_hour};
pub use claims::{Claim, Finish, RecordStatus, StepRecord};
pub use item::{parse_rfc3339, rfc3339_ms};
pub use keys::{MAX_ID_BYTES, MAX_INDEX, MAX_STEP_BYTES, ResponseKey, ResponseMeta, StepKey};
pub use table::Created;

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

/// One DynamoDB item.
type Item = HashMap<String, AttributeValue>;

/// The responder's ledger: a DynamoDB client and the table it writes.
#[derive(Debug, Clone)]
pub struct Ledger {
    client: aws_sdk_dynamodb::Client,
    table: String,
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

    /// One item by key (a strongly consistent read); `None` when absent.
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
}
