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
//!
//! Then the organization case: a second sample instance in member account
//! 111111111111 (launched with the member role's credentials: the emulator lets
//! anyone assume it), a finding about it held by the administrator's detector, and
//! the same responder answering it in the member account through the assumed member
//! role; the report names the account, and the administrator's account is shown
//! not to hold the instance.

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
use responder_aws::deployment::{self, DeploymentSettings, Wiring};
use responder_aws::ledger::{Ledger, rfc3339_ms};
use responder_aws::render::report_text;
use responder_aws::responder::{Answer as Response, Responder};
use responder_aws::{ClientPool, Clients};
use responder_core::Engine;
use serde_json::{Value, json};

const EVENT: &str = include_str!("../../../playbooks/tests/findings/bitcoin-dns.json");
const ACCOUNT: &str = "123456789012";
/// The member account of the organization part: the emulator's AssumeRole into it
/// always succeeds (no role or trust policy is checked).
const MEMBER: &str = "111111111111";
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
        let event = event_for(&launched, ACCOUNT);
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
        // The deployment, as the function's environment: the same variables configure
        // the function binary (--lambda) and, through the same reader and builder, the
        // responder in this process.
        let env = deployment_env(dry_run, &detector);
        let settings = match DeploymentSettings::from_env(|k| {
            env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
        }) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("the demo's deployment settings: {e}");
                return 1;
            }
        };
        // Member accounts are reached through the member role, as the function does:
        // the demo's own pool (home: the emulator's default account) sets up the
        // member's sample instance.
        let pool = || ClientPool::new(clients.clone(), &config, settings.account_settings());
        let answerer = match lambda {
            Some(binary) => Answerer::Lambda(
                binary,
                Deployment {
                    endpoint,
                    guardduty_url: &guardduty.url,
                    env: &env,
                },
            ),
            None => {
                let gd_config = match Clients::emulator(&guardduty.url, REGION).await {
                    Ok(c) => c,
                    Err(e) => {
                        eprintln!("{e}");
                        return 1;
                    }
                };
                let engine = match deployment::engine_with_settings(&settings, engine) {
                    Ok(e) => e,
                    Err(problems) => {
                        eprintln!("{}", problems.join("\n"));
                        return 1;
                    }
                };
                // GuardDuty at the local findings endpoint, the rest at the emulator.
                let wiring = Wiring {
                    config: &config,
                    clients: Clients {
                        guardduty: Clients::new(&gd_config).guardduty,
                        ..clients.clone()
                    },
                };
                let responder = deployment::responder(&settings, engine, wiring);
                Answerer::InProcess(Box::new(responder))
            }
        };
        match lambda {
            Some(_) => println!("\n== 3. the Lambda function answers the event{dry}"),
            None => println!("\n== 3. the response{dry}"),
        }
        let status = answerer.answer(event).await;
        report_verification(status.as_deref(), &finding.id, guardduty.calls("GetFindings"));

        println!("\n== 4. what the emulator says now");
        print_state(&ec2, &launched.instance_id).await;
        print_replacements(&ec2, &launched.instance_id).await;
        print_history(&ledger, &finding.id).await;

        let member = member(&pool(), &answerer, &guardduty, &ledger).await;
        u8::from(status.is_none() || !member)
    })
}

/// Who answers the demo's events.
enum Answerer<'a> {
    /// The function binary, one process per event, through a local Runtime API.
    Lambda(&'a Path, Deployment<'a>),
    /// The engine and executor in this process (without `--lambda`).
    InProcess(Box<Responder>),
}

impl Answerer<'_> {
    /// Answers `event` and prints the report: its status, or `None` when the
    /// response failed or gave no answer.
    async fn answer(&self, event: Value) -> Option<String> {
        match self {
            Answerer::Lambda(binary, deployment) => {
                match via_lambda(binary, deployment, event).await {
                    Ok(status) => status,
                    Err(e) => {
                        eprintln!("{e}");
                        None
                    }
                }
            }
            Answerer::InProcess(responder) => {
                let finding = match responder_core::decode_value(event).map(|mut v| v.remove(0)) {
                    Ok(Ok(f)) => f,
                    other => {
                        eprintln!("the event does not decode: {other:?}");
                        return None;
                    }
                };
                match responder.answer(&finding, "responder-demo").await {
                    Ok(Response::Responded(report)) => {
                        let body = serde_json::to_value(&report).unwrap_or(Value::Null);
                        print!("{}", report_text("demo", &report));
                        (!report.is_failure()).then(|| {
                            body.get("status")
                                .and_then(Value::as_str)
                                .unwrap_or("?")
                                .to_owned()
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
        }
    }
}

/// Says whether GuardDuty confirmed the finding before any step (`get_findings`:
/// GetFindings calls so far).
fn report_verification(status: Option<&str>, finding_id: &str, get_findings: usize) {
    match status {
        Some("unverified") => {
            println!("   GuardDuty did not confirm the finding: unverified, nothing done")
        }
        Some(_) if get_findings > 0 => println!(
            "   verified: GuardDuty confirmed finding {finding_id} (GetFindings x{get_findings} so far) before any step ran"
        ),
        _ => {}
    }
}

/// The organization part: a sample instance in the member account [`MEMBER`]
/// (launched with the member role's credentials), a finding about it stored in the
/// administrator's detector as GuardDuty stores members' findings, answered in the
/// member account through the assumed role, and the member account's state after.
/// `true` when the response succeeded (or its dry run passed) in the member
/// account: an answer from the wrong account ("instance-gone") fails the demo.
async fn member(
    pool: &ClientPool,
    answerer: &Answerer<'_>,
    guardduty: &guardduty::Endpoint,
    ledger: &Ledger,
) -> bool {
    let role = pool.role_arn(MEMBER);
    println!("\n== 5. a finding about an instance in member account {MEMBER}");
    let member = match pool.clients(MEMBER, REGION, "demo-setup").await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cannot reach member account {MEMBER}: {e}");
            return false;
        }
    };
    let launched = match launch(&member.ec2).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot set up the member's sample instance: {e}");
            return false;
        }
    };
    println!(
        "   {} in account {MEMBER} (launched as {role}), ENIs {}",
        launched.instance_id,
        launched.enis.join(", ")
    );
    print_state(&member.ec2, &launched.instance_id).await;
    let event = event_for(&launched, MEMBER);
    let finding_id = event["detail"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    guardduty.put(event["detail"].clone());
    println!(
        "   the administrator's GuardDuty (detector {}) holds member finding {finding_id} (accountId {MEMBER}); the responder assumes {role} to act there",
        guardduty.detector()
    );
    let status = answerer.answer(event).await;
    report_verification(
        status.as_deref(),
        &finding_id,
        guardduty.calls("GetFindings"),
    );
    println!("\n== 6. what the emulator says now in member account {MEMBER}");
    print_state(&member.ec2, &launched.instance_id).await;
    print_replacements(&member.ec2, &launched.instance_id).await;
    print_history(ledger, &finding_id).await;
    // The administrator's account does not know the member's instance: the
    // response acted in the member account only.
    let home = pool
        .home()
        .ec2
        .describe_instances()
        .instance_ids(&launched.instance_id)
        .send()
        .await;
    let seen = home.map(|o| !o.reservations().is_empty()).unwrap_or(false);
    println!(
        "   administrator's account {ACCOUNT}: {}",
        if seen {
            "holds the member's instance too (unexpected)"
        } else {
            "has no such instance: nothing was done there"
        }
    );
    !seen && matches!(status.as_deref(), Some("succeeded" | "dry-run-passed"))
}

/// What the function is deployed with.
struct Deployment<'a> {
    /// The emulator (`AWS_ENDPOINT_URL`).
    endpoint: &'a str,
    /// The local GuardDuty findings endpoint (`AWS_ENDPOINT_URL_GUARDDUTY`).
    guardduty_url: &'a str,
    /// The deployment's variables (`deployment_env`).
    env: &'a [(&'static str, String)],
}

/// The demo deployment's settings, as the function reads them from its environment:
/// the mode, the ledger, the administrator's detector and its own account.
fn deployment_env(dry_run: bool, detector: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "RESPONDER_MODE",
            if dry_run { "dry-run" } else { "enforce" }.to_owned(),
        ),
        ("LEDGER_TABLE", LEDGER_TABLE.to_owned()),
        ("DETECTOR_ID", detector.to_owned()),
        ("HOME_ACCOUNT_ID", ACCOUNT.to_owned()),
    ]
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
    let mode = d
        .env
        .iter()
        .find(|(k, _)| *k == "RESPONDER_MODE")
        .map_or("dry-run", |(_, v)| v.as_str());
    let started = Instant::now();
    let mut child = function_command(binary, &api, d.endpoint, mode)
        .envs(d.env.iter().map(|(k, v)| (k, v)))
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
            match serde_json::from_value::<responder_aws::Report>(body.clone()) {
                Ok(report) => print!("{}", report_text("lambda", &report)),
                Err(_) => println!("   the function answered: {body}"),
            }
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

/// The shipped Bitcoin DNS event, pointed at the launched instance of `account`.
fn event_for(l: &Launched, account: &str) -> Value {
    let mut event: Value = serde_json::from_str(EVENT).unwrap_or(Value::Null);
    // EventBridge delivers members' findings in the administrator's account.
    event["account"] = json!(ACCOUNT);
    let d = &mut event["detail"];
    d["accountId"] = json!(account);
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
