//! Values every declared deployment setting is tried with, and the verdict both
//! sides must give: the function binary's start (ready, or an init error) and
//! `responder run`'s (it reaches its finding files, or refuses). One table, read by
//! `crates/responder-cli/tests/settings.rs` and
//! `functions/guardduty-responder/tests/settings.rs`: the two answer the same because
//! each answers as the table says.

use std::path::Path;

/// `(value, accepted)` for the setting named `name` (`Setting::name`); `None` for a
/// setting without samples, which the tests refuse.
pub fn samples(name: &str) -> Option<Vec<(String, bool)>> {
    let playbooks = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../playbooks")
        .display()
        .to_string();
    let rows: &[(&str, bool)] = match name {
        "mode" => &[
            ("dry-run", true),
            ("enforce", true),
            ("Enforce!", false),
            ("on", false),
        ],
        "playbooks" => &[("<playbooks>", true), ("/nonexistent/gdr-playbooks", false)],
        "endpoint_url" => &[("http://127.0.0.1:9", true), ("127.0.0.1:9", false)],
        "region" => &[
            ("us-east-1", true),
            ("Mars", false),
            ("us-east-1,eu-west-1", false),
        ],
        "quarantine_group" => &[
            ("gdr-quarantine-test", true),
            ("default", false),
            ("sg-0123456789abcdef0", false),
        ],
        "never_block" => &[
            ("198.51.100.0/24, 2001:db8::/32", true),
            ("198.51.100.0/24,10.0.0.1", false),
            ("not-a-cidr", false),
        ],
        "topic_arn" => &[
            ("arn:aws:sns:us-east-1:123456789012:reports", true),
            ("reports", false),
        ],
        "verify" => &[("on", true), ("off", true), ("no", false)],
        "detector_id" => &[
            ("0123456789abcdef0123456789abcdef", true),
            ("abc/def", false),
        ],
        "ledger_table" => &[
            ("gdr-ledger-settings", true),
            ("bad name", false),
            ("a/b", false),
        ],
        "max_destructive_per_hour" => &[("3", true), ("0", false), ("-1", false), ("ten", false)],
        "max_destructive_per_hour_per_account" => &[("2", true), ("0", false)],
        "member_role" => &[("OrgResponder", true), ("a/b", false), (LONG_ROLE, false)],
        "allowed_accounts" => &[("111111111111,222222222222", true), ("12345", false)],
        "regions" => &[("eu-west-1,us-east-1", true), ("Mars", false)],
        "home_account" => &[("999999999999", true), ("x", false)],
        "profile" => &[("gdr-test", true), ("bad profile", false)],
        _ => return None,
    };
    Some(
        rows.iter()
            .map(|(v, ok)| (v.replace("<playbooks>", &playbooks), *ok))
            .collect(),
    )
}

/// 65 characters: one more than IAM allows in a role name.
const LONG_ROLE: &str = "r123456789r123456789r123456789r123456789r123456789r123456789r1234";
