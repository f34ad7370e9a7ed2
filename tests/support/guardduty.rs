//! A local GuardDuty findings endpoint: moto has no GuardDuty findings, so tests start
//! this small REST-JSON server on 127.0.0.1 and point the GuardDuty client at it (in
//! process: [`FindingsEndpoint::client`]; the function binary:
//! `AWS_ENDPOINT_URL_GUARDDUTY`, see [`FindingsEndpoint::env`]).
//!
//! It answers the operations the responder calls, as the Rust SDK sends them (paths
//! and shapes from `tests/corpus/guardduty-model.json`):
//! - ListDetectors, `GET /detector` -> `{"detectorIds": [...]}`, the detectors of the
//!   request's account (`x-moto-account-id`, else [`DEFAULT_ACCOUNT`], moto's own
//!   default), paginated by `maxResults`/`nextToken`;
//! - GetFindings, `POST /detector/{id}/findings/get` -> `{"findings": [...]}`: the
//!   requested findings the detector holds (unknown ids are left out, as GuardDuty
//!   does);
//! - ListFindings, `POST /detector/{id}/findings` -> `{"findingIds": [...]}`: the
//!   findings meeting `findingCriteria` (evaluated by
//!   `responder_core::filter::criteria_holds`, a finding without `service.archived`
//!   counting as unarchived; an attribute GuardDuty does not know is a 400), sorted
//!   by `sortCriteria` when given, paginated by `maxResults`/`nextToken`;
//!   [`FindingsEndpoint::fail_page_token`] makes the next page request's token
//!   invalid;
//! - ArchiveFindings / UnarchiveFindings, `POST /detector/{id}/findings/archive|unarchive`,
//!   which set `service.archived`;
//! - StartMalwareScan, `POST /malware-scan/start` -> `{"scanId": ...}`: a new scan per
//!   call, except that a repeated `clientToken` for the same `resourceArn` answers the
//!   first scan's id (the API's idempotency); [`FindingsEndpoint::scans`] lists them.
//!
//! - anything else (saved filters, detectors' other operations) is forwarded, as it
//!   came, to moto when [`FindingsEndpoint::forward_to`] names it (moto implements
//!   CreateFilter, GetFilter, UpdateFilter, DeleteFilter, ListFilters), so one
//!   `AWS_ENDPOINT_URL_GUARDDUTY` serves the whole GuardDuty client; without it, a
//!   400.
//!
//! [`FindingsEndpoint::refuse_archive_as_member`] makes ArchiveFindings and
//! UnarchiveFindings on a detector answer as GuardDuty answers a member account.
//!
//! Errors are GuardDuty's: a JSON body with `message` and `__type` and the
//! `x-amzn-ErrorType` header. A detector that does not exist or belongs to another
//! account is a 400 BadRequestException; [`FindingsEndpoint::fail_next`] injects any
//! other (500 InternalServerErrorException, 429 TooManyRequestsException, 403
//! AccessDeniedException). [`FindingsEndpoint::appear_after`] imitates eventual
//! consistency.
//!
//! The server runs on its own thread with its own Tokio runtime, so sync tests, Tokio
//! tests and child processes can all use it; it stops when dropped. One request per
//! connection (`Connection: close`); every read and write is bounded in time and
//! size.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::time::timeout;

use responder_core::filter::{FindingCriteria, criteria_from_value, criteria_holds};

use crate::account::{ACCOUNT_HEADER, AccountHeader};

/// The account of requests without `x-moto-account-id` (moto's default, which the
/// function binary's test credentials map to).
pub const DEFAULT_ACCOUNT: &str = "123456789012";

/// The variable the SDK reads the GuardDuty endpoint from.
pub const ENDPOINT_VAR: &str = "AWS_ENDPOINT_URL_GUARDDUTY";

/// Bound on every read and write.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on a request head.
const MAX_HEAD: usize = 64 * 1024;
/// Bound on a request body.
const MAX_BODY: usize = 4 * 1024 * 1024;
/// GuardDuty's page size when `maxResults` is absent.
const DEFAULT_PAGE: usize = 50;

/// The GuardDuty operations the endpoint answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    /// `GET /detector`.
    ListDetectors,
    /// `POST /detector/{id}/findings/get`.
    GetFindings,
    /// `POST /detector/{id}/findings`.
    ListFindings,
    /// `POST /detector/{id}/findings/archive`.
    ArchiveFindings,
    /// `POST /detector/{id}/findings/unarchive`.
    UnarchiveFindings,
    /// `POST /malware-scan/start`.
    StartMalwareScan,
}

/// A scan StartMalwareScan started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// The scan id answered.
    pub scan_id: String,
    /// The request's `resourceArn`.
    pub resource_arn: String,
    /// The request's `clientToken`, if any.
    pub client_token: Option<String>,
    /// The account that asked.
    pub account: String,
}

/// One request as the endpoint received it.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The operation, `None` for a path the endpoint does not serve.
    pub operation: Option<Operation>,
    /// `GET` or `POST`.
    pub method: String,
    /// The path with its query.
    pub path: String,
    /// The account it acted in (`x-moto-account-id`, else [`DEFAULT_ACCOUNT`]).
    pub account: String,
    /// The detector id in the path, if any.
    pub detector: Option<String>,
    /// The JSON body (`null` when empty or not JSON).
    pub body: Value,
    /// The HTTP status answered.
    pub status: u16,
}

/// An injected failure: the next `remaining` calls of an operation get it.
#[derive(Debug, Clone)]
struct Fault {
    remaining: usize,
    status: u16,
    error_type: String,
}

#[derive(Debug, Default)]
struct State {
    /// detector id -> owning account.
    detectors: BTreeMap<String, String>,
    /// detector id -> findings (camelCase), in insertion order.
    findings: BTreeMap<String, Vec<Value>>,
    /// finding id -> GetFindings calls that still omit it.
    hidden: HashMap<String, usize>,
    faults: HashMap<Operation, Fault>,
    scans: Vec<Scan>,
    calls: HashMap<Operation, usize>,
    log: Vec<Request>,
    /// Where unserved requests go (moto).
    forward: Option<String>,
    /// ListFindings requests with a `nextToken` still to refuse.
    bad_tokens: usize,
    /// Detectors whose archive calls are refused as a member account's.
    member_detectors: Vec<String>,
    /// Where served operations are recorded (see [`crate::record`]).
    recorder: Option<crate::record::Recorder>,
}

/// A running findings endpoint; stops when dropped.
#[derive(Debug)]
pub struct FindingsEndpoint {
    url: String,
    state: Arc<Mutex<State>>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FindingsEndpoint {
    /// Starts an endpoint on a free 127.0.0.1 port, with no detector and no finding.
    pub fn start() -> FindingsEndpoint {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))
            .unwrap_or_else(|e| panic!("guardduty endpoint: cannot bind: {e}"));
        listener
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("guardduty endpoint: nonblocking: {e}"));
        let addr: SocketAddr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("guardduty endpoint: no address: {e}"));
        let state = Arc::new(Mutex::new(State {
            recorder: crate::record::Recorder::open(),
            ..State::default()
        }));
        let (stop, mut stopped) = oneshot::channel::<()>();
        let shared = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name("guardduty-endpoint".to_owned())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap_or_else(|e| panic!("guardduty endpoint: runtime: {e}"));
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener)
                        .unwrap_or_else(|e| panic!("guardduty endpoint: listener: {e}"));
                    loop {
                        tokio::select! {
                            _ = &mut stopped => break,
                            accepted = listener.accept() => {
                                let Ok((stream, _)) = accepted else { continue };
                                let state = Arc::clone(&shared);
                                tokio::spawn(async move {
                                    // A broken connection only fails the call that used it.
                                    let _ = serve(stream, &state).await;
                                });
                            }
                        }
                    }
                });
            })
            .unwrap_or_else(|e| panic!("guardduty endpoint: thread: {e}"));
        FindingsEndpoint {
            url: format!("http://{addr}"),
            state,
            shutdown: Some(stop),
            thread: Some(thread),
        }
    }

    /// The endpoint, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The environment variable that points a child process's SDK at this endpoint
    /// (`AWS_ENDPOINT_URL_GUARDDUTY`, which wins over `AWS_ENDPOINT_URL`).
    pub fn env(&self) -> (&'static str, String) {
        (ENDPOINT_VAR, self.url.clone())
    }

    /// A GuardDuty client acting in `account`, pointed at this endpoint: `config`'s
    /// region, credentials and timeouts (see `account::sdk_config`), 3 attempts with
    /// a 20 ms base backoff so that retry tests stay fast. The verifier's, so its
    /// user agent names [`crate::record::RESPONDER_APP`].
    pub fn client(&self, config: &SdkConfig, account: &str) -> aws_sdk_guardduty::Client {
        aws_sdk_guardduty::Client::from_conf(
            aws_sdk_guardduty::config::Builder::from(config)
                .app_name(crate::record::responder_app())
                .endpoint_url(&self.url)
                .retry_config(
                    RetryConfig::standard()
                        .with_max_attempts(3)
                        .with_initial_backoff(Duration::from_millis(20)),
                )
                .interceptor(AccountHeader(account.to_owned()))
                .build(),
        )
    }

    /// Creates a detector owned by `account`.
    pub fn add_detector(&self, account: &str, detector_id: &str) {
        let mut s = lock(&self.state);
        s.detectors
            .insert(detector_id.to_owned(), account.to_owned());
        s.findings.entry(detector_id.to_owned()).or_default();
    }

    /// Stores `finding` (the API's camelCase shape; it must have a string `id`) in
    /// `detector_id`, replacing one with the same id. Returns the id.
    pub fn put_finding(&self, detector_id: &str, finding: Value) -> String {
        let id = finding
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("put_finding: the finding has no string `id`"))
            .to_owned();
        let mut s = lock(&self.state);
        let list = s.findings.entry(detector_id.to_owned()).or_default();
        list.retain(|f| f.get("id").and_then(Value::as_str) != Some(id.as_str()));
        list.push(finding);
        id
    }

    /// Stores the finding an EventBridge event carries (its `detail`, already in the
    /// API's camelCase shape) in `detector_id`. Returns its id.
    pub fn put_event_finding(&self, detector_id: &str, event: &Value) -> String {
        let detail = event
            .get("detail")
            .filter(|d| d.is_object())
            .unwrap_or_else(|| panic!("put_event_finding: the event has no `detail` object"))
            .clone();
        self.put_finding(detector_id, detail)
    }

    /// GuardDuty's copy of a finding, as stored (to edit and put back).
    pub fn finding(&self, detector_id: &str, finding_id: &str) -> Option<Value> {
        lock(&self.state)
            .findings
            .get(detector_id)?
            .iter()
            .find(|f| f.get("id").and_then(Value::as_str) == Some(finding_id))
            .cloned()
    }

    /// Sets `service.archived` of a stored finding; panics when there is none.
    pub fn set_archived(&self, detector_id: &str, finding_id: &str, archived: bool) {
        let mut s = lock(&self.state);
        let found = s
            .findings
            .get_mut(detector_id)
            .is_some_and(|list| archive(list, &[finding_id.to_owned()], archived));
        assert!(
            found,
            "set_archived: no finding {finding_id} in detector {detector_id}"
        );
    }

    /// GetFindings leaves `finding_id` out of its answer for the next `n_calls` calls
    /// that ask for it (eventual consistency).
    pub fn appear_after(&self, finding_id: &str, n_calls: usize) {
        lock(&self.state)
            .hidden
            .insert(finding_id.to_owned(), n_calls);
    }

    /// The next `n` calls of `operation` are answered with `status` and the error
    /// `error_type` (e.g. 500 `InternalServerErrorException`, 429
    /// `TooManyRequestsException`, 403 `AccessDeniedException`).
    pub fn fail_next(&self, operation: Operation, n: usize, status: u16, error_type: &str) {
        lock(&self.state).faults.insert(
            operation,
            Fault {
                remaining: n,
                status,
                error_type: error_type.to_owned(),
            },
        );
    }

    /// How many requests for `operation` arrived (SDK retries included, faults too).
    pub fn calls(&self, operation: Operation) -> usize {
        lock(&self.state)
            .calls
            .get(&operation)
            .copied()
            .unwrap_or(0)
    }

    /// Every scan started so far, in order (a repeated client token starts none).
    pub fn scans(&self) -> Vec<Scan> {
        lock(&self.state).scans.clone()
    }

    /// Forwards every request this endpoint does not serve to `url` (moto's), as it
    /// came, and answers with moto's answer.
    pub fn forward_to(&self, url: &str) {
        lock(&self.state).forward = Some(url.trim_end_matches('/').to_owned());
    }

    /// The next `n` ListFindings requests that carry a `nextToken` are refused with
    /// GuardDuty's invalid-token error (400 BadRequestException).
    pub fn fail_page_token(&self, n: usize) {
        lock(&self.state).bad_tokens = n;
    }

    /// ArchiveFindings and UnarchiveFindings on `detector_id` are refused as GuardDuty
    /// refuses a member account (400 BadRequestException).
    pub fn refuse_archive_as_member(&self, detector_id: &str) {
        lock(&self.state)
            .member_detectors
            .push(detector_id.to_owned());
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.state).log.clone()
    }
}

impl Drop for FindingsEndpoint {
    fn drop(&mut self) {
        if let Some(stop) = self.shutdown.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Sets `service.archived` on the listed findings; true when any was found.
fn archive(list: &mut [Value], ids: &[String], archived: bool) -> bool {
    let mut any = false;
    for f in list.iter_mut() {
        let id = f.get("id").and_then(Value::as_str).map(str::to_owned);
        if id.is_some_and(|id| ids.contains(&id))
            && let Some(obj) = f.as_object_mut()
        {
            let service = obj
                .entry("service")
                .or_insert_with(|| Value::Object(Default::default()));
            if !service.is_object() {
                *service = Value::Object(Default::default());
            }
            if let Some(service) = service.as_object_mut() {
                service.insert("archived".to_owned(), Value::Bool(archived));
            }
            any = true;
        }
    }
    any
}

type IoResult<T> = Result<T, std::io::Error>;

fn io_error(message: &str) -> std::io::Error {
    std::io::Error::other(format!("guardduty endpoint: {message}"))
}

/// Reads one request: its head and its body (`Content-Length` bytes).
async fn read_request(stream: &mut TcpStream) -> IoResult<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let (head, mut body) = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let body = buf.split_off(end + 4);
            break (String::from_utf8_lossy(&buf).into_owned(), body);
        }
        if buf.len() > MAX_HEAD {
            return Err(io_error("head too long"));
        }
        let n = timeout(IO_TIMEOUT, stream.read(&mut chunk))
            .await
            .map_err(|_| io_error("read timeout"))??;
        if n == 0 {
            return Err(io_error("connection closed in the head"));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let want = header(&head, "content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    if want > MAX_BODY {
        return Err(io_error("body too long"));
    }
    while body.len() < want {
        let n = timeout(IO_TIMEOUT, stream.read(&mut chunk))
            .await
            .map_err(|_| io_error("read timeout"))??;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(want);
    Ok((head, body))
}

/// A header's value (first occurrence, case-insensitive name).
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n")
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// One query parameter, percent-decoded.
fn query_param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| percent_decode(v))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An answer: status, error type (for errors) and JSON body.
struct Answer {
    status: u16,
    error_type: Option<String>,
    body: Value,
}

impl Answer {
    fn ok(body: Value) -> Answer {
        Answer {
            status: 200,
            error_type: None,
            body,
        }
    }

    fn error(status: u16, error_type: &str, message: &str) -> Answer {
        Answer {
            status,
            error_type: Some(error_type.to_owned()),
            body: json!({ "message": message, "__type": error_type }),
        }
    }

    fn bad_request(message: &str) -> Answer {
        Answer::error(400, "BadRequestException", message)
    }
}

async fn serve(mut stream: TcpStream, state: &Mutex<State>) -> IoResult<()> {
    let (head, body) = read_request(&mut stream).await?;
    let mut request_line = head.split("\r\n").next().unwrap_or("").split(' ');
    let method = request_line.next().unwrap_or("").to_owned();
    let target = request_line.next().unwrap_or("").to_owned();
    let account = header(&head, ACCOUNT_HEADER)
        .filter(|a| !a.is_empty())
        .unwrap_or(DEFAULT_ACCOUNT)
        .to_owned();
    let (path, query) = target.split_once('?').unwrap_or((target.as_str(), ""));
    let segments: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let (operation, detector) = match (method.as_str(), segments.as_slice()) {
        ("GET", ["detector"]) => (Some(Operation::ListDetectors), None),
        ("POST", ["malware-scan", "start"]) => (Some(Operation::StartMalwareScan), None),
        ("POST", ["detector", d, "findings"]) => (Some(Operation::ListFindings), Some(*d)),
        ("POST", ["detector", d, "findings", "get"]) => (Some(Operation::GetFindings), Some(*d)),
        ("POST", ["detector", d, "findings", "archive"]) => {
            (Some(Operation::ArchiveFindings), Some(*d))
        }
        ("POST", ["detector", d, "findings", "unarchive"]) => {
            (Some(Operation::UnarchiveFindings), Some(*d))
        }
        _ => (None, None),
    };
    let json_body: Value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    };

    let forward = lock(state).forward.clone().filter(|_| operation.is_none());
    if let Some(url) = forward {
        let reply = forward_request(&url, &head, &body).await;
        let (status, bytes) = match reply {
            Ok(bytes) => (status_of(&bytes), bytes),
            Err(e) => {
                let text =
                    json!({"message": e.to_string(), "__type": "InternalServerErrorException"})
                        .to_string();
                (502, format!("HTTP/1.1 502 Bad Gateway\r\nContent-Type: application/json\r\nContent-Length: {}\r\nx-amzn-ErrorType: InternalServerErrorException\r\nConnection: close\r\n\r\n{text}", text.len()).into_bytes())
            }
        };
        lock(state).log.push(Request {
            operation: None,
            method: method.clone(),
            path: target.clone(),
            account,
            detector: None,
            body: json_body,
            status,
        });
        timeout(IO_TIMEOUT, stream.write_all(&bytes))
            .await
            .map_err(|_| io_error("write timeout"))??;
        let _ = stream.shutdown().await;
        return Ok(());
    }

    let answer = {
        let mut s = lock(state);
        let answer = match operation {
            None => Answer::bad_request(&format!(
                "the local GuardDuty endpoint does not serve {method} {path}"
            )),
            Some(op) => {
                *s.calls.entry(op).or_insert(0) += 1;
                answer(&mut s, op, &account, detector, query, &json_body)
            }
        };
        if let (Some(recorder), Some(op)) = (&s.recorder, operation) {
            recorder.line(&json!({
                "service": "guardduty",
                "operation": format!("{op:?}"),
                "head": &head,
                "status": answer.status,
            }));
        }
        s.log.push(Request {
            operation,
            method: method.clone(),
            path: target.clone(),
            account,
            detector: detector.map(str::to_owned),
            body: json_body,
            status: answer.status,
        });
        answer
    };

    let text = answer.body.to_string();
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nx-amzn-RequestId: local-guardduty\r\nConnection: close\r\n",
        answer.status,
        if answer.status == 200 { "OK" } else { "Error" },
        text.len()
    );
    if let Some(error_type) = &answer.error_type {
        out.push_str(&format!("x-amzn-ErrorType: {error_type}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&text);
    timeout(IO_TIMEOUT, stream.write_all(out.as_bytes()))
        .await
        .map_err(|_| io_error("write timeout"))??;
    let _ = stream.shutdown().await;
    Ok(())
}

/// The answer to one served operation.
fn answer(
    s: &mut State,
    op: Operation,
    account: &str,
    detector: Option<&str>,
    query: &str,
    body: &Value,
) -> Answer {
    if let Some(fault) = s.faults.get_mut(&op)
        && fault.remaining > 0
    {
        fault.remaining -= 1;
        let fault = fault.clone();
        return Answer::error(
            fault.status,
            &fault.error_type,
            &format!("injected by the local GuardDuty endpoint: {op:?} fails"),
        );
    }
    if op == Operation::StartMalwareScan {
        return start_malware_scan(s, account, body);
    }
    if op == Operation::ListDetectors {
        let ids: Vec<Value> = s
            .detectors
            .iter()
            .filter(|(_, owner)| owner.as_str() == account)
            .map(|(id, _)| json!(id))
            .collect();
        let max = query_param(query, "maxResults");
        let token = query_param(query, "nextToken");
        return match page(ids, max.as_deref(), token.as_deref()) {
            Ok((ids, next)) => Answer::ok(with_token(json!({ "detectorIds": ids }), next)),
            Err(message) => Answer::bad_request(&message),
        };
    }
    let Some(detector) = detector.filter(|d| {
        s.detectors
            .get(*d)
            .is_some_and(|owner| owner.as_str() == account)
    }) else {
        return Answer::bad_request(
            "The request is rejected because the input detectorId is not owned by the current account.",
        );
    };
    let ids = || -> Result<Vec<String>, String> {
        body.get("findingIds")
            .and_then(Value::as_array)
            .map(|ids| {
                ids.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .ok_or_else(|| "The request is rejected because findingIds is missing.".to_owned())
    };
    match op {
        Operation::GetFindings => {
            let wanted = match ids() {
                Ok(ids) => ids,
                Err(message) => return Answer::bad_request(&message),
            };
            let mut visible = Vec::new();
            for id in &wanted {
                match s.hidden.get_mut(id) {
                    Some(left) if *left > 0 => *left -= 1,
                    _ => visible.push(id.clone()),
                }
            }
            let findings: Vec<Value> = s
                .findings
                .get(detector)
                .map(|list| {
                    list.iter()
                        .filter(|f| {
                            f.get("id")
                                .and_then(Value::as_str)
                                .is_some_and(|id| visible.iter().any(|v| v == id))
                        })
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            Answer::ok(json!({ "findings": findings }))
        }
        Operation::ArchiveFindings | Operation::UnarchiveFindings
            if s.member_detectors.iter().any(|d| d == detector) =>
        {
            Answer::bad_request(
                "The request is rejected because the current account is a member account: only the administrator account can archive or unarchive findings of member accounts.",
            )
        }
        Operation::ArchiveFindings | Operation::UnarchiveFindings => {
            let wanted = match ids() {
                Ok(ids) => ids,
                Err(message) => return Answer::bad_request(&message),
            };
            if let Some(list) = s.findings.get_mut(detector) {
                archive(list, &wanted, op == Operation::ArchiveFindings);
            }
            Answer::ok(json!({}))
        }
        Operation::ListFindings => {
            let token = body.get("nextToken").and_then(Value::as_str);
            if token.is_some_and(|t| !t.is_empty()) && s.bad_tokens > 0 {
                s.bad_tokens -= 1;
                return Answer::bad_request(
                    "The request is rejected because the input nextToken is invalid or expired.",
                );
            }
            let criteria = match body.get("findingCriteria") {
                None | Some(Value::Null) => FindingCriteria::default(),
                Some(c) if c.get("criterion").is_none() => FindingCriteria::default(),
                Some(c) => match criteria_from_value(c) {
                    Ok(c) => c,
                    Err(e) => return Answer::bad_request(&e.to_string()),
                },
            };
            let mut list: Vec<&Value> = s
                .findings
                .get(detector)
                .map(|list| {
                    list.iter()
                        .filter(|f| criteria_holds(&criteria, &unarchived_by_default(f)))
                        .collect()
                })
                .unwrap_or_default();
            if let Some(sort) = body.get("sortCriteria") {
                let attribute = sort
                    .get("attributeName")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let descending = sort.get("orderBy").and_then(Value::as_str) == Some("DESC");
                list.sort_by(|a, b| {
                    let o = compare_at(a, b, attribute);
                    if descending { o.reverse() } else { o }
                });
            }
            let ids: Vec<Value> = list
                .into_iter()
                .filter_map(|f| f.get("id").cloned())
                .collect();
            let max = body.get("maxResults").map(|v| v.to_string());
            match page(ids, max.as_deref(), token) {
                Ok((ids, next)) => Answer::ok(with_token(json!({ "findingIds": ids }), next)),
                Err(message) => Answer::bad_request(&message),
            }
        }
        // Answered above, before the detector check.
        Operation::ListDetectors => Answer::bad_request("ListDetectors takes no detector"),
        Operation::StartMalwareScan => Answer::bad_request("StartMalwareScan takes no detector"),
    }
}

/// StartMalwareScan: the ARN must be an EC2 instance's (the API's pattern, narrowed
/// to what the responder sends); a repeated client token for the same ARN answers
/// the first scan.
fn start_malware_scan(s: &mut State, account: &str, body: &Value) -> Answer {
    let Some(arn) = body.get("resourceArn").and_then(Value::as_str) else {
        return Answer::bad_request("resourceArn is required");
    };
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let instance = matches!(parts.as_slice(), ["arn", p, "ec2", r, a, res]
        if !p.is_empty() && !r.is_empty() && a.len() == 12
            && a.chars().all(|c| c.is_ascii_digit()) && res.starts_with("instance/i-"));
    if !instance {
        return Answer::bad_request(&format!("not an EC2 instance ARN: {arn}"));
    }
    let token = body
        .get("clientToken")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(t) = &token
        && let Some(first) = s
            .scans
            .iter()
            .find(|x| x.client_token.as_ref() == Some(t) && x.resource_arn == arn)
    {
        return Answer::ok(json!({ "scanId": first.scan_id }));
    }
    let scan_id = format!("scan-{:04}", s.scans.len() + 1);
    s.scans.push(Scan {
        scan_id: scan_id.clone(),
        resource_arn: arn.to_owned(),
        client_token: token,
        account: account.to_owned(),
    });
    Answer::ok(json!({ "scanId": scan_id }))
}

/// The finding with `service.archived: false` when it says nothing (GuardDuty's
/// findings always say).
fn unarchived_by_default(f: &Value) -> std::borrow::Cow<'_, Value> {
    if f.pointer("/service/archived").is_some() {
        return std::borrow::Cow::Borrowed(f);
    }
    let mut f = f.clone();
    if let Some(obj) = f.as_object_mut() {
        let service = obj
            .entry("service")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(service) = service.as_object_mut() {
            service.insert("archived".to_owned(), Value::Bool(false));
        }
    }
    std::borrow::Cow::Owned(f)
}

/// Orders two findings by the value at a dotted path: numbers numerically, else as
/// text; absent values first.
fn compare_at(a: &Value, b: &Value, path: &str) -> std::cmp::Ordering {
    let at = |v: &Value| -> Option<Value> { path.split('.').try_fold(v, |v, k| v.get(k)).cloned() };
    match (at(a), at(b)) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .unwrap_or(0.0)
            .total_cmp(&y.as_f64().unwrap_or(0.0)),
        (Some(x), Some(y)) => x.to_string().cmp(&y.to_string()),
        (x, y) => x.is_some().cmp(&y.is_some()),
    }
}

/// Sends a request, as it came, to `url` (`http://host:port`) with
/// `Connection: close`, and returns the whole answer.
async fn forward_request(url: &str, head: &str, body: &[u8]) -> IoResult<Vec<u8>> {
    let addr = url.trim_start_matches("http://");
    let mut upstream = timeout(IO_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| io_error("forward: connect timeout"))??;
    let mut out: String = head
        .split("\r\n")
        .filter(|l| !l.is_empty() && !l.to_ascii_lowercase().starts_with("connection:"))
        .collect::<Vec<_>>()
        .join("\r\n");
    out.push_str("\r\nConnection: close\r\n\r\n");
    let mut request = out.into_bytes();
    request.extend_from_slice(body);
    timeout(IO_TIMEOUT, upstream.write_all(&request))
        .await
        .map_err(|_| io_error("forward: write timeout"))??;
    let mut answer = Vec::new();
    timeout(IO_TIMEOUT, upstream.read_to_end(&mut answer))
        .await
        .map_err(|_| io_error("forward: read timeout"))??;
    Ok(answer)
}

/// The status code of a raw HTTP answer (0 when unreadable).
fn status_of(answer: &[u8]) -> u16 {
    String::from_utf8_lossy(&answer[..answer.len().min(64)])
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// One page of `items`: `maxResults` (1 to 50, default 50) from `nextToken` (an
/// offset this endpoint handed out), and the next token when more remain.
fn page(
    items: Vec<Value>,
    max: Option<&str>,
    token: Option<&str>,
) -> Result<(Vec<Value>, Option<String>), String> {
    let size = match max {
        None => DEFAULT_PAGE,
        Some(m) => match m.parse::<usize>() {
            Ok(n) if (1..=DEFAULT_PAGE).contains(&n) => n,
            _ => return Err(format!("maxResults must be 1 to 50, not {m}")),
        },
    };
    let start = match token.filter(|t| !t.is_empty()) {
        None => 0,
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= items.len())
            .ok_or_else(|| format!("invalid nextToken {t:?}"))?,
    };
    let end = (start + size).min(items.len());
    let next = (end < items.len()).then(|| end.to_string());
    Ok((items[start..end].to_vec(), next))
}

fn with_token(mut body: Value, next: Option<String>) -> Value {
    if let (Some(next), Some(obj)) = (next, body.as_object_mut()) {
        obj.insert("nextToken".to_owned(), Value::String(next));
    }
    body
}

/// Creates a GuardDuty detector in moto (the default account, `config`'s region) and
/// the same detector in `endpoint`, so that saved filters (moto, through
/// [`FindingsEndpoint::forward_to`]) and findings (the endpoint) share one id.
/// Returns the id.
pub async fn shared_detector(config: &SdkConfig, endpoint: &FindingsEndpoint) -> String {
    let moto = aws_sdk_guardduty::Client::new(config);
    let id = moto
        .create_detector()
        .enable(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("moto CreateDetector: {e:?}"))
        .detector_id()
        .unwrap_or_else(|| panic!("moto CreateDetector answered no id"))
        .to_owned();
    endpoint.add_detector(DEFAULT_ACCOUNT, &id);
    id
}

/// Saves a filter in moto with exactly these criteria, deprecated operators kept (as
/// another tool or the console would have saved it).
#[allow(deprecated)]
pub async fn moto_put_filter(
    config: &SdkConfig,
    detector: &str,
    name: &str,
    criteria: &FindingCriteria,
) {
    use aws_sdk_guardduty::types::{Condition, FilterAction, FindingCriteria as Sdk};
    let mut sdk = Sdk::builder();
    for (attribute, c) in &criteria.criterion {
        let small = |x: Option<i64>| x.map(|n| i32::try_from(n).unwrap_or(i32::MAX));
        sdk = sdk.criterion(
            attribute,
            Condition::builder()
                .set_equals(c.equals.clone())
                .set_not_equals(c.not_equals.clone())
                .set_greater_than(c.greater_than)
                .set_greater_than_or_equal(c.greater_than_or_equal)
                .set_less_than(c.less_than)
                .set_less_than_or_equal(c.less_than_or_equal)
                .set_matches(c.matches.clone())
                .set_not_matches(c.not_matches.clone())
                .set_eq(c.eq.clone())
                .set_neq(c.neq.clone())
                .set_gt(small(c.gt))
                .set_gte(small(c.gte))
                .set_lt(small(c.lt))
                .set_lte(small(c.lte))
                .build(),
        );
    }
    aws_sdk_guardduty::Client::new(config)
        .create_filter()
        .detector_id(detector)
        .name(name)
        .action(FilterAction::Noop)
        .finding_criteria(sdk.build())
        .send()
        .await
        .unwrap_or_else(|e| panic!("moto CreateFilter: {e:?}"));
}

/// A saved filter's criteria and action as moto holds them.
pub async fn moto_get_filter(
    config: &SdkConfig,
    detector: &str,
    name: &str,
) -> (FindingCriteria, String) {
    let out = aws_sdk_guardduty::Client::new(config)
        .get_filter()
        .detector_id(detector)
        .filter_name(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("moto GetFilter {name}: {e:?}"));
    (
        out.finding_criteria()
            .map(responder_aws::console::from_sdk)
            .unwrap_or_default(),
        out.action()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default(),
    )
}
