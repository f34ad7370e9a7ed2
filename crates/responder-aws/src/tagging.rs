//! Writing and filtering by tags: what a response records on the resources it
//! touches, so that a redelivered event, a later `release`, or a person can see what
//! was done. The keys themselves are `responder_core::tags`'.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{Filter, Tag};

use crate::call::{CallError, err};

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

/// An EC2 filter on a tag's value (`tag:<key>`).
pub fn tag_filter(key: &str, values: &[&str]) -> Filter {
    filter(&format!("tag:{key}"), values)
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
