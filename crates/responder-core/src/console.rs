//! The GuardDuty console's view of findings, as text: the severity counters, the
//! findings table and one finding's details panel. Pure: `responder findings`,
//! `responder plan` and `responder run` print through it.
//!
//! Every string taken from a finding goes through [`crate::text::escape`]: a process
//! name, a domain, a tag or a user agent is written by whoever caused the finding.

use std::fmt::{self, Write as _};

use serde_json::Value;

use crate::finding::Finding;
use crate::severity::SeverityLevel;
use crate::text::escape;

/// Counts of findings by console severity level; fed one finding at a time, so a
/// streaming caller keeps only four numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeverityCounts {
    /// Severity 9.0 and above.
    pub critical: u64,
    /// 7.0 to 8.9.
    pub high: u64,
    /// 4.0 to 6.9.
    pub medium: u64,
    /// Below 4.0.
    pub low: u64,
    /// Findings without a severity.
    pub unknown: u64,
}

impl SeverityCounts {
    /// Counts one finding.
    pub fn observe(&mut self, f: &Finding) {
        self.add(f.severity_level());
    }

    /// Counts one finding of this level (`None`: no severity).
    pub fn add(&mut self, level: Option<SeverityLevel>) {
        let slot = match level {
            Some(SeverityLevel::Critical) => &mut self.critical,
            Some(SeverityLevel::High) => &mut self.high,
            Some(SeverityLevel::Medium) => &mut self.medium,
            Some(SeverityLevel::Low) => &mut self.low,
            None => &mut self.unknown,
        };
        *slot += 1;
    }

    /// Every finding counted.
    pub fn total(&self) -> u64 {
        self.critical + self.high + self.medium + self.low + self.unknown
    }
}

/// The header line: `12 findings: Critical 1  High 4  Medium 5  Low 2`.
impl fmt::Display for SeverityCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.total();
        write!(
            f,
            "{total} finding{}: Critical {}  High {}  Medium {}  Low {}",
            if total == 1 { "" } else { "s" },
            self.critical,
            self.high,
            self.medium,
            self.low
        )?;
        if self.unknown > 0 {
            write!(f, "  no severity {}", self.unknown)?;
        }
        Ok(())
    }
}

/// Counts of `findings`.
pub fn count<'a>(findings: impl IntoIterator<Item = &'a Finding>) -> SeverityCounts {
    let mut c = SeverityCounts::default();
    findings.into_iter().for_each(|f| c.observe(f));
    c
}

fn s<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(*k))
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The resource a finding is about, the way the console names it: the instance id,
/// access key, bucket, cluster, database, function or container; else its type.
pub fn resource_id(f: &Finding) -> String {
    let r = f.raw().get("resource").unwrap_or(&Value::Null);
    let first_bucket = r
        .get("s3BucketDetails")
        .and_then(Value::as_array)
        .and_then(|a| a.first());
    [
        s(r, &["instanceDetails", "instanceId"]),
        s(r, &["accessKeyDetails", "accessKeyId"]),
        first_bucket.and_then(|b| b.get("name")),
        s(r, &["eksClusterDetails", "name"]),
        s(r, &["ecsClusterDetails", "name"]),
        s(r, &["rdsDbInstanceDetails", "dbInstanceIdentifier"]),
        s(r, &["lambdaDetails", "functionName"]),
        s(r, &["containerDetails", "name"]),
    ]
    .into_iter()
    .find_map(text)
    .or_else(|| f.instance_id().map(str::to_owned))
    .unwrap_or_else(|| "-".to_owned())
}

fn severity_cell(f: &Finding) -> String {
    match f.severity {
        Some(n) => format!("{} {n}", capitalized(SeverityLevel::of(n))),
        None => "-".to_owned(),
    }
}

fn capitalized(level: SeverityLevel) -> &'static str {
    match level {
        SeverityLevel::Low => "Low",
        SeverityLevel::Medium => "Medium",
        SeverityLevel::High => "High",
        SeverityLevel::Critical => "Critical",
    }
}

/// The findings table's columns.
pub const TABLE_HEADER: [&str; 7] = [
    "SEVERITY",
    "TYPE",
    "RESOURCE",
    "ACCOUNT",
    "REGION",
    "COUNT",
    "LAST SEEN",
];

/// One finding's table row (raw cells, escaped by [`table`]).
pub fn table_row(f: &Finding) -> [String; 7] {
    let dash = || "-".to_owned();
    [
        severity_cell(f),
        f.finding_type.name.clone(),
        resource_id(f),
        f.account_id.clone().unwrap_or_else(dash),
        f.region.clone().unwrap_or_else(dash),
        f.count.map_or_else(dash, |c| c.to_string()),
        f.last_seen
            .clone()
            .or_else(|| f.updated_at.clone())
            .unwrap_or_else(dash),
    ]
}

/// The findings table: severity, type, resource, account, region, count, last seen;
/// columns padded to their widest escaped cell, two spaces apart.
pub fn table<'a>(findings: impl IntoIterator<Item = &'a Finding>) -> String {
    let rows: Vec<Vec<String>> = findings
        .into_iter()
        .map(|f| {
            table_row(f)
                .iter()
                .map(|c| escape(c).into_owned())
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = TABLE_HEADER.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let last = cells.len().saturating_sub(1);
        for (i, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if i < last {
                let pad = widths[i] - cell.chars().count() + 2;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    };
    line(&TABLE_HEADER);
    for row in &rows {
        line(&row.iter().map(String::as_str).collect::<Vec<_>>());
    }
    out
}

/// The first object named `key` anywhere under `v` (depth first, in document order).
fn find_key<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Object(m) => m
            .get(key)
            .or_else(|| m.values().find_map(|x| find_key(x, key))),
        Value::Array(a) => a.iter().find_map(|x| find_key(x, key)),
        _ => None,
    }
}

/// One finding's details panel, as the console's: type, severity, region, count,
/// account, resource id and type, created and last seen, resource role, action type,
/// the actor (process) or remote IP with port, city, country and organization, the
/// threat list and the additional info. Every value is escaped; lines end in `\n`.
pub fn details_panel(f: &Finding) -> String {
    let mut rows: Vec<(&str, String)> = Vec::new();
    let dash = || "-".to_owned();
    rows.push(("Type", f.finding_type.name.clone()));
    rows.push(("Severity", severity_cell(f)));
    rows.push(("Region", f.region.clone().unwrap_or_else(dash)));
    rows.push(("Count", f.count.map_or_else(dash, |c| c.to_string())));
    rows.push(("Account", f.account_id.clone().unwrap_or_else(dash)));
    rows.push(("Resource ID", resource_id(f)));
    rows.push((
        "Resource type",
        f.resource_type.clone().unwrap_or_else(dash),
    ));
    rows.push(("Created at", f.created_at.clone().unwrap_or_else(dash)));
    rows.push((
        "Last seen",
        f.last_seen
            .clone()
            .or_else(|| f.updated_at.clone())
            .unwrap_or_else(dash),
    ));
    rows.push((
        "Resource role",
        f.resource_role.clone().unwrap_or_else(dash),
    ));
    rows.push(("Action type", f.action_type.clone().unwrap_or_else(dash)));
    let service = f.raw().get("service").unwrap_or(&Value::Null);
    if let Some(process) = s(service, &["runtimeDetails", "process"]) {
        let name = text(process.get("name")).unwrap_or_else(dash);
        let path = text(process.get("executablePath"));
        rows.push((
            "Actor process",
            match path {
                Some(p) => format!("{name} ({p})"),
                None => name,
            },
        ));
    }
    if let Some(domain) = &f.domain {
        rows.push(("Domain", domain.clone()));
    }
    let action = service.get("action").unwrap_or(&Value::Null);
    if let Some(ip) = find_key(action, "remoteIpDetails") {
        let addr = text(ip.get("ipAddressV4"))
            .or_else(|| text(ip.get("ipAddressV6")))
            .unwrap_or_else(dash);
        let port = find_key(action, "remotePortDetails")
            .or_else(|| find_key(action, "localPortDetails"))
            .and_then(|p| text(p.get("port")));
        rows.push((
            "Remote IP",
            match port {
                Some(p) => format!("{addr} port {p}"),
                None => addr,
            },
        ));
        rows.push((
            "City",
            text(s(ip, &["city", "cityName"])).unwrap_or_else(dash),
        ));
        rows.push((
            "Country",
            text(s(ip, &["country", "countryName"])).unwrap_or_else(dash),
        ));
        rows.push((
            "Organization",
            text(s(ip, &["organization", "org"]))
                .or_else(|| text(s(ip, &["organization", "asnOrg"])))
                .or_else(|| text(s(ip, &["organization", "isp"])))
                .unwrap_or_else(dash),
        ));
    } else {
        rows.push(("Remote IP", dash()));
    }
    let info = service.get("additionalInfo");
    rows.push((
        "Threat list",
        text(info.and_then(|i| i.get("threatListName"))).unwrap_or_else(dash),
    ));
    rows.push((
        "Additional info",
        match info {
            Some(v) if !v.is_null() => crate::text::escape_truncated(&v.to_string(), 400),
            _ => dash(),
        },
    ));
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = format!("── {} ──\n", escape(&f.id));
    for (k, v) in rows {
        let _ = writeln!(out, "  {k:<width$}  {}", escape(&v));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn finding(v: Value) -> Finding {
        Finding::from_value(v).unwrap()
    }

    #[test]
    fn counts_by_console_band() {
        let mut c = SeverityCounts::default();
        for s in [1.0, 3.9, 4.0, 6.9, 7.0, 8.9, 9.0, 10.0, 5.0] {
            c.observe(&finding(json!({"id": "x", "type": "T", "severity": s})));
        }
        c.observe(&finding(json!({"id": "x", "type": "T"})));
        assert_eq!(
            (c.low, c.medium, c.high, c.critical, c.unknown),
            (2, 3, 2, 2, 1)
        );
        assert_eq!(
            c.to_string(),
            "10 findings: Critical 2  High 2  Medium 3  Low 2  no severity 1"
        );
    }

    #[test]
    fn panel_names_the_remote_side_and_escapes_attacker_text() {
        let f = finding(json!({
            "id": "f1", "type": "UnauthorizedAccess:EC2/SSHBruteForce", "severity": 2,
            "accountId": "111122223333", "region": "us-east-1",
            "createdAt": "2024-01-01T00:00:00Z",
            "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": "i-0abc"}},
            "service": {"resourceRole": "TARGET", "count": 7, "eventLastSeen": "2024-01-02T00:00:00Z",
                "runtimeDetails": {"process": {"name": "evil\u{1b}[2J", "executablePath": "/tmp/x\u{202e}txt.exe"}},
                "additionalInfo": {"threatListName": "List\r\nFake: line"},
                "action": {"actionType": "NETWORK_CONNECTION", "networkConnectionAction": {
                    "remoteIpDetails": {"ipAddressV4": "198.51.100.7", "city": {"cityName": "Lyon"},
                        "country": {"countryName": "France"}, "organization": {"org": "Example\u{7}Org"}},
                    "remotePortDetails": {"port": 22}}}}
        }));
        let panel = details_panel(&f);
        for want in [
            "Type             UnauthorizedAccess:EC2/SSHBruteForce",
            "Severity         Low 2",
            "Count            7",
            "Resource ID      i-0abc",
            "Last seen        2024-01-02T00:00:00Z",
            "Remote IP        198.51.100.7 port 22",
            "City             Lyon",
            "Country          France",
            "Organization     Example\\u{7}Org",
            "Actor process    evil\\u{1b}[2J (/tmp/x\\u{202e}txt.exe)",
            "Threat list      List\\r\\nFake: line",
        ] {
            assert!(panel.contains(want), "{want:?} not in\n{panel}");
        }
        assert!(
            !panel
                .chars()
                .any(|c| c != '\n' && crate::text::needs_escape(c))
        );
        let t = table([&f]);
        assert!(t.starts_with("SEVERITY  TYPE"), "{t}");
        assert!(
            t.contains("Low 2     UnauthorizedAccess:EC2/SSHBruteForce  i-0abc"),
            "{t}"
        );
    }
}
