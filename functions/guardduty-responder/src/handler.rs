//! One invocation: event in, report out. A failed remediation is an error, so that
//! Lambda retries the event and then sends it to the on-failure destination.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{Error, LambdaEvent};
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
        let payload = event.payload;
        // The envelope as aws_lambda_events types it, for the log line.
        let envelope: Option<EventBridgeEvent<Value>> =
            serde_json::from_value(payload.clone()).ok();
        let (event_id, source, detail_type) = envelope
            .as_ref()
            .map(|e| (e.id.clone(), e.source.clone(), e.detail_type.clone()))
            .unwrap_or_default();
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
        let answer = self.responder.answer(&finding, &owner).await.map_err(|e| {
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
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
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
