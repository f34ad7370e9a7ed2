//! Faults moto cannot produce: GuardDuty's findings API, throttling, denials.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput;
use aws_sdk_ec2::operation::describe_security_groups::DescribeSecurityGroupsOutput;
use aws_sdk_ec2::types::{
    GroupIdentifier, Instance, InstanceNetworkInterface, InstanceNetworkInterfaceAttachment,
    InstanceState, InstanceStateName, Reservation, SecurityGroup,
};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use responder_aws::{Clients, ExecOptions, Executor, Outcome, Status};
use responder_core::{Engine, Finding};

fn engine(steps: &str) -> Engine {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.yaml"),
        format!(
            "name: p\nmode: enforce\nacknowledge: [terminate-without-snapshot]\nmatch: {{finding_types: 'CryptoCurrency:EC2/*', resource_types: Instance}}\nsteps:\n{steps}"
        ),
    )
    .unwrap();
    Engine::load(dir.path()).unwrap()
}

fn finding() -> Finding {
    let v = serde_json::json!({
        "id": "f1", "type": "CryptoCurrency:EC2/BitcoinTool.B!DNS", "severity": 8, "accountId": "111122223333",
        "arn": "arn:aws:guardduty:us-east-1:111122223333:detector/det1/finding/f1",
        "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": "i-1",
            "networkInterfaces": [{"networkInterfaceId": "eni-1", "vpcId": "vpc-1", "subnetId": "subnet-1",
                "securityGroups": [{"groupId": "sg-web"}]}]}},
        "service": {"detectorId": "det1"}
    });
    Finding::from_value(v).unwrap()
}

fn xml(code: &str) -> String {
    format!(
        "<Response><Errors><Error><Code>{code}</Code><Message>m</Message></Error></Errors><RequestID>r</RequestID></Response>"
    )
}

macro_rules! unused {
    ($sdk:ident) => {
        $sdk::config::Config::builder()
            .behavior_version($sdk::config::BehaviorVersion::latest())
            .region($sdk::config::Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:9")
            .build()
    };
}

fn clients(ec2: &[&Rule], gd: &[&Rule]) -> Clients {
    Clients {
        ec2: mock_client!(aws_sdk_ec2, RuleMode::MatchAny, ec2),
        guardduty: mock_client!(aws_sdk_guardduty, RuleMode::MatchAny, gd),
        // Not used by these tests: clients whose endpoint nothing listens on.
        autoscaling: aws_sdk_autoscaling::Client::from_conf(unused!(aws_sdk_autoscaling)),
        elbv2: aws_sdk_elasticloadbalancingv2::Client::from_conf(unused!(
            aws_sdk_elasticloadbalancingv2
        )),
        sns: aws_sdk_sns::Client::from_conf(unused!(aws_sdk_sns)),
    }
}

fn running_instance() -> DescribeInstancesOutput {
    let eni = InstanceNetworkInterface::builder()
        .network_interface_id("eni-1")
        .vpc_id("vpc-1")
        .subnet_id("subnet-1")
        .attachment(
            InstanceNetworkInterfaceAttachment::builder()
                .device_index(0)
                .build(),
        )
        .groups(GroupIdentifier::builder().group_id("sg-web").build())
        .build();
    let instance = Instance::builder()
        .instance_id("i-1")
        .state(
            InstanceState::builder()
                .name(InstanceStateName::Running)
                .build(),
        )
        .network_interfaces(eni)
        .build();
    DescribeInstancesOutput::builder()
        .reservations(Reservation::builder().instances(instance).build())
        .build()
}

fn quarantine_group() -> DescribeSecurityGroupsOutput {
    DescribeSecurityGroupsOutput::builder()
        .security_groups(
            SecurityGroup::builder()
                .group_id("sg-q")
                .group_name("guardduty-responder-quarantine")
                .vpc_id("vpc-1")
                .build(),
        )
        .build()
}

#[tokio::test]
async fn archive_finding_calls_guardduty_once_and_never_in_dry_run() {
    let archive = mock!(aws_sdk_guardduty::Client::archive_findings)
        .match_requests(|r| r.detector_id() == Some("det1") && r.finding_ids() == ["f1".to_owned()])
        .then_output(|| {
            aws_sdk_guardduty::operation::archive_findings::ArchiveFindingsOutput::builder().build()
        });
    let f = finding();
    let plan = engine("  - archive-finding: {}\n").plan(&f, false).unwrap();
    let exec = Executor::new(clients(&[], &[&archive]), ExecOptions::default());
    let report = exec.respond(&f, &plan).await;
    assert_eq!(report.status, Status::Succeeded, "{report:?}");
    assert_eq!(report.steps[0].outcome, Outcome::Done);
    assert_eq!(archive.num_calls(), 1);

    let dry = Executor::new(
        clients(&[], &[&archive]),
        ExecOptions {
            dry_run: true,
            topic_arn: None,
        },
    );
    let report = dry.respond(&f, &plan).await;
    assert!(matches!(report.steps[0].outcome, Outcome::Skipped { .. }));
    assert_eq!(archive.num_calls(), 1);
}

#[tokio::test]
async fn a_denied_archive_fails_the_response() {
    let denied = mock!(aws_sdk_guardduty::Client::archive_findings)
        .sequence()
        .http_status(
            403,
            Some(r#"{"__type":"AccessDeniedException","message":"no"}"#.to_owned()),
        )
        .build();
    let f = finding();
    let plan = engine("  - archive-finding: {}\n").plan(&f, false).unwrap();
    let report = Executor::new(clients(&[], &[&denied]), ExecOptions::default())
        .respond(&f, &plan)
        .await;
    assert_eq!(report.status, Status::Failed);
    assert!(report.is_failure());
}

#[tokio::test]
async fn throttling_is_retried_and_isolation_still_happens() {
    let describe = mock!(aws_sdk_ec2::Client::describe_instances)
        .sequence()
        .http_status(503, Some(xml("RequestLimitExceeded")))
        .times(2)
        .output(running_instance)
        .build();
    let groups = mock!(aws_sdk_ec2::Client::describe_security_groups).then_output(quarantine_group);
    let modify = mock!(aws_sdk_ec2::Client::modify_network_interface_attribute)
        .match_requests(|r| r.network_interface_id() == Some("eni-1") && r.groups() == ["sg-q".to_owned()])
        .then_output(|| {
            aws_sdk_ec2::operation::modify_network_interface_attribute::ModifyNetworkInterfaceAttributeOutput::builder()
                .build()
        });
    let tags = mock!(aws_sdk_ec2::Client::create_tags)
        .then_output(|| aws_sdk_ec2::operation::create_tags::CreateTagsOutput::builder().build());
    let f = finding();
    let plan = engine("  - isolate: {cut_connections: false}\n")
        .plan(&f, false)
        .unwrap();
    let exec = Executor::new(
        clients(&[&describe, &groups, &modify, &tags], &[]),
        ExecOptions::default(),
    );
    let report = exec.respond(&f, &plan).await;
    assert_eq!(report.status, Status::Succeeded, "{report:#?}");
    assert_eq!(
        describe.num_calls(),
        3,
        "two throttled attempts, then success"
    );
    assert_eq!(modify.num_calls(), 1);
    assert_eq!(tags.num_calls(), 1, "original groups recorded");
}

#[tokio::test]
async fn failed_isolation_stops_every_later_step() {
    let describe = mock!(aws_sdk_ec2::Client::describe_instances).then_output(running_instance);
    let groups = mock!(aws_sdk_ec2::Client::describe_security_groups).then_output(quarantine_group);
    let modify = mock!(aws_sdk_ec2::Client::modify_network_interface_attribute)
        .sequence()
        .http_status(403, Some(xml("UnauthorizedOperation")))
        .build();
    let terminate = mock!(aws_sdk_ec2::Client::terminate_instances).then_output(|| {
        aws_sdk_ec2::operation::terminate_instances::TerminateInstancesOutput::builder().build()
    });
    let f = finding();
    let plan = engine("  - isolate: {cut_connections: false}\n  - terminate: {}\n")
        .plan(&f, false)
        .unwrap();
    let exec = Executor::new(
        clients(&[&describe, &groups, &modify, &terminate], &[]),
        ExecOptions::default(),
    );
    let report = exec.respond(&f, &plan).await;
    assert_eq!(report.status, Status::Failed);
    assert!(
        matches!(&report.steps[0].outcome, Outcome::Failed { code, .. } if code == "UnauthorizedOperation"),
        "{report:#?}"
    );
    assert!(
        matches!(&report.steps[1].outcome, Outcome::Skipped { reason } if reason.contains("isolate failed"))
    );
    assert_eq!(terminate.num_calls(), 0, "never terminate on an error path");
}

/// moto accepts ConnectionTrackingSpecification but does not keep it: the request
/// itself is checked here.
#[tokio::test]
async fn connection_tracking_timeouts_are_requested_for_every_eni() {
    let describe = mock!(aws_sdk_ec2::Client::describe_instances).then_output(running_instance);
    let groups = mock!(aws_sdk_ec2::Client::describe_security_groups).then_output(quarantine_group);
    let conntrack = mock!(aws_sdk_ec2::Client::modify_network_interface_attribute)
        .match_requests(|r| {
            r.network_interface_id() == Some("eni-1")
                && r.connection_tracking_specification()
                    .and_then(|c| c.tcp_established_timeout())
                    == Some(60)
        })
        .then_output(|| {
            aws_sdk_ec2::operation::modify_network_interface_attribute::ModifyNetworkInterfaceAttributeOutput::builder()
                .build()
        });
    let modify = mock!(aws_sdk_ec2::Client::modify_network_interface_attribute).then_output(|| {
        aws_sdk_ec2::operation::modify_network_interface_attribute::ModifyNetworkInterfaceAttributeOutput::builder()
            .build()
    });
    let tags = mock!(aws_sdk_ec2::Client::create_tags)
        .then_output(|| aws_sdk_ec2::operation::create_tags::CreateTagsOutput::builder().build());
    let f = finding();
    let plan = engine("  - isolate: {cut_connections: false, connection_tracking: {tcp_established_timeout: 60}}\n")
        .plan(&f, false)
        .unwrap();
    let exec = Executor::new(
        clients(&[&describe, &groups, &conntrack, &modify, &tags], &[]),
        ExecOptions::default(),
    );
    let report = exec.respond(&f, &plan).await;
    assert_eq!(report.status, Status::Succeeded, "{report:#?}");
    assert_eq!(conntrack.num_calls(), 1);
    assert_eq!(modify.num_calls(), 1, "the move into quarantine");
}
