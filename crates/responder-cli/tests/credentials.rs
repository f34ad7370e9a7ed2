//! Issue 18, credentials: the profiles organizations log in with, through the
//! binary. A `credential_process` profile (`AWS_PROFILE`, and `--profile`) lists
//! findings from the tests' local GuardDuty; an IAM Identity Center (SSO) profile
//! without a cached token fails with one line naming `aws sso login`, not a missing
//! cargo feature; no region, no credentials and an unreachable endpoint are one line
//! naming the fix.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use assert_cmd::Command;
use responder_tests::guardduty::{DEFAULT_ACCOUNT, FindingsEndpoint};
use serde_json::json;

/// The binary with no credentials, region or profile from the caller's environment;
/// `home` holds the AWS config file (`config`, maybe absent) and stands for HOME
/// (no SSO token cache).
fn responder(home: &Path) -> Command {
    let mut cmd = Command::cargo_bin("responder").unwrap();
    for k in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "DETECTOR_ID",
        "LEDGER_TABLE",
    ] {
        cmd.env_remove(k);
    }
    cmd.env("HOME", home)
        .env("AWS_CONFIG_FILE", home.join("config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("credentials"))
        .env("AWS_EC2_METADATA_DISABLED", "true");
    cmd
}

/// A local GuardDuty with one detector and one finding.
fn guardduty() -> FindingsEndpoint {
    let endpoint = FindingsEndpoint::start();
    let detector = "0123456789abcdef0123456789abcdef";
    endpoint.add_detector(DEFAULT_ACCOUNT, detector);
    let event: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../playbooks/tests/findings/bitcoin-dns.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut finding = event["detail"].clone();
    finding["service"]["archived"] = json!(false);
    endpoint.put_finding(detector, finding);
    endpoint
}

fn one_line(stderr: &str) {
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "not one line: {stderr}"
    );
    assert!(!stderr.contains("cargo feature"), "{stderr}");
}

#[test]
fn a_credential_process_profile_lists_findings() {
    let home = tempfile::tempdir().unwrap();
    let marker = home.path().join("process-ran");
    let script = home.path().join("creds.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ntouch '{}'\nprintf '%s' '{{\"Version\": 1, \"AccessKeyId\": \"AKIDPROCESS\", \"SecretAccessKey\": \"process-secret\"}}'\n",
            marker.display()
        ),
    )
    .unwrap();
    std::fs::write(
        home.path().join("config"),
        format!(
            "[profile gdr-process]\ncredential_process = /bin/sh {}\nregion = us-east-1\n",
            script.display()
        ),
    )
    .unwrap();
    let endpoint = guardduty();
    let (var, url) = endpoint.env();
    // From AWS_PROFILE, as the SDK reads it; then from --profile.
    let from_env = responder(home.path())
        .env("AWS_PROFILE", "gdr-process")
        .env(var, &url)
        .args(["findings", "--format", "json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&from_env.stderr);
    assert_eq!(from_env.status.code(), Some(0), "{stderr}");
    let listed: serde_json::Value = serde_json::from_slice(&from_env.stdout).unwrap();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert!(marker.exists(), "the credential process was not run");
    std::fs::remove_file(&marker).unwrap();
    let from_flag = responder(home.path())
        .env(var, &url)
        .args(["findings", "--profile", "gdr-process"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&from_flag.stderr);
    assert_eq!(from_flag.status.code(), Some(0), "{stderr}");
    assert!(marker.exists(), "the credential process was not run");
}

#[test]
fn an_sso_profile_without_a_token_says_to_log_in() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("config"),
        "[profile gdr-sso]\nsso_start_url = https://example.awsapps.com/start\nsso_region = us-east-1\nsso_account_id = 123456789012\nsso_role_name = Responder\nregion = us-east-1\n",
    )
    .unwrap();
    let out = responder(home.path())
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .args(["findings", "--profile", "gdr-sso"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    one_line(&stderr);
    assert!(
        stderr.contains("aws sso login --profile gdr-sso"),
        "{stderr}"
    );
    assert!(stderr.contains("gdr-sso"), "{stderr}");
}

#[test]
fn no_region_and_no_credentials_are_one_line_naming_the_fix() {
    let home = tempfile::tempdir().unwrap();
    let out = responder(home.path())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .args(["findings"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    one_line(&stderr);
    assert!(
        stderr.contains("pass --region or set AWS_REGION"),
        "{stderr}"
    );
    assert!(!stderr.contains("HOME_ACCOUNT_ID"), "{stderr}");
    // `run` too, before any call (and never "set HOME_ACCOUNT_ID").
    let file = home.path().join("event.json");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../playbooks/tests/findings/bitcoin-dns.json"),
        &file,
    )
    .unwrap();
    let out = responder(home.path())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .args(["run", "--dry-run", "--playbooks"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../playbooks"))
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("error: no AWS region: pass --region or set AWS_REGION"),
        "{stderr}"
    );
    assert!(!stderr.contains("HOME_ACCOUNT_ID"), "{stderr}");

    // No credentials anywhere: which variables or profile to set.
    let out = responder(home.path())
        .args(["findings", "--region", "us-east-1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    one_line(&stderr);
    assert!(stderr.contains("no AWS credentials"), "{stderr}");
    assert!(stderr.contains("AWS_ACCESS_KEY_ID"), "{stderr}");
    assert!(stderr.contains("--profile"), "{stderr}");
}

#[test]
fn an_unreachable_endpoint_is_one_line_naming_its_url() {
    let home = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    drop(listener);
    let out = responder(home.path())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .args([
            "history",
            "--ledger-table",
            "gdr-ledger",
            "--region",
            "us-east-1",
        ])
        .args(["--endpoint-url", &url])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    one_line(&stderr);
    assert!(
        stderr.contains(&format!("endpoint {url} unreachable")),
        "{stderr}"
    );
    assert!(
        !stderr.contains("DispatchFailure"),
        "no debug structure: {stderr}"
    );
}
