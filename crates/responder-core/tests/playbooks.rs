//! Playbook validation: located errors, semantic checks, and the committed schema.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use responder_core::Engine;
use responder_core::diagnostic::{Diagnostic, Level};

/// Loads one playbook text (plus optional others) from a temp folder.
fn check(files: &[(&str, &str)]) -> Result<Vec<Diagnostic>, Vec<Diagnostic>> {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let prefix = format!("{}/", dir.path().display());
    let strip = |ds: Vec<Diagnostic>| {
        ds.into_iter()
            .map(|mut d| {
                d.file = Path::new(d.file.file_name().unwrap()).to_owned();
                d.message = d.message.replace(&prefix, "");
                d
            })
            .collect()
    };
    Engine::load(dir.path())
        .map(|e| strip(e.warnings().to_vec()))
        .map_err(strip)
}

fn errors(files: &[(&str, &str)]) -> Vec<String> {
    check(files)
        .unwrap_err()
        .iter()
        .filter(|d| d.level == Level::Error)
        .map(ToString::to_string)
        .collect()
}

fn warnings(files: &[(&str, &str)]) -> Vec<String> {
    check(files)
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect()
}

const MATCH: &str =
    "match:\n  finding_types: 'CryptoCurrency:EC2/*'\n  resource_types: [Instance]\n";

#[test]
fn shipped_playbooks_are_valid_without_warnings() {
    let engine =
        Engine::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../playbooks")).unwrap();
    assert!(engine.warnings().is_empty(), "{:?}", engine.warnings());
    assert_eq!(engine.playbooks().len(), 14);
}

#[test]
fn committed_schema_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../playbooks/schema.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == responder_core::schema::playbook_schema(),
        "playbooks/schema.json is stale: run `cargo run -p responder-cli -- schema > playbooks/schema.json`"
    );
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../playbooks/tests/schema.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == responder_core::schema::test_case_schema(),
        "playbooks/tests/schema.json is stale: run `cargo run -p responder-cli -- schema --test-cases > playbooks/tests/schema.json`"
    );
}

#[test]
fn yaml_and_schema_errors_name_line_column_and_field() {
    assert_eq!(
        errors(&[(
            "p.yaml",
            &format!("name: p\n{MATCH}steps:\n  - isolate: {{}}\n  - terminat: {{}}\n")
        )]),
        [
            "p.yaml:7:5: error: steps[1].terminat: unknown variant `terminat`, expected one of isolate, snapshot, terminate, relaunch, tag, protect, detach-from-asg, deregister-from-target-groups, revoke-instance-profile, capture-console-output, stop, release, archive-finding, notify, scan, block-remote-ip"
        ]
    );
    assert_eq!(
        errors(&[(
            "p.yaml",
            &format!("name: p\n{MATCH}steps:\n  - isolate:\n      quarantine_grp: q\n")
        )]),
        [
            "p.yaml:7:7: error: steps[0].isolate.quarantine_grp: unknown field `quarantine_grp`, expected one of quarantine_group, cut_connections, untrack_group, connection_tracking, network_acl, forensics_ingress, on_failure"
        ]
    );
    assert_eq!(
        errors(&[(
            "p.yaml",
            "name: p\nmatch:\n  severity: hgh\nsteps:\n  - tag: {}\n"
        )]),
        [
            "p.yaml:3:3: error: match.severity: unknown variant `hgh`, expected one of low, medium, high, critical"
        ]
    );
    assert_eq!(
        errors(&[(
            "p.yaml",
            "name: p\nmatch:\n  accounts: [123456789012]\nsteps:\n  - tag: {}\n"
        )]),
        [
            "p.yaml:3:14: error: match.accounts[0]: account id 123456789012 must be a quoted string: a YAML number loses leading zeros"
        ]
    );
    let syntax = errors(&[("p.yaml", "name: p\nmatch: {severity: high\nsteps: []\n")]);
    assert_eq!(syntax.len(), 1);
    assert!(syntax[0].starts_with("p.yaml:2:"), "{syntax:?}");
    let dup_key = errors(&[(
        "p.yaml",
        "name: p\nname: q\nmatch: {severity: high}\nsteps:\n  - tag: {}\n",
    )]);
    assert!(
        dup_key[0].starts_with("p.yaml:2:1: error:")
            && dup_key[0].contains("duplicate mapping key"),
        "{dup_key:?}"
    );
    let bad_glob = errors(&[(
        "p.yaml",
        "name: p\nmatch:\n  finding_types: ['Backdoor:[EC2']\nsteps:\n  - tag: {}\n",
    )]);
    assert!(
        bad_glob[0].starts_with("p.yaml:3:3: error: match.finding_types: invalid pattern"),
        "{bad_glob:?}"
    );
}

#[test]
fn semantic_errors() {
    let ok_steps = "steps:\n  - tag: {}\n";
    assert_eq!(
        errors(&[
            ("a.yaml", &format!("name: same\n{MATCH}{ok_steps}")),
            (
                "b.yaml",
                &format!("name: same\npriority: 1\n{MATCH}{ok_steps}")
            )
        ]),
        ["b.yaml:1:7: error: name: duplicate playbook name \"same\" (also in a.yaml)"]
    );
    assert_eq!(
        errors(&[("p.yaml", &format!("name: p\nmatch: {{}}\n{ok_steps}"))]),
        [
            "p.yaml:2:8: error: match: empty match: it would answer every finding; name at least one criterion"
        ]
    );
    assert_eq!(
        errors(&[
            ("a.yaml", &format!("name: a\n{MATCH}{ok_steps}")),
            ("b.yaml", &format!("name: b\n{MATCH}{ok_steps}"))
        ]),
        [
            "b.yaml:1:7: error: priority: tie: b and a (a.yaml) have the same priority 0 and can both match findings of type CryptoCurrency:EC2/BitcoinTool.A; give one a higher priority"
        ]
    );
    // Equal priorities that cannot overlap are fine.
    check(&[
        ("a.yaml", &format!("name: a\n{MATCH}{ok_steps}")),
        ("b.yaml", &format!("name: b\nmatch: {{finding_types: 'Backdoor:EC2/*', resource_types: Instance}}\n{ok_steps}")),
    ])
    .unwrap();
    check(&[
        (
            "a.yaml",
            &format!("name: a\n{MATCH}  severity: {{gte: 7}}\n{ok_steps}"),
        ),
        (
            "b.yaml",
            &format!("name: b\n{MATCH}  severity: [low, medium]\n{ok_steps}"),
        ),
    ])
    .unwrap();
    assert_eq!(
        errors(&[(
            "p.yaml",
            &format!("name: p\n{MATCH}steps:\n  - isolate: {{}}\n  - relaunch: {{}}\n")
        )]),
        [
            "p.yaml:7:5: error: steps[1].relaunch: relaunch without a terminate or an earlier stop would run the replacement beside the compromised instance for good"
        ]
    );
    assert_eq!(
        errors(&[(
            "p.yaml",
            "name: p\nmatch:\n  finding_types: 'Policy:S3/*'\nsteps:\n  - isolate: {}\n  - notify: {}\n"
        )]),
        [
            "p.yaml:5:5: error: steps[0].isolate: isolate acts on an EC2 instance, but the finding types [\"Policy:S3/*\"] are not about EC2 instances"
        ]
    );
    assert_eq!(
        errors(&[(
            "p.yaml",
            "name: p\nmatch:\n  resource_types: [AccessKey]\nsteps:\n  - revoke-instance-profile: {}\n"
        )]),
        [
            "p.yaml:5:5: error: steps[0].revoke-instance-profile: revoke-instance-profile acts on an EC2 instance, but the match only accepts resource types [\"AccessKey\"]"
        ]
    );
    assert_eq!(
        errors(&[(
            "p.yaml",
            &format!(
                "name: p\n{MATCH}steps:\n  - protect: {{}}\n  - snapshot: {{}}\n  - terminate: {{}}\n  - snapshot: {{}}\n"
            )
        )]),
        [
            "p.yaml:8:5: error: steps[2].terminate: an earlier protect step enables termination protection, so this terminate would fail; set lift_termination_protection: true",
            "p.yaml:9:5: error: steps[3].snapshot: snapshot after terminate: the instance is gone by then",
        ]
    );
    assert_eq!(
        errors(&[(
            "p.yaml",
            &format!("name: p\n{MATCH}steps:\n  - tag:\n      tags: {{a: '{{finding.nope}}'}}\n")
        )]),
        [
            "p.yaml:6:5: error: steps[0].tag: tags.a: unknown placeholder {finding.nope}; known: {finding.id}, {finding.type}, {finding.severity}, {finding.account}, {finding.region}, {instance.id}, {playbook}"
        ]
    );
    let empty = tempfile::tempdir().unwrap();
    assert!(
        Engine::load(empty.path()).unwrap_err()[0]
            .message
            .contains("no playbooks")
    );
}

#[test]
fn warnings_do_not_block() {
    assert_eq!(
        warnings(&[(
            "p.yaml",
            &format!("name: p\n{MATCH}steps:\n  - isolate: {{}}\n  - terminate: {{}}\n")
        )]),
        [
            "p.yaml:7:5: warning: steps[1].terminate: terminate without an earlier snapshot destroys the evidence (add a snapshot step, or acknowledge terminate-without-snapshot)"
        ]
    );
    assert!(warnings(&[(
        "p.yaml",
        &format!("name: p\nacknowledge: [terminate-without-snapshot]\n{MATCH}steps:\n  - isolate: {{}}\n  - terminate: {{}}\n")
    )])
    .is_empty());
    assert_eq!(
        warnings(&[(
            "p.yaml",
            "name: p\nmatch:\n  finding_types: 'CryptoCurrency:EC2/*'\nsteps:\n  - isolate: {}\n"
        )]),
        [
            "p.yaml:5:5: warning: steps[0].isolate: isolate acts on an EC2 instance, but the match does not restrict resource_types to [Instance]; findings about other resources will fail to plan (add resource_types: [Instance] or acknowledge any-resource-type)"
        ]
    );
    let acl = warnings(&[(
        "p.yaml",
        &format!("name: p\n{MATCH}steps:\n  - isolate: {{network_acl: true}}\n"),
    )]);
    assert!(
        acl[0].contains("every instance in the instance's subnets"),
        "{acl:?}"
    );
}

#[test]
fn an_invalid_playbook_refuses_the_whole_set() {
    let result = check(&[
        (
            "good.yaml",
            &format!("name: good\n{MATCH}steps:\n  - tag: {{}}\n"),
        ),
        (
            "bad.yaml",
            "name: bad\nmatch: {severity: high}\nsteps:\n  - explode: {}\n",
        ),
    ]);
    let errs = result.unwrap_err();
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].file, Path::new("bad.yaml"));
}

/// Groups, forensics ingress and tags that would turn the responder against the fleet,
/// and the errors that used to carry no line: each located at file, line and field.
#[test]
fn unsafe_settings_are_errors_with_their_line() {
    let isolate = |params: &str| {
        errors(&[(
            "p.yaml",
            &format!("name: p\n{MATCH}steps:\n  - isolate:\n{params}"),
        )])
    };
    let default_group = isolate("      quarantine_group: Default\n");
    assert_eq!(default_group.len(), 1, "{default_group:?}");
    assert!(
        default_group[0].starts_with(
            "p.yaml:6:5: error: steps[0].isolate: quarantine_group \"Default\": is the VPC's default group"
        ),
        "{default_group:?}"
    );
    let untrack_default = isolate("      untrack_group: default\n");
    assert!(
        untrack_default[0].starts_with(
            "p.yaml:6:5: error: steps[0].isolate: untrack_group \"default\": is the VPC's default group"
        ),
        "{untrack_default:?}"
    );
    assert_eq!(
        isolate("      quarantine_group: q\n      untrack_group: Q\n"),
        [
            "p.yaml:6:5: error: steps[0].isolate: quarantine_group and untrack_group must differ: the untrack group is opened to all traffic"
        ]
    );
    let by_id = isolate("      untrack_group: sg-0123456789abcdef0\n");
    assert!(
        by_id[0]
            .contains("untrack_group \"sg-0123456789abcdef0\": EC2 group names cannot start with"),
        "{by_id:?}"
    );
    for wide in ["0.0.0.0/0", "::/0", "128.0.0.0/1", "2000::/3"] {
        let e = isolate(&format!("      forensics_ingress: {{cidrs: ['{wide}']}}\n"));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with(&format!(
                "p.yaml:6:5: error: steps[0].isolate: forensics_ingress: \"{wide}\" is too wide: the quarantine group would admit"
            )),
            "{e:?}"
        );
    }
    check(&[(
        "p.yaml",
        &format!("name: p\n{MATCH}steps:\n  - isolate:\n      forensics_ingress: {{cidrs: ['10.0.0.0/8', '2001:db8::/32', '192.0.2.7/32']}}\n"),
    )])
    .unwrap();

    // Tag steps (tag, snapshot, relaunch) cannot write the responder's own keys.
    for (step, key) in [
        ("tag", "guardduty-responder:isolated"),
        ("snapshot", "guardduty-responder:finding-id"),
        ("tag", "aws:cloudformation:stack-name"),
        ("tag", "GuardDuty-Responder:original-profile"),
    ] {
        let e = errors(&[(
            "p.yaml",
            &format!("name: p\n{MATCH}steps:\n  - {step}:\n      tags: {{'{key}': x}}\n"),
        )]);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with(&format!(
                "p.yaml:6:5: error: steps[0].{step}: tags.{key}: keys starting with"
            )),
            "{e:?}"
        );
    }
    let relaunch = errors(&[(
        "p.yaml",
        &format!(
            "name: p\n{MATCH}steps:\n  - stop: {{}}\n  - relaunch:\n      tags: {{'guardduty-responder:replaces': i-1}}\n"
        ),
    )]);
    assert!(
        relaunch[0].starts_with("p.yaml:7:5: error: steps[1].relaunch: tags.guardduty-responder:replaces: keys starting with"),
        "{relaunch:?}"
    );

    // Located now: an exclude block's criteria, an empty exclude block, no steps.
    assert_eq!(
        errors(&[(
            "p.yaml",
            &format!("name: p\n{MATCH}exclude:\n  - severity: high\n  - finding_types: ['Backdoor:[EC2']\nsteps:\n  - tag: {{}}\n")
        )])
        .iter()
        .map(|e| e.split(": invalid pattern").next().unwrap_or_default().to_owned())
        .collect::<Vec<_>>(),
        ["p.yaml:7:5: error: exclude[1].finding_types"]
    );
    assert_eq!(
        errors(&[(
            "p.yaml",
            &format!(
                "name: p\n{MATCH}exclude:\n  - severity: high\n  - {{}}\nsteps:\n  - tag: {{}}\n"
            )
        )]),
        ["p.yaml:7:5: error: exclude[1]: empty exclude block: it would exclude every finding"]
    );
    assert_eq!(
        errors(&[("p.yaml", &format!("name: p\n{MATCH}steps: []\n"))]),
        ["p.yaml:5:8: error: steps: no steps"]
    );
}

#[test]
fn connection_tracking_takes_true_false_or_timeouts_within_ec2_limits() {
    let isolate = |params: &str| {
        check(&[(
            "p.yaml",
            &format!("name: p\n{MATCH}steps:\n  - isolate:\n{params}"),
        )])
    };
    for ok in [
        "      connection_tracking: true\n",
        "      connection_tracking: false\n",
        "      connection_tracking: {tcp_established_timeout: 432000, udp_timeout: 60, udp_stream_timeout: 180}\n",
        "      connection_tracking: {udp_timeout: 30}\n",
    ] {
        assert!(isolate(ok).is_ok(), "{ok}");
    }
    let errors_of = |params: &str| -> Vec<String> {
        isolate(params)
            .unwrap_err()
            .iter()
            .filter(|d| d.level == Level::Error)
            .map(ToString::to_string)
            .collect()
    };
    assert_eq!(
        errors_of(
            "      connection_tracking: {tcp_established_timeout: 59, udp_timeout: 61, udp_stream_timeout: 181}\n"
        ),
        [
            "p.yaml:6:5: error: steps[0].isolate: connection_tracking.tcp_established_timeout: 59 is outside the 60 to 432000 seconds EC2 accepts",
            "p.yaml:6:5: error: steps[0].isolate: connection_tracking.udp_timeout: 61 is outside the 30 to 60 seconds EC2 accepts",
            "p.yaml:6:5: error: steps[0].isolate: connection_tracking.udp_stream_timeout: 181 is outside the 60 to 180 seconds EC2 accepts",
        ]
    );
    let unknown = errors_of("      connection_tracking: {tcp: 60}\n");
    assert_eq!(unknown.len(), 1, "{unknown:?}");
    assert!(unknown[0].contains("unknown field `tcp`"), "{unknown:?}");
    let wrong = errors_of("      connection_tracking: sometimes\n");
    assert_eq!(wrong.len(), 1, "{wrong:?}");
    assert!(
        wrong[0].contains("true, false, or a map of timeouts"),
        "{wrong:?}"
    );
}

#[test]
fn block_remote_ip_checks_its_expiry_limits_and_never_block_list() {
    let steps = "steps:\n  - isolate: {}\n  - block-remote-ip:\n      expire_after_hours: 0\n      max_addresses: 21\n      entry_limit: 41\n      never_block: [10.0.0.0/8, 'not-a-cidr', 192.0.2.1, 2001:db8::/129]\n";
    let found = errors(&[("p.yaml", &format!("name: p\n{MATCH}{steps}"))]);
    let expect = [
        "expire_after_hours: 0 is outside 1 to 720",
        "max_addresses: 21 is outside 1 to 20",
        "entry_limit: 41 is outside 1 to 40",
        "never_block[1]: \"not-a-cidr\" is not a CIDR block",
        "never_block[2]: \"192.0.2.1\" is not a CIDR block",
        "never_block[3]: \"2001:db8::/129\": the prefix length must be 0 to 128",
    ];
    assert_eq!(found.len(), expect.len(), "{found:#?}");
    for (line, want) in found.iter().zip(expect) {
        // Located at the step (file:line:column), then the check's own words.
        assert!(
            line.starts_with("p.yaml:7:5: error: steps[1].block-remote-ip: "),
            "{line}"
        );
        assert!(line.contains(want), "{line} lacks {want}");
    }
    let too_long = format!(
        "name: p\n{MATCH}steps:\n  - isolate: {{}}\n  - block-remote-ip: {{expire_after_hours: 721}}\n"
    );
    assert_eq!(errors(&[("p.yaml", &too_long)]).len(), 1);
    // The defaults, and the bounds themselves, are valid (past 5 addresses and 72 h
    // with their acknowledgements).
    for ok in [
        "{}",
        "{expire_after_hours: 1, max_addresses: 1, entry_limit: 1}",
        "{expire_after_hours: 720, max_addresses: 20, entry_limit: 40, never_block: ['203.0.113.0/24', '2001:db8::/32', '198.51.100.7/32']}",
    ] {
        let text = format!(
            "name: p\nacknowledge: [many-blocked-addresses, long-block-expiry]\n{MATCH}steps:\n  - isolate: {{}}\n  - block-remote-ip: {ok}\n"
        );
        assert!(
            check(&[("p.yaml", &text)]).is_ok(),
            "{ok}: {:?}",
            check(&[("p.yaml", &text)])
        );
    }
    // A wrong type is a located schema error, not a panic.
    let wrong = format!(
        "name: p\n{MATCH}steps:\n  - isolate: {{}}\n  - block-remote-ip: {{expire_after_hours: soon}}\n"
    );
    assert_eq!(errors(&[("p.yaml", &wrong)]).len(), 1);
}

/// Issue 19.10: a playbook that hands whoever controls the instance or the network a
/// lever is refused, or needs its named acknowledgement where an expert may mean it;
/// each error names the file, line and field.
#[test]
fn levers_for_an_attacker_are_refused_or_acknowledged() {
    let with = |ack: &str, matches: &str, steps: &str| {
        let ack = if ack.is_empty() {
            String::new()
        } else {
            format!("acknowledge: [{ack}]\n")
        };
        format!("name: p\n{ack}{matches}steps:\n  - isolate: {{}}\n{steps}")
    };
    // Forensics ingress from public address space (an AWS public /8 on SSH, RDP and
    // WinRM) needs public-forensics-ingress; private, ULA and documentation ranges
    // do not.
    let public = "  - isolate:\n      forensics_ingress: {cidrs: ['3.0.0.0/8', '10.1.0.0/16', '52.1.2.3/32', 'fd00:1::/64'], ports: [22, 3389, 5985]}\n";
    let text = format!("name: p\n{MATCH}steps:\n{public}");
    let found = errors(&[("p.yaml", &text)]);
    assert_eq!(found.len(), 2, "{found:#?}");
    for (line, cidr) in found.iter().zip(["3.0.0.0/8", "52.1.2.3/32"]) {
        assert!(
            line.starts_with(&format!(
                "p.yaml:6:5: error: steps[0].isolate: forensics_ingress: \"{cidr}\" is public address space"
            )) && line.contains("[22, 3389, 5985]")
                && line.contains("public-forensics-ingress"),
            "{line}"
        );
    }
    let acknowledged =
        format!("name: p\nacknowledge: [public-forensics-ingress]\n{MATCH}steps:\n{public}");
    check(&[("p.yaml", &acknowledged)]).unwrap();

    // block-remote-ip past 5 addresses or 72 hours needs its acknowledgement.
    let wide = "  - block-remote-ip: {max_addresses: 20, expire_after_hours: 720}\n";
    let found = errors(&[("p.yaml", &with("", MATCH, wide))]);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(
        found[0].starts_with(
            "p.yaml:7:5: error: steps[1].block-remote-ip: max_addresses: 20 is more than 5"
        ) && found[0].contains("many-blocked-addresses"),
        "{found:#?}"
    );
    assert!(
        found[1].starts_with(
            "p.yaml:7:5: error: steps[1].block-remote-ip: expire_after_hours: 720 is more than 72"
        ) && found[1].contains("long-block-expiry"),
        "{found:#?}"
    );
    assert_eq!(
        errors(&[("p.yaml", &with("many-blocked-addresses", MATCH, wide))]).len(),
        1
    );
    check(&[(
        "p.yaml",
        &with("many-blocked-addresses, long-block-expiry", MATCH, wide),
    )])
    .unwrap();
    check(&[(
        "p.yaml",
        &with(
            "",
            MATCH,
            "  - block-remote-ip: {max_addresses: 5, expire_after_hours: 72}\n",
        ),
    )])
    .unwrap();

    // block-remote-ip where the instance is the actor: the remote is its victim.
    // Refused outright, named by type; excluding the types or restricting the role
    // to TARGET makes it valid.
    let backdoor = "match:\n  finding_types: 'Backdoor:EC2/*'\n  resource_types: [Instance]\n";
    let block = "  - block-remote-ip: {}\n";
    let found = errors(&[("p.yaml", &with("", backdoor, block))]);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with("p.yaml:7:5: error: steps[1].block-remote-ip: the match accepts Backdoor:EC2/DenialOfService.")
            && found[0].contains("the instance attacks the finding's remote address"),
        "{found:#?}"
    );
    let excluded = "match:\n  finding_types: 'Backdoor:EC2/*'\n  resource_types: [Instance]\nexclude:\n  - finding_types: ['Backdoor:EC2/DenialOfService.*', 'Backdoor:EC2/Spambot']\n";
    check(&[("p.yaml", &with("", excluded, block))]).unwrap();
    // An exclude block that does not always hold (a tag) does not count.
    let partly = "match:\n  finding_types: 'Backdoor:EC2/*'\n  resource_types: [Instance]\nexclude:\n  - finding_types: ['Backdoor:EC2/DenialOfService.*', 'Backdoor:EC2/Spambot']\n    tags: [x]\n";
    assert_eq!(errors(&[("p.yaml", &with("", partly, block))]).len(), 1);
    let brute = "match:\n  finding_types: 'UnauthorizedAccess:EC2/SSHBruteForce'\n  resource_types: [Instance]\n";
    assert_eq!(errors(&[("p.yaml", &with("", brute, block))]).len(), 1);
    let brute_target = "match:\n  finding_types: 'UnauthorizedAccess:EC2/SSHBruteForce'\n  resource_types: [Instance]\n  resource_roles: [TARGET]\n";
    check(&[("p.yaml", &with("", brute_target, block))]).unwrap();

    // release on findings an outsider causes (port probes) is refused.
    let probes = "match:\n  finding_types: 'Recon:EC2/PortProbe*'\n  resource_types: [Instance]\n";
    let found = errors(&[(
        "p.yaml",
        &format!("name: p\n{probes}steps:\n  - release: {{}}\n"),
    )]);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with("p.yaml:6:5: error: steps[0].release: the match accepts Recon:EC2/PortProbeEMRUnprotectedPort, Recon:EC2/PortProbeUnprotectedPort"),
        "{found:#?}"
    );

    // An attack-sequence playbook past 25 instances needs many-sequence-instances.
    let sequence = "match:\n  finding_types: 'AttackSequence:EC2/*'\n  resource_types: [AttackSequence]\nlimits:\n  max_instances: 100\n";
    let found = errors(&[("p.yaml", &with("", sequence, ""))]);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0]
            .starts_with("p.yaml: error: limits.max_instances: max_instances is 100, more than 25")
            && found[0].contains("many-sequence-instances"),
        "{found:#?}"
    );
    check(&[("p.yaml", &with("many-sequence-instances", sequence, ""))]).unwrap();

    // An untrack group named like another playbook's quarantine group.
    let a = "name: a\npriority: 1\nmatch:\n  finding_types: 'CryptoCurrency:EC2/*'\n  resource_types: [Instance]\nsteps:\n  - isolate:\n      untrack_group: guardduty-responder-quarantine\n      quarantine_group: a-quarantine\n";
    let b = "name: b\npriority: 2\nmatch:\n  finding_types: 'Trojan:EC2/*'\n  resource_types: [Instance]\nsteps:\n  - isolate: {}\n";
    let found = errors(&[("a.yaml", a), ("b.yaml", b)]);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with("a.yaml:7:5: error: steps[0].isolate.untrack_group: untrack_group \"guardduty-responder-quarantine\" is the quarantine group of playbook b (b.yaml)"),
        "{found:#?}"
    );
}
