//! An organization on moto: an administrator account (the deployment's home: its
//! ledger, its GuardDuty detector on the local findings endpoint) answering
//! findings of member accounts through the member role.
//!
//! How moto tells accounts apart (moto 5.2, `moto/core/responses.py`
//! `get_current_account`): the `MOTO_ACCOUNT_ID` environment variable first, then
//! the `x-moto-account-id` header (what [`crate::account::AccountHeader`] adds to
//! the tests' own clients), then the request's access key: AssumeRole on
//! `arn:aws:iam::<account>:role/<name>` creates an access key in `<account>`, and
//! requests signed with it act there. So the member clients the responder builds
//! from assumed credentials (no header) act in the member account, while the
//! administrator's clients carry the header. moto's AssumeRole never refuses: the
//! role need not exist and no trust policy is checked, so an unassumable role is
//! injected with the fault proxy (`fault::Fault` on the `AssumeRole` action).

use std::path::Path;

use aws_config::SdkConfig;
use responder_aws::accounts::{AccountSettings, ClientPool};
use responder_aws::ledger::Ledger;
use responder_aws::responder::Responder;
use responder_aws::verify::{DetectorSource, RetryPolicy, Verifier};
use responder_aws::{ExecOptions, Executor};
use responder_core::Engine;
use responder_core::playbook::load_str;
use serde_json::{Value, json};

use crate::account::{self, fresh_account};
use crate::fixture::{Fixture, LEDGER_TABLE};
use crate::guardduty::FindingsEndpoint;
use crate::moto;

/// The administrator's detector on the findings endpoint.
pub const ADMIN_DETECTOR: &str = "ad0000000000000000000000000000ad";

/// The administrator account and its GuardDuty.
pub struct Admin {
    /// The administrator's (the deployment's) account id.
    pub account: String,
    /// The moto configuration (no account header: member clients derive from it).
    pub config: SdkConfig,
    /// GuardDuty holding every member's findings in [`ADMIN_DETECTOR`].
    pub findings: FindingsEndpoint,
}

impl Admin {
    /// A fresh administrator account with its detector.
    pub async fn new() -> Admin {
        let findings = FindingsEndpoint::start();
        let account = fresh_account();
        findings.add_detector(&account, ADMIN_DETECTOR);
        Admin {
            config: account::sdk_config(&moto::endpoint()).await,
            account,
            findings,
        }
    }

    /// The administrator's ledger (created on first use).
    pub async fn ledger(&self) -> Ledger {
        let ledger = Ledger::new(
            crate::dynamodb::client(&self.config, &self.account),
            LEDGER_TABLE,
        );
        ledger
            .create_table()
            .await
            .unwrap_or_else(|e| panic!("the ledger table on moto: {e}"));
        ledger
    }

    /// A pool whose home is the administrator's account (home clients with its
    /// header; findings endpoint for GuardDuty), STS at `sts_endpoint` (moto, or a
    /// fault proxy in front of it).
    pub fn pool(&self, sts_endpoint: &str, settings: AccountSettings) -> ClientPool {
        let mut home = account::clients(&self.config, &self.account);
        home.guardduty = self.findings.client(&self.config, &self.account);
        let sts = aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::config::Builder::from(&self.config)
                .endpoint_url(sts_endpoint)
                .build(),
        );
        ClientPool::with_sts(
            home,
            &self.config,
            sts,
            AccountSettings {
                home_account: Some(self.account.clone()),
                ..settings
            },
        )
    }

    /// A responder over one inline playbook, verifying against [`ADMIN_DETECTOR`],
    /// with the administrator's ledger and `pool`.
    pub async fn responder(&self, playbook: &str, pool: ClientPool, max_all: u32) -> Responder {
        self.responder_with(playbook, pool, max_all, ExecOptions::default())
            .await
    }

    /// [`Admin::responder`] with executor options (`dry_run`: every call with
    /// DryRun, as `responder run --dry-run`).
    pub async fn responder_with(
        &self,
        playbook: &str,
        pool: ClientPool,
        max_all: u32,
        options: ExecOptions,
    ) -> Responder {
        let loaded = load_str(Path::new("organization-test.yaml"), playbook)
            .unwrap_or_else(|d| panic!("test playbook does not load: {d}"));
        let engine = Engine::from_playbooks(vec![loaded])
            .unwrap_or_else(|d| panic!("test playbook is invalid: {d:?}"));
        let verifier = Verifier::new(
            pool.home().guardduty.clone(),
            DetectorSource::Fixed(ADMIN_DETECTOR.to_owned()),
            RetryPolicy::default(),
        );
        let executor = Executor::new(pool.home().clone(), options).with_ledger(self.ledger().await);
        Responder::new(engine, executor, Some(verifier), max_all).with_accounts(pool)
    }

    /// The Bitcoin DNS event about the member fixture `f`, with finding id `n` of
    /// its own, stored in the administrator's detector (as GuardDuty does for
    /// members' findings).
    pub fn member_finding(&self, f: &Fixture, n: u32) -> responder_core::Finding {
        let event = numbered(crate::finding::bitcoin_dns_event(f), &f.account, n);
        self.findings.put_event_finding(ADMIN_DETECTOR, &event);
        crate::finding::finding(&event)
    }
}

/// The event with a finding id made of the account and `n` (32 characters).
pub fn numbered(mut event: Value, account: &str, n: u32) -> Value {
    let id = format!("{account}{n:020}");
    let detail = &mut event["detail"];
    let arn = detail["arn"].as_str().unwrap_or_default().to_owned();
    let old = detail["id"].as_str().unwrap_or_default().to_owned();
    detail["id"] = json!(id);
    detail["arn"] = json!(arn.replace(&old, &id));
    event
}

/// The event moved to `region` (its region field and ARN).
pub fn in_region(mut event: Value, region: &str) -> Value {
    let detail = &mut event["detail"];
    let old = detail["region"].as_str().unwrap_or_default().to_owned();
    let arn = detail["arn"].as_str().unwrap_or_default().to_owned();
    detail["region"] = json!(region);
    detail["arn"] = json!(arn.replacen(&format!(":{old}:"), &format!(":{region}:"), 1));
    event["region"] = json!(region);
    event
}

/// `config` with `region` instead of its own: clients of a stack in another region.
pub fn config_in_region(config: &SdkConfig, region: &str) -> SdkConfig {
    config
        .to_builder()
        .region(aws_config::Region::new(region.to_owned()))
        .build()
}

/// Launches one instance of moto's default image in `region` of `account` (its
/// default VPC) and returns the instance id.
pub async fn instance_in_region(config: &SdkConfig, account: &str, region: &str) -> String {
    let config = config
        .to_builder()
        .region(aws_config::Region::new(region.to_owned()))
        .build();
    let ec2 = account::ec2(&config, account);
    let image = ec2
        .describe_images()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("name")
                .values(moto::IMAGE_NAME)
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeImages in {region}: {e:?}"))
        .images()
        .first()
        .and_then(|i| i.image_id())
        .unwrap_or_else(|| panic!("no {} image in {region}", moto::IMAGE_NAME))
        .to_owned();
    ec2.run_instances()
        .image_id(image)
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .unwrap_or_else(|e| panic!("RunInstances in {region}: {e:?}"))
        .instances()
        .first()
        .and_then(|i| i.instance_id())
        .unwrap_or_else(|| panic!("RunInstances in {region} returned no instance"))
        .to_owned()
}

/// A raw EC2 client of `account` in `region`.
pub fn ec2_in_region(config: &SdkConfig, account: &str, region: &str) -> aws_sdk_ec2::Client {
    let config = config
        .to_builder()
        .region(aws_config::Region::new(region.to_owned()))
        .build();
    account::ec2(&config, account)
}

/// The event about the instance `instance_id` in `region` instead of the fixture's.
pub fn about_instance(mut event: Value, instance_id: &str, region: &str) -> Value {
    if let Some(details) = event.pointer_mut("/detail/resource/instanceDetails") {
        let old = details["instanceId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        details["instanceId"] = json!(instance_id);
        details["availabilityZone"] = json!(format!("{region}a"));
        if let Some(Value::String(t)) = event.pointer_mut("/detail/title") {
            *t = t.replace(&old, instance_id);
        }
    }
    in_region(event, region)
}
