//! The shapes of the identifiers a finding carries into AWS calls.
//!
//! A finding's id is written into tag values and used as an EC2 filter value (snapshot
//! and replacement dedup), its instance id into `instance-id` filters, and the VPC ids
//! of its network interfaces into `vpc-id` filters. EC2 filter values treat `*` and `?`
//! as wildcards: a finding id of `*` matched every other finding's snapshots. Decoding
//! ([`crate::event`]) therefore refuses a finding whose identifiers are not of these
//! shapes.
//!
//! The account id and region are not checked: the responder builds no filter or ARN
//! from them (the clients' region is the deployment's), and AWS's own sample findings
//! carry 13-digit account ids.

/// Longest finding id accepted. GuardDuty's ids are 32 hex characters; the API model
/// allows up to 300, which would not fit a 256-character tag value.
pub const MAX_FINDING_ID_CHARS: usize = 64;

/// Longest network interface, VPC or security group id accepted.
pub const MAX_RESOURCE_ID_CHARS: usize = 64;

/// What a valid finding id looks like, for error messages.
pub const FINDING_ID_RULE: &str =
    "a finding id is 1 to 64 characters: ASCII letters, digits, '-' and '_'";

/// What a valid instance id looks like, for error messages.
pub const INSTANCE_ID_RULE: &str = "an instance id is \"i-\" then 8 or 17 lowercase hex digits";

/// What a valid resource id looks like, for error messages.
pub const RESOURCE_ID_RULE: &str =
    "a resource id is 1 to 64 characters: ASCII letters, digits, '-' and '_'";

/// 1 to `max` characters of ASCII letters, digits, `-` and `_`: no EC2 filter
/// wildcard (`*`, `?`), no escape (`\`), no space or control character.
fn is_token(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A GuardDuty finding id (see [`FINDING_ID_RULE`]). Every id in the corpus, AWS's
/// 32-hex ids and hand-written ones like `e2e-s3-exposure-finding`, is one.
pub fn is_finding_id(s: &str) -> bool {
    is_token(s, MAX_FINDING_ID_CHARS)
}

/// An EC2 instance id: `i-` and 8 (older) or 17 lowercase hex digits.
pub fn is_instance_id(s: &str) -> bool {
    s.strip_prefix("i-").is_some_and(|hex| {
        matches!(hex.len(), 8 | 17)
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// A network interface, VPC or security group id as a finding gives it (see
/// [`RESOURCE_ID_RULE`]). Looser than EC2's own shapes on purpose: AWS's sample
/// findings carry `vpc-generatedvpcid1` and `GeneratedFindingSecurityId1`.
pub fn is_resource_id(s: &str) -> bool {
    is_token(s, MAX_RESOURCE_ID_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        for ok in [
            "f1",
            "7e3b4f0c1d2a4c559e6156bdb3afcdaa",
            "e2e-s3-exposure-finding",
            "a_b",
        ] {
            assert!(is_finding_id(ok), "{ok}");
        }
        let long = "a".repeat(65);
        for bad in ["", "*", "f?", "a b", "a\\*", "a\u{1b}", "é", long.as_str()] {
            assert!(!is_finding_id(bad), "{bad:?}");
        }
        for ok in ["i-99999999", "i-0123456789abcdef0"] {
            assert!(is_instance_id(ok), "{ok}");
        }
        for bad in [
            "i-1",
            "i-*",
            "i-9999999g",
            "i-0123456789ABCDEF0",
            "x-99999999",
            "i-999999999",
        ] {
            assert!(!is_instance_id(bad), "{bad}");
        }
        assert!(is_resource_id("vpc-generatedvpcid1") && is_resource_id("eni-bfcffe88"));
        assert!(!is_resource_id("vpc-*") && !is_resource_id(""));
    }
}
