//! `scan`: a GuardDuty Malware Protection on-demand scan of the instance's volumes
//! (`StartMalwareScan`), kept as evidence: GuardDuty snapshots the volumes, scans
//! them and raises `Execution:EC2/MaliciousFile` findings for what it finds.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Declare, OnFailure, PlanError, PlanInput, StepSpec};
use crate::finding::Finding;

/// `scan` as playbooks write it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[schemars(rename = "ScanParams")]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// What to do when this step fails (default: continue; the steps that need
    /// evidence, such as terminate, are withheld all the same).
    #[serde(default)]
    pub on_failure: Option<OnFailure>,
}

/// The `StartMalwareScan` call the executor makes, or why it makes none.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Planned {
    /// The instance.
    pub instance_id: String,
    /// The instance's ARN, `arn:<partition>:ec2:<region>:<account>:instance/<id>`,
    /// from the finding's partition, Region and account (or its ARN's); empty when
    /// the finding names neither (then `skip_reason` says so).
    pub resource_arn: String,
    /// The idempotency token, `<finding id>/<instance id>` (absent past the API's
    /// 64 characters): a repeated call for the same finding and instance starts no
    /// second scan, even without a ledger.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
    /// Why no scan is started: the finding is itself a Malware Protection finding or
    /// the result of a scan (`service.ebsVolumeScanDetails.triggerFindingId`), so the
    /// scan already happened; or no instance ARN can be formed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<String>,
}

impl super::Instruction for Planned {
    fn instance(&self) -> &str {
        &self.instance_id
    }
}

/// `StartMalwareScan`'s limit on `clientToken`.
pub const MAX_CLIENT_TOKEN_CHARS: usize = 64;

/// The finding types Malware Protection for EC2 raises (and their `!Snapshot`,
/// `!AMI`, `!RecoveryPoint` forms): a scan produced them.
const MALWARE_PROTECTION_TYPE: &str = "Execution:EC2/MaliciousFile";

impl Declare for Params {
    const SPEC: StepSpec = StepSpec {
        name: "scan",
        summary: "Start a GuardDuty Malware Protection scan of the instance's volumes (once per finding; none for a finding a scan raised).",
        destructive: false,
        reversible: true,
        once: true,
        needs_instance: true,
        needs_live_instance: true,
        evidence: true,
        needs_evidence: false,
        describes_instance: false,
        ends_instance: false,
        default_on_failure: OnFailure::Continue,
        // StartMalwareScan has no resource-level permission: the service
        // authorization reference lists no resource type for it. The first scan
        // of an account creates GuardDuty's malware-protection service-linked role.
        iam_actions: &[
            super::Iam::on("guardduty:StartMalwareScan", &[super::Resource::Any]),
            super::Iam::on(
                "iam:CreateServiceLinkedRole",
                &[super::Resource::MalwareScanServiceLinkedRole],
            )
            .when(&[super::iam::MALWARE_SCAN_SERVICE]),
        ],
    };
    type Planned = Planned;

    fn on_failure(&self) -> Option<OnFailure> {
        self.on_failure
    }

    fn plan(&self, input: &PlanInput<'_>) -> Result<Planned, PlanError> {
        let finding = input.finding;
        let instance_id = input.instance_id();
        let token = format!("{}/{}", finding.id, instance_id);
        let client_token = (token.chars().count() <= MAX_CLIENT_TOKEN_CHARS).then_some(token);
        let arn = instance_arn(finding, &instance_id);
        let skip_reason = if let Some(reason) = already_scanned(finding) {
            Some(reason)
        } else if arn.is_none() {
            Some("the finding names no account or Region: no instance ARN to scan".to_owned())
        } else {
            None
        };
        Ok(Planned {
            instance_id,
            resource_arn: arn.unwrap_or_default(),
            client_token,
            skip_reason,
        })
    }
}

/// Why the finding needs no scan: it is a Malware Protection finding, or names the
/// finding whose scan raised it.
pub fn already_scanned(f: &Finding) -> Option<String> {
    if f.finding_type.name.starts_with(MALWARE_PROTECTION_TYPE) {
        return Some(format!(
            "the finding is a Malware Protection finding ({MALWARE_PROTECTION_TYPE}): the scan already happened"
        ));
    }
    let trigger = f
        .scan_trigger_finding_id
        .as_deref()
        .filter(|s| !s.is_empty())?;
    Some(format!(
        "the finding comes from a malware scan (triggered by finding {}): the scan already happened",
        crate::text::escape(trigger)
    ))
}

/// `arn:<partition>:ec2:<region>:<account>:instance/<id>`, each part from the
/// finding or its ARN, each in the shape AWS gives it (else `None`).
fn instance_arn(f: &Finding, instance_id: &str) -> Option<String> {
    let parts: Vec<&str> = f.arn.as_deref().unwrap_or_default().split(':').collect();
    let from_arn = |i: usize| parts.get(i).copied().filter(|s| !s.is_empty());
    let partition = f
        .partition
        .as_deref()
        .or_else(|| from_arn(1))
        .unwrap_or("aws");
    let region = f.region.as_deref().or_else(|| from_arn(3))?;
    let account = f.account_id.as_deref().or_else(|| from_arn(4))?;
    let word = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    let ok = word(partition)
        && word(region)
        && account.len() == 12
        && account.chars().all(|c| c.is_ascii_digit())
        && instance_id.starts_with("i-")
        && word(instance_id);
    ok.then(|| format!("arn:{partition}:ec2:{region}:{account}:instance/{instance_id}"))
}

impl fmt::Display for Planned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.skip_reason {
            Some(reason) => write!(f, "{}: no scan ({reason})", self.instance_id),
            None => write!(
                f,
                "{}: Malware Protection scan of its volumes ({})",
                self.instance_id, self.resource_arn
            ),
        }
    }
}
