//! The network ACL deny entries of `block-remote-ip`: recorded before they are
//! created, found when due by one Query, ended when expired.

use std::time::{Duration, SystemTime};

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;

use super::item::{Expr, Reader, epoch_ms, expires, n, rfc3339_ms, s, ser_time};
use super::keys::{key_item, validate_id, validate_text};
use super::{Item, Ledger, LedgerError, STEP_RETENTION, TTL_ATTRIBUTE, call_err};

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

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

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
}
