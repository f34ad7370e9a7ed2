//! A local Lambda Runtime API (2018-06-01) on 127.0.0.1: hands events to a real
//! function binary and collects what it answers, init errors included. Enough of the
//! protocol for one function process (`/next`, `/response`, `/error`, `/init/error`);
//! it is not a Lambda emulator (no concurrency, no timeouts enforced on the function).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A command that runs the function binary as Lambda would: only the Runtime API,
/// the function's own settings and test credentials in its environment.
pub fn function_command(
    binary: &std::path::Path,
    api: &RuntimeApi,
    endpoint: &str,
    mode: &str,
) -> std::process::Command {
    let mut cmd = std::process::Command::new(binary);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", &api.address)
        .env("AWS_LAMBDA_FUNCTION_NAME", "guardduty-responder")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env(
            "AWS_LAMBDA_LOG_GROUP_NAME",
            "/aws/lambda/guardduty-responder",
        )
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_REGION", "us-east-1")
        // As Lambda sets it: the SDK names it in every request's user agent
        // (`exec-env/...`), which tells the function's calls from the tests' own.
        .env("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("RESPONDER_MODE", mode)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    cmd
}

/// What the function answered for one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// `POST /runtime/invocation/{id}/response`.
    Response(Value),
    /// `POST /runtime/invocation/{id}/error`.
    Error(Value),
}

#[derive(Default)]
struct State {
    queue: VecDeque<(String, Value)>,
    answers: BTreeMap<String, Answer>,
    init_error: Option<Value>,
    next_polls: usize,
}

/// The server. Dropping it stops it.
pub struct RuntimeApi {
    /// `host:port`, for `AWS_LAMBDA_RUNTIME_API`.
    pub address: String,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
    counter: usize,
}

/// The state, even if a connection task panicked while holding it.
fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl RuntimeApi {
    /// Starts on a free port of 127.0.0.1.
    pub async fn start() -> std::io::Result<RuntimeApi> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let address = listener.local_addr()?.to_string();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let state = Arc::clone(&shared);
                tokio::spawn(async move {
                    let _ = serve(conn, state).await;
                });
            }
        });
        Ok(RuntimeApi {
            address,
            state,
            task,
            counter: 0,
        })
    }

    /// Queues an event; returns its request id.
    pub fn invoke(&mut self, event: Value) -> String {
        self.counter += 1;
        let id = format!("req-{:04}", self.counter);
        lock(&self.state).queue.push_back((id.clone(), event));
        id
    }

    /// Waits (bounded) for the answer to a request.
    pub async fn answer(&self, id: &str, within: Duration) -> Option<Answer> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(a) = lock(&self.state).answers.get(id).cloned() {
                return Some(a);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// The init error the function reported, if any.
    pub fn init_error(&self) -> Option<Value> {
        lock(&self.state).init_error.clone()
    }

    /// How many times the function asked for the next event (1 = init done).
    pub fn next_polls(&self) -> usize {
        lock(&self.state).next_polls
    }

    /// Waits (polling every 200 µs, at most `within`) until the function `child`
    /// finishes its init by asking for its first event. Otherwise says why: it
    /// reported an init error, it exited, or time ran out.
    pub async fn ready(
        &self,
        child: &mut std::process::Child,
        within: Duration,
    ) -> Result<(), NotReady> {
        let deadline = Instant::now() + within;
        loop {
            if self.next_polls() > 0 {
                return Ok(());
            }
            if let Some(e) = self.init_error() {
                return Err(NotReady::InitError(e));
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(NotReady::Exited(status));
            }
            if Instant::now() >= deadline {
                return Err(NotReady::Timeout(within));
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }
}

/// Why the function did not become ready.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    /// It posted an init error to the Runtime API.
    #[error("the function failed its init: {0}")]
    InitError(Value),
    /// It exited before asking for an event.
    #[error("the function exited during init: {0}")]
    Exited(std::process::ExitStatus),
    /// It did not ask for an event in time.
    #[error("the function did not finish its init within {0:?}")]
    Timeout(Duration),
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(conn: TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    let (read, mut write) = conn.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).await? == 0 {
            return Ok(());
        }
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).await?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length.min(16 * 1024 * 1024)];
        reader.read_exact(&mut body).await?;
        let mut parts = request_line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if method == "GET" && path.ends_with("/runtime/invocation/next") {
            lock(&state).next_polls += 1;
            // Bounded long poll: the function waits here between events.
            let deadline = Instant::now() + Duration::from_secs(300);
            let next = loop {
                if let Some(n) = lock(&state).queue.pop_front() {
                    break Some(n);
                }
                if Instant::now() > deadline {
                    break None;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            };
            let Some((id, event)) = next else {
                return Ok(());
            };
            let payload = event.to_string();
            let deadline_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0)
                + 120_000;
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: {id}\r\nLambda-Runtime-Deadline-Ms: {deadline_ms}\r\nLambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:guardduty-responder\r\nLambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000\r\nContent-Length: {}\r\n\r\n",
                payload.len()
            );
            write.write_all(head.as_bytes()).await?;
            write.write_all(payload.as_bytes()).await?;
        } else if method == "POST" {
            {
                let mut s = lock(&state);
                let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
                match segments.as_slice() {
                    [_, "runtime", "invocation", id, "response"] => {
                        s.answers.insert((*id).to_owned(), Answer::Response(body));
                    }
                    [_, "runtime", "invocation", id, "error"] => {
                        s.answers.insert((*id).to_owned(), Answer::Error(body));
                    }
                    [_, "runtime", "init", "error"] => s.init_error = Some(body),
                    _ => {}
                }
            }
            write
                .write_all(b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{\"status\":\"OK\"}\n")
                .await?;
        } else {
            write
                .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                .await?;
        }
    }
}
