//! Plans: isolation first, parameters resolved from the finding, and the same input
//! always gives the same bytes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use responder_core::steps::Action;
use responder_core::steps::Settings;
use responder_core::steps::relaunch::{ReplacementSource, client_token};
use responder_core::{Engine, Finding, decode_bytes};

fn engine() -> Engine {
    Engine::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../playbooks")).unwrap()
}

fn finding(name: &str) -> Finding {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../playbooks/tests/findings")
        .join(name);
    decode_bytes(&std::fs::read(path).unwrap())
        .unwrap()
        .remove(0)
        .unwrap()
}

#[test]
fn bitcoin_dns_plan_is_fully_resolved() {
    let plan = engine().plan(&finding("bitcoin-dns.json"), false).unwrap();
    assert_eq!(plan.playbook.as_deref(), Some("crypto-mining-ec2"));
    let names: Vec<&str> = plan.steps.iter().map(|s| s.action.name()).collect();
    assert_eq!(
        names,
        ["isolate", "snapshot", "relaunch", "terminate", "notify"]
    );
    let Action::Isolate(isolate) = &plan.steps[0].action else {
        panic!("isolate is not first")
    };
    assert_eq!(isolate.instance_id, "i-0a1b2c3d4e5f60718");
    assert_eq!(isolate.quarantine_group, "guardduty-responder-quarantine");
    assert_eq!(
        isolate.untrack_group.as_deref(),
        Some("guardduty-responder-untrack")
    );
    // What the finding saw is kept apart from the instructions.
    let observed = plan.observed.as_ref().unwrap();
    let enis: Vec<(&str, &[String])> = observed
        .network_interfaces
        .iter()
        .map(|e| {
            (
                e.network_interface_id.as_str(),
                e.security_groups.as_slice(),
            )
        })
        .collect();
    assert_eq!(
        enis,
        [
            (
                "eni-0a1b2c3d4e5f60001",
                &["sg-0a1b2c3d4e5f60001".to_owned()][..]
            ),
            (
                "eni-0a1b2c3d4e5f60002",
                &["sg-0a1b2c3d4e5f60002".to_owned()][..]
            )
        ]
    );
    assert_eq!(
        observed.network_interfaces[0].vpc_id.as_deref(),
        Some("vpc-0a1b2c3d4e5f60001")
    );
    let Action::Snapshot(snapshot) = &plan.steps[1].action else {
        panic!()
    };
    assert!(snapshot.preserve_volumes);
    let tags = &snapshot.tags;
    assert_eq!(
        tags["guardduty-responder:finding-id"],
        "4ac7a0b1e2d34c5f8e9a0b1c2d3e4f50"
    );
    assert_eq!(
        tags["guardduty-responder:finding-type"],
        "CryptoCurrency:EC2/BitcoinTool.B!DNS"
    );
    assert_eq!(
        tags["guardduty-responder:instance-id"],
        "i-0a1b2c3d4e5f60718"
    );
    let Action::Relaunch(relaunch) = &plan.steps[2].action else {
        panic!()
    };
    assert_eq!(
        relaunch.client_token,
        client_token("4ac7a0b1e2d34c5f8e9a0b1c2d3e4f50", "i-0a1b2c3d4e5f60718")
    );
    // `auto` is resolved once, here: the finding's instance has no launch template
    // or Auto Scaling tag, so the replacement is a clone.
    assert_eq!(relaunch.source, ReplacementSource::Clone);
    assert_eq!(
        relaunch.tags["guardduty-responder:replaces"],
        "i-0a1b2c3d4e5f60718"
    );
}

#[test]
fn isolation_moves_first_and_plans_are_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("late-isolate.yaml"),
        "name: late\nmode: enforce\nacknowledge: [terminate-without-snapshot]\nmatch: {finding_types: 'CryptoCurrency:EC2/*', resource_types: Instance}\nsteps:\n  - tag: {}\n  - isolate: {}\n  - terminate: {}\n",
    )
    .unwrap();
    let engine = Engine::load(dir.path()).unwrap();
    assert_eq!(engine.warnings().len(), 1, "{:?}", engine.warnings());
    let f = finding("bitcoin-dns.json");
    let a = serde_json::to_vec(&engine.plan(&f, true).unwrap()).unwrap();
    let b = serde_json::to_vec(&engine.plan(&f, true).unwrap()).unwrap();
    assert_eq!(a, b);
    let plan = engine.plan(&f, false).unwrap();
    let names: Vec<&str> = plan.steps.iter().map(|s| s.action.name()).collect();
    assert_eq!(names, ["isolate", "tag", "terminate"]);
    // A reloaded engine plans the same bytes too.
    let again = Engine::load(dir.path()).unwrap();
    assert_eq!(
        a,
        serde_json::to_vec(&again.plan(&f, true).unwrap()).unwrap()
    );
}

#[test]
fn priority_decides_and_the_plan_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let pb = |name: &str, priority: i32| {
        format!(
            "name: {name}\npriority: {priority}\nmatch: {{finding_types: 'CryptoCurrency:*', resource_types: Instance}}\nsteps:\n  - tag: {{}}\n"
        )
    };
    std::fs::write(dir.path().join("a.yaml"), pb("low", 1)).unwrap();
    std::fs::write(dir.path().join("b.yaml"), pb("high", 5)).unwrap();
    let engine = Engine::load(dir.path()).unwrap();
    let plan = engine.plan(&finding("bitcoin-dns.json"), true).unwrap();
    assert_eq!(plan.playbook.as_deref(), Some("high"));
    assert!(
        plan.decision.contains("also matched: low"),
        "{}",
        plan.decision
    );
    let not = plan.not_chosen.unwrap();
    assert_eq!(not.len(), 1);
    assert!(not[0].reason.contains("high wins"), "{}", not[0].reason);
}

#[test]
fn excludes_and_non_ec2_findings() {
    let engine = engine();
    let mut raw = finding("bitcoin-dns.json").into_raw();
    raw["resource"]["instanceDetails"]["tags"] =
        serde_json::json!([{"key": "guardduty-responder:exempt", "value": "true"}]);
    let exempt = Finding::from_value(raw).unwrap();
    let plan = engine.plan(&exempt, true).unwrap();
    assert_eq!(plan.playbook, None);
    let not_chosen = plan.not_chosen.unwrap();
    let why = not_chosen
        .iter()
        .find(|n| n.playbook == "crypto-mining-ec2")
        .unwrap();
    assert!(
        why.reason.starts_with("excluded by exclude[0]"),
        "{}",
        why.reason
    );
}

#[test]
fn instance_steps_on_a_finding_without_instance_are_a_plan_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("any.yaml"),
        "name: any\nacknowledge: [any-resource-type]\nmatch: {severity: {gte: 1}}\nsteps:\n  - isolate: {}\n",
    )
    .unwrap();
    let engine = Engine::load(dir.path()).unwrap();
    let f = Finding::from_value(
        serde_json::json!({"id": "x", "type": "Policy:S3/BucketPublicAccessGranted", "severity": 5,
        "resource": {"resourceType": "S3Bucket"}}),
    )
    .unwrap();
    let err = engine.plan(&f, false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "step isolate needs an EC2 instance and the finding has none (resource type S3Bucket)"
    );
}

#[test]
fn settings_enter_the_plan_and_the_relaunch_source_is_resolved_once() {
    let f = finding("bitcoin-dns.json");
    let engine = engine().with_settings(Settings {
        quarantine_group: Some("corp-quarantine".to_owned()),
        ..Settings::default()
    });
    let plan = engine.plan(&f, false).unwrap();
    let Action::Isolate(isolate) = &plan.steps[0].action else {
        panic!()
    };
    assert_eq!(isolate.quarantine_group, "corp-quarantine");
    let json = serde_json::to_value(&plan).unwrap();
    assert_eq!(json["steps"][0]["action"], "isolate");
    assert_eq!(json["steps"][0]["quarantine_group"], "corp-quarantine");

    // The launch template the finding's instance carries decides the source.
    let mut raw = f.raw().clone();
    raw["resource"]["instanceDetails"]["tags"] = serde_json::json!([
        {"key": "aws:ec2launchtemplate:id", "value": "lt-0123456789abcdef0"},
        {"key": "aws:autoscaling:groupName", "value": "web"}
    ]);
    let with_template = Finding::from_value(raw).unwrap();
    let plan = engine.plan(&with_template, false).unwrap();
    let relaunch = plan
        .steps
        .iter()
        .find_map(|s| match &s.action {
            Action::Relaunch(r) => Some(r),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        relaunch.source,
        ReplacementSource::LaunchTemplate {
            launch_template_id: Some("lt-0123456789abcdef0".to_owned())
        }
    );
    assert_eq!(
        plan.observed.unwrap().auto_scaling_group.as_deref(),
        Some("web")
    );
}

/// Every tag value a plan writes fits AWS's 256-character limit, whatever the finding
/// puts into the placeholders.
#[test]
fn planned_tag_values_fit_aws_limits() {
    use responder_core::playbook::load_str;
    use responder_core::tags::MAX_VALUE_CHARS;
    let text = "name: long-tags\nmode: enforce\nmatch:\n  finding_types: 'CryptoCurrency:EC2/*'\n  resource_types: [Instance]\n\
                steps:\n  - tag:\n      tags:\n        note: '{finding.type} {finding.region} {finding.type}'\n\
                \x20 - snapshot:\n      tags:\n        what: '{finding.region}{finding.region}'\n\
                \x20 - stop: {}\n\
                \x20 - relaunch:\n      tags:\n        why: '{finding.type}{finding.type}'\n";
    let loaded = load_str(Path::new("long-tags.yaml"), text).unwrap();
    let engine = Engine::from_playbooks(vec![loaded]).unwrap();
    let mut raw = finding("bitcoin-dns.json").into_raw();
    raw["type"] = serde_json::json!(format!("CryptoCurrency:EC2/{}", "B".repeat(300)));
    raw["region"] = serde_json::json!("r".repeat(300));
    let f = Finding::from_value(raw).unwrap();
    let plan = engine.plan(&f, false).unwrap();
    let mut checked = 0;
    for step in &plan.steps {
        let tags = match &step.action {
            Action::Tag(t) => &t.tags,
            Action::Relaunch(r) => &r.tags,
            Action::Snapshot(s) => &s.tags,
            _ => continue,
        };
        for (k, v) in tags {
            assert!(
                v.chars().count() <= MAX_VALUE_CHARS,
                "{k}: {}",
                v.chars().count()
            );
            checked += 1;
        }
    }
    assert!(checked >= 12, "{checked}");
}

/// Planning is O(n log n) in the probe IPs, ports and network interfaces a finding
/// lists. Not timed (benches measure speed): the input is large enough that the old
/// quadratic dedup (a `Vec::contains` per probe) takes minutes here, so a regression
/// shows as a hung test; `plan_throughput`'s "wide finding" bench has the figures.
#[test]
fn a_wide_finding_decodes_and_plans_in_n_log_n() {
    const N: usize = 200_000;
    let mut raw = finding("bitcoin-dns.json").into_raw();
    let probes: Vec<serde_json::Value> = (0..2 * N)
        .map(|k| {
            let i = k % N; // every address twice: the second copy is dropped
            serde_json::json!({
                "localPortDetails": {"port": i % 65_536},
                "remoteIpDetails": {"ipAddressV4": format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255)}
            })
        })
        .collect();
    raw["service"]["action"] = serde_json::json!({
        "actionType": "PORT_PROBE", "portProbeAction": {"portProbeDetails": probes}
    });
    let enis: Vec<serde_json::Value> = (0..N)
        .map(|i| {
            serde_json::json!({"networkInterfaceId": format!("eni-{i:017x}"),
                "vpcId": format!("vpc-{i:017x}"), "subnetId": format!("subnet-{:017x}", i / 2)})
        })
        .collect();
    raw["resource"]["instanceDetails"]["networkInterfaces"] = serde_json::json!(enis);
    let bytes = serde_json::to_vec(&raw).unwrap();
    let f = decode_bytes(&bytes).unwrap().remove(0).unwrap();
    assert_eq!(f.remote_ips.len(), N);
    assert_eq!(f.remote_ips[0], "10.0.0.0");
    assert_eq!(f.remote_ips[N - 1], "10.3.13.63");
    assert_eq!(f.local_ports.len(), 65_536);
    assert_eq!(f.local_ports[..3], [0, 1, 2]);
    let plan = engine().plan(&f, true).unwrap();
    let observed = plan.observed.unwrap();
    assert_eq!(observed.network_interfaces.len(), N);
    assert_eq!(observed.subnets.len(), N / 2);
    assert_eq!(
        observed.network_interfaces[N - 1].vpc_id.as_deref(),
        Some(format!("vpc-{:017x}", N - 1).as_str())
    );
}

/// A finding's text reaches SNS as one line with nothing a mail client would obey,
/// shorter than SNS's 100 characters, whether the subject is the default or a template.
#[test]
fn notify_subjects_are_one_safe_line() {
    use responder_core::playbook::load_str;
    use responder_core::text::needs_escape;
    let mut raw = finding("bitcoin-dns.json").into_raw();
    raw["type"] = serde_json::json!(format!(
        "CryptoCurrency:EC2/X\r\nSubject: forged\u{1b}[2J\u{202e}{}",
        "y".repeat(200)
    ));
    let f = Finding::from_value(raw).unwrap();
    for notify in [
        "notify: {}",
        "notify: {subject: '[{finding.severity}] {finding.type}'}",
    ] {
        let text = format!(
            "name: n\nmatch:\n  finding_types: 'CryptoCurrency:EC2/*'\n  resource_types: [Instance]\nsteps:\n  - {notify}\n"
        );
        let engine =
            Engine::from_playbooks(vec![load_str(Path::new("n.yaml"), &text).unwrap()]).unwrap();
        let plan = engine.plan(&f, false).unwrap();
        let Action::Notify(n) = &plan.steps[0].action else {
            panic!("{plan:?}")
        };
        let s = &n.subject;
        assert!(s.chars().count() < 100, "{s}");
        assert!(!s.chars().any(needs_escape), "{s:?}");
        assert!(
            s.contains("CryptoCurrency:EC2/X\\r\\nSubject: forged\\u{1b}[2J\\u{202e}y"),
            "{s}"
        );
        assert!(s.ends_with("..."), "{s}");
    }
}

/// A playbook that writes terminate before relaunch still launches first: the
/// planner moves the relaunch ahead and makes its failure stop the response, so a
/// failed launch never leaves the service with fewer instances.
#[test]
fn the_replacement_is_planned_before_the_terminate() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.yaml"),
        "name: p\nmode: enforce\nmatch: {finding_types: 'CryptoCurrency:EC2/*', resource_types: Instance}\n\
         steps:\n  - isolate: {}\n  - snapshot: {}\n  - terminate: {}\n  - relaunch:\n      source: clone\n      on_failure: continue\n  - notify: {}\n",
    )
    .unwrap();
    let plan = Engine::load(dir.path())
        .unwrap()
        .plan(&finding("bitcoin-dns.json"), false)
        .unwrap();
    let order: Vec<&str> = plan.steps.iter().map(|s| s.action.spec().name).collect();
    assert_eq!(
        order,
        ["isolate", "snapshot", "relaunch", "terminate", "notify"]
    );
    assert_eq!(
        plan.steps[2].on_failure,
        responder_core::steps::OnFailure::Abort,
        "a failed launch must stop the terminate"
    );
}

/// The isolation plan carries the connection-tracking timeouts: the minimums by
/// default, none when the playbook opts out, the named ones with the rest at their
/// minimums. The executor reads only these.
#[test]
fn isolate_plans_connection_tracking_minimums_unless_opted_out() {
    use responder_core::steps::isolate::Timeouts;
    let f = finding("bitcoin-dns.json");
    let plan_with = |params: &str| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("p.yaml"),
            format!(
                "name: p\nmatch: {{finding_types: 'CryptoCurrency:EC2/*', resource_types: Instance}}\nsteps:\n  - isolate: {params}\n"
            ),
        )
        .unwrap();
        let plan = Engine::load(dir.path()).unwrap().plan(&f, false).unwrap();
        let Action::Isolate(isolate) = &plan.steps[0].action else {
            panic!("isolate is not first")
        };
        (
            isolate.connection_tracking,
            serde_json::to_value(&plan).unwrap(),
        )
    };
    let (default, json) = plan_with("{}");
    assert_eq!(default, Some(Timeouts::MINIMUMS));
    assert_eq!(
        json["steps"][0]["connection_tracking"],
        serde_json::json!({"tcp_established_timeout": 60, "udp_timeout": 30, "udp_stream_timeout": 60})
    );
    assert_eq!(
        plan_with("{connection_tracking: true}").0,
        Some(Timeouts::MINIMUMS)
    );
    let (off, json) = plan_with("{connection_tracking: false}");
    assert_eq!(off, None);
    assert!(json["steps"][0]["connection_tracking"].is_null());
    assert_eq!(
        plan_with("{connection_tracking: {tcp_established_timeout: 300}}").0,
        Some(Timeouts {
            tcp_established_timeout: 300,
            udp_timeout: 30,
            udp_stream_timeout: 60
        })
    );
    // The shipped playbooks keep the default.
    let shipped = engine().plan(&f, false).unwrap();
    let Action::Isolate(isolate) = &shipped.steps[0].action else {
        panic!()
    };
    assert_eq!(isolate.connection_tracking, Some(Timeouts::MINIMUMS));
}

/// A finding planned by a one-playbook engine with these steps.
fn plan_steps(f: &Finding, steps: &str) -> responder_core::Plan {
    plan_steps_matching(f, "*", steps)
}

/// [`plan_steps`] with a playbook matching only `types` (a step such as `release`
/// is refused on a match that findings anyone can cause would pass).
fn plan_steps_matching(f: &Finding, types: &str, steps: &str) -> responder_core::Plan {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.yaml"),
        format!(
            "name: p\nmatch: {{finding_types: '{types}', resource_types: Instance}}\nsteps:\n{steps}"
        ),
    )
    .unwrap();
    Engine::load(dir.path()).unwrap().plan(f, false).unwrap()
}

fn edited(name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> Finding {
    let mut raw = finding(name).into_raw();
    edit(&mut raw);
    Finding::from_value(raw).unwrap()
}

#[test]
fn scan_names_the_instance_arn_from_the_finding_once_per_finding() {
    let f = finding("runtime-reverse-shell.json");
    let plan = engine().plan(&f, false).unwrap();
    assert_eq!(plan.playbook.as_deref(), Some("runtime-execution-ec2"));
    let names: Vec<&str> = plan.steps.iter().map(|s| s.action.name()).collect();
    let scan_at = names.iter().position(|n| *n == "scan").unwrap();
    let terminate_at = names.iter().position(|n| *n == "terminate").unwrap();
    assert!(scan_at < terminate_at, "{names:?}");
    let Action::Scan(scan) = &plan.steps[scan_at].action else {
        panic!()
    };
    assert_eq!(
        scan.resource_arn,
        "arn:aws:ec2:us-east-1:111122223333:instance/i-0a1b2c3d4e5f60718"
    );
    assert_eq!(scan.instance_id, "i-0a1b2c3d4e5f60718");
    assert_eq!(
        scan.client_token.as_deref(),
        Some("8d09a79f0acec20dc90e3756e9f357db/i-0a1b2c3d4e5f60718")
    );
    assert_eq!(scan.skip_reason, None);
    let spec = plan.steps[scan_at].action.spec();
    assert!(spec.once && spec.evidence && !spec.destructive);

    // Another partition, Region and account are the finding's own.
    let other = edited("runtime-reverse-shell.json", |raw| {
        raw["partition"] = "aws-us-gov".into();
        raw["region"] = "us-gov-west-1".into();
        raw["accountId"] = "444455556666".into();
    });
    let plan = plan_steps(&other, "  - scan: {}\n");
    let Action::Scan(scan) = &plan.steps[0].action else {
        panic!()
    };
    assert_eq!(
        scan.resource_arn,
        "arn:aws-us-gov:ec2:us-gov-west-1:444455556666:instance/i-0a1b2c3d4e5f60718"
    );
}

#[test]
fn scan_is_skipped_for_findings_a_scan_raised_and_says_why() {
    // A Malware Protection finding: the scan already happened.
    let f = finding("malware-ec2.json");
    let plan = plan_steps(&f, "  - scan: {}\n");
    let Action::Scan(scan) = &plan.steps[0].action else {
        panic!()
    };
    let reason = scan.skip_reason.as_deref().unwrap();
    assert!(reason.contains("Malware Protection"), "{reason}");
    assert!(plan.steps[0].action.summary().contains("no scan"));

    // Any finding carrying a trigger finding id comes from a scan.
    let triggered = edited("runtime-reverse-shell.json", |raw| {
        raw["service"]["ebsVolumeScanDetails"] =
            serde_json::json!({"triggerFindingId": "4ac7a0b1e2d34c5f8e9a0b1c2d3e4f50"});
    });
    let plan = plan_steps(&triggered, "  - scan: {}\n");
    let Action::Scan(scan) = &plan.steps[0].action else {
        panic!()
    };
    assert!(
        scan.skip_reason
            .as_deref()
            .is_some_and(|r| r.contains("4ac7a0b1e2d34c5f8e9a0b1c2d3e4f50")),
        "{scan:?}"
    );

    // No account anywhere: no ARN, skipped rather than a malformed call.
    let anonymous = edited("runtime-reverse-shell.json", |raw| {
        let d = raw.as_object_mut().unwrap();
        d.remove("accountId");
        d.remove("arn");
    });
    let plan = plan_steps(&anonymous, "  - scan: {}\n");
    let Action::Scan(scan) = &plan.steps[0].action else {
        panic!()
    };
    assert_eq!(scan.resource_arn, "");
    assert!(
        scan.skip_reason
            .as_deref()
            .is_some_and(|r| r.contains("no account"))
    );

    // A hostile account id never reaches the ARN.
    let hostile = edited("runtime-reverse-shell.json", |raw| {
        raw["accountId"] = "1111:instance/*".into();
    });
    let plan = plan_steps(&hostile, "  - scan: {}\n");
    let Action::Scan(scan) = &plan.steps[0].action else {
        panic!()
    };
    assert!(scan.skip_reason.is_some(), "{scan:?}");
}

#[test]
fn archive_finding_is_skipped_for_a_finding_of_an_attack_sequence() {
    let f = finding("runtime-reverse-shell.json");
    let plan = plan_steps(&f, "  - archive-finding: {}\n");
    let Action::ArchiveFinding(a) = &plan.steps[0].action else {
        panic!()
    };
    assert_eq!(a.skip_reason, None);

    let arn = "arn:aws:guardduty:us-east-1:111122223333:detector/12abc34d567e8fa901bc2d34e56789f0/finding/aa11bb22cc33dd44ee55ff6677889900";
    let in_sequence = edited("runtime-reverse-shell.json", |raw| {
        raw["associatedAttackSequenceArn"] = arn.into();
    });
    let plan = plan_steps(&in_sequence, "  - archive-finding: {}\n");
    let Action::ArchiveFinding(a) = &plan.steps[0].action else {
        panic!()
    };
    let reason = a.skip_reason.as_deref().unwrap();
    assert!(
        reason.contains(arn) && reason.contains("Extended Threat Detection"),
        "{reason}"
    );
    let json = serde_json::to_value(&plan).unwrap();
    assert_eq!(json["steps"][0]["skip_reason"], reason);
    assert!(plan.steps[0].action.summary().contains("not archived"));

    // Finding text in the reason is escaped.
    let hostile = edited("runtime-reverse-shell.json", |raw| {
        raw["associatedAttackSequenceArn"] = "arn\u{202e}x\u{7}".into();
    });
    let plan = plan_steps(&hostile, "  - archive-finding: {}\n");
    let Action::ArchiveFinding(a) = &plan.steps[0].action else {
        panic!()
    };
    let reason = a.skip_reason.as_deref().unwrap();
    assert!(
        !reason.contains('\u{202e}') && !reason.contains('\u{7}'),
        "{reason:?}"
    );
}

#[test]
fn each_step_names_its_instance_exactly_when_its_spec_says_it_acts_on_one() {
    let f = finding("bitcoin-dns.json");
    let id = f.instance_id().unwrap().to_owned();
    for spec in responder_core::steps::ALL {
        // A relaunch is refused without a terminate after it.
        let then = if spec.name == "relaunch" {
            "  - terminate: {}\n"
        } else {
            ""
        };
        let plan = plan_steps_matching(
            &f,
            &f.finding_type.name,
            &format!("  - {}: {{}}\n{then}", spec.name),
        );
        let step = plan
            .steps
            .iter()
            .find(|s| s.action.name() == spec.name)
            .unwrap_or_else(|| panic!("{} not planned", spec.name));
        let want = spec.needs_instance.then_some(id.as_str());
        assert_eq!(step.action.instance_id(), want, "{}", spec.name);
    }
}

/// Issue 19.3: in a denial-of-service or spam finding the instance is the attacker
/// and the remote address its victim: the shipped playbooks contain the instance
/// (flooding-instance-ec2) and never plan a block of that address, while a
/// command-and-control finding still blocks its server.
#[test]
fn a_flooding_instance_is_contained_without_blocking_its_victim() {
    let engine = engine();
    for t in [
        "Backdoor:EC2/DenialOfService.Udp",
        "Backdoor:EC2/DenialOfService.Dns",
        "Backdoor:EC2/Spambot",
    ] {
        let f = edited("corpus-10-recon-ec2-portscan.json", |v| {
            v["type"] = t.into();
            v["service"]["archived"] = false.into();
        });
        assert_eq!(f.finding_type.name, t);
        let plan = engine.plan(&f, true).unwrap();
        assert_eq!(
            plan.playbook.as_deref(),
            Some("flooding-instance-ec2"),
            "{t}: {} {:?}",
            plan.decision,
            plan.not_chosen
        );
        assert!(
            plan.steps
                .iter()
                .all(|s| !matches!(s.action, Action::BlockRemoteIp(_))),
            "{t}: {:?}",
            plan.steps
        );
        assert!(matches!(plan.steps[0].action, Action::Isolate(_)), "{t}");
    }
    let c2 = edited("corpus-10-recon-ec2-portscan.json", |v| {
        v["type"] = "Backdoor:EC2/C&CActivity.B".into();
        v["service"]["archived"] = false.into();
    });
    let plan = engine.plan(&c2, false).unwrap();
    assert_eq!(plan.playbook.as_deref(), Some("command-and-control-ec2"));
    assert!(
        plan.steps
            .iter()
            .any(|s| matches!(s.action, Action::BlockRemoteIp(_)))
    );
}
