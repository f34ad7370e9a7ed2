//! A small fault-injecting HTTP proxy in front of moto (moto itself has no fault
//! injection). Requests whose query-protocol body names a given `Action` get an EC2
//! error answer; with [`Fault::rate`], a seeded fraction of all EC2 requests gets a
//! retryable error (throttling or 5xx); everything else is forwarded to moto
//! unchanged, other services' requests (JSON protocol bodies, other query APIs)
//! included. The proxy also counts, per action, the requests it saw, the failures it
//! injected and the peak number of requests in flight at once (for fan-out bounds).
//! [`RandomFaults::applied`] makes some server errors come after moto acted (the
//! answer lost), and EC2 requests with a `ClientToken` are answered as EC2 does
//! (a repeated token gets the first successful answer; moto ignores tokens).
//!
//! One request per connection: the proxy answers with `Connection: close`, so the
//! SDK never reuses a connection. Every read and write is bounded by a timeout.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// Bound on every read, write and connect of the proxy.
const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on a request or response head.
const MAX_HEAD: usize = 64 * 1024;
/// The EC2 API version every EC2 query-protocol request carries (`Version=...`):
/// how the proxy tells EC2 from the other query APIs (IAM, SNS, Auto Scaling).
const EC2_VERSION: &str = "2016-11-15";
/// The seed of [`Fault::rate`] unless [`RandomFaults::seed`] sets another.
pub const DEFAULT_SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// The retryable answers a random fault picks from: (HTTP status, EC2 error code).
/// The SDK's standard retry treats each as retryable: 500/503 as transient server
/// errors, `RequestLimitExceeded` and `Throttling` as throttling.
pub const RETRYABLE: [(u16, &str); 4] = [
    (503, "Unavailable"),
    (500, "InternalError"),
    (400, "RequestLimitExceeded"),
    (400, "Throttling"),
];

/// One injected failure: an EC2 error answer to every request for `action`.
#[derive(Debug, Clone)]
pub struct Fault {
    /// The API action, as in the query body (`Action=CreateSnapshots`).
    pub action: String,
    /// HTTP status of the answer (use a 4xx: the SDK retries 5xx).
    pub status: u16,
    /// The EC2 error code (`IncorrectState`, `UnauthorizedOperation`, ...).
    pub code: String,
    /// The error message.
    pub message: String,
    /// Forward the request to moto first (it acts), then answer the error: the
    /// answer lost after AWS acted.
    pub applied: bool,
}

impl Fault {
    /// A 400 answer with `code` to every `action` request.
    pub fn ec2(action: &str, code: &str) -> Fault {
        Fault {
            action: action.to_owned(),
            status: 400,
            code: code.to_owned(),
            message: format!("injected by the test proxy: {action} fails with {code}"),
            applied: false,
        }
    }

    /// Every `action` request reaches moto (which acts on it) and is then answered
    /// with a 500 `InternalError`, as when EC2 acts and its answer is lost.
    pub fn lost_answer(action: &str) -> Fault {
        Fault {
            action: action.to_owned(),
            status: 500,
            code: "InternalError".to_owned(),
            message: format!("injected by the test proxy: {action} was applied, its answer lost"),
            applied: true,
        }
    }

    /// Random retryable failures: each EC2 request fails with probability `rate`
    /// (clamped to 0..=1) with one of [`RETRYABLE`], drawn from a PRNG seeded with
    /// [`DEFAULT_SEED`] (the sequence of draws is deterministic; which request gets
    /// which draw depends on the order requests arrive in).
    pub fn rate(rate: f64) -> RandomFaults {
        RandomFaults {
            rate: rate.clamp(0.0, 1.0),
            seed: DEFAULT_SEED,
            actions: None,
            applied: 0.0,
        }
    }
}

/// A fraction of EC2 requests failing with retryable errors (see [`Fault::rate`]).
#[derive(Debug, Clone)]
pub struct RandomFaults {
    /// The probability that one EC2 request fails (0 to 1).
    pub rate: f64,
    /// The PRNG seed.
    pub seed: u64,
    /// Only these actions fail (`None`: every EC2 action).
    pub actions: Option<BTreeSet<String>>,
    /// The fraction (0 to 1) of injected server errors (5xx) that come after the
    /// request was forwarded and applied by moto: the answer is lost, as when AWS
    /// acts and the connection then fails. Throttling is never applied (AWS rejects
    /// a throttled request before acting on it).
    pub applied: f64,
}

impl RandomFaults {
    /// The same faults from another seed.
    pub fn seed(mut self, seed: u64) -> RandomFaults {
        self.seed = seed;
        self
    }

    /// The same faults on these EC2 actions only.
    pub fn only(mut self, actions: &[&str]) -> RandomFaults {
        self.actions = Some(actions.iter().map(|a| (*a).to_owned()).collect());
        self
    }

    /// The same faults, with this fraction of the server errors applied upstream
    /// before the error answer (see [`RandomFaults::applied`]).
    pub fn applied(mut self, fraction: f64) -> RandomFaults {
        self.applied = fraction.clamp(0.0, 1.0);
        self
    }

    fn applies_to(&self, action: &str) -> bool {
        self.actions.as_ref().is_none_or(|a| a.contains(action))
    }
}

/// xorshift64*: a small deterministic PRNG (the workspace has no `rand`).
#[derive(Debug)]
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> XorShift {
        // Zero is xorshift's one fixed point.
        XorShift(if seed == 0 { DEFAULT_SEED } else { seed })
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A uniform draw in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Per-action counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ActionStats {
    /// Requests seen (injected failures included).
    pub calls: usize,
    /// Requests answered with an injected failure.
    pub injected: usize,
    /// Of those, requests forwarded and applied before the failure answered.
    pub applied: usize,
    /// Requests in flight now.
    pub in_flight: usize,
    /// The most requests in flight at once.
    pub peak_in_flight: usize,
}

/// Everything the proxy counts, behind one lock (held for counter updates only).
#[derive(Debug, Default)]
struct Stats {
    actions: BTreeMap<String, ActionStats>,
    ec2_calls: usize,
    ec2_in_flight: usize,
    ec2_peak: usize,
}

/// The proxy's configuration and counters, shared by its connections.
#[derive(Debug)]
struct State {
    faults: Vec<Fault>,
    random: Option<(RandomFaults, Mutex<XorShift>)>,
    hits: AtomicUsize,
    stats: Mutex<Stats>,
    /// EC2's answers to requests with a `ClientToken`, by (account header, action,
    /// token): AWS answers a repeated token with the first call's result instead of
    /// acting again; moto ignores the token, so the proxy does it for moto.
    tokens: Mutex<BTreeMap<(String, String, String), Vec<u8>>>,
    /// A recording proxy: every exchange is recorded, nothing else is changed (no
    /// client-token answers either).
    recorder: Option<crate::record::Recorder>,
}

impl State {
    fn stats(&self) -> MutexGuard<'_, Stats> {
        // A panic while holding the lock only updates counters: they stay usable.
        self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The answer for this request: a listed fault, a random one, or none (forward);
    /// with whether the request is forwarded (applied) before the fault answers.
    fn fault_for(&self, request: &Request) -> Option<(Fault, bool)> {
        let action = request.action.as_deref()?;
        if let Some(f) = self.faults.iter().find(|f| f.action == action) {
            return Some((f.clone(), f.applied));
        }
        let (random, rng) = self.random.as_ref()?;
        if !request.ec2 || !random.applies_to(action) {
            return None;
        }
        let mut rng = rng.lock().unwrap_or_else(|p| p.into_inner());
        if rng.unit() >= random.rate {
            return None;
        }
        let (status, code) = RETRYABLE[(rng.next_u64() % RETRYABLE.len() as u64) as usize];
        let applied = status >= 500 && random.applied > 0.0 && rng.unit() < random.applied;
        Some((
            Fault {
                action: action.to_owned(),
                status,
                code: code.to_owned(),
                message: format!(
                    "injected by the test proxy: a random {code} ({status}){}",
                    if applied {
                        " after the request was applied"
                    } else {
                        ""
                    }
                ),
                applied,
            },
            applied,
        ))
    }
}

/// What the proxy needs to know about a request.
#[derive(Debug)]
struct Request {
    /// The query-protocol `Action`, if the body has one.
    action: Option<String>,
    /// True for an EC2 query-protocol request.
    ec2: bool,
    /// The idempotency token (`ClientToken=`), if any.
    client_token: Option<String>,
}

/// Counts a request in flight until dropped.
struct InFlight<'a> {
    state: &'a State,
    action: String,
    ec2: bool,
}

impl<'a> InFlight<'a> {
    fn enter(state: &'a State, action: &str, ec2: bool, fault: Option<bool>) -> InFlight<'a> {
        let mut stats = state.stats();
        let a = stats.actions.entry(action.to_owned()).or_default();
        a.calls += 1;
        a.injected += usize::from(fault.is_some());
        a.applied += usize::from(fault == Some(true));
        a.in_flight += 1;
        a.peak_in_flight = a.peak_in_flight.max(a.in_flight);
        if ec2 {
            stats.ec2_calls += 1;
            stats.ec2_in_flight += 1;
            stats.ec2_peak = stats.ec2_peak.max(stats.ec2_in_flight);
        }
        InFlight {
            state,
            action: action.to_owned(),
            ec2,
        }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut stats = self.state.stats();
        if let Some(a) = stats.actions.get_mut(&self.action) {
            a.in_flight = a.in_flight.saturating_sub(1);
        }
        if self.ec2 {
            stats.ec2_in_flight = stats.ec2_in_flight.saturating_sub(1);
        }
    }
}

/// A running proxy; stops when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    /// The proxy's endpoint (`http://127.0.0.1:PORT`), to use instead of moto's.
    pub endpoint: String,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy on a free 127.0.0.1 port in front of `upstream`
    /// (`http://127.0.0.1:PORT`), failing the actions in `faults`.
    pub async fn start(upstream: &str, faults: Vec<Fault>) -> FaultProxy {
        FaultProxy::start_with(upstream, faults, None).await
    }

    /// Starts a proxy that fails a random fraction of EC2 requests (and nothing
    /// else); with `Fault::rate(0.0)` it only counts.
    pub async fn start_random(upstream: &str, random: RandomFaults) -> FaultProxy {
        FaultProxy::start_with(upstream, Vec::new(), Some(random)).await
    }

    /// Starts a proxy with listed faults (they win) and random ones.
    pub async fn start_with(
        upstream: &str,
        faults: Vec<Fault>,
        random: Option<RandomFaults>,
    ) -> FaultProxy {
        FaultProxy::start_inner(upstream, faults, random, None).await
    }

    /// Starts a proxy that only forwards, recording every exchange (see
    /// [`crate::record`]).
    pub async fn recording(upstream: &str, recorder: crate::record::Recorder) -> FaultProxy {
        FaultProxy::start_inner(upstream, Vec::new(), None, Some(recorder)).await
    }

    async fn start_inner(
        upstream: &str,
        faults: Vec<Fault>,
        random: Option<RandomFaults>,
        recorder: Option<crate::record::Recorder>,
    ) -> FaultProxy {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .unwrap_or_else(|e| panic!("fault proxy: upstream {upstream:?} is not host:port: {e}"));
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap_or_else(|e| panic!("fault proxy: cannot bind: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("fault proxy: no address: {e}"));
        let state = Arc::new(State {
            faults,
            random: random.map(|r| {
                let rng = Mutex::new(XorShift::new(r.seed));
                (r, rng)
            }),
            hits: AtomicUsize::new(0),
            stats: Mutex::new(Stats::default()),
            tokens: Mutex::new(BTreeMap::new()),
            recorder,
        });
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let state = Arc::clone(&shared);
                tokio::spawn(async move {
                    // A broken connection only fails the SDK call that used it.
                    let _ = serve(client, upstream, &state).await;
                });
            }
        });
        FaultProxy {
            endpoint: format!("http://{addr}"),
            state,
            task,
        }
    }

    /// How many requests got an injected failure so far.
    pub fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }

    /// The counters of one query-protocol action (zero when never seen).
    pub fn action(&self, action: &str) -> ActionStats {
        self.state
            .stats()
            .actions
            .get(action)
            .copied()
            .unwrap_or_default()
    }

    /// The counters of every query-protocol action seen, by action.
    pub fn actions(&self) -> BTreeMap<String, ActionStats> {
        self.state.stats().actions.clone()
    }

    /// How many `action` requests the proxy saw.
    pub fn calls(&self, action: &str) -> usize {
        self.action(action).calls
    }

    /// The most `action` requests in flight at once.
    pub fn peak_in_flight(&self, action: &str) -> usize {
        self.action(action).peak_in_flight
    }

    /// The most EC2 requests (all actions together) in flight at once.
    pub fn peak_ec2_in_flight(&self) -> usize {
        self.state.stats().ec2_peak
    }

    /// Every EC2 request seen (all actions together).
    pub fn ec2_calls(&self) -> usize {
        self.state.stats().ec2_calls
    }

    /// Forgets the counters (calls, injected, peaks); requests in flight stay
    /// counted as in flight.
    pub fn reset_counts(&self) {
        let mut stats = self.state.stats();
        for a in stats.actions.values_mut() {
            *a = ActionStats {
                in_flight: a.in_flight,
                peak_in_flight: a.in_flight,
                ..ActionStats::default()
            };
        }
        stats.ec2_calls = 0;
        stats.ec2_peak = stats.ec2_in_flight;
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type IoResult<T> = Result<T, std::io::Error>;

fn timed_out() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, "fault proxy timeout")
}

/// Reads one HTTP message head (up to the blank line) and returns it with any body
/// bytes already read.
async fn read_head(stream: &mut TcpStream) -> IoResult<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Ok((buf, rest));
        }
        if buf.len() > MAX_HEAD {
            return Err(std::io::Error::other("head too long"));
        }
        let n = timeout(IO_TIMEOUT, stream.read(&mut chunk))
            .await
            .map_err(|_| timed_out())??;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed in the head",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn content_length(head: &str) -> usize {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

/// The head with every `Connection` header replaced by `Connection: close`.
fn closing(head: &str) -> String {
    let mut out: Vec<&str> = head
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .filter(|l| {
            !l.split_once(':')
                .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("connection"))
        })
        .collect();
    out.push("Connection: close");
    format!("{}\r\n\r\n", out.join("\r\n"))
}

/// The query-protocol action and whether it is EC2's. A JSON-protocol body (or any
/// body that is not a form) has no `Action=` pair: `None`, passed through.
fn request_of(body: &[u8]) -> Request {
    let text = String::from_utf8_lossy(body);
    let mut action = None;
    let mut ec2 = false;
    let mut client_token = None;
    for kv in text.split('&') {
        if let Some(a) = kv.strip_prefix("Action=") {
            action = Some(a.to_owned());
        } else if let Some(t) = kv.strip_prefix("ClientToken=") {
            client_token = Some(t.to_owned());
        } else if kv == format!("Version={EC2_VERSION}") {
            ec2 = true;
        }
    }
    Request {
        ec2: ec2 && action.is_some(),
        action,
        client_token,
    }
}

async fn serve(mut client: TcpStream, upstream: SocketAddr, state: &State) -> IoResult<()> {
    let (head, mut body) = read_head(&mut client).await?;
    let head = String::from_utf8_lossy(&head).into_owned();
    let want = content_length(&head);
    let mut chunk = [0u8; 8192];
    while body.len() < want {
        let n = timeout(IO_TIMEOUT, client.read(&mut chunk))
            .await
            .map_err(|_| timed_out())??;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }

    if let Some(recorder) = &state.recorder {
        let out = exchange(upstream, &head, &body).await?;
        recorder.exchange(&head, &body, &out);
        timeout(IO_TIMEOUT, client.write_all(&out))
            .await
            .map_err(|_| timed_out())??;
        let _ = client.shutdown().await;
        return Ok(());
    }

    let request = request_of(&body);
    let token = match (&request.action, &request.client_token, request.ec2) {
        (Some(action), Some(t), true) => Some((account_of(&head), action.clone(), t.clone())),
        _ => None,
    };
    let fault = state.fault_for(&request);
    // Counted in flight from here until the answer is written (or the connection
    // breaks): the SDK's concurrency as the server sees it.
    let _in_flight = request
        .action
        .as_deref()
        .map(|a| InFlight::enter(state, a, request.ec2, fault.as_ref().map(|f| f.1)));
    if let Some((fault, applied)) = fault {
        state.hits.fetch_add(1, Ordering::SeqCst);
        if applied {
            // moto acts on the request; its answer is lost.
            let out = answer_once(state, upstream, &head, &body, token.as_ref()).await?;
            drop(out);
        }
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{}</Code><Message>{}</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>",
            fault.code, fault.message
        );
        let answer = format!(
            "HTTP/1.1 {} Injected\r\nContent-Type: text/xml;charset=UTF-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
            fault.status,
            xml.len()
        );
        timeout(IO_TIMEOUT, client.write_all(answer.as_bytes()))
            .await
            .map_err(|_| timed_out())??;
        let _ = client.shutdown().await;
        return Ok(());
    }
    let out = answer_once(state, upstream, &head, &body, token.as_ref()).await?;
    timeout(IO_TIMEOUT, client.write_all(&out))
        .await
        .map_err(|_| timed_out())??;
    let _ = client.shutdown().await;
    Ok(())
}

/// The request's `x-moto-account-id` header (moto's account), or "".
fn account_of(head: &str) -> String {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| {
            k.trim()
                .eq_ignore_ascii_case(crate::account::ACCOUNT_HEADER)
        })
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default()
}

/// moto's answer, or, for a client token EC2 already answered successfully, that
/// answer again without asking moto (AWS's idempotency, which moto lacks).
async fn answer_once(
    state: &State,
    upstream: SocketAddr,
    head: &str,
    body: &[u8],
    token: Option<&(String, String, String)>,
) -> IoResult<Vec<u8>> {
    let tokens = || state.tokens.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(cached) = token.and_then(|t| tokens().get(t).cloned()) {
        return Ok(cached);
    }
    let out = exchange(upstream, head, body).await?;
    if let Some(t) = token
        && out.starts_with(b"HTTP/1.1 200")
    {
        tokens().entry(t.clone()).or_insert_with(|| out.clone());
    }
    Ok(out)
}

/// Sends one request to moto and returns its answer, with `Connection: close`.
async fn exchange(upstream: SocketAddr, head: &str, body: &[u8]) -> IoResult<Vec<u8>> {
    let mut up = timeout(IO_TIMEOUT, TcpStream::connect(upstream))
        .await
        .map_err(|_| timed_out())??;
    let mut request = closing(head).into_bytes();
    request.extend_from_slice(body);
    timeout(IO_TIMEOUT, up.write_all(&request))
        .await
        .map_err(|_| timed_out())??;
    // With `Connection: close`, moto ends the response by closing the connection.
    let mut response = Vec::new();
    timeout(IO_TIMEOUT, up.read_to_end(&mut response))
        .await
        .map_err(|_| timed_out())??;
    Ok(match find(&response, b"\r\n\r\n") {
        Some(end) => {
            let mut out = closing(&String::from_utf8_lossy(&response[..end])).into_bytes();
            out.extend_from_slice(&response[end + 4..]);
            out
        }
        None => response,
    })
}
