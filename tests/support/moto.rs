//! One moto server per test process, started on first use and stopped by a watchdog
//! when the process is gone.
//!
//! `GDR_MOTO_ENDPOINT` (e.g. `http://127.0.0.1:5055`, as started by
//! `scripts/moto-server.sh start`) makes every test use that server instead. With
//! `GDR_IAM_RECORD` set, the endpoint is a recording proxy in front of the server
//! ([`crate::record`]).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The environment variable naming an already running moto server.
pub const ENDPOINT_VAR: &str = "GDR_MOTO_ENDPOINT";

/// How long a spawned server may take to answer `GET /moto-api/`.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Upper bound on the life of a spawned server, even if the watchdog never sees the
/// test process go (seconds).
const MAX_LIFETIME_SECONDS: u32 = 30 * 60;

/// An AMI of moto's default set, found with a name filter (listing them all is slow).
pub const IMAGE_NAME: &str = "amzn2-ami-hvm-2.0.20180810-x86_64-gp2";

static ENDPOINT: OnceLock<String> = OnceLock::new();

/// The workspace root (the folder holding `playbooks/` and `scripts/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// The moto endpoint shared by every test of this process, e.g. `http://127.0.0.1:40123`.
///
/// Uses `GDR_MOTO_ENDPOINT` when set; otherwise starts a server once per process.
/// Blocks (at most about 30 s plus the venv creation) on first use.
pub fn endpoint() -> String {
    ENDPOINT
        .get_or_init(|| {
            let moto = match std::env::var(ENDPOINT_VAR) {
                Ok(url) if !url.trim().is_empty() => url.trim().trim_end_matches('/').to_owned(),
                _ => start(),
            };
            match crate::record::Recorder::open() {
                Some(recorder) => recording_proxy(moto, recorder),
                None => moto,
            }
        })
        .clone()
}

/// A recording proxy in front of `moto` for the rest of the process, on a thread of
/// its own (tests run on many runtimes); its endpoint.
fn recording_proxy(moto: String, recorder: crate::record::Recorder) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("recording proxy: no runtime: {e}"));
        runtime.block_on(async move {
            let proxy = crate::fault::FaultProxy::recording(&moto, recorder).await;
            let _ = tx.send(proxy.endpoint.clone());
            // Serves until the process ends.
            std::future::pending::<()>().await;
        });
    });
    rx.recv()
        .unwrap_or_else(|e| panic!("recording proxy did not start: {e}"))
}

/// Starts moto on a free port with a watchdog, waits until it answers, warms EC2.
fn start() -> String {
    let bin = venv_bin();
    let port = free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let log = std::env::temp_dir().join(format!("gdr-moto-{port}.log"));
    let log_file = std::fs::File::create(&log)
        .unwrap_or_else(|e| panic!("cannot create the moto log {}: {e}", log.display()));
    let log_err = log_file
        .try_clone()
        .unwrap_or_else(|e| panic!("cannot clone the moto log handle: {e}"));
    // The watchdog: moto runs in the background; the shell polls the test process
    // every second and kills moto when it is gone (or after MAX_LIFETIME_SECONDS,
    // or when moto itself exited).
    let script = r#"
"$0" -H 127.0.0.1 -p "$1" &
moto=$!
trap 'kill $moto 2>/dev/null' EXIT INT TERM HUP
i=0
while kill -0 "$2" 2>/dev/null && kill -0 "$moto" 2>/dev/null && [ "$i" -lt "$3" ]; do
  sleep 1
  i=$((i + 1))
done
kill "$moto" 2>/dev/null
"#;
    let child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(bin.join("moto_server"))
        .arg(port.to_string())
        .arg(std::process::id().to_string())
        .arg(MAX_LIFETIME_SECONDS.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::from(log_file))
        .stderr(Stdio::from(log_err))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn moto_server from {}: {e}", bin.display()));
    // The watchdog outlives this handle on purpose; it is not waited for.
    drop(child);

    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if http_status(addr, "GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n") == Some(200) {
            break;
        }
        if Instant::now() >= deadline {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            panic!(
                "moto_server not ready on {addr} after {READY_TIMEOUT:?}; log {}:\n{}",
                log.display(),
                last_lines(&tail, 20)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    warm_up(addr);
    format!("http://{addr}")
}

/// Runs `scripts/moto-env.sh` and returns the venv's bin dir (its last stdout line).
fn venv_bin() -> PathBuf {
    let root = workspace_root();
    let out = Command::new("bash")
        .arg(root.join("scripts/moto-env.sh"))
        .current_dir(&root)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run scripts/moto-env.sh: {e}"));
    assert!(
        out.status.success(),
        "scripts/moto-env.sh failed with {}",
        out.status
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_else(|| panic!("scripts/moto-env.sh printed nothing"));
    PathBuf::from(line.trim())
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> u16 {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .unwrap_or_else(|e| panic!("cannot bind 127.0.0.1:0: {e}"));
    let port = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("no local address: {e}"))
        .port();
    drop(listener);
    port
}

/// Sends a raw HTTP/1.0 request and returns the status code, if any answer came.
fn http_status(addr: SocketAddr, request: &str) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .ok()?;
    stream.write_all(request.as_bytes()).ok()?;
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    // HTTP/1.0: the server closes the connection after the answer.
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&head);
    let status_line = text.lines().next()?;
    status_line.split_whitespace().nth(1)?.parse().ok()
}

/// The first EC2 call loads moto's default AMIs (3-5 s): make it once here, with a
/// name filter. moto routes on the credential scope and does not check signatures.
fn warm_up(addr: SocketAddr) {
    let body = format!(
        "Action=DescribeImages&Version=2016-11-15&Filter.1.Name=name&Filter.1.Value.1={IMAGE_NAME}"
    );
    let request = format!(
        "POST / HTTP/1.0\r\nHost: 127.0.0.1\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=AKIAWARMUP/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let status = http_status(addr, &request);
    assert_eq!(
        status,
        Some(200),
        "EC2 warm-up on {addr} answered {status:?}"
    );
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
