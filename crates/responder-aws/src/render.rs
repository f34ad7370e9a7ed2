//! Reports for people: the text form of a [`Report`]. The CLI and the demo print a
//! report the same way whether it was made in their own process or came back from the
//! function (its JSON form read back as a [`Report`]).

use responder_core::text::escape;
use serde::Serialize;

use crate::report::{Outcome, Report, SectionReport, StepReport};

/// One line for the finding (id, source, type, playbook, status), then one line per
/// step (action, outcome, duration, detail, resources, notes), then the isolation
/// figures and the total duration.
///
/// Every string taken from the report is escaped (`responder_core::text::escape`):
/// finding fields, and the AWS messages that quote them, reach a terminal, and a
/// newline, carriage return, terminal escape or bidi override in one must neither act
/// on the terminal nor forge a line of the report.
pub fn report_text(source: &str, r: &Report) -> String {
    let source = escape(source);
    let place = match (&r.account, &r.region) {
        (Some(a), Some(g)) => format!(", account {} in {}", escape(a), escape(g)),
        (Some(a), None) => format!(", account {}", escape(a)),
        _ => String::new(),
    };
    let mut s = format!(
        "{} ({source}) {}: playbook {}, {}{}{place}\n",
        escape(&r.finding_id),
        escape(&r.finding_type),
        escape(r.playbook.as_deref().unwrap_or("none")),
        wire_name(&r.status),
        if r.dry_run { " (dry run)" } else { "" }
    );
    if !r.sections.is_empty() {
        sequence_text(r, &mut s);
        if !r.steps.is_empty() {
            s.push_str("  once for the sequence:\n");
        }
    }
    steps_text(&r.steps, "  ", &mut s);
    if let (Some(trips), Some(ms)) = (r.round_trips_to_isolation, r.ms_to_isolation) {
        s.push_str(&format!(
            "  isolated after {trips} sequential API round trip(s), {ms} ms\n"
        ));
    }
    s.push_str(&format!("  total {} ms\n", r.duration_ms));
    s
}

/// A unit variant's name as the JSON report writes it (`instance-gone`).
fn wire_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => "?".to_owned(),
    }
}

/// One line per step (action, outcome, duration, detail, resources), its notes
/// below it; every line starts with `indent`.
fn steps_text(steps: &[StepReport], indent: &str, s: &mut String) {
    for (i, step) in steps.iter().enumerate() {
        let (detail, message) = match &step.outcome {
            Outcome::AlreadyDone { detail } => (Some(detail), None),
            Outcome::Skipped { reason } => (Some(reason), None),
            Outcome::Denied { code, message } | Outcome::Failed { code, message } => {
                (Some(code), Some(message))
            }
            Outcome::Done | Outcome::WouldSucceed => (None, None),
        };
        s.push_str(&format!(
            "{indent}{}. {:<30} {:<14} {:>6} ms",
            i + 1,
            escape(step.action),
            step.outcome.kind(),
            step.duration_ms
        ));
        if let Some(detail) = detail.filter(|d| !d.is_empty()) {
            s.push_str(&format!("  {}", escape(detail)));
        }
        if let Some(message) = message.filter(|m| !m.is_empty()) {
            s.push_str(&format!(" {}", escape(message)));
        }
        if !step.resources.is_empty() {
            let resources: Vec<_> = step.resources.iter().map(|r| escape(r)).collect();
            s.push_str(&format!("  [{}]", resources.join(", ")));
        }
        s.push('\n');
        for n in &step.notes {
            s.push_str(&format!("{indent}     - {}\n", escape(n)));
        }
    }
}

/// An attack sequence's sections (one per instance: its status, why, its steps),
/// the instances not answered and the shared cause.
fn sequence_text(r: &Report, s: &mut String) {
    for SectionReport {
        instance_id,
        status,
        reason,
        steps,
        ..
    } in &r.sections
    {
        let reason = reason.as_deref().unwrap_or_default();
        s.push_str(&format!(
            "  instance {}: {}{}\n",
            escape(instance_id),
            wire_name(status),
            if reason.is_empty() {
                String::new()
            } else {
                format!(" ({})", escape(reason))
            }
        ));
        steps_text(steps, "    ", s);
    }
    for n in &r.not_answered {
        s.push_str(&format!(
            "  instance {}: not answered ({})\n",
            escape(&n.instance_id),
            escape(&n.reason)
        ));
    }
    for shared in &r.shared {
        s.push_str(&format!(
            "  shared cause: {} {}\n",
            wire_name(&shared.kind),
            escape(&shared.uid)
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::report_text;
    use crate::Report;
    use serde_json::{Value, json};

    /// The report as the function returns it, read back.
    fn read(v: Value) -> Report {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn one_line_per_step_then_isolation_and_total() {
        let report = json!({
            "finding_id": "f1", "finding_type": "CryptoCurrency:EC2/BitcoinTool.B!DNS",
            "playbook": "crypto-mining-ec2", "status": "succeeded", "dry_run": true,
            "steps": [
                {"action": "isolate", "outcome": "would-succeed", "duration_ms": 12,
                 "resources": ["sg-1"], "notes": ["eni-1 moved"]},
                {"action": "terminate", "outcome": "skipped", "duration_ms": 0,
                 "reason": "an earlier step failed"}
            ],
            "round_trips_to_isolation": 1, "ms_to_isolation": 12, "duration_ms": 40
        });
        let expected = format!(
            "f1 (demo) CryptoCurrency:EC2/BitcoinTool.B!DNS: playbook crypto-mining-ec2, succeeded (dry run)\n  1. {:<30} {:<14} {:>6} ms  [sg-1]\n       - eni-1 moved\n  2. {:<30} {:<14} {:>6} ms  an earlier step failed\n  isolated after 1 sequential API round trip(s), 12 ms\n  total 40 ms\n",
            "isolate", "would-succeed", 12, "terminate", "skipped", 0
        );
        assert_eq!(report_text("demo", &read(report)), expected);
    }

    #[test]
    fn finding_text_cannot_act_on_the_terminal_or_forge_lines() {
        // Every string of a report that is not a name the responder chose (status,
        // step, outcome: typed) can carry finding text.
        let evil = "x\u{1b}[2J\r\u{7}\u{9b}\u{202e}\ny";
        let report = json!({
            "finding_id": evil, "finding_type": evil, "playbook": evil, "status": "failed",
            "dry_run": false, "account": evil, "region": evil,
            "steps": [{"action": "tag", "outcome": "failed", "duration_ms": 1, "code": evil,
                       "message": evil, "resources": [evil], "notes": [evil]}],
            "round_trips_to_isolation": null, "ms_to_isolation": null,
            "duration_ms": 2
        });
        let text = report_text(evil, &read(report));
        let safe = "x\\u{1b}[2J\\r\\u{7}\\u{9b}\\u{202e}\\ny";
        assert!(text.contains(safe), "{text}");
        assert!(
            !text
                .chars()
                .any(|c| c != '\n' && responder_core::text::needs_escape(c)),
            "{text:?}"
        );
        // Finding line, one step line, one note, total: no forged line.
        assert_eq!(text.lines().count(), 4, "{text}");
    }

    #[test]
    fn a_sequence_shows_every_instance_and_the_shared_cause() {
        let report = json!({
            "finding_id": "f3", "finding_type": "AttackSequence:EC2/CompromisedInstanceGroup",
            "playbook": "attack-sequence-ec2", "status": "failed", "dry_run": false,
            "round_trips_to_isolation": null, "ms_to_isolation": null,
            "steps": [{"action": "notify", "outcome": "done", "duration_ms": 3}],
            "sections": [
                {"instance_id": "i-0000000000000000a", "status": "succeeded",
                 "round_trips_to_isolation": 2, "ms_to_isolation": 5, "duration_ms": 5,
                 "steps": [{"action": "isolate", "outcome": "done", "duration_ms": 5}]},
                {"instance_id": "i-0000000000000000b", "status": "instance-gone", "reason": "gone\nforged",
                 "round_trips_to_isolation": null, "ms_to_isolation": null, "duration_ms": 0,
                 "steps": [{"action": "isolate", "outcome": "skipped", "duration_ms": 0, "reason": "not found"}]}
            ],
            "not_answered": [{"instance_id": "i-0000000000000000c", "reason": "past max_instances (2)"}],
            "shared": [{"kind": "instance-profile", "uid": "arn:aws:iam::1:instance-profile/web"}],
            "duration_ms": 9
        });
        let text = report_text("seq", &read(report));
        for want in [
            "  instance i-0000000000000000a: succeeded\n    1. isolate",
            "  instance i-0000000000000000b: instance-gone (gone\\nforged)\n    1. isolate",
            "  instance i-0000000000000000c: not answered (past max_instances (2))\n",
            "  shared cause: instance-profile arn:aws:iam::1:instance-profile/web\n",
            "  once for the sequence:\n  1. notify",
        ] {
            assert!(text.contains(want), "{want:?} in\n{text}");
        }
    }

    #[test]
    fn a_report_without_playbook_or_steps_still_reads() {
        let report = json!({"finding_id": "f2", "finding_type": "", "status": "no-action",
            "dry_run": false, "steps": [], "round_trips_to_isolation": null,
            "ms_to_isolation": null, "duration_ms": 0});
        assert_eq!(
            report_text("x", &read(report)),
            "f2 (x) : playbook none, no-action\n  total 0 ms\n"
        );
    }

    #[test]
    fn a_report_reads_back_as_it_was_written() {
        let report = read(json!({
            "finding_id": "f4", "finding_type": "t", "playbook": "p", "status": "withheld",
            "dry_run": true, "reason": "r", "account": "1", "region": "us-east-1",
            "steps": [{"action": "isolate", "outcome": "failed", "code": "C", "message": "m",
                       "duration_ms": 1, "resources": ["sg-1"]}],
            "round_trips_to_isolation": 1, "ms_to_isolation": 3, "duration_ms": 9,
            "not_answered": [{"instance_id": "i-1", "reason": "cap"}],
            "shared": [{"kind": "vpc", "uid": "vpc-1", "instances": ["i-1"]}]
        }));
        let back: Report = read(serde_json::to_value(&report).unwrap());
        assert_eq!(back, report);
        let unknown = json!({"finding_id": "f", "finding_type": "t", "status": "failed",
            "dry_run": false, "steps": [{"action": "format-disk", "outcome": "done", "duration_ms": 0}],
            "round_trips_to_isolation": null, "ms_to_isolation": null, "duration_ms": 0});
        assert!(serde_json::from_value::<Report>(unknown).is_err());
    }
}
