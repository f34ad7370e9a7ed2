//! The deployment template as an operator runs it (infra/template.yaml): the alarms
//! and where they go, the log group's retention, the notification email, the key that
//! lets CloudWatch and EventBridge write to the topic and the queue, and the artifact
//! `sam deploy` uploads. The function's metric names are checked against its
//! embedded-metric-format line in functions/guardduty-responder/src/handler.rs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(file: &str) -> String {
    let path = root().join(file);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{file}: cannot read {}: {e}", path.display()))
}

fn template() -> Value {
    serde_saphyr::from_str(&read("infra/template.yaml"))
        .unwrap_or_else(|e| panic!("infra/template.yaml: not plain YAML: {e}"))
}

/// The resources of one type, by logical id.
fn of_type<'a>(template: &'a Value, kind: &str) -> Vec<(&'a String, &'a Value)> {
    template["Resources"]
        .as_object()
        .map(|r| r.iter().filter(|(_, v)| v["Type"] == kind).collect())
        .unwrap_or_default()
}

fn reference(name: &str) -> Value {
    json!({"Ref": name})
}

/// The values CloudWatch Logs accepts for RetentionInDays (PutRetentionPolicy).
const RETENTION_DAYS: [u64; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

#[test]
fn each_alarm_exists_and_notifies_the_topic() {
    let t = template();
    let function = json!([{"Name": "FunctionName", "Value": reference("ResponderFunction")}]);
    let queue =
        json!([{"Name": "QueueName", "Value": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}}]);
    // (namespace, metric, statistic, dimensions): the function's own metrics are read
    // without dimensions (the copy for the whole function).
    let wanted = [
        (
            "GuardDutyResponder",
            "RemediationFailures",
            "Sum",
            Value::Null,
        ),
        ("GuardDutyResponder", "Unverified", "Sum", Value::Null),
        ("GuardDutyResponder", "Withheld", "Sum", Value::Null),
        ("AWS/Lambda", "Errors", "Sum", function.clone()),
        ("AWS/Lambda", "Throttles", "Sum", function),
        (
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            "Maximum",
            queue,
        ),
    ];
    let alarms = of_type(&t, "AWS::CloudWatch::Alarm");
    let mut seen = BTreeSet::new();
    for (id, alarm) in &alarms {
        let p = &alarm["Properties"];
        let key = (
            p["Namespace"].as_str().unwrap_or_default().to_owned(),
            p["MetricName"].as_str().unwrap_or_default().to_owned(),
        );
        let Some((_, _, statistic, dimensions)) = wanted
            .iter()
            .find(|(ns, m, _, _)| (key.0.as_str(), key.1.as_str()) == (*ns, *m))
        else {
            panic!(
                "{id}: an alarm on {key:?} that this test does not know: add it here and to the README's alarm table"
            );
        };
        assert!(seen.insert(key.clone()), "{id}: a second alarm on {key:?}");
        assert_eq!(p["AlarmActions"], json!([reference("ReportTopic")]), "{id}");
        assert_eq!(p["Statistic"], json!(statistic), "{id}");
        assert_eq!(p["Dimensions"], *dimensions, "{id}");
        assert_eq!(p["ComparisonOperator"], "GreaterThanThreshold", "{id}");
        assert_eq!(p["Threshold"], 0, "{id}");
        assert_eq!(p["TreatMissingData"], "notBreaching", "{id}");
        assert!(alarm.get("Condition").is_none(), "{id}: always deployed");
    }
    assert_eq!(seen.len(), wanted.len(), "alarms: {seen:?}");
}

#[test]
fn the_log_group_keeps_logs_for_the_retention_parameter() {
    let t = template();
    let groups = of_type(&t, "AWS::Logs::LogGroup");
    let [(id, group)] = groups.as_slice() else {
        panic!("one log group, found {}", groups.len());
    };
    let p = &group["Properties"];
    assert_eq!(
        p["LogGroupName"],
        json!({"Fn::Sub": "/aws/lambda/${ResponderFunction}"}),
        "{id}: the group Lambda writes the function's logs to"
    );
    assert_eq!(p["RetentionInDays"], reference("LogRetentionDays"), "{id}");
    let param = &t["Parameters"]["LogRetentionDays"];
    assert_eq!(param["Type"], "Number");
    let allowed: Vec<u64> = param["AllowedValues"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    assert_eq!(allowed, RETENTION_DAYS);
    let default = param["Default"].as_u64();
    assert!(default.is_some_and(|d| allowed.contains(&d)), "{default:?}");
    // The optional key, only when given.
    assert_eq!(
        p["KmsKeyId"],
        json!({"Fn::If": ["HasLogKmsKey", reference("LogKmsKeyArn"), reference("AWS::NoValue")]})
    );
    assert_eq!(
        t["Conditions"]["HasLogKmsKey"],
        json!({"Fn::Not": [{"Fn::Equals": [reference("LogKmsKeyArn"), ""]}]})
    );
}

#[test]
fn the_notification_email_is_subscribed_only_when_given() {
    let t = template();
    let subs = of_type(&t, "AWS::SNS::Subscription");
    let [(id, sub)] = subs.as_slice() else {
        panic!("one subscription, found {}", subs.len());
    };
    assert_eq!(sub["Condition"], "HasNotificationEmail", "{id}");
    let p = &sub["Properties"];
    assert_eq!(p["Protocol"], "email", "{id}");
    assert_eq!(p["Endpoint"], reference("NotificationEmail"), "{id}");
    assert_eq!(p["TopicArn"], reference("ReportTopic"), "{id}");
    assert_eq!(
        t["Conditions"]["HasNotificationEmail"],
        json!({"Fn::Not": [{"Fn::Equals": [reference("NotificationEmail"), ""]}]})
    );
    assert_eq!(t["Parameters"]["NotificationEmail"]["Default"], "");
}

/// Statements of the key policy that allow `principal` (a service) both data-key
/// actions SNS and SQS need to write an encrypted message.
fn key_grants_service(key: &Value, service: &str) -> bool {
    key["Properties"]["KeyPolicy"]["Statement"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|s| {
            s["Effect"] == "Allow"
                && s["Principal"]["Service"] == service
                && ["kms:Decrypt", "kms:GenerateDataKey*"].iter().all(|a| {
                    s["Action"]
                        .as_array()
                        .is_some_and(|l| l.contains(&json!(a)))
                })
        })
}

/// The AWS managed keys aws/sns and aws/sqs admit no service principal: CloudWatch
/// could not publish an alarm to the topic, EventBridge could not dead-letter.
#[test]
fn cloudwatch_and_eventbridge_can_use_the_topic_and_queue_key() {
    let t = template();
    for (id, r) in t["Resources"].as_object().into_iter().flatten() {
        let key = r["Properties"]["KmsMasterKeyId"]
            .as_str()
            .unwrap_or_default();
        assert!(!key.starts_with("alias/aws/"), "{id}: {key}");
    }
    let key = &t["Resources"]["NotificationKey"];
    assert_eq!(key["Type"], "AWS::KMS::Key");
    assert_eq!(key["Properties"]["EnableKeyRotation"], true);
    assert_eq!(
        t["Resources"]["ReportTopic"]["Properties"]["KmsMasterKeyId"],
        reference("NotificationKey")
    );
    assert_eq!(
        t["Resources"]["DeadLetterQueue"]["Properties"]["KmsMasterKeyId"],
        reference("NotificationKey")
    );
    assert!(key_grants_service(key, "cloudwatch.amazonaws.com"));
    assert!(key_grants_service(key, "events.amazonaws.com"));
}

/// `sam deploy` uploads the zip scripts/package.sh writes; nothing builds another one.
#[test]
fn the_deployed_code_is_the_packaged_zip() {
    let t = template();
    let f = &t["Resources"]["ResponderFunction"];
    // Relative to infra/, where the template is: the repository's dist/bootstrap.zip.
    assert_eq!(f["Properties"]["CodeUri"], "../dist/bootstrap.zip");
    assert!(
        f["Metadata"].get("BuildMethod").is_none(),
        "a BuildMethod makes `sam build` compile a second artifact"
    );
    assert!(read("scripts/package.sh").contains("cp \"$built\" dist/bootstrap.zip"));
    assert_eq!(
        f["Properties"]["Architectures"],
        json!([reference("Architecture")])
    );
    assert_eq!(
        t["Parameters"]["Architecture"]["AllowedValues"],
        json!(["arm64", "x86_64"])
    );
}

/// The README's alarm table names every alarm of the template, and the parameters
/// operators set.
#[test]
fn the_readme_lists_each_alarm() {
    let t = template();
    let readme = read("README.md");
    for (id, _) in of_type(&t, "AWS::CloudWatch::Alarm") {
        assert!(readme.contains(&format!("`{id}`")), "README: no `{id}`");
    }
    for param in ["LogRetentionDays", "NotificationEmail", "Architecture"] {
        assert!(
            readme.contains(&format!("`{param}`")),
            "README: no `{param}`"
        );
    }
}
