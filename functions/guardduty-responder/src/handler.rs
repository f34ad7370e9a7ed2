//! One invocation: event in, report out. A failed remediation is an error, so that
//! Lambda retries the event and then sends it to the on-failure destination.

use std::time::SystemTime;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{Error, LambdaEvent};
use responder_aws::expire::{Acting, ExpiryOutcome, expire_due};
use responder_aws::responder::{Answer, Responder};
use responder_aws::{Outcome, Report, Status};
use responder_core::{Finding, decode_event};
use serde_json::{Value, json};
use tracing::Instrument;

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
            let span = tracing::info_span!("expiry", %request_id);
            return self.expire(&request_id).instrument(span).await;
        }
        let finding = match decode_event(payload) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(%request_id, event_id = ?event_id, source = ?source, detail_type = ?detail_type,
                    reason = %safe(&e), "event rejected: no action taken");
                return Ok(json!({"status": "rejected", "reason": e.to_string()}));
            }
        };
        // Every log line of the response, the SDK's and the steps' included, carries
        // the finding and the request: the span instruments the whole future, not
        // only the synchronous part before its first await.
        let span = tracing::info_span!("finding", finding_id = %safe(&finding.id), finding_type = %safe(&finding.finding_type.name), %request_id);
        self.respond(finding, request_id, deadline)
            .instrument(span)
            .await
    }

    /// Answers one decoded finding: the report, or an error for Lambda to retry.
    async fn respond(
        &self,
        finding: Finding,
        request_id: String,
        deadline: Option<SystemTime>,
    ) -> Result<Value, Error> {
        // The claim owner: this invocation (a redelivery is another invocation).
        let owner = if request_id.is_empty() {
            "lambda".to_owned()
        } else {
            request_id
        };
        let answer = self
            .responder
            .answer_until(&finding, &owner, deadline)
            .await
            .map_err(|e| {
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
        emit_metrics(&finding.id, &playbook, &report);
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

/// The metrics namespace; infra/template.yaml's alarms read it.
const NAMESPACE: &str = "GuardDutyResponder";

/// Prints the response's metrics as an embedded-metric-format line (CloudWatch Logs
/// extracts them from the function's log). The finding id is a property (logged, not a
/// dimension), so that this line too names the finding it counts.
fn emit_metrics(finding_id: &str, playbook: &str, report: &Report) {
    let now = responder_core::timestamp::now_millis();
    let mut line = metrics_line(playbook, report, now);
    if let Value::Object(m) = &mut line {
        m.insert("finding_id".to_owned(), json!(finding_id));
    }
    println!("{line}");
}

/// The embedded-metric-format line of one response: remediations, failures, step
/// failures, unverified and withheld responses, time to isolation. Each metric is
/// published twice: per playbook (dimension `Playbook`) and for the whole function (the
/// empty dimension set), which the stack's alarms read: an alarm on a metric names
/// all its dimensions, and no alarm can name every playbook.
fn metrics_line(playbook: &str, report: &Report, timestamp_ms: i64) -> Value {
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
    // CloudWatch refuses an empty dimension value (and with it the whole line).
    let playbook = if playbook.is_empty() {
        "none"
    } else {
        playbook
    };
    let mut line = json!({
        "_aws": {"Timestamp": timestamp_ms, "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": [["Playbook"], []], "Metrics": []}]},
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
    line
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

    fn report(status: Status, playbook: Option<&str>) -> Report {
        Report {
            finding_id: "f1".to_owned(),
            finding_type: "CryptoCurrency:EC2/BitcoinTool.B!DNS".to_owned(),
            playbook: playbook.map(str::to_owned),
            dry_run: false,
            status,
            reason: None,
            account: None,
            region: None,
            steps: Vec::new(),
            round_trips_to_isolation: None,
            ms_to_isolation: Some(42),
            duration_ms: 0,
            sections: Vec::new(),
            not_answered: Vec::new(),
            shared: Vec::new(),
        }
    }

    /// The metric names a line declares.
    fn declared(line: &Value) -> Vec<String> {
        line["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .map(|m| {
                m.iter()
                    .filter_map(|d| d["Name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn metrics_line_counts_the_status_per_playbook_and_for_the_whole_function() {
        let cases = [
            (Status::Failed, "RemediationFailures"),
            (Status::Unverified, "Unverified"),
            (Status::Withheld, "Withheld"),
        ];
        for (status, counted) in cases {
            let line = metrics_line("crypto-mining-ec2", &report(status, Some("p")), 7);
            let directive = &line["_aws"]["CloudWatchMetrics"][0];
            assert_eq!(directive["Namespace"], NAMESPACE);
            assert_eq!(directive["Dimensions"], json!([["Playbook"], []]));
            assert_eq!(line["_aws"]["Timestamp"], 7);
            assert_eq!(line["Playbook"], "crypto-mining-ec2");
            assert_eq!(line["TimeToIsolation"], 42);
            for name in ["RemediationFailures", "Unverified", "Withheld"] {
                let want = u8::from(name == counted);
                assert_eq!(line[name], want, "{name} for {status:?}");
            }
            for name in declared(&line) {
                assert!(line[&name].is_number(), "{name} declared but not a number");
            }
        }
        let succeeded = metrics_line("p", &report(Status::Succeeded, Some("p")), 7);
        assert_eq!(succeeded["RemediationFailures"], 0);
        assert_eq!(succeeded["Remediations"], 1);
        // An empty dimension value would make CloudWatch drop the line.
        assert_eq!(
            metrics_line("", &report(Status::Unverified, None), 7)["Playbook"],
            "none"
        );
    }

    /// The stack's alarms on the function's own metrics (infra/template.yaml) read
    /// metrics this line publishes, without dimensions: the copy for the whole function.
    /// An alarm on a name the function never emits, or on the per-playbook copy, would
    /// never fire.
    #[test]
    fn every_alarm_on_the_function_metrics_reads_a_metric_the_line_publishes() {
        let template: Value = serde_saphyr::from_str(include_str!("../../../infra/template.yaml"))
            .expect("infra/template.yaml parses");
        let line = metrics_line("p", &report(Status::Succeeded, Some("p")), 7);
        let published = declared(&line);
        let mut alarmed = Vec::new();
        let resources = template["Resources"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for (name, resource) in &resources {
            let props = &resource["Properties"];
            if resource["Type"] != "AWS::CloudWatch::Alarm" || props["Namespace"] != NAMESPACE {
                continue;
            }
            let metric = props["MetricName"].as_str().unwrap_or_default();
            assert!(
                published.iter().any(|p| p == metric),
                "{name}: {metric} is not published (published: {published:?})"
            );
            assert!(
                props.get("Dimensions").is_none(),
                "{name}: the alarm must read the metric without dimensions"
            );
            alarmed.push(metric.to_owned());
        }
        alarmed.sort();
        assert_eq!(alarmed, ["RemediationFailures", "Unverified", "Withheld"]);
    }
}
