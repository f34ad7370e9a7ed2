//! One invocation: event in, report out. A failed remediation is an error, so that
//! Lambda retries the event and then sends it to the on-failure destination.

use std::time::SystemTime;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{Error, LambdaEvent};
use responder_aws::expire::{Acting, ExpiryOutcome, expire_due};
use responder_aws::responder::{Answer, Responder};
use responder_aws::{Outcome, Report, Status};
use responder_core::decode_event;
use serde_json::{Value, json};

/// What every invocation shares: built once at init.
pub struct App {
    /// Playbooks, SDK clients, verifier and ledger.
    pub responder: Responder,
}

impl App {
    /// Handles one event.
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<Value, Error> {
        let request_id = event.context.request_id.clone();
        // Lambda's deadline for this invocation (epoch ms): the lease of its claims.
        let deadline = i64::try_from(event.context.deadline)
            .ok()
            .filter(|ms| *ms > 0)
            .and_then(responder_core::timestamp::system_time);
        let payload = event.payload;
        // The envelope as aws_lambda_events types it, for the log line.
        let envelope: Option<EventBridgeEvent<Value>> =
            serde_json::from_value(payload.clone()).ok();
        let (event_id, source, detail_type) = envelope
            .as_ref()
            .map(|e| (e.id.clone(), e.source.clone(), e.detail_type.clone()))
            .unwrap_or_default();
        if is_schedule(&payload) {
            return self.expire(&request_id).await;
        }
        let finding = match decode_event(payload) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(%request_id, event_id = ?event_id, source = ?source, detail_type = ?detail_type,
                    reason = %safe(&e), "event rejected: no action taken");
                return Ok(json!({"status": "rejected", "reason": e.to_string()}));
            }
        };
        let span = tracing::info_span!("finding", finding_id = %safe(&finding.id), finding_type = %safe(&finding.finding_type.name), %request_id);
        let _enter = span.enter();
        // The claim owner: this invocation (a redelivery is another invocation).
        let owner = if request_id.is_empty() {
            "lambda".to_owned()
        } else {
            request_id.clone()
        };
        drop(_enter);
        let answer = self
            .responder
            .answer_until(&finding, &owner, deadline)
            .await.map_err(|e| {
            tracing::error!(finding_id = %safe(&finding.id), error = %safe(&e), "no answer: the event will be retried");
            Error::from(format!("finding {}: {e}", finding.id))
        })?;
        let report = match answer {
            Answer::NoAction { decision, .. } => {
                tracing::info!(finding_id = %safe(&finding.id), decision = %safe(&decision), "no playbook answers this finding: no action");
                return Ok(
                    json!({"status": "no-action", "finding_id": finding.id, "reason": decision}),
                );
            }
            Answer::Responded(report) => report,
        };
        let playbook = report.playbook.clone().unwrap_or_default();
        emit_metrics(&playbook, &report);
        let body = serde_json::to_value(&*report)?;
        if report.is_failure() {
            tracing::error!(finding_id = %safe(&finding.id), %playbook, report = %safe(&body), "remediation failed: the event will be retried");
            return Err(Error::from(format!(
                "remediation of finding {} by {playbook} failed: {}",
                finding.id,
                failures(&report)
            )));
        }
        tracing::info!(finding_id = %safe(&finding.id), %playbook, status = ?report.status, reason = ?report.reason, duration_ms = report.duration_ms, "response finished");
        Ok(body)
    }
}

impl App {
    /// The scheduled run: removes `block-remote-ip`'s deny entries that are due, in
    /// the account and Region each was made in (the member role for other accounts).
    /// An error, for Lambda to report, only when the ledger cannot be read or an
    /// entry could not be handled; such records stay active and the next run tries
    /// again.
    async fn expire(&self, request_id: &str) -> Result<Value, Error> {
        let executor = self.responder.executor();
        let Some(ledger) = executor.ledger() else {
            tracing::info!(%request_id, "scheduled event: no ledger, no deny entry to expire");
            return Ok(json!({"status": "expired", "removed": 0, "superseded": 0, "failed": 0}));
        };
        let acting = match self.responder.accounts() {
            Some(pool) => Acting::Pool(pool),
            None => Acting::Clients(executor.clients()),
        };
        let results = expire_due(ledger, acting, SystemTime::now())
            .await
            .map_err(|e| {
                tracing::error!(%request_id, error = %e, "expiry: the ledger could not be read");
                Error::from(format!("expiry: {e}"))
            })?;
        let count = |o: ExpiryOutcome| results.iter().filter(|r| r.outcome == o).count();
        for r in &results {
            tracing::info!(%request_id, outcome = %r.outcome, detail = %safe(&r.detail), finding_id = %safe(&r.block.finding_id), "deny entry expiry");
        }
        let body = json!({
            "status": "expired",
            "removed": count(ExpiryOutcome::Removed),
            "superseded": count(ExpiryOutcome::Superseded),
            "failed": count(ExpiryOutcome::Failed),
            "entries": results,
        });
        if count(ExpiryOutcome::Failed) > 0 {
            return Err(Error::from(format!(
                "expiry: {} deny entr(ies) could not be handled; they stay recorded and are retried",
                count(ExpiryOutcome::Failed)
            )));
        }
        Ok(body)
    }
}

/// True for EventBridge's scheduled events (`aws.events`, `Scheduled Event`): the
/// expiry of deny entries, never a finding.
fn is_schedule(payload: &Value) -> bool {
    payload.get("source").and_then(Value::as_str) == Some("aws.events")
        && payload.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event")
}

/// Finding-derived text for a log field. The JSON log format escapes control
/// characters itself, the text format (`AWS_LAMBDA_LOG_FORMAT=Text`) does not: without
/// this, a finding's `\r` or terminal escapes would forge or hide lines for whoever
/// reads the logs in a terminal.
fn safe(value: &impl std::fmt::Display) -> String {
    responder_core::text::escape(&value.to_string()).into_owned()
}

fn failures(report: &Report) -> String {
    report
        .all_steps()
        .filter_map(|(instance, s)| match &s.outcome {
            Outcome::Failed { code, message } | Outcome::Denied { code, message } => {
                Some(match instance {
                    Some(i) => format!("{i}: {} {code}: {message}", s.action),
                    None => format!("{} {code}: {message}", s.action),
                })
            }
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// CloudWatch embedded-metric-format line: remediations, step failures, time to isolation.
fn emit_metrics(playbook: &str, report: &Report) {
    let now = responder_core::timestamp::now_millis();
    let step_failures = report
        .all_steps()
        .filter(|(_, s)| s.outcome.is_failure())
        .count();
    let mut metrics = vec![
        json!({"Name": "Remediations", "Unit": "Count"}),
        json!({"Name": "RemediationFailures", "Unit": "Count"}),
        json!({"Name": "StepFailures", "Unit": "Count"}),
        json!({"Name": "Unverified", "Unit": "Count"}),
        json!({"Name": "Withheld", "Unit": "Count"}),
    ];
    let mut line = json!({
        "_aws": {"Timestamp": now, "CloudWatchMetrics": [{"Namespace": "GuardDutyResponder", "Dimensions": [["Playbook"]], "Metrics": []}]},
        "Playbook": playbook,
        "Remediations": 1,
        "RemediationFailures": u8::from(report.is_failure()),
        "StepFailures": step_failures,
        // Events GuardDuty does not confirm: forged or stale; worth an alarm.
        "Unverified": u8::from(report.status == Status::Unverified),
        // Responses past the blast-radius budget, or about sample findings.
        "Withheld": u8::from(report.status == Status::Withheld),
    });
    if let Some(ms) = report.ms_to_isolation {
        metrics.push(json!({"Name": "TimeToIsolation", "Unit": "Milliseconds"}));
        line["TimeToIsolation"] = json!(ms);
    }
    line["_aws"]["CloudWatchMetrics"][0]["Metrics"] = Value::Array(metrics);
    println!("{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_scheduled_events_from_aws_events_expire() {
        let schedule = json!({"version": "0", "id": "x", "detail-type": "Scheduled Event", "source": "aws.events", "account": "111122223333", "time": "2026-11-29T12:00:00Z", "region": "us-east-1", "resources": ["arn:aws:events:us-east-1:111122223333:rule/r"], "detail": {}});
        assert!(is_schedule(&schedule));
        let mut finding = schedule.clone();
        finding["source"] = json!("aws.guardduty");
        assert!(!is_schedule(&finding));
        let mut other = schedule;
        other["detail-type"] = json!("GuardDuty Finding");
        assert!(!is_schedule(&other));
        assert!(!is_schedule(&json!([1, 2])));
    }
}
