//! `responder-demo`: the whole response on a local emulator, start to finish
//! (`bash scripts/demo.sh` builds and runs it against moto). With `--lambda BINARY` the
//! response comes from the real function binary, driven through a local Lambda Runtime
//! API exactly as Lambda would drive it; without it, from the engine and executor in
//! this process. A development tool, not part of the shipped `responder` CLI: it keeps
//! the emulator set-up (sample instance, EC2 calls, the local Runtime API) out of it.
//!
//! As in production, the finding is verified with GuardDuty before anything is done
//! (a small local findings endpoint holds it: the emulator has no GuardDuty findings)
//! and what the response did is recorded in the ledger (a DynamoDB table the demo
//! creates in the emulator), which the demo prints afterwards.

mod guardduty;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, Filter, InstanceNetworkInterfaceSpecification,
    InstanceType, ResourceType, Tag, TagSpecification,
};
use clap::Parser;
use lambda_local::{Answer, RuntimeApi, function_command};
use responder_aws::ledger::{Ledger, rfc3339_ms};
use responder_aws::render::report_text;
use responder_aws::responder::{Answer as Response, Responder};
use responder_aws::verify::{DetectorSource, RetryPolicy, Verifier};
use responder_aws::{Clients, ExecOptions, Executor};
use responder_core::Engine;
use serde_json::{Value, json};

const EVENT: &str = include_str!("../../../playbooks/tests/findings/bitcoin-dns.json");
const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";
/// The ledger table the demo creates in the emulator (the SAM template's default).
const LEDGER_TABLE: &str = "guardduty-responder-ledger";

/// Demo against a local emulator: launch a sample instance, feed it a Bitcoin DNS
/// finding, respond, and show the state before and after. Never talks to real AWS.
#[derive(Debug, Parser)]
#[command(name = "responder-demo", version, long_about = None)]
struct Args {
    /// Playbook folder.
    #[arg(long, default_value = "playbooks")]
    playbooks: PathBuf,
    /// The emulator's endpoint (127.0.0.1, localhost or [::1]; never a real AWS
    /// endpoint).
    #[arg(long, default_value = "http://127.0.0.1:5055")]
    endpoint_url: String,
    /// DryRun every call.
    #[arg(long)]
    dry_run: bool,
    /// Respond through this Lambda function binary (`guardduty-responder`), driven
    /// through a local Runtime API, instead of in this process.
    #[arg(long, value_name = "BINARY")]
    lambda: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    ExitCode::from(run(
        &args.playbooks,
        &args.endpoint_url,
        args.dry_run,
        args.lambda.as_deref(),
    ))
}

/// Loads the playbooks, printing diagnostics to stderr. `None` when any is an error.
fn engine(dir: &Path) -> Option<Engine> {
    let (engine, lines) = Engine::load_reported(dir);
    for line in lines {
        eprintln!("{line}");
    }
    engine
}

/// Exit 0 when the response did what the playbook says, 1 otherwise.
pub fn run(playbooks: &Path, endpoint: &str, dry_run: bool, lambda: Option<&Path>) -> u8 {
    let Some(engine) = engine(playbooks) else {
        return 1;
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return 1;
        }
    };
    runtime.block_on(async {
        let config = match Clients::emulator(endpoint, REGION).await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{e}");
                return 1;
            }
        };
        let clients = Clients::new(&config);
        let ec2 = clients.ec2.clone();
        println!("== 1. launching a sample instance on {endpoint}");
        let launched = match launch(&ec2).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("cannot set up the sample instance: {e}\n(is the emulator running? bash scripts/demo.sh starts it)");
                return 1;
            }
        };
        println!("   {} with ENIs {}", launched.instance_id, launched.enis.join(", "));
        print_state(&ec2, &launched.instance_id).await;

        println!("\n== 2. a GuardDuty CryptoCurrency:EC2/BitcoinTool.B!DNS finding about it arrives");
        let event = event_for(&launched);
        let finding = match responder_core::decode_value(event.clone()).map(|mut v| v.remove(0)) {
            Ok(Ok(f)) => f,
            other => {
                eprintln!("the embedded event does not decode: {other:?}");
                return 1;
            }
        };
        let plan = match engine.plan(&finding, false) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("{e}");
                return 1;
            }
        };
        println!(
            "   playbook {} ({}): {}",
            plan.playbook.as_deref().unwrap_or("none"),
            plan.decision,
            plan.steps.iter().map(|s| s.action.name()).collect::<Vec<_>>().join(" -> ")
        );

        let ledger = Ledger::from_config(&config, LEDGER_TABLE);
        if let Err(e) = ledger.create_table().await {
            eprintln!("cannot create the ledger table {LEDGER_TABLE} in the emulator: {e}");
            return 1;
        }
        let detector = event["detail"]["service"]["detectorId"]
            .as_str()
            .unwrap_or("12abc34d567e8fa901bc2d34e56789f0")
            .to_owned();
        let guardduty = match guardduty::Endpoint::start(&detector).await {
            Ok(g) => g,
            Err(e) => {
                eprintln!("cannot start the local GuardDuty findings endpoint: {e}");
                return 1;
            }
        };
        guardduty.put(event["detail"].clone());
        println!(
            "   GuardDuty (a local findings endpoint, {}, detector {}) holds finding {}: it is verified with GetFindings before any step",
            guardduty.url,
            guardduty.detector(),
            finding.id
        );
        println!("   ledger: DynamoDB table {LEDGER_TABLE} in the emulator");

        let dry = if dry_run { " (DryRun: nothing changes)" } else { "" };
        let status = match lambda {
            Some(binary) => {
                println!("\n== 3. the Lambda function answers the event{dry}");
                let deployment = Deployment {
                    endpoint,
                    guardduty_url: &guardduty.url,
                    ledger_table: LEDGER_TABLE,
                    dry_run,
                };
                match via_lambda(binary, &deployment, event).await {
                    Ok(status) => status,
                    Err(e) => {
                        eprintln!("{e}");
                        None
                    }
                }
            }
            None => {
                println!("\n== 3. the response{dry}");
                let gd_config = match Clients::emulator(&guardduty.url, REGION).await {
                    Ok(c) => c,
                    Err(e) => {
                        eprintln!("{e}");
                        return 1;
                    }
                };
                let verifier = Verifier::new(
                    Clients::new(&gd_config).guardduty,
                    DetectorSource::Fixed(detector.clone()),
                    RetryPolicy::default(),
                );
                let executor = Executor::new(clients, ExecOptions { dry_run, topic_arn: None })
                    .with_ledger(Ledger::from_config(&config, LEDGER_TABLE));
                let responder = Responder::new(engine, executor, Some(verifier), 10);
                match responder.answer(&finding, "responder-demo").await {
                    Ok(Response::Responded(report)) => {
                        let body = serde_json::to_value(&report).unwrap_or(Value::Null);
                        print!("{}", report_text("demo", &body));
                        (!report.is_failure()).then(|| {
                            body.get("status").and_then(Value::as_str).unwrap_or("?").to_owned()
                        })
                    }
                    Ok(Response::NoAction { decision, .. }) => {
                        println!("   no action: {decision}");
                        Some("no-action".to_owned())
                    }
                    Err(e) => {
                        eprintln!("   no answer: {e}");
                        None
                    }
                }
            }
        };
        let get_findings = guardduty.calls("GetFindings");
        match status.as_deref() {
            Some("unverified") => println!(
                "   GuardDuty did not confirm the finding: unverified, nothing done"
            ),
            Some(_) if get_findings > 0 => println!(
                "   verified: GuardDuty confirmed finding {} (GetFindings x{get_findings}) before any step ran",
                finding.id
            ),
            _ => {}
        }

        println!("\n== 4. what the emulator says now");
        print_state(&ec2, &launched.instance_id).await;
        print_replacements(&ec2, &launched.instance_id).await;
        print_history(&ledger, &finding.id).await;
        u8::from(status.is_none())
    })
}

/// What the function is deployed with.
struct Deployment<'a> {
    /// The emulator (`AWS_ENDPOINT_URL`).
    endpoint: &'a str,
    /// The local GuardDuty findings endpoint (`AWS_ENDPOINT_URL_GUARDDUTY`).
    guardduty_url: &'a str,
    /// `LEDGER_TABLE`.
    ledger_table: &'a str,
    /// `RESPONDER_MODE=dry-run` rather than `enforce`.
    dry_run: bool,
}

/// Runs the function binary against a local Runtime API with the emulator as its AWS
/// endpoint (GuardDuty: the local findings endpoint), hands it the event and prints
/// its logs and its answer. The report's status, or `None` when the function
/// reported a failure (Lambda would retry the event).
async fn via_lambda(
    binary: &Path,
    d: &Deployment<'_>,
    event: Value,
) -> Result<Option<String>, String> {
    let mut api = RuntimeApi::start()
        .await
        .map_err(|e| format!("cannot start the local Runtime API: {e}"))?;
    let mode = if d.dry_run { "dry-run" } else { "enforce" };
    let started = Instant::now();
    let mut child = function_command(binary, &api, d.endpoint, mode)
        .env("LEDGER_TABLE", d.ledger_table)
        .env("AWS_ENDPOINT_URL_GUARDDUTY", d.guardduty_url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    // Drain both pipes on threads so the function never blocks on a full pipe.
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let answer = match api.ready(&mut child, Duration::from_secs(30)).await {
        Err(e) => Err(e.to_string()),
        Ok(()) => {
            println!(
                "   {} ({mode}) ready after {} ms (process start to its first /next)",
                binary.display(),
                started.elapsed().as_millis()
            );
            let id = api.invoke(event);
            api.answer(&id, Duration::from_secs(120))
                .await
                .ok_or_else(|| "the function did not answer within 120 s".to_owned())
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let logs: Vec<String> = [stdout, stderr]
        .into_iter()
        .flat_map(|t| t.join().unwrap_or_default())
        .collect();
    println!("   its log lines (JSON in Lambda; condensed here):");
    for line in &logs {
        println!("     {}", condense(line));
    }
    match answer? {
        Answer::Response(body) => {
            print!("{}", report_text("lambda", &body));
            let status = body.get("status").and_then(Value::as_str).unwrap_or("?");
            Ok((status != "failed").then(|| status.to_owned()))
        }
        Answer::Error(body) => {
            println!(
                "   the function answered with an error (Lambda retries, then dead-letters): {body}"
            );
            Ok(None)
        }
    }
}

/// Every line a pipe of the function carries, read on a thread until it closes.
fn drain<R: std::io::Read + Send + 'static>(pipe: Option<R>) -> JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        pipe.map(|p| BufReader::new(p).lines().map_while(Result::ok).collect())
            .unwrap_or_default()
    })
}

/// One function log line for people: level, message and fields of a tracing JSON
/// line; the metric names and values of an embedded-metric-format line; else as is.
fn condense(line: &str) -> String {
    let Ok(v) = serde_json::from_str::<Value>(line) else {
        return line.to_owned();
    };
    if v.get("_aws").is_some() {
        let metrics = [
            "Remediations",
            "RemediationFailures",
            "StepFailures",
            "TimeToIsolation",
        ]
        .iter()
        .filter_map(|k| v.get(*k).map(|x| format!("{k}={x}")))
        .collect::<Vec<_>>();
        return format!("metrics: {}", metrics.join(" "));
    }
    let Some(fields) = v.get("fields").and_then(Value::as_object) else {
        return line.to_owned();
    };
    let mut out = format!(
        "{} {}",
        v.get("level").and_then(Value::as_str).unwrap_or("?"),
        fields
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default()
    );
    for (k, x) in fields
        .iter()
        .filter(|(k, _)| k.as_str() != "message" && k.as_str() != "report")
    {
        let x = x.as_str().map_or_else(|| x.to_string(), str::to_owned);
        out.push_str(&format!(" {k}={x}"));
    }
    out
}

struct Launched {
    instance_id: String,
    image_id: String,
    vpc_id: String,
    subnet_id: String,
    enis: Vec<String>,
    groups: Vec<(String, String)>,
}

async fn launch(ec2: &aws_sdk_ec2::Client) -> Result<Launched, String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.0.0.0/16")
        .send()
        .await
        .map_err(|x| e(&x))?;
    let vpc_id = vpc
        .vpc()
        .and_then(|v| v.vpc_id())
        .unwrap_or_default()
        .to_owned();
    let subnet = ec2
        .create_subnet()
        .vpc_id(&vpc_id)
        .cidr_block("10.0.1.0/24")
        .send()
        .await
        .map_err(|x| e(&x))?;
    let subnet_id = subnet
        .subnet()
        .and_then(|s| s.subnet_id())
        .unwrap_or_default()
        .to_owned();
    let mut groups = Vec::new();
    for name in ["demo-web", "demo-admin"] {
        let g = ec2
            .create_security_group()
            .group_name(name)
            .description("guardduty-responder demo")
            .vpc_id(&vpc_id)
            .send()
            .await
            .map_err(|x| e(&x))?;
        groups.push((g.group_id().unwrap_or_default().to_owned(), name.to_owned()));
    }
    let images = ec2
        .describe_images()
        .owners("amazon")
        .send()
        .await
        .map_err(|x| e(&x))?;
    let image_id = images
        .images()
        .iter()
        .find_map(|i| i.image_id())
        .ok_or("the emulator has no AMI")?
        .to_owned();
    let nic = |index: i32, group: &str| {
        InstanceNetworkInterfaceSpecification::builder()
            .device_index(index)
            .subnet_id(&subnet_id)
            .groups(group)
            .build()
    };
    let run = ec2
        .run_instances()
        .image_id(&image_id)
        .instance_type(InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .network_interfaces(nic(0, &groups[0].0))
        .network_interfaces(nic(1, &groups[1].0))
        .block_device_mappings(
            BlockDeviceMapping::builder()
                .device_name("/dev/sdf")
                .ebs(EbsBlockDevice::builder().volume_size(8).build())
                .build(),
        )
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .tags(Tag::builder().key("Name").value("demo-web-1").build())
                .tags(Tag::builder().key("env").value("demo").build())
                .build(),
        )
        .send()
        .await
        .map_err(|x| e(&x))?;
    let instance = run.instances().first().ok_or("no instance launched")?;
    let mut enis: Vec<(i32, String)> = instance
        .network_interfaces()
        .iter()
        .map(|n| {
            (
                n.attachment().and_then(|a| a.device_index()).unwrap_or(0),
                n.network_interface_id().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    enis.sort();
    Ok(Launched {
        instance_id: instance.instance_id().unwrap_or_default().to_owned(),
        image_id,
        vpc_id,
        subnet_id,
        enis: enis.into_iter().map(|(_, id)| id).collect(),
        groups,
    })
}

/// The shipped Bitcoin DNS event, pointed at the launched instance.
fn event_for(l: &Launched) -> Value {
    let mut event: Value = serde_json::from_str(EVENT).unwrap_or(Value::Null);
    event["account"] = json!(ACCOUNT);
    let d = &mut event["detail"];
    d["accountId"] = json!(ACCOUNT);
    d["region"] = json!(REGION);
    d["id"] = json!(format!("demo{}", l.instance_id.trim_start_matches("i-")));
    let i = &mut d["resource"]["instanceDetails"];
    i["instanceId"] = json!(l.instance_id);
    i["imageId"] = json!(l.image_id);
    i["iamInstanceProfile"] = Value::Null;
    i["networkInterfaces"] = Value::Array(
        l.enis
            .iter()
            .zip(&l.groups)
            .map(|(eni, (gid, gname))| {
                json!({"networkInterfaceId": eni, "vpcId": l.vpc_id, "subnetId": l.subnet_id,
                       "securityGroups": [{"groupId": gid, "groupName": gname}]})
            })
            .collect(),
    );
    event
}

async fn print_state(ec2: &aws_sdk_ec2::Client, id: &str) {
    let enis = ec2
        .describe_network_interfaces()
        .filters(
            Filter::builder()
                .name("attachment.instance-id")
                .values(id)
                .build(),
        )
        .send()
        .await;
    let names = group_names(ec2).await;
    if let Ok(out) = enis {
        for n in out.network_interfaces() {
            let groups: Vec<String> = n
                .groups()
                .iter()
                .map(|g| {
                    names
                        .get(g.group_id().unwrap_or_default())
                        .cloned()
                        .unwrap_or_default()
                })
                .collect();
            println!(
                "   {} groups: {}",
                n.network_interface_id().unwrap_or_default(),
                groups.join(", ")
            );
        }
    }
    if let Ok(out) = ec2.describe_instances().instance_ids(id).send().await {
        for i in out.reservations().iter().flat_map(|r| r.instances()) {
            println!(
                "   {} state: {}",
                id,
                i.state()
                    .and_then(|s| s.name())
                    .map(|n| n.as_str())
                    .unwrap_or("?")
            );
        }
    }
    let snaps = ec2
        .describe_snapshots()
        .owner_ids("self")
        .filters(
            Filter::builder()
                .name("tag:guardduty-responder:instance-id")
                .values(id)
                .build(),
        )
        .send()
        .await;
    if let Ok(out) = snaps {
        println!("   evidence snapshots: {}", out.snapshots().len());
    }
}

/// The ledger's records of the finding, as `responder history --finding` lists them:
/// what the responder itself recorded, not what tags say.
async fn print_history(ledger: &Ledger, finding_id: &str) {
    println!(
        "   ledger {} (responder history --finding {finding_id}):",
        ledger.table()
    );
    match ledger.history(Some(finding_id), None).await {
        Ok(records) if records.is_empty() => {
            println!("     no records (a dry run takes no step)");
        }
        Ok(records) => {
            for r in records {
                println!(
                    "     {} {} step {} {:<10} {:<7} {:<13} {}",
                    rfc3339_ms(r.recorded_at),
                    r.instance_id,
                    r.index,
                    r.step,
                    r.status.as_str(),
                    r.outcome,
                    r.resources.join(" ")
                );
            }
        }
        Err(e) => println!("     cannot read the ledger: {e}"),
    }
}

async fn print_replacements(ec2: &aws_sdk_ec2::Client, id: &str) {
    let out = ec2
        .describe_instances()
        .filters(
            Filter::builder()
                .name("tag:guardduty-responder:replaces")
                .values(id)
                .build(),
        )
        .send()
        .await;
    let Ok(out) = out else { return };
    let names = group_names(ec2).await;
    for i in out.reservations().iter().flat_map(|r| r.instances()) {
        let groups: Vec<String> = i
            .network_interfaces()
            .iter()
            .flat_map(|n| n.groups())
            .map(|g| {
                names
                    .get(g.group_id().unwrap_or_default())
                    .cloned()
                    .unwrap_or_default()
            })
            .collect();
        println!(
            "   replacement {}: {}, IMDSv2 {}, public IP {}, groups {}",
            i.instance_id().unwrap_or_default(),
            i.state()
                .and_then(|s| s.name())
                .map(|n| n.as_str())
                .unwrap_or("?"),
            i.metadata_options()
                .and_then(|m| m.http_tokens())
                .map(|t| t.as_str())
                .unwrap_or("?"),
            i.public_ip_address().unwrap_or("none"),
            groups.join(", ")
        );
    }
}

async fn group_names(ec2: &aws_sdk_ec2::Client) -> BTreeMap<String, String> {
    match ec2.describe_security_groups().send().await {
        Ok(out) => out
            .security_groups()
            .iter()
            .filter_map(|g| {
                Some((
                    g.group_id()?.to_owned(),
                    g.group_name().unwrap_or_default().to_owned(),
                ))
            })
            .collect(),
        Err(_) => BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::condense;

    #[test]
    fn log_lines_are_condensed_for_people() {
        let step = r#"{"timestamp":"t","level":"INFO","fields":{"duration_ms":109,"message":"step","outcome":"done","step":"isolate"},"target":"responder_aws"}"#;
        assert_eq!(
            condense(step),
            "INFO step duration_ms=109 outcome=done step=isolate"
        );
        let emf = r#"{"_aws":{"Timestamp":1},"Playbook":"p","Remediations":1,"RemediationFailures":0,"StepFailures":0,"TimeToIsolation":49}"#;
        assert_eq!(
            condense(emf),
            "metrics: Remediations=1 RemediationFailures=0 StepFailures=0 TimeToIsolation=49"
        );
        let failed =
            r#"{"level":"ERROR","fields":{"message":"remediation failed","report":"{...}"}}"#;
        assert_eq!(condense(failed), "ERROR remediation failed");
        assert_eq!(condense("not json"), "not json");
    }
}
