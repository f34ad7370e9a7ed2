//! Every tag key the responder reads or writes, in one place.
//!
//! Marker tags say which finding and playbook touched a resource; record tags keep
//! what an isolation or a revocation changed, so that `release` can undo it.
//! `aws:` tags are set by AWS services and cannot be written by users.

use std::collections::BTreeMap;

use crate::finding::Finding;

/// Prefix of every key the responder writes.
pub const PREFIX: &str = "guardduty-responder:";
/// Set by EC2 on instances launched from a launch template: the template id.
pub const LAUNCH_TEMPLATE: &str = "aws:ec2launchtemplate:id";
/// Set by Auto Scaling on its instances: the group name.
pub const AUTO_SCALING_GROUP: &str = "aws:autoscaling:groupName";
/// AWS tag values are at most 256 characters.
pub const MAX_VALUE_CHARS: usize = 256;

/// Marker: the finding a resource was touched for.
pub const FINDING_ID: &str = "guardduty-responder:finding-id";
/// Marker: that finding's type.
pub const FINDING_TYPE: &str = "guardduty-responder:finding-type";
/// Marker: that finding's severity.
pub const SEVERITY: &str = "guardduty-responder:severity";
/// Marker: the playbook that answered.
pub const PLAYBOOK: &str = "guardduty-responder:playbook";
/// On snapshots: the instance they were taken of.
pub const INSTANCE_ID: &str = "guardduty-responder:instance-id";
/// On a replacement: the instance it replaces.
pub const REPLACES: &str = "guardduty-responder:replaces";
/// On an instance: isolated for this finding id. A marker for people and IAM; the
/// responder never reads it back as state (anyone who can tag the instance can set it).
pub const ISOLATED: &str = "guardduty-responder:isolated";
/// On an instance: the report for this finding id was published.
pub const NOTIFIED: &str = "guardduty-responder:notified";
/// On groups and network ACLs the responder created: `quarantine`, `untrack`, `deny-all`.
pub const ROLE: &str = "guardduty-responder:role";
/// On a deny-all network ACL: the ACL it replaced on the subnet.
pub const ORIGINAL_ACL: &str = "guardduty-responder:original-acl";
/// On an instance, set by its owners: never act on it. Playbooks exclude it, and the
/// deployment roles deny changing such an instance and writing or removing the key
/// (`steps::iam::DENIES`).
pub const EXEMPT: &str = "guardduty-responder:exempt";

/// True for keys only the responder (or AWS) may write: a playbook's tags must not set
/// them. Any case: `AWS:` is AWS's too, and a look-alike of the responder's prefix is
/// refused as well.
pub fn is_reserved(key: &str) -> bool {
    let starts = |prefix: &str| {
        key.get(..prefix.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
    };
    starts(PREFIX) || starts("aws:")
}

/// The marker tags written on everything a response touches. Every value fits AWS's
/// limit: the finding id is at most 64 characters once decoded ([`crate::ids`]) and is
/// cut here too for findings built another way.
pub fn markers(finding: &Finding, playbook: &str) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::new();
    tags.insert(FINDING_ID.to_owned(), truncate(&finding.id));
    tags.insert(
        FINDING_TYPE.to_owned(),
        truncate(&finding.finding_type.name),
    );
    if let Some(s) = finding.severity {
        tags.insert(SEVERITY.to_owned(), s.to_string());
    }
    tags.insert(PLAYBOOK.to_owned(), truncate(playbook));
    tags
}

/// A value cut to AWS's limit on tag values.
pub fn truncate(value: &str) -> String {
    value.chars().take(MAX_VALUE_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_ours() {
        for key in [
            FINDING_ID,
            FINDING_TYPE,
            SEVERITY,
            PLAYBOOK,
            INSTANCE_ID,
            REPLACES,
            ISOLATED,
            NOTIFIED,
            ROLE,
            ORIGINAL_ACL,
            EXEMPT,
        ] {
            assert!(key.starts_with(PREFIX) && is_reserved(key), "{key}");
        }
        assert!(is_reserved("AWS:x") && is_reserved("GuardDuty-Responder:isolated"));
        assert!(!is_reserved("owner") && !is_reserved("é") && !is_reserved("aws"));
    }

    #[test]
    fn marker_values_fit_a_tag_value() {
        let long = "x".repeat(300);
        let f = Finding::from_value(serde_json::json!({"id": long, "type": long}))
            .unwrap_or_else(|e| unreachable!("{e}"));
        for (k, v) in markers(&f, &long) {
            assert!(v.chars().count() <= MAX_VALUE_CHARS, "{k}: {}", v.len());
        }
    }
}
