//! Faults moto cannot produce: GuardDuty's findings API, throttling, denials.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput;
use aws_sdk_ec2::operation::describe_security_groups::DescribeSecurityGroupsOutput;
use aws_sdk_ec2::types::{
    GroupIdentifier, Instance, InstanceNetworkInterface, InstanceNetworkInterfaceAttachment,
    InstanceState, InstanceStateName, IpPermission, IpRange, Reservation, SecurityGroup, Tag,
};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use responder_aws::{Clients, ExecOptions, Executor, Outcome, Report, Status};
use responder_core::steps::Settings;
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
    finding_tagged(&[])
}

/// The finding, listing these instance tags.
fn finding_tagged(tags: &[(&str, &str)]) -> Finding {
    let tags: Vec<serde_json::Value> = tags
        .iter()
        .map(|(k, v)| serde_json::json!({"key": k, "value": v}))
        .collect();
    let v = serde_json::json!({
        "id": "f1", "type": "CryptoCurrency:EC2/BitcoinTool.B!DNS", "severity": 8, "accountId": "111122223333",
        "arn": "arn:aws:guardduty:us-east-1:111122223333:detector/det1/finding/f1",
        "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": "i-1",
            "networkInterfaces": [{"networkInterfaceId": "eni-1", "vpcId": "vpc-1", "subnetId": "subnet-1",
                "securityGroups": [{"groupId": "sg-web"}]}],
            "tags": tags}},
        "service": {"detectorId": "det1"}
    });
    Finding::from_value(v).unwrap()
}

/// Plans the finding with these steps (enforced) and runs it over these EC2 rules.
async fn respond(steps: &str, f: &Finding, ec2: &[&Rule]) -> Report {
    let plan = engine(steps).plan(f, false).unwrap();
    Executor::new(clients(ec2, &[]), ExecOptions::default())
        .respond(f, &plan)
        .await
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
    instance_tagged(&[])
}

/// The running instance, with these tags now.
fn instance_tagged(tags: &[(&str, &str)]) -> DescribeInstancesOutput {
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
        .subnet_id("subnet-1")
        .image_id("ami-1")
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                .collect(),
        ))
        .build();
    DescribeInstancesOutput::builder()
        .reservations(Reservation::builder().instances(instance).build())
        .build()
}

fn quarantine_group() -> DescribeSecurityGroupsOutput {
    group_with(Some("quarantine"), None)
}

/// The quarantine group as a lookup finds it: with the responder's role tag (or
/// another one, or none) and, when given, an ingress rule someone added.
fn group_with(role: Option<&str>, ingress: Option<IpPermission>) -> DescribeSecurityGroupsOutput {
    named_group("guardduty-responder-quarantine", role, ingress)
}

fn named_group(
    name: &str,
    role: Option<&str>,
    ingress: Option<IpPermission>,
) -> DescribeSecurityGroupsOutput {
    let mut g = SecurityGroup::builder()
        .group_id("sg-q")
        .group_name(name)
        .vpc_id("vpc-1")
        .set_ip_permissions(ingress.map(|p| vec![p]));
    if let Some(role) = role {
        g = g.tags(
            Tag::builder()
                .key("guardduty-responder:role")
                .value(role)
                .build(),
        );
    }
    DescribeSecurityGroupsOutput::builder()
        .security_groups(g.build())
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
    let report = respond(
        "  - isolate: {cut_connections: false, connection_tracking: false}\n",
        &f,
        &[&describe, &groups, &modify, &tags],
    )
    .await;
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
    let report = respond(
        "  - isolate: {cut_connections: false, connection_tracking: false}\n  - terminate: {}\n",
        &f,
        &[&describe, &groups, &modify, &terminate],
    )
    .await;
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
    let report = respond("  - isolate: {cut_connections: false, connection_tracking: {tcp_established_timeout: 60}}\n", &f, &[&describe, &groups, &conntrack, &modify, &tags]).await;
    assert_eq!(report.status, Status::Succeeded, "{report:#?}");
    assert_eq!(conntrack.num_calls(), 1);
    assert_eq!(modify.num_calls(), 1, "the move into quarantine");
}

/// A describe-instances request looking for replacements (by the `replaces` tag).
fn asks_for_replacements(
    r: &aws_sdk_ec2::operation::describe_instances::DescribeInstancesInput,
) -> bool {
    r.filters()
        .iter()
        .any(|f| f.name() == Some("tag:guardduty-responder:replaces"))
}

fn no_replacement() -> Rule {
    mock!(aws_sdk_ec2::Client::describe_instances)
        .match_requests(asks_for_replacements)
        .then_output(|| DescribeInstancesOutput::builder().build())
}

fn stops() -> Rule {
    mock!(aws_sdk_ec2::Client::stop_instances).then_output(|| {
        aws_sdk_ec2::operation::stop_instances::StopInstancesOutput::builder().build()
    })
}

/// The source is the plan's: the launch template the finding saw, even when the live
/// instance's tag names another one.
#[tokio::test]
async fn relaunch_launches_from_the_planned_template_not_the_live_tag() {
    let replacements = no_replacement();
    let describe = mock!(aws_sdk_ec2::Client::describe_instances)
        .then_output(|| instance_tagged(&[("aws:ec2launchtemplate:id", "lt-live")]));
    let stop = stops();
    let run = mock!(aws_sdk_ec2::Client::run_instances)
        .match_requests(|r| {
            r.launch_template().and_then(|t| t.launch_template_id()) == Some("lt-planned")
                && r.image_id().is_none()
        })
        .then_output(|| {
            aws_sdk_ec2::operation::run_instances::RunInstancesOutput::builder()
                .instances(Instance::builder().instance_id("i-new").build())
                .build()
        });
    let f = finding_tagged(&[("aws:ec2launchtemplate:id", "lt-planned")]);
    let report = respond(
        "  - stop: {}\n  - relaunch: {}\n",
        &f,
        &[&replacements, &describe, &stop, &run],
    )
    .await;
    assert_eq!(report.status, Status::Succeeded, "{report:#?}");
    assert_eq!(report.steps[1].outcome, Outcome::Done, "{report:#?}");
    assert_eq!(report.steps[1].resources, vec!["i-new".to_owned()]);
    assert_eq!(run.num_calls(), 1);
}

/// A plan asking for the launch template when the finding names none fails: the
/// executor does not look for one on the live instance.
#[tokio::test]
async fn relaunch_fails_when_the_plan_names_no_launch_template() {
    let replacements = no_replacement();
    let describe = mock!(aws_sdk_ec2::Client::describe_instances)
        .then_output(|| instance_tagged(&[("aws:ec2launchtemplate:id", "lt-live")]));
    let stop = stops();
    let run = mock!(aws_sdk_ec2::Client::run_instances).then_output(|| {
        aws_sdk_ec2::operation::run_instances::RunInstancesOutput::builder().build()
    });
    let f = finding();
    let report = respond(
        "  - stop: {}\n  - relaunch: {source: launch-template}\n",
        &f,
        &[&replacements, &describe, &stop, &run],
    )
    .await;
    assert_eq!(report.status, Status::Failed, "{report:#?}");
    assert!(
        matches!(&report.steps[1].outcome, Outcome::Failed { code, message }
            if code == "Internal" && message.contains("the plan names no launch template")),
        "{report:#?}"
    );
    assert_eq!(run.num_calls(), 0);
}

/// The Auto Scaling group source launches nothing, whatever the live tags say.
#[tokio::test]
async fn relaunch_by_auto_scaling_group_launches_nothing() {
    let replacements = no_replacement();
    let describe = mock!(aws_sdk_ec2::Client::describe_instances)
        .then_output(|| instance_tagged(&[("aws:autoscaling:groupName", "live-asg")]));
    let stop = stops();
    let run = mock!(aws_sdk_ec2::Client::run_instances).then_output(|| {
        aws_sdk_ec2::operation::run_instances::RunInstancesOutput::builder().build()
    });
    let f = finding_tagged(&[("aws:autoscaling:groupName", "web-asg")]);
    let report = respond(
        "  - stop: {}\n  - relaunch: {}\n",
        &f,
        &[&replacements, &describe, &stop, &run],
    )
    .await;
    assert_eq!(report.status, Status::Succeeded, "{report:#?}");
    assert!(
        matches!(&report.steps[1].outcome, Outcome::Skipped { reason }
            if reason.starts_with("left to Auto Scaling group web-asg")),
        "{report:#?}"
    );
    assert_eq!(run.num_calls(), 0);
}

/// A failed evidence step withholds the steps that need evidence, even when its
/// failure policy lets the response go on, and the reason names it.
#[tokio::test]
async fn a_failed_snapshot_withholds_terminate_and_says_why() {
    let describe = mock!(aws_sdk_ec2::Client::describe_instances).then_output(running_instance);
    let snapshots = mock!(aws_sdk_ec2::Client::describe_snapshots).then_output(|| {
        aws_sdk_ec2::operation::describe_snapshots::DescribeSnapshotsOutput::builder().build()
    });
    let create = mock!(aws_sdk_ec2::Client::create_snapshots)
        .sequence()
        .http_status(400, Some(xml("IncorrectState")))
        .build();
    let terminate = mock!(aws_sdk_ec2::Client::terminate_instances).then_output(|| {
        aws_sdk_ec2::operation::terminate_instances::TerminateInstancesOutput::builder().build()
    });
    let f = finding();
    let report = respond(
        "  - snapshot: {on_failure: continue}\n  - terminate: {}\n",
        &f,
        &[&describe, &snapshots, &create, &terminate],
    )
    .await;
    assert_eq!(report.status, Status::Failed, "{report:#?}");
    assert!(
        matches!(&report.steps[0].outcome, Outcome::Failed { code, .. } if code == "IncorrectState"),
        "{report:#?}"
    );
    assert!(
        matches!(&report.steps[1].outcome, Outcome::Skipped { reason }
            if reason.contains("snapshot step failed") && reason.contains("terminate withheld")),
        "{report:#?}"
    );
    assert_eq!(terminate.num_calls(), 0);
}

/// The quarantine group is the plan's name (here the deployment's override), in
/// every VPC: any other name finds no group in these mocks and fails the step.
#[tokio::test]
async fn isolate_uses_the_planned_quarantine_group() {
    let describe = mock!(aws_sdk_ec2::Client::describe_instances).then_output(running_instance);
    let groups = mock!(aws_sdk_ec2::Client::describe_security_groups)
        .match_requests(|r| {
            r.filters().iter().any(|f| {
                f.name() == Some("group-name") && f.values() == ["team-quarantine".to_owned()]
            })
        })
        .then_output(|| named_group("team-quarantine", Some("quarantine"), None));
    let modify = mock!(aws_sdk_ec2::Client::modify_network_interface_attribute)
        .match_requests(|r| r.groups() == ["sg-q".to_owned()])
        .then_output(|| {
            aws_sdk_ec2::operation::modify_network_interface_attribute::ModifyNetworkInterfaceAttributeOutput::builder()
                .build()
        });
    let tags = mock!(aws_sdk_ec2::Client::create_tags)
        .then_output(|| aws_sdk_ec2::operation::create_tags::CreateTagsOutput::builder().build());
    let f = finding();
    let plan = engine("  - isolate: {cut_connections: false, connection_tracking: false}\n")
        .with_settings(Settings {
            quarantine_group: Some("team-quarantine".to_owned()),
            ..Settings::default()
        })
        .plan(&f, false)
        .unwrap();
    let exec = Executor::new(
        clients(&[&describe, &groups, &modify, &tags], &[]),
        ExecOptions::default(),
    );
    let report = exec.respond(&f, &plan).await;
    assert_eq!(report.status, Status::Succeeded, "{report:#?}");
    assert_eq!(groups.num_calls(), 1, "one lookup, by the planned name");
    assert_eq!(modify.num_calls(), 1);
}

/// Nothing is cached between responses: each one looks the quarantine group up
/// again, in the round trip of the describe, and isolates in two round trips.
#[tokio::test]
async fn every_response_checks_the_group_and_isolates_in_two_round_trips() {
    let describe = mock!(aws_sdk_ec2::Client::describe_instances).then_output(running_instance);
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
    let plan = engine("  - isolate: {cut_connections: false, connection_tracking: false}\n")
        .plan(&f, false)
        .unwrap();
    let exec = Executor::new(
        clients(&[&describe, &groups, &modify, &tags], &[]),
        ExecOptions::default(),
    );
    for _ in 0..2 {
        let r = exec.respond(&f, &plan).await;
        assert_eq!(r.status, Status::Succeeded, "{r:#?}");
        assert_eq!(r.round_trips_to_isolation, Some(2), "{r:#?}");
    }
    assert_eq!(
        groups.num_calls(),
        2,
        "the group is looked up by each response"
    );
    assert_eq!(modify.num_calls(), 2);
}

/// A group with the quarantine group's name but without the responder's role tag is
/// somebody else's: no ENI goes into it.
#[tokio::test]
async fn a_group_named_like_the_quarantine_group_but_not_the_responders_is_refused() {
    for role in [None, Some("untrack"), Some("web")] {
        let describe = mock!(aws_sdk_ec2::Client::describe_instances).then_output(running_instance);
        let groups = mock!(aws_sdk_ec2::Client::describe_security_groups)
            .then_output(move || group_with(role, None));
        let modify = mock!(aws_sdk_ec2::Client::modify_network_interface_attribute).then_output(|| {
            aws_sdk_ec2::operation::modify_network_interface_attribute::ModifyNetworkInterfaceAttributeOutput::builder().build()
        });
        let f = finding();
        let plan = engine("  - isolate: {cut_connections: false, connection_tracking: false}\n")
            .plan(&f, false)
            .unwrap();
        let r = Executor::new(
            clients(&[&describe, &groups, &modify], &[]),
            ExecOptions::default(),
        )
        .respond(&f, &plan)
        .await;
        assert_eq!(r.status, Status::Failed, "{r:#?}");
        assert!(
            matches!(&r.steps[0].outcome, Outcome::Failed { code, .. } if code == "ResponderGroupNotOwned"),
            "{r:#?}"
        );
        assert_eq!(modify.num_calls(), 0, "no ENI moved into a foreign group");
    }
}

/// A quarantine group that gained an allow-all rule since it was created is put
/// right (the rule revoked) before any ENI goes into it.
#[tokio::test]
async fn a_quarantine_group_that_gained_a_rule_is_fixed_before_use() {
    let open = IpPermission::builder()
        .ip_protocol("-1")
        .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
        .build();
    let describe = mock!(aws_sdk_ec2::Client::describe_instances).then_output(running_instance);
    let groups = mock!(aws_sdk_ec2::Client::describe_security_groups)
        .then_output(move || group_with(Some("quarantine"), Some(open.clone())));
    let revoke = mock!(aws_sdk_ec2::Client::revoke_security_group_ingress)
        .match_requests(|r| {
            r.group_id() == Some("sg-q")
                && r.ip_permissions().iter().any(|p| {
                    p.ip_ranges()
                        .iter()
                        .any(|x| x.cidr_ip() == Some("0.0.0.0/0"))
                })
        })
        .then_output(|| {
            aws_sdk_ec2::operation::revoke_security_group_ingress::RevokeSecurityGroupIngressOutput::builder().build()
        });
    let modify = mock!(aws_sdk_ec2::Client::modify_network_interface_attribute).then_output(|| {
        aws_sdk_ec2::operation::modify_network_interface_attribute::ModifyNetworkInterfaceAttributeOutput::builder().build()
    });
    let tags = mock!(aws_sdk_ec2::Client::create_tags)
        .then_output(|| aws_sdk_ec2::operation::create_tags::CreateTagsOutput::builder().build());
    let f = finding();
    let plan = engine("  - isolate: {cut_connections: false, connection_tracking: false}\n")
        .plan(&f, false)
        .unwrap();
    let r = Executor::new(
        clients(&[&describe, &groups, &revoke, &modify, &tags], &[]),
        ExecOptions::default(),
    )
    .respond(&f, &plan)
    .await;
    assert_eq!(r.status, Status::Succeeded, "{r:#?}");
    assert_eq!(revoke.num_calls(), 1, "the stray rule is revoked");
    assert_eq!(modify.num_calls(), 1);
}

fn modified()
-> aws_sdk_ec2::operation::modify_network_interface_attribute::ModifyNetworkInterfaceAttributeOutput
{
    aws_sdk_ec2::operation::modify_network_interface_attribute::ModifyNetworkInterfaceAttributeOutput::builder()
        .build()
}

/// A ModifyNetworkInterfaceAttribute request that sets connection tracking on `eni-1`
/// to exactly these timeouts (TCP established, UDP, UDP stream).
fn sets_conntrack(
    r: &aws_sdk_ec2::operation::modify_network_interface_attribute::ModifyNetworkInterfaceAttributeInput,
    want: (i32, i32, i32),
) -> bool {
    r.network_interface_id() == Some("eni-1")
        && r.groups().is_empty()
        && r.connection_tracking_specification().is_some_and(|c| {
            (
                c.tcp_established_timeout(),
                c.udp_timeout(),
                c.udp_stream_timeout(),
            ) == (Some(want.0), Some(want.1), Some(want.2))
        })
}

/// A ModifyNetworkInterfaceAttribute request that sets connection tracking at all.
fn any_conntrack(
    r: &aws_sdk_ec2::operation::modify_network_interface_attribute::ModifyNetworkInterfaceAttributeInput,
) -> bool {
    r.connection_tracking_specification().is_some()
}

/// The default `isolate` sets every timeout to the minimum EC2 accepts (60, 30, 60),
/// in a request of its own after the move, so a dormant tracked flow expires within
/// a minute. moto accepts the specification but does not keep it (a describe shows
/// no ConnectionTrackingConfiguration), so the request is checked here.
#[tokio::test]
async fn isolate_sets_the_minimum_connection_tracking_timeouts_by_default() {
    let describe = mock!(aws_sdk_ec2::Client::describe_instances).then_output(running_instance);
    let groups = mock!(aws_sdk_ec2::Client::describe_security_groups).then_output(quarantine_group);
    let conntrack = mock!(aws_sdk_ec2::Client::modify_network_interface_attribute)
        .match_requests(|r| sets_conntrack(r, (60, 30, 60)))
        .then_output(modified);
    let moves = mock!(aws_sdk_ec2::Client::modify_network_interface_attribute)
        .match_requests(|r| r.groups() == ["sg-q".to_owned()] && !any_conntrack(r))
        .then_output(modified);
    let tags = mock!(aws_sdk_ec2::Client::create_tags)
        .then_output(|| aws_sdk_ec2::operation::create_tags::CreateTagsOutput::builder().build());
    let f = finding();
    let report = respond(
        "  - isolate: {cut_connections: false}\n",
        &f,
        &[&describe, &groups, &conntrack, &moves, &tags],
    )
    .await;
    assert_eq!(report.status, Status::Succeeded, "{report:#?}");
    assert_eq!(conntrack.num_calls(), 1, "the minimums, on the one ENI");
    assert_eq!(moves.num_calls(), 1, "the move into quarantine");
    assert!(report.steps[0].notes.is_empty(), "{report:#?}");
}

/// Timeouts a playbook names are sent as written; the ones it leaves out are at their
/// minimums.
#[tokio::test]
async fn named_connection_tracking_timeouts_are_sent_with_the_others_at_their_minimums() {
    let describe = mock!(aws_sdk_ec2::Client::describe_instances).then_output(running_instance);
    let groups = mock!(aws_sdk_ec2::Client::describe_security_groups).then_output(quarantine_group);
    let conntrack = mock!(aws_sdk_ec2::Client::modify_network_interface_attribute)
        .match_requests(|r| sets_conntrack(r, (300, 30, 120)))
        .then_output(modified);
    let moves = mock!(aws_sdk_ec2::Client::modify_network_interface_attribute)
        .match_requests(|r| !any_conntrack(r))
        .then_output(modified);
    let tags = mock!(aws_sdk_ec2::Client::create_tags)
        .then_output(|| aws_sdk_ec2::operation::create_tags::CreateTagsOutput::builder().build());
    let f = finding();
    let report = respond(
        "  - isolate: {cut_connections: false, connection_tracking: {tcp_established_timeout: 300, udp_stream_timeout: 120}}\n",
        &f,
        &[&describe, &groups, &conntrack, &moves, &tags],
    )
    .await;
    assert_eq!(report.status, Status::Succeeded, "{report:#?}");
    assert_eq!(conntrack.num_calls(), 1);
    assert_eq!(moves.num_calls(), 1);
}

/// `connection_tracking: false` leaves the ENIs' timeouts alone: no request sets them.
#[tokio::test]
async fn connection_tracking_false_sends_no_timeouts() {
    let describe = mock!(aws_sdk_ec2::Client::describe_instances).then_output(running_instance);
    let groups = mock!(aws_sdk_ec2::Client::describe_security_groups).then_output(quarantine_group);
    let conntrack = mock!(aws_sdk_ec2::Client::modify_network_interface_attribute)
        .match_requests(any_conntrack)
        .then_output(modified);
    let moves =
        mock!(aws_sdk_ec2::Client::modify_network_interface_attribute).then_output(modified);
    let tags = mock!(aws_sdk_ec2::Client::create_tags)
        .then_output(|| aws_sdk_ec2::operation::create_tags::CreateTagsOutput::builder().build());
    let f = finding();
    let report = respond(
        "  - isolate: {cut_connections: false, connection_tracking: false}\n",
        &f,
        &[&describe, &groups, &conntrack, &moves, &tags],
    )
    .await;
    assert_eq!(report.status, Status::Succeeded, "{report:#?}");
    assert_eq!(conntrack.num_calls(), 0);
    assert_eq!(moves.num_calls(), 1);
}

/// An instance type without configurable tracking (not Nitro) refuses the timeouts:
/// the isolation stands and the report says the timeouts were not set.
#[tokio::test]
async fn refused_connection_tracking_is_a_note_not_a_failed_isolation() {
    let describe = mock!(aws_sdk_ec2::Client::describe_instances).then_output(running_instance);
    let groups = mock!(aws_sdk_ec2::Client::describe_security_groups).then_output(quarantine_group);
    let conntrack = mock!(aws_sdk_ec2::Client::modify_network_interface_attribute)
        .match_requests(any_conntrack)
        .sequence()
        .http_status(400, Some(xml("InvalidParameterValue")))
        .build();
    let moves =
        mock!(aws_sdk_ec2::Client::modify_network_interface_attribute).then_output(modified);
    let tags = mock!(aws_sdk_ec2::Client::create_tags)
        .then_output(|| aws_sdk_ec2::operation::create_tags::CreateTagsOutput::builder().build());
    let f = finding();
    let report = respond(
        "  - isolate: {cut_connections: false}\n",
        &f,
        &[&describe, &groups, &conntrack, &moves, &tags],
    )
    .await;
    assert_eq!(report.status, Status::Succeeded, "{report:#?}");
    assert_eq!(conntrack.num_calls(), 1);
    assert_eq!(moves.num_calls(), 1);
    assert!(
        report.steps[0]
            .notes
            .iter()
            .any(|n| n.contains("connection tracking timeouts not set")),
        "{report:#?}"
    );
}

/// The finding with `edit` applied to its JSON.
fn finding_edited(edit: impl FnOnce(&mut serde_json::Value)) -> Finding {
    let mut raw = finding().into_raw();
    edit(&mut raw);
    Finding::from_value(raw).unwrap()
}

fn scan_started() -> aws_sdk_guardduty::operation::start_malware_scan::StartMalwareScanOutput {
    aws_sdk_guardduty::operation::start_malware_scan::StartMalwareScanOutput::builder()
        .scan_id("scan-1")
        .build()
}

/// One StartMalwareScan on the instance's ARN, with the finding's client token; a dry
/// run calls nothing (the API has no DryRun) and says what it would do.
#[tokio::test]
async fn scan_starts_one_scan_on_the_instance_arn_and_none_in_dry_run() {
    let describe = mock!(aws_sdk_ec2::Client::describe_instances).then_output(running_instance);
    let start = mock!(aws_sdk_guardduty::Client::start_malware_scan)
        .match_requests(|r| {
            r.resource_arn() == Some("arn:aws:ec2:us-east-1:111122223333:instance/i-1")
                && r.client_token() == Some("f1/i-1")
        })
        .then_output(scan_started);
    let f = finding();
    let plan = engine("  - scan: {}\n").plan(&f, false).unwrap();
    let report = Executor::new(clients(&[&describe], &[&start]), ExecOptions::default())
        .respond(&f, &plan)
        .await;
    assert_eq!(report.status, Status::Succeeded, "{report:#?}");
    assert_eq!(report.steps[0].outcome, Outcome::Done, "{report:#?}");
    assert!(
        report.steps[0].notes.iter().any(|n| n.contains("scan-1")),
        "{report:#?}"
    );
    assert_eq!(start.num_calls(), 1);

    let dry = Executor::new(
        clients(&[&describe], &[&start]),
        ExecOptions {
            dry_run: true,
            topic_arn: None,
        },
    );
    let report = dry.respond(&f, &plan).await;
    assert!(
        matches!(&report.steps[0].outcome, Outcome::Skipped { reason }
            if reason.contains("no DryRun") && reason.contains("instance/i-1")),
        "{report:#?}"
    );
    assert_eq!(start.num_calls(), 1);
}

/// `scan` keeps evidence: when it fails, terminate is withheld and the reason names it.
#[tokio::test]
async fn a_failed_scan_withholds_terminate_and_says_why() {
    let describe = mock!(aws_sdk_ec2::Client::describe_instances).then_output(running_instance);
    let start = mock!(aws_sdk_guardduty::Client::start_malware_scan)
        .sequence()
        .http_status(
            400,
            Some(r#"{"__type":"BadRequestException","message":"not enabled"}"#.to_owned()),
        )
        .build();
    let terminate = mock!(aws_sdk_ec2::Client::terminate_instances).then_output(|| {
        aws_sdk_ec2::operation::terminate_instances::TerminateInstancesOutput::builder().build()
    });
    let f = finding();
    let plan = engine("  - scan: {}\n  - terminate: {}\n")
        .plan(&f, false)
        .unwrap();
    let report = Executor::new(
        clients(&[&describe, &terminate], &[&start]),
        ExecOptions::default(),
    )
    .respond(&f, &plan)
    .await;
    assert_eq!(report.status, Status::Failed, "{report:#?}");
    assert!(
        matches!(&report.steps[0].outcome, Outcome::Failed { code, .. } if code == "BadRequestException"),
        "{report:#?}"
    );
    assert!(
        matches!(&report.steps[1].outcome, Outcome::Skipped { reason }
            if reason.contains("scan step failed") && reason.contains("terminate withheld")),
        "{report:#?}"
    );
    assert_eq!(start.num_calls(), 1);
    assert_eq!(terminate.num_calls(), 0);
}

/// A finding a scan raised (it names the finding that triggered the scan) starts no
/// second scan, and the report says why.
#[tokio::test]
async fn a_finding_from_a_scan_starts_no_second_scan() {
    let describe = mock!(aws_sdk_ec2::Client::describe_instances).then_output(running_instance);
    let start = mock!(aws_sdk_guardduty::Client::start_malware_scan).then_output(scan_started);
    let f = finding_edited(|raw| {
        raw["service"]["ebsVolumeScanDetails"] = serde_json::json!({"triggerFindingId": "f0"});
    });
    let plan = engine("  - scan: {}\n").plan(&f, false).unwrap();
    let report = Executor::new(clients(&[&describe], &[&start]), ExecOptions::default())
        .respond(&f, &plan)
        .await;
    assert!(
        matches!(&report.steps[0].outcome, Outcome::Skipped { reason }
            if reason.contains("scan already happened") && reason.contains("f0")),
        "{report:#?}"
    );
    assert_eq!(start.num_calls(), 0);
}

/// A finding of an attack sequence is not archived: archived findings are left out of
/// Extended Threat Detection. The step is skipped with the reason, nothing is called.
#[tokio::test]
async fn a_finding_of_an_attack_sequence_is_not_archived() {
    let archive = mock!(aws_sdk_guardduty::Client::archive_findings).then_output(|| {
        aws_sdk_guardduty::operation::archive_findings::ArchiveFindingsOutput::builder().build()
    });
    let arn = "arn:aws:guardduty:us-east-1:111122223333:detector/det1/finding/seq1";
    let f = finding_edited(|raw| raw["associatedAttackSequenceArn"] = arn.into());
    let plan = engine("  - archive-finding: {}\n").plan(&f, false).unwrap();
    let report = Executor::new(clients(&[], &[&archive]), ExecOptions::default())
        .respond(&f, &plan)
        .await;
    assert!(!report.is_failure(), "{report:#?}");
    assert!(
        matches!(&report.steps[0].outcome, Outcome::Skipped { reason }
            if reason.contains(arn) && reason.contains("Extended Threat Detection")),
        "{report:#?}"
    );
    assert_eq!(archive.num_calls(), 0);
}
