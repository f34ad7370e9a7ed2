//! Tags as state: what a response records on the instance so that a redelivered
//! event, a later `release`, or a person can see what was done.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{Filter, Tag};
use responder_core::plan::TAG_PREFIX;

use crate::call::{CallError, err};

/// AWS tag values are at most 256 characters.
const MAX_TAG_VALUE: usize = 256;

/// Key of the tag recording an ENI's original groups (one tag per ENI).
pub fn original_groups_key(eni: &str) -> String {
    format!("{TAG_PREFIX}original-groups:{eni}")
}

/// Key of the tag recording the original instance profile.
pub fn original_profile_key() -> String {
    format!("{TAG_PREFIX}original-profile")
}

/// Key of the tag marking the instance isolated for a finding.
pub fn isolated_key() -> String {
    format!("{TAG_PREFIX}isolated")
}

/// Key of the tag recording that the report was published for a finding.
pub fn notified_key() -> String {
    format!("{TAG_PREFIX}notified")
}

/// Space-separated group ids, cut at a whole id if they do not fit in one tag value.
pub fn encode_groups(groups: &[String]) -> String {
    let mut out = String::new();
    for g in groups {
        if out.len() + g.len() + 1 > MAX_TAG_VALUE {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(g);
    }
    out
}

/// The inverse of [`encode_groups`].
pub fn decode_groups(value: &str) -> Vec<String> {
    value.split_whitespace().map(str::to_owned).collect()
}

/// An EC2 tag.
pub fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

/// An EC2 filter.
pub fn filter(name: &str, values: &[&str]) -> Filter {
    let mut f = Filter::builder().name(name);
    for v in values {
        f = f.values(*v);
    }
    f.build()
}

/// Writes tags on resources (CreateTags overwrites values; that is idempotent).
pub async fn write_tags(
    ec2: &aws_sdk_ec2::Client,
    resources: &[String],
    tags: &BTreeMap<String, String>,
    dry_run: bool,
) -> Result<(), CallError> {
    if tags.is_empty() || resources.is_empty() {
        return Ok(());
    }
    let mut req = ec2.create_tags().dry_run(dry_run);
    for r in resources {
        req = req.resources(r);
    }
    for (k, v) in tags {
        req = req.tags(tag(k, v));
    }
    req.send().await.map(|_| ()).map_err(err)
}
