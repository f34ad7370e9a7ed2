//! Throughput of the finding path on 100,000-finding batches: JSON parse alone into a
//! `Value` (the old baseline), `decode_bytes` (every finding decoded and kept), and the
//! streamed full path `responder plan` takes: `Findings` over the array, decode +
//! `Engine::plan` for each finding, dropped when planned.
//!
//! Two batches: `corpus` cycles through every file in `playbooks/tests/findings`
//! (envelopes and bare findings, camelCase and PascalCase, about 6 KB each once
//! compacted); `small` repeats `bitcoin-dns.json` with its long arrays trimmed (about
//! 2 KB, the lower end of what EventBridge delivers), to show the per-finding cost
//! independent of JSON size. Each copy gets its own finding id.
//!
//! Since issue 12 a top-level array has no size limit (each element has one,
//! `MAX_FINDING_BYTES`), so every bench takes the one array.
//!
//! `wide` is one finding with 20,000 distinct probe IPs and 20,000 network interfaces
//! in as many VPCs: it guards against planning that is quadratic in list lengths.
//!
//! Run: `cargo bench -p responder-core --bench plan_throughput`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use responder_core::{Engine, Findings, decode_bytes};
use serde_json::{Map, Value};

/// Findings per batch.
const BATCH: usize = 100_000;
/// Stands in for the finding id while a template is serialised.
const MARKER: &str = "__plan_throughput_finding_id__";

fn playbooks_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../playbooks")
}

/// One finding file, compacted, split around its finding id.
struct Template {
    name: String,
    head: Vec<u8>,
    id: String,
    tail: Vec<u8>,
}

/// The finding object: `detail` of an envelope, or the document itself.
fn finding_object(doc: &mut Value) -> &mut Map<String, Value> {
    let envelope = matches!(doc.get("detail"), Some(Value::Object(_)));
    let finding = if envelope { &mut doc["detail"] } else { doc };
    finding.as_object_mut().expect("a finding is a JSON object")
}

fn template(name: &str, mut doc: Value) -> Template {
    let finding = finding_object(&mut doc);
    let key = if finding.contains_key("id") {
        "id"
    } else {
        "Id"
    };
    let id = finding
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{name}: finding has no string `id`/`Id`"))
        .to_owned();
    finding.insert(key.to_owned(), Value::String(MARKER.to_owned()));
    let bytes = serde_json::to_vec(&doc).unwrap();
    let at = bytes
        .windows(MARKER.len())
        .position(|w| w == MARKER.as_bytes())
        .unwrap();
    Template {
        name: name.to_owned(),
        head: bytes[..at].to_vec(),
        id,
        tail: bytes[at + MARKER.len()..].to_vec(),
    }
}

fn read_json(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `*.json` in `playbooks/tests/findings`, by name; only the files named in
/// `PLAN_BENCH_FILES` (comma-separated file names) when it is set, e.g. the 17 files
/// the corpus batch had before issue 12 (a 6.0 KB mean) to compare like for like.
fn corpus_templates() -> Vec<Template> {
    let only: Option<Vec<String>> = std::env::var("PLAN_BENCH_FILES")
        .ok()
        .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect());
    let dir = playbooks_dir().join("tests/findings");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter(|p| {
            only.as_ref().is_none_or(|names| {
                names
                    .iter()
                    .any(|n| p.file_name().is_some_and(|f| f.to_string_lossy() == *n))
            })
        })
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no findings in {}", dir.display());
    paths
        .iter()
        .map(|p| template(&p.file_name().unwrap().to_string_lossy(), read_json(p)))
        .collect()
}

/// `bitcoin-dns.json` cut down to about 2 KB: one network interface with no secondary
/// address list, no product codes, no threat-intelligence evidence, and none of the
/// free-text fields no playbook reads (description, image description, additional info).
fn small_template() -> Template {
    let mut doc = read_json(&playbooks_dir().join("tests/findings/bitcoin-dns.json"));
    let finding = finding_object(&mut doc);
    finding.remove("description");
    let service = finding["service"].as_object_mut().unwrap();
    service.remove("evidence");
    service.remove("additionalInfo");
    let instance = finding["resource"]["instanceDetails"]
        .as_object_mut()
        .unwrap();
    instance.remove("imageDescription");
    instance.insert("productCodes".to_owned(), Value::Array(Vec::new()));
    let enis = instance["networkInterfaces"].as_array_mut().unwrap();
    enis.truncate(1);
    enis[0]["privateIpAddresses"] = Value::Array(Vec::new());
    template("bitcoin-dns.json (trimmed)", doc)
}

/// A JSON array of the findings numbered `range`, cycling through `templates`; copy
/// `i` has finding id `<original id>-<i>`.
fn array(templates: &[Template], range: Range<usize>) -> Vec<u8> {
    let mean = templates
        .iter()
        .map(|t| t.head.len() + t.tail.len())
        .sum::<usize>()
        / templates.len();
    let mut out = Vec::with_capacity(range.len() * (mean + 48) + 2);
    out.push(b'[');
    for i in range.clone() {
        if i != range.start {
            out.push(b',');
        }
        let t = &templates[i % templates.len()];
        out.extend_from_slice(&t.head);
        write!(out, "{}-{i}", t.id).unwrap();
        out.extend_from_slice(&t.tail);
    }
    out.push(b']');
    out
}

/// A batch of `BATCH` findings as one compact JSON array.
struct Batch {
    whole: Vec<u8>,
}

impl Batch {
    fn build(label: &str, templates: &[Template]) -> Batch {
        let start = Instant::now();
        let whole = array(templates, 0..BATCH);
        println!(
            "{label}: {BATCH} findings from {} template(s), one array of {} bytes ({:.1} MiB), \
             mean {:.0} bytes/finding (built in {:.1?})",
            templates.len(),
            whole.len(),
            whole.len() as f64 / (1024.0 * 1024.0),
            whole.len() as f64 / BATCH as f64,
            start.elapsed()
        );
        for t in templates {
            println!(
                "  template {:<62} {:>6} bytes",
                t.name,
                t.head.len() + t.id.len() + t.tail.len()
            );
        }
        Batch { whole }
    }

    /// Checks every finding decodes and says what the plans are, once, untimed.
    fn describe(&self, label: &str, engine: &Engine) {
        let mut decoded = 0usize;
        let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
        {
            for finding in Findings::new(&self.whole[..]) {
                let finding = finding
                    .unwrap()
                    .unwrap_or_else(|e| panic!("{label}: a finding does not decode: {e}"));
                decoded += 1;
                let outcome = match engine.plan(&finding, false) {
                    Ok(plan) => match plan.playbook {
                        Some(p) => format!("playbook {p} ({} steps)", plan.steps.len()),
                        None => "no playbook".to_owned(),
                    },
                    Err(e) => format!("plan error: {e}"),
                };
                *outcomes.entry(outcome).or_default() += 1;
            }
        }
        assert_eq!(decoded, BATCH, "{label}: every finding decodes");
        println!("{label}: plan outcomes per {BATCH} findings:");
        for (outcome, n) in outcomes {
            println!("  {n:>6}  {outcome}");
        }
    }
}

fn decode_all(whole: &[u8]) -> usize {
    let findings = decode_bytes(black_box(whole)).unwrap();
    let n = findings.len();
    black_box(findings);
    n
}

/// The path of `responder plan`: each finding decoded, planned and dropped in turn.
fn decode_and_plan_all(whole: &[u8], engine: &Engine) -> usize {
    let mut planned = 0;
    for finding in Findings::new(black_box(whole)).flatten().flatten() {
        if black_box(engine.plan(&finding, false)).is_ok() {
            planned += 1;
        }
    }
    planned
}

fn configure<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    // Every iteration is a pass over the whole batch (seconds), so: the minimum of 10
    // samples of one iteration each, one warm-up iteration.
    group
        .throughput(Throughput::Elements(BATCH as u64))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1))
        .nresamples(10_000);
    group
}

/// Benches one batch. The batch is built on first use, so a filter that leaves the
/// group out (`cargo bench ... -- small`) skips building it.
fn bench_batch(c: &mut Criterion, label: &str, templates: &[Template], engine: &Engine) {
    let batch: OnceCell<Batch> = OnceCell::new();
    let batch = || {
        batch.get_or_init(|| {
            let b = Batch::build(label, templates);
            b.describe(label, engine);
            b
        })
    };
    let mut group = configure(c, label);
    group.bench_function("parse_alone", |b| {
        let whole = &batch().whole;
        b.iter(|| serde_json::from_slice::<Value>(black_box(whole)).unwrap())
    });
    group.bench_function("decode_bytes", |b| {
        let whole = &batch().whole;
        b.iter(|| decode_all(whole))
    });
    group.bench_function("decode_and_plan", |b| {
        let whole = &batch().whole;
        b.iter(|| decode_and_plan_all(whole, engine))
    });
    group.finish();
}

/// Distinct probe IPs and network interfaces (each in its own VPC) in the `wide`
/// finding.
const WIDE: usize = 20_000;

/// One `bitcoin-dns.json` finding listing [`WIDE`] port probes from distinct addresses
/// and [`WIDE`] network interfaces in distinct VPCs (about 4 MB): planning was
/// quadratic in both (a `Vec::contains` per address).
fn wide_finding() -> Vec<u8> {
    let mut doc = read_json(&playbooks_dir().join("tests/findings/bitcoin-dns.json"));
    let finding = finding_object(&mut doc);
    let probes: Vec<Value> = (0..WIDE)
        .map(|i| {
            serde_json::json!({"localPortDetails": {"port": i % 65_536},
                "remoteIpDetails": {"ipAddressV4": format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255)}})
        })
        .collect();
    finding["service"]["action"] = serde_json::json!({
        "actionType": "PORT_PROBE", "portProbeAction": {"portProbeDetails": probes}
    });
    let enis: Vec<Value> = (0..WIDE)
        .map(|i| {
            serde_json::json!({"networkInterfaceId": format!("eni-{i:017x}"),
                "vpcId": format!("vpc-{i:017x}"), "subnetId": format!("subnet-{i:017x}")})
        })
        .collect();
    finding["resource"]["instanceDetails"]["networkInterfaces"] = Value::Array(enis);
    serde_json::to_vec(&doc).unwrap()
}

/// Decode and plan the one [`wide_finding`].
fn bench_wide(c: &mut Criterion, engine: &Engine) {
    let bytes = wide_finding();
    let mut group = c.benchmark_group("wide");
    group
        .throughput(Throughput::Bytes(bytes.len() as u64))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1));
    group.bench_function("decode_and_plan", |b| {
        b.iter(|| {
            let f = decode_bytes(black_box(&bytes)).unwrap().remove(0).unwrap();
            assert_eq!(f.remote_ips.len(), WIDE);
            engine.plan(&f, false).unwrap()
        })
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    let engine =
        Engine::load(&playbooks_dir()).unwrap_or_else(|d| panic!("playbooks do not load: {d:?}"));
    bench_batch(c, "corpus", &corpus_templates(), &engine);
    bench_batch(c, "small", &[small_template()], &engine);
    bench_wide(c, &engine);
}

criterion_group!(plan_throughput, benches);
criterion_main!(plan_throughput);
