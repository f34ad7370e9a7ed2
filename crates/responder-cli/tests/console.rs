//! Issue 12's console workflow through the `responder` binary: findings from the local
//! GuardDuty findings endpoint (every corpus finding, under fresh ids), saved filters
//! in moto (the endpoint forwards what it does not serve, so one
//! `AWS_ENDPOINT_URL_GUARDDUTY` serves the whole client), archive. What each command
//! must print is computed with the library (`responder_core`), never written out.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use responder_core::console::SeverityCounts;
use responder_core::filter::{FindingCriteria, criteria_holds, parse_criteria};
use responder_core::matcher::CompiledCriteria;
use responder_core::matcher::criteria::Criteria;
use responder_core::{Engine, Finding, decode_bytes, select};
use responder_tests::guardduty::{
    FindingsEndpoint, Operation, moto_get_filter, moto_put_filter, shared_detector,
};
use responder_tests::{account, moto};
use serde_json::{Value, json};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A GuardDuty for one test: the endpoint (forwarding to moto), the shared detector,
/// and the findings stored, as the library reads them.
struct Gd {
    endpoint: FindingsEndpoint,
    detector: String,
    stored: Vec<Finding>,
}

/// Every corpus finding (events and finding files) with the id `c<n>`, two of them
/// archived.
fn corpus() -> Vec<Value> {
    let mut files = Vec::new();
    for sub in ["events", "findings"] {
        for e in std::fs::read_dir(root().join("tests/corpus").join(sub)).unwrap() {
            files.push(e.unwrap().path());
        }
    }
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let Ok(decoded) = decode_bytes(&std::fs::read(&path).unwrap()) else {
            continue;
        };
        for f in decoded.into_iter().flatten() {
            let mut raw = f.into_raw();
            raw["id"] = json!(format!("c{:03}", out.len()));
            raw["service"]["archived"] = json!(out.len() % 29 == 3);
            out.push(raw);
        }
    }
    assert!(
        out.len() > 55,
        "more than one page of findings ({})",
        out.len()
    );
    out
}

async fn gd() -> Gd {
    let config = account::sdk_config(&moto::endpoint()).await;
    let endpoint = FindingsEndpoint::start();
    endpoint.forward_to(&moto::endpoint());
    let detector = shared_detector(&config, &endpoint).await;
    let mut stored = Vec::new();
    for raw in corpus() {
        endpoint.put_finding(&detector, raw.clone());
        stored.push(Finding::from_value(raw).unwrap());
    }
    Gd {
        endpoint,
        detector,
        stored,
    }
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Gd {
    fn responder(&self, args: &[&str], stdin: Option<&str>) -> Out {
        let (var, url) = self.endpoint.env();
        let mut cmd = Command::cargo_bin("responder").unwrap();
        cmd.env_remove("DETECTOR_ID")
            .env_remove("AWS_PROFILE")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ENDPOINT_URL", moto::endpoint())
            .env(var, url)
            .current_dir(root())
            .args(args);
        if let Some(input) = stdin {
            cmd.write_stdin(input.to_owned());
        }
        let out = cmd.output().unwrap();
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn ids(&self, keep: impl Fn(&Finding) -> bool) -> BTreeSet<String> {
        self.stored
            .iter()
            .filter(|f| keep(f))
            .map(|f| f.id.clone())
            .collect()
    }

    fn listed_json(&self, args: &[&str]) -> (BTreeSet<String>, Vec<Value>) {
        let mut all = vec!["findings", "--format", "json"];
        all.extend_from_slice(args);
        let out = self.responder(&all, None);
        assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
        let list: Vec<Value> = serde_json::from_str(&out.stdout).unwrap();
        (
            list.iter()
                .map(|f| f["id"].as_str().unwrap().to_owned())
                .collect(),
            list,
        )
    }
}

fn one_line(s: &str) -> &str {
    assert_eq!(s.trim_end().lines().count(), 1, "one line: {s}");
    s.trim_end()
}

#[tokio::test(flavor = "multi_thread")]
async fn findings_counts_lists_and_exports_like_the_console() {
    let g = gd().await;
    let live = g.ids(|f| !f.archived);
    let mut counts = SeverityCounts::default();
    g.stored
        .iter()
        .filter(|f| !f.archived)
        .for_each(|f| counts.observe(f));

    // A throttled page and a failed batch are retried by the SDK.
    g.endpoint
        .fail_next(Operation::ListFindings, 1, 429, "TooManyRequestsException");
    g.endpoint.fail_next(
        Operation::GetFindings,
        1,
        500,
        "InternalServerErrorException",
    );
    let text = g.responder(&["findings"], None);
    assert_eq!(text.code, 0, "{}", text.stderr);
    let first = text.stdout.lines().next().unwrap();
    assert_eq!(first, format!("{counts}  (detector {})", g.detector));
    let header = text.stdout.lines().nth(2).unwrap();
    assert!(
        header.starts_with("SEVERITY") && header.contains("  TYPE  "),
        "{}",
        text.stdout
    );
    // One table row per live finding, highest severity first.
    let rows: Vec<&str> = text.stdout.lines().skip(3).collect();
    assert_eq!(rows.len(), live.len(), "{}", text.stdout);
    assert!(rows[0].starts_with("Critical") || rows[0].starts_with("High"));
    // ListFindings paged (50 a page) and GetFindings in batches of 50.
    assert_eq!(
        g.endpoint.calls(Operation::GetFindings),
        live.len().div_ceil(50) + 1
    );
    assert_eq!(
        g.endpoint.calls(Operation::ListFindings),
        live.len().div_ceil(50) + 1
    );
    let batches: Vec<usize> = g
        .endpoint
        .requests()
        .iter()
        .filter(|r| r.operation == Some(Operation::GetFindings) && r.status == 200)
        .map(|r| r.body["findingIds"].as_array().unwrap().len())
        .collect();
    assert_eq!(batches.iter().sum::<usize>(), live.len());
    assert!(batches.iter().all(|n| *n <= 50), "{batches:?}");

    let (ids, list) = g.listed_json(&[]);
    assert_eq!(ids, live);
    assert!(
        list.iter()
            .all(|f| f["service"]["archived"] == json!(false))
    );
    let (all, _) = g.listed_json(&["--include-archived"]);
    assert_eq!(all, g.ids(|_| true));
    assert!(all.len() > live.len());

    // The export is what `responder plan -` reads.
    let export = serde_json::to_string(&list).unwrap();
    let plan = g.responder(&["plan", "--format", "json", "-"], Some(&export));
    assert!(plan.code == 0 || plan.code == 1, "{}", plan.stderr);
    let planned: Value = serde_json::from_str(&plan.stdout).unwrap();
    let planned = planned
        .as_array()
        .or_else(|| planned.get("plans").and_then(Value::as_array))
        .map_or(0, Vec::len);
    assert_eq!(
        planned,
        live.len(),
        "{}",
        &plan.stdout[..plan.stdout.len().min(500)]
    );

    // --limit keeps the highest severities.
    let (top, list) = g.listed_json(&["--limit", "3"]);
    assert_eq!(top.len(), 3);
    let mut severities: Vec<f64> = g
        .stored
        .iter()
        .filter(|f| !f.archived)
        .map(|f| f.severity.unwrap_or(0.0))
        .collect();
    severities.sort_by(|a, b| b.total_cmp(a));
    let got: Vec<f64> = list
        .iter()
        .map(|f| f["severity"].as_f64().unwrap())
        .collect();
    assert_eq!(got, severities[..3].to_vec());
}

#[tokio::test(flavor = "multi_thread")]
async fn details_panels_escape_attacker_text_and_one_bad_finding_is_reported() {
    let g = gd().await;
    let mut hostile = g.stored[0].raw().clone();
    hostile["id"] = json!("hostile");
    hostile["severity"] = json!(10);
    hostile["service"]["runtimeDetails"] =
        json!({"process": {"name": "xmrig\u{1b}[2J\r", "executablePath": "/tmp/\u{202e}fdp.exe"}});
    g.endpoint.put_finding(&g.detector, hostile);
    let mut bad = g.stored[1].raw().clone();
    bad["id"] = json!("broken");
    bad.as_object_mut().unwrap().remove("type");
    g.endpoint.put_finding(&g.detector, bad);

    let out = g.responder(&["findings", "--details"], None);
    assert_eq!(out.code, 2, "a finding could not be read: {}", out.stderr);
    assert_eq!(
        one_line(&out.stderr),
        "finding broken: cannot be read: missing required field `type`"
    );
    assert!(out.stdout.contains("── hostile ──"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("xmrig\\u{1b}[2J\\r (/tmp/\\u{202e}fdp.exe)")
    );
    assert!(!out.stdout.contains('\u{1b}') && !out.stdout.contains('\u{202e}'));
    // Every other live finding is still listed, each with its panel.
    let live = g.ids(|f| !f.archived).len() + 1;
    assert_eq!(out.stdout.matches("\n── ").count(), live);
    assert!(out.stdout.contains("Remote IP"));
}

#[tokio::test(flavor = "multi_thread")]
async fn criteria_playbook_and_since_select_what_the_engine_selects() {
    let g = gd().await;
    // A criteria file (the AWS CLI's shape).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.json");
    let criteria = r#"{"Criterion": {"severity": {"GreaterThanOrEqual": 5}, "type": {"Matches": ["*EC2/*"]}, "resource.resourceType": {"Equals": ["Instance"]}}}"#;
    std::fs::write(&file, criteria).unwrap();
    let parsed = parse_criteria(criteria).unwrap();
    let (ids, _) = g.listed_json(&["--criteria", file.to_str().unwrap()]);
    let want = g.ids(|f| !f.archived && criteria_holds(&parsed, f.raw()));
    assert!(!want.is_empty());
    assert_eq!(ids, want);
    // ListFindings was not sent `matches` (it does not take them).
    let last = g
        .endpoint
        .requests()
        .into_iter()
        .rfind(|r| r.operation == Some(Operation::ListFindings))
        .unwrap();
    let sent = &last.body["findingCriteria"]["criterion"];
    assert!(
        sent.get("type").is_none() && sent.get("severity").is_some(),
        "{sent}"
    );

    // A playbook: what the engine says it answers.
    let engine = Engine::load(&root().join("playbooks")).unwrap();
    for name in [
        "crypto-mining-ec2",
        "low-severity-probes-ec2",
        "command-and-control-ec2",
    ] {
        let p = engine
            .playbooks()
            .iter()
            .find(|p| p.playbook.name() == name)
            .unwrap();
        let (ids, _) = g.listed_json(&["--playbook", name]);
        let want = g.ids(|f| !f.archived && select::evaluate(p, f, false).is_ok());
        assert!(!want.is_empty(), "{name} selects some corpus finding");
        assert_eq!(ids, want, "{name}");
    }

    // --since: only findings updated within the span.
    let recent = chrono_now_iso();
    for id in ["c000", "c001"] {
        let mut f = g.endpoint.finding(&g.detector, id).unwrap();
        f["updatedAt"] = json!(recent);
        g.endpoint.put_finding(&g.detector, f);
    }
    let (ids, _) = g.listed_json(&["--since", "7d"]);
    assert_eq!(
        ids,
        ["c000", "c001"].iter().map(|s| s.to_string()).collect()
    );
}

/// Now as RFC 3339, from the one clock, whole seconds (as GuardDuty's `updatedAt`).
fn chrono_now_iso() -> String {
    let now = responder_core::timestamp::now_millis();
    responder_core::timestamp::format_millis(now - now.rem_euclid(1000))
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_one_line_and_exit_2() {
    let g = gd().await;
    let dir = tempfile::tempdir().unwrap();
    let unknown_field = dir.path().join("f.json");
    std::fs::write(
        &unknown_field,
        r#"{"Criterion": {"service.nope": {"Equals": ["x"]}}}"#,
    )
    .unwrap();
    let unknown_op = dir.path().join("o.json");
    std::fs::write(&unknown_op, r#"{"Criterion": {"severity": {"Around": 5}}}"#).unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "findings".into(),
                "--filter".into(),
                "no-such-filter".into(),
            ],
            "no saved filter named \"no-such-filter\"",
        ),
        (
            vec!["filter".into(), "import".into(), "no-such-filter".into()],
            "no saved filter named \"no-such-filter\"",
        ),
        (
            vec![
                "findings".into(),
                "--detector-id".into(),
                "0123456789abcdef0123456789abcdef".into(),
            ],
            "0123456789abcdef0123456789abcdef",
        ),
        (
            vec![
                "findings".into(),
                "--criteria".into(),
                unknown_field.to_str().unwrap().into(),
            ],
            "unknown criterion attribute \"service.nope\"",
        ),
        (
            vec![
                "findings".into(),
                "--criteria".into(),
                unknown_op.to_str().unwrap().into(),
            ],
            "unknown field `Around`",
        ),
        (
            vec![
                "findings".into(),
                "--playbook".into(),
                "no-such-playbook".into(),
            ],
            "no playbook named \"no-such-playbook\"",
        ),
        (
            vec!["findings".into(), "--since".into(), "7y".into()],
            "--since: \"7y\"",
        ),
        (
            vec!["archive".into(), "not an id".into()],
            "\"not an id\" is not a GuardDuty finding id",
        ),
    ];
    for (args, want) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = g.responder(&args, None);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        let line = one_line(&out.stderr);
        assert!(line.contains(want), "{args:?}: {line}");
        assert!(!out.stderr.contains("panicked"));
    }
    // A page token GuardDuty refuses.
    g.endpoint.fail_page_token(1);
    let out = g.responder(&["findings"], None);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let line = one_line(&out.stderr);
    assert!(
        line.contains("ListFindings")
            && line.contains("nextToken is invalid")
            && line.contains(&g.detector),
        "{line}"
    );
}

#[derive(serde::Deserialize)]
struct Doc {
    #[serde(rename = "match")]
    m: Criteria,
    #[serde(default)]
    exclude: Vec<Criteria>,
}

fn doc_selects(doc: &Doc, f: &Finding) -> bool {
    CompiledCriteria::compile(&doc.m)
        .unwrap()
        .evaluate(f, false)
        .is_ok()
        && doc.exclude.iter().all(|e| {
            CompiledCriteria::compile(e)
                .unwrap()
                .evaluate(f, false)
                .is_err()
        })
}

#[tokio::test(flavor = "multi_thread")]
async fn saved_filters_both_ways() {
    let g = gd().await;
    // A filter saved by someone else, every operator family, deprecated ones too.
    let saved = parse_criteria(
        r#"{"Criterion": {
            "type": {"NotMatches": ["*:IAMUser/*"]},
            "severity": {"Gte": 2, "LessThan": 9},
            "region": {"Eq": ["us-east-1", "us-west-2", "eu-west-1"]},
            "resource.resourceType": {"NotEquals": ["S3Bucket"]},
            "service.resourceRole": {"Neq": ["ACTOR"]},
            "updatedAt": {"GreaterThan": 1500000000000, "LessThanOrEqual": 4102444800000},
            "service.action.actionType": {"Matches": ["*_*"]}
        }}"#,
    )
    .unwrap();
    moto_put_filter(
        &account::sdk_config(&moto::endpoint()).await,
        &g.detector,
        "team-view",
        &saved,
    )
    .await;
    let out = g.responder(&["filter", "import", "team-view"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let doc: Doc =
        serde_saphyr::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}\n{}", out.stdout));
    let mut selected = 0;
    for f in &g.stored {
        let want = criteria_holds(&saved, f.raw());
        selected += usize::from(want);
        assert_eq!(doc_selects(&doc, f), want, "{}\n{}", f.id, out.stdout);
    }
    assert!(selected > 0 && selected < g.stored.len(), "{selected}");
    // And the same filter lists the same findings.
    let (ids, _) = g.listed_json(&["--filter", "team-view"]);
    assert_eq!(
        ids,
        g.ids(|f| !f.archived && criteria_holds(&saved, f.raw()))
    );

    // Export: exact playbooks create, then update, a NOOP filter.
    let engine = Engine::load(&root().join("playbooks")).unwrap();
    let p = engine
        .playbooks()
        .iter()
        .find(|p| p.playbook.name() == "low-severity-probes-ec2")
        .unwrap();
    let out = g.responder(
        &[
            "filter",
            "export",
            "low-severity-probes-ec2",
            "--name",
            "probes",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.starts_with("created saved filter \"probes\""),
        "{}",
        out.stdout
    );
    let (criteria, action) = moto_get_filter(
        &account::sdk_config(&moto::endpoint()).await,
        &g.detector,
        "probes",
    )
    .await;
    assert_eq!(action, "NOOP");
    let exported: FindingCriteria =
        responder_core::filter::export(p, responder_core::filter::ExportMode::Exact)
            .unwrap()
            .criteria;
    assert_eq!(criteria, exported);
    let out = g.responder(
        &[
            "filter",
            "export",
            "low-severity-probes-ec2",
            "--name",
            "probes",
        ],
        None,
    );
    assert!(
        out.stdout.starts_with("updated saved filter \"probes\""),
        "{}",
        out.stdout
    );
    // The console then shows exactly what the playbook answers.
    let (ids, _) = g.listed_json(&["--filter", "probes", "--include-archived"]);
    assert_eq!(ids, g.ids(|f| select::evaluate(p, f, false).is_ok()));
    assert!(!ids.is_empty());

    // A tag key=value exclusion cannot be said; --allow-broader leaves it out, saying so.
    // (The shipped exemption is the bare key, which can: this is crypto-mining-ec2 with
    // a key=value exemption.)
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root().join("playbooks/crypto-mining-ec2.yaml"))
        .unwrap()
        .replace(
            "\"guardduty-responder:exempt\"",
            "\"guardduty-responder:exempt=true\"",
        );
    std::fs::write(dir.path().join("crypto-mining-ec2.yaml"), text).unwrap();
    let playbooks = dir.path().to_str().unwrap();
    let out = g.responder(
        &[
            "filter",
            "export",
            "crypto-mining-ec2",
            "--name",
            "crypto",
            "--playbooks",
            playbooks,
        ],
        None,
    );
    assert_eq!(out.code, 2);
    assert!(
        one_line(&out.stderr).contains("exclude[0].tags: guardduty-responder:exempt=true"),
        "{}",
        out.stderr
    );
    let out = g.responder(
        &[
            "filter",
            "export",
            "crypto-mining-ec2",
            "--name",
            "crypto",
            "--allow-broader",
            "--playbooks",
            playbooks,
        ],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.starts_with("warning: left out exclude[0].tags"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.starts_with("created saved filter \"crypto\""));
}

#[tokio::test(flavor = "multi_thread")]
async fn archive_and_unarchive_from_the_terminal() {
    let g = gd().await;
    let out = g.responder(&["archive", "c000", "c001"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout.trim(),
        format!("archived 2 findings on detector {}", g.detector)
    );
    for id in ["c000", "c001"] {
        assert_eq!(
            g.endpoint.finding(&g.detector, id).unwrap()["service"]["archived"],
            json!(true)
        );
    }
    let (ids, _) = g.listed_json(&[]);
    assert!(!ids.contains("c000"));
    let out = g.responder(&["archive", "--unarchive", "c000"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        g.endpoint.finding(&g.detector, "c000").unwrap()["service"]["archived"],
        json!(false)
    );
    // A member account is told who may.
    g.endpoint.refuse_archive_as_member(&g.detector);
    let out = g.responder(&["archive", "c002"], None);
    assert_eq!(out.code, 2);
    assert!(
        one_line(&out.stderr).contains("only the administrator account may archive or unarchive the findings of member accounts"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn run_text_starts_with_the_severity_header_and_shows_details() {
    let g = gd().await;
    let file = root().join("playbooks/tests/findings/bitcoin-dns.json");
    let decoded = decode_bytes(&std::fs::read(&file).unwrap()).unwrap();
    let mut counts = SeverityCounts::default();
    decoded.iter().flatten().for_each(|f| counts.observe(f));
    let out = g.responder(
        &[
            "run",
            "--no-verify",
            "--dry-run",
            "--details",
            file.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.code == 0 || out.code == 1, "{}", out.stderr);
    assert_eq!(out.stdout.lines().next().unwrap(), counts.to_string());
    let id = &decoded[0].as_ref().unwrap().id;
    assert!(
        out.stdout.contains(&format!("── {id} ──")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("Type             CryptoCurrency:EC2/BitcoinTool.B!DNS"),
        "{}",
        out.stdout
    );
}
