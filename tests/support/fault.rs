//! A small fault-injecting HTTP proxy in front of moto (moto itself has no fault
//! injection). Requests whose query-protocol body names a given `Action` get an EC2
//! error answer; everything else is forwarded to moto unchanged.
//!
//! One request per connection: the proxy answers with `Connection: close`, so the
//! SDK never reuses a connection. Every read and write is bounded by a timeout.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// Bound on every read, write and connect of the proxy.
const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on a request or response head.
const MAX_HEAD: usize = 64 * 1024;

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
}

impl Fault {
    /// A 400 answer with `code` to every `action` request.
    pub fn ec2(action: &str, code: &str) -> Fault {
        Fault {
            action: action.to_owned(),
            status: 400,
            code: code.to_owned(),
            message: format!("injected by the test proxy: {action} fails with {code}"),
        }
    }
}

/// A running proxy; stops when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    /// The proxy's endpoint (`http://127.0.0.1:PORT`), to use instead of moto's.
    pub endpoint: String,
    hits: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy on a free 127.0.0.1 port in front of `upstream`
    /// (`http://127.0.0.1:PORT`), failing the actions in `faults`.
    pub async fn start(upstream: &str, faults: Vec<Fault>) -> FaultProxy {
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
        let hits = Arc::new(AtomicUsize::new(0));
        let faults = Arc::new(faults);
        let counter = Arc::clone(&hits);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let faults = Arc::clone(&faults);
                let counter = Arc::clone(&counter);
                tokio::spawn(async move {
                    // A broken connection only fails the SDK call that used it.
                    let _ = serve(client, upstream, &faults, &counter).await;
                });
            }
        });
        FaultProxy {
            endpoint: format!("http://{addr}"),
            hits,
            task,
        }
    }

    /// How many requests got an injected failure so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
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

fn action_of(body: &[u8]) -> Option<String> {
    String::from_utf8_lossy(body)
        .split('&')
        .find_map(|kv| kv.strip_prefix("Action=").map(str::to_owned))
}

async fn serve(
    mut client: TcpStream,
    upstream: SocketAddr,
    faults: &[Fault],
    hits: &AtomicUsize,
) -> IoResult<()> {
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

    let action = action_of(&body);
    if let Some(fault) = faults
        .iter()
        .find(|f| action.as_deref() == Some(f.action.as_str()))
    {
        hits.fetch_add(1, Ordering::SeqCst);
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

    let mut up = timeout(IO_TIMEOUT, TcpStream::connect(upstream))
        .await
        .map_err(|_| timed_out())??;
    let mut request = closing(&head).into_bytes();
    request.extend_from_slice(&body);
    timeout(IO_TIMEOUT, up.write_all(&request))
        .await
        .map_err(|_| timed_out())??;
    // With `Connection: close`, moto ends the response by closing the connection.
    let mut response = Vec::new();
    timeout(IO_TIMEOUT, up.read_to_end(&mut response))
        .await
        .map_err(|_| timed_out())??;
    let out = match find(&response, b"\r\n\r\n") {
        Some(end) => {
            let mut out = closing(&String::from_utf8_lossy(&response[..end])).into_bytes();
            out.extend_from_slice(&response[end + 4..]);
            out
        }
        None => response,
    };
    timeout(IO_TIMEOUT, client.write_all(&out))
        .await
        .map_err(|_| timed_out())??;
    let _ = client.shutdown().await;
    Ok(())
}
