//! A minimal local GuardDuty findings endpoint for the demo: the function verifies
//! every finding with GetFindings before acting, and the emulator (moto) holds no
//! GuardDuty findings. It serves, on 127.0.0.1, the few REST-JSON operations the
//! responder calls, for one detector and the findings the demo puts in it:
//! ListDetectors (`GET /detector`), GetFindings (`POST /detector/{id}/findings/get`)
//! and ArchiveFindings (`POST /detector/{id}/findings/archive`). Anything else is a
//! GuardDuty `BadRequestException`. One request per connection, every read bounded in
//! time and size. (The tests use the fuller `responder_tests::FindingsEndpoint`; the
//! demo carries this one so that it builds without the tests' SDK features.)

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// Bound on every read and write.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on a request head plus body.
const MAX_REQUEST: usize = 1024 * 1024;

#[derive(Debug, Default)]
struct State {
    /// finding id -> the finding (camelCase, as GetFindings answers it).
    findings: BTreeMap<String, Value>,
    /// operation name -> requests served.
    calls: BTreeMap<&'static str, usize>,
}

/// The running endpoint; stops when dropped.
pub struct Endpoint {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    detector: String,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Endpoint {
    /// Starts the endpoint with one detector, `detector`, on a free port.
    pub async fn start(detector: &str) -> std::io::Result<Endpoint> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        let owned = detector.to_owned();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = Arc::clone(&shared);
                let detector = owned.clone();
                tokio::spawn(async move {
                    // A broken connection only fails the call that made it.
                    let _ = serve(stream, &detector, &state).await;
                });
            }
        });
        Ok(Endpoint {
            url,
            detector: detector.to_owned(),
            state,
            task,
        })
    }

    /// The detector it holds.
    pub fn detector(&self) -> &str {
        &self.detector
    }

    /// Holds `finding` (an EventBridge event's `detail`): GuardDuty confirms it.
    pub fn put(&self, finding: Value) {
        let id = finding
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        lock(&self.state).findings.insert(id, finding);
    }

    /// Requests served for an operation (`ListDetectors`, `GetFindings`, ...).
    pub fn calls(&self, operation: &str) -> usize {
        lock(&self.state).calls.get(operation).copied().unwrap_or(0)
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one request (head and `Content-Length` body) and answers it.
async fn serve(mut stream: TcpStream, detector: &str, state: &Mutex<State>) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_REQUEST {
            return Err(std::io::Error::other("request head too large"));
        }
        let n = timeout(IO_TIMEOUT, stream.read(&mut chunk))
            .await
            .map_err(|_| std::io::Error::other("read timed out"))??;
        if n == 0 {
            return Err(std::io::Error::other("connection closed mid-request"));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0)
        .min(MAX_REQUEST);
    while buf.len() < head_end + length {
        let n = timeout(IO_TIMEOUT, stream.read(&mut chunk))
            .await
            .map_err(|_| std::io::Error::other("read timed out"))??;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body: Value = serde_json::from_slice(&buf[head_end..]).unwrap_or(Value::Null);
    let mut first = head.lines().next().unwrap_or_default().split_whitespace();
    let method = first.next().unwrap_or_default().to_owned();
    let path = first.next().unwrap_or_default();
    let path = path.split('?').next().unwrap_or_default().to_owned();
    let (status, answer) = route(&method, &path, &body, detector, state);
    let text = answer.to_string();
    let mut response = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        if status == 200 { "OK" } else { "Bad Request" },
        text.len()
    );
    if status != 200 {
        response.push_str("x-amzn-errortype: BadRequestException\r\n");
    }
    response.push_str("\r\n");
    response.push_str(&text);
    timeout(IO_TIMEOUT, stream.write_all(response.as_bytes()))
        .await
        .map_err(|_| std::io::Error::other("write timed out"))??;
    let _ = stream.shutdown().await;
    Ok(())
}

/// The answer to one request: (HTTP status, JSON body).
fn route(
    method: &str,
    path: &str,
    body: &Value,
    detector: &str,
    state: &Mutex<State>,
) -> (u16, Value) {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let mut s = lock(state);
    let ids = || -> Vec<String> {
        body.get("findingIds")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    match (method, segments.as_slice()) {
        ("GET", ["detector"]) => {
            *s.calls.entry("ListDetectors").or_default() += 1;
            (200, json!({ "detectorIds": [detector] }))
        }
        ("POST", ["detector", d, "findings", "get"]) if *d == detector => {
            *s.calls.entry("GetFindings").or_default() += 1;
            let found: Vec<Value> = ids()
                .iter()
                .filter_map(|id| s.findings.get(id).cloned())
                .collect();
            (200, json!({ "findings": found }))
        }
        ("POST", ["detector", d, "findings", "archive"]) if *d == detector => {
            *s.calls.entry("ArchiveFindings").or_default() += 1;
            for id in ids() {
                if let Some(service) = s
                    .findings
                    .get_mut(&id)
                    .and_then(|f| f.get_mut("service"))
                    .and_then(Value::as_object_mut)
                {
                    service.insert("archived".to_owned(), Value::Bool(true));
                }
            }
            (200, json!({}))
        }
        _ => (
            400,
            json!({
                "__type": "BadRequestException",
                "message": format!("the demo's GuardDuty endpoint does not serve {method} {path}"),
            }),
        ),
    }
}
