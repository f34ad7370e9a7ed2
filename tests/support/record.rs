//! Recording the AWS calls the tests make, for the IAM simulation
//! (scripts/iam-sim.sh, docs/security.md): with `GDR_IAM_RECORD` naming a folder,
//! every request to moto passes through a recording proxy ([`crate::moto::endpoint`])
//! and the local GuardDuty endpoint logs its operations, one JSON object a line in
//! `<folder>/<pid>-<n>.jsonl`: the request head and body, and moto's answer (which
//! names the resources a call created, so that their tags can be followed).
//!
//! Which calls are the responder's is told by the user agent: the function binary's
//! carries `exec-env/AWS_Lambda_...` (crates/lambda-local sets `AWS_EXECUTION_ENV` as
//! Lambda does), the in-process responder's clients [`RESPONDER_APP`]
//! ([`crate::account::clients`]); everything else is set-up and assertions.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

/// The environment variable naming the folder recordings go to.
pub const RECORD_VAR: &str = "GDR_IAM_RECORD";

/// The SDK app name of the responder's clients in tests (`app/<name>` in the user
/// agent).
pub const RESPONDER_APP: &str = "guardduty-responder-under-test";

/// Answers longer than this are cut in the recording (describes of every AMI); the
/// answers that name created resources are short.
const MAX_ANSWER: usize = 64 * 1024;

static FILES: AtomicUsize = AtomicUsize::new(0);

/// [`RESPONDER_APP`] as the SDK's app name.
pub fn responder_app() -> aws_config::AppName {
    aws_config::AppName::new(RESPONDER_APP).unwrap_or_else(|e| panic!("app name: {e}"))
}

/// The recording folder, when recording.
pub fn dir() -> Option<PathBuf> {
    std::env::var_os(RECORD_VAR)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// One recording file, appended to by line.
#[derive(Debug)]
pub struct Recorder {
    file: Mutex<File>,
}

impl Recorder {
    /// A new file in the recording folder, or `None` when not recording.
    pub fn open() -> Option<Recorder> {
        let dir = dir()?;
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("{RECORD_VAR}: cannot create {}: {e}", dir.display()));
        let n = FILES.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("{}-{n}.jsonl", std::process::id()));
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("{RECORD_VAR}: cannot open {}: {e}", path.display()));
        Some(Recorder {
            file: Mutex::new(file),
        })
    }

    /// Appends one exchange: the request head and body, the answer (cut at
    /// [`MAX_ANSWER`]).
    pub fn exchange(&self, head: &str, body: &[u8], answer: &[u8]) {
        let answer = &answer[..answer.len().min(MAX_ANSWER)];
        self.line(&serde_json::json!({
            "head": head,
            "body": String::from_utf8_lossy(body),
            "answer": String::from_utf8_lossy(answer),
        }));
    }

    /// Appends one object as a line.
    pub fn line(&self, value: &Value) {
        let mut text = value.to_string();
        text.push('\n');
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = file.write_all(text.as_bytes()) {
            eprintln!("{RECORD_VAR}: a recorded call was lost: {e}");
        }
    }
}
