//! Creating the ledger table (idempotent), checking an existing one is a ledger,
//! and switching on its TTL and point-in-time recovery.

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, IndexStatus, KeySchemaElement, KeyType,
    PointInTimeRecoverySpecification, PointInTimeRecoveryStatus, Projection, ProjectionType,
    ScalarAttributeType, SseSpecification, SseType, TableStatus, TimeToLiveSpecification,
    TimeToLiveStatus,
};

use super::{
    INDEX_BY_INSTANCE, INSTANCE_ATTRIBUTE, Ledger, LedgerError, PARTITION_KEY,
    RECORDED_AT_ATTRIBUTE, SORT_KEY, TTL_ATTRIBUTE, build_err, call_err,
};

/// How often `create_table` polls for ACTIVE, and for how long at most.
const POLL_INTERVAL: Duration = Duration::from_millis(500);
const POLL_ATTEMPTS: u32 = 240;

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

impl Ledger {
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
}
