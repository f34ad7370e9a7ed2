//! Reports for people: the text form of a [`crate::Report`], read from its JSON form
//! (what `responder run --format json` prints and what the Lambda returns), so that the
//! CLI and the demo print a report the same way whether it was made in their own
//! process or came back from the function.

use responder_core::text::escape;
use serde_json::Value;

/// One line for the finding (id, source, type, playbook, status), then one line per
/// step (action, outcome, duration, detail, resources, notes), then the isolation
/// figures and the total duration.
///
/// Every string taken from the report is escaped (`responder_core::text::escape`):
/// finding fields, and the AWS messages that quote them, reach a terminal, and a
/// newline, carriage return, terminal escape or bidi override in one must neither act
/// on the terminal nor forge a line of the report.
pub fn report_text(source: &str, report: &Value) -> String {
    let r = report;
    let text = |v: &Value, k: &str| {
        escape(v.get(k).and_then(Value::as_str).unwrap_or_default()).into_owned()
    };
    let source = escape(source);
    let number = |v: &Value, k: &str| v.get(k).and_then(Value::as_u64);
    let place = match (r.get("account"), r.get("region")) {
        (Some(Value::String(a)), Some(Value::String(g))) => {
            format!(", account {} in {}", escape(a), escape(g))
        }
        (Some(Value::String(a)), _) => format!(", account {}", escape(a)),
        _ => String::new(),
    };
    let mut s = format!(
        "{} ({source}) {}: playbook {}, {}{}{place}\n",
        text(r, "finding_id"),
        text(r, "finding_type"),
        escape(r.get("playbook").and_then(Value::as_str).unwrap_or("none")),
        text(r, "status"),
        if r.get("dry_run").and_then(Value::as_bool) == Some(true) {
            " (dry run)"
        } else {
            ""
        }
    );
    if let Some(sections) = r.get("sections").and_then(Value::as_array) {
        sequence_text(r, sections, &mut s);
        if r.get("steps")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
        {
            s.push_str("  once for the sequence:\n");
        }
    }
    steps_text(r.get("steps"), "  ", &mut s);
    if let (Some(trips), Some(ms)) = (
        number(r, "round_trips_to_isolation"),
        number(r, "ms_to_isolation"),
    ) {
        s.push_str(&format!(
            "  isolated after {trips} sequential API round trip(s), {ms} ms\n"
        ));
    }
    s.push_str(&format!(
        "  total {} ms\n",
        number(r, "duration_ms").unwrap_or(0)
    ));
    s
}

/// One line per step (action, outcome, duration, detail, resources), its notes
/// below it; every line starts with `indent`.
fn steps_text(steps: Option<&Value>, indent: &str, s: &mut String) {
    let text = |v: &Value, k: &str| {
        escape(v.get(k).and_then(Value::as_str).unwrap_or_default()).into_owned()
    };
    let number = |v: &Value, k: &str| v.get(k).and_then(Value::as_u64);
    let steps = steps.and_then(Value::as_array).map(Vec::as_slice);
    for (i, step) in steps.unwrap_or_default().iter().enumerate() {
        let detail = ["detail", "reason", "code"]
            .iter()
            .filter_map(|k| step.get(*k).and_then(Value::as_str))
            .map(escape)
            .collect::<Vec<_>>()
            .join(": ");
        let message = text(step, "message");
        s.push_str(&format!(
            "{indent}{}. {:<30} {:<14} {:>6} ms",
            i + 1,
            text(step, "action"),
            escape(step.get("outcome").and_then(Value::as_str).unwrap_or("?")),
            number(step, "duration_ms").unwrap_or(0)
        ));
        if !detail.is_empty() {
            s.push_str(&format!("  {detail}"));
        }
        if !message.is_empty() {
            s.push_str(&format!(" {message}"));
        }
        let list = |k: &str| -> Vec<String> {
            step.get(k)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(|s| escape(s).into_owned())
                        .collect()
                })
                .unwrap_or_default()
        };
        let resources = list("resources");
        if !resources.is_empty() {
            s.push_str(&format!("  [{}]", resources.join(", ")));
        }
        s.push('\n');
        for n in list("notes") {
            s.push_str(&format!("{indent}     - {n}\n"));
        }
    }
}

/// An attack sequence's sections (one per instance: its status, why, its steps),
/// the instances not answered and the shared cause.
fn sequence_text(r: &Value, sections: &[Value], s: &mut String) {
    let text = |v: &Value, k: &str| {
        escape(v.get(k).and_then(Value::as_str).unwrap_or_default()).into_owned()
    };
    for section in sections {
        let reason = text(section, "reason");
        s.push_str(&format!(
            "  instance {}: {}{}\n",
            text(section, "instance_id"),
            text(section, "status"),
            if reason.is_empty() {
                String::new()
            } else {
                format!(" ({reason})")
            }
        ));
        steps_text(section.get("steps"), "    ", s);
    }
    for n in r
        .get("not_answered")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        s.push_str(&format!(
            "  instance {}: not answered ({})\n",
            text(n, "instance_id"),
            text(n, "reason")
        ));
    }
    for shared in r
        .get("shared")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        s.push_str(&format!(
            "  shared cause: {} {}\n",
            text(shared, "kind"),
            text(shared, "uid")
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::report_text;
    use serde_json::json;

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
        assert_eq!(report_text("demo", &report), expected);
    }

    #[test]
    fn finding_text_cannot_act_on_the_terminal_or_forge_lines() {
        let evil = "x\u{1b}[2J\r\u{7}\u{9b}\u{202e}\ny";
        let report = json!({
            "finding_id": evil, "finding_type": evil, "playbook": evil, "status": evil,
            "steps": [{"action": evil, "outcome": evil, "duration_ms": 1, "detail": evil,
                       "message": evil, "resources": [evil], "notes": [evil]}],
            "duration_ms": 2
        });
        let text = report_text(evil, &report);
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
            "playbook": "attack-sequence-ec2", "status": "failed",
            "steps": [{"action": "notify", "outcome": "done", "duration_ms": 3}],
            "sections": [
                {"instance_id": "i-0000000000000000a", "status": "succeeded",
                 "steps": [{"action": "isolate", "outcome": "done", "duration_ms": 5}]},
                {"instance_id": "i-0000000000000000b", "status": "instance-gone", "reason": "gone\nforged",
                 "steps": [{"action": "isolate", "outcome": "skipped", "duration_ms": 0, "reason": "not found"}]}
            ],
            "not_answered": [{"instance_id": "i-0000000000000000c", "reason": "past max_instances (2)"}],
            "shared": [{"kind": "instance-profile", "uid": "arn:aws:iam::1:instance-profile/web"}],
            "duration_ms": 9
        });
        let text = report_text("seq", &report);
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
        assert_eq!(
            report_text("x", &json!({"finding_id": "f2", "status": "no-playbook"})),
            "f2 (x) : playbook none, no-playbook\n  total 0 ms\n"
        );
    }
}
