//! Reporting an init failure to the Lambda Runtime API before exiting, so that the
//! failure shows as the function's init error and not only as an exit code.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Posts `{"errorMessage", "errorType"}` to `/runtime/init/error`. Best effort: the
/// process exits with an error right after, which Lambda also reports.
pub fn report(message: &str, error_type: &str) {
    let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") else {
        return;
    };
    let body = serde_json::json!({"errorMessage": message, "errorType": error_type}).to_string();
    let request = format!(
        "POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: {api}\r\nContent-Type: application/json\r\n\
         Lambda-Runtime-Function-Error-Type: {error_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let Ok(mut stream) = TcpStream::connect(&api) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    if stream.write_all(request.as_bytes()).is_ok() {
        let mut reply = [0u8; 256];
        let _ = stream.read(&mut reply);
    }
}
