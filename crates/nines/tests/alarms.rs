//! Alarms that reach a person: a replication cluster with automatic recovery off, real
//! servers killed, a webhook receiver and a real SMTP server (aiosmtpd) started here.
//! One condition is one alarm (however many probes see it), raised and cleared within
//! seconds, announced once per channel, acknowledged, silenced; a burst is one message;
//! a failing channel is retried and its failure shown.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Controller, DeployDir, create_cluster, stderr, stdout, wait_until};
use nines_testkit::{HttpSink, Received, SmtpSink};
use serde_json::Value;

/// The active alarms of the monitor and the reconciler (advisors raise theirs too, on
/// their own schedule: a new cluster has no backup yet).
fn active(ctl: &Controller, cluster: &str) -> Vec<Value> {
    ctl.json(&["alarm", "list", "--cluster", cluster])
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| !a["kind"].as_str().unwrap_or("").starts_with("advisor."))
        .cloned()
        .collect()
}

/// The webhook messages (JSON bodies) received so far that carry an alarm `event` of `kind`
/// on `node`, each as the list of its notices.
fn notices(sink: &HttpSink) -> Vec<Vec<Value>> {
    sink.received()
        .iter()
        .filter_map(Received::json)
        .map(|b| b["alarms"].as_array().cloned().unwrap_or_default())
        .collect()
}

fn has(notice: &Value, event: &str, kind: &str, node: Option<&str>) -> bool {
    notice["event"] == event && notice["kind"] == kind && node.is_none_or(|n| notice["node"] == n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_node_is_one_alarm_announced_once_acknowledged_silenced_and_cleared() {
    let hook = HttpSink::start().await.unwrap();
    let flaky = HttpSink::start().await.unwrap();
    let other = HttpSink::start().await.unwrap();
    let smtp = SmtpSink::start().await.unwrap();
    let leases = nines_testkit::lease_addresses(2).expect("leases");
    let addrs: Vec<String> = leases.iter().map(|l| l.addr()).collect();
    // The advisors' own alarms (a new cluster has no backup) would share the channels'
    // messages: they are off here, and tested in tests/advisors.rs.
    let ctl = Controller::start_with(&["--advisor-interval", "off"]).await;
    let dir = DeployDir::new();
    let out = create_cluster(
        &ctl,
        "al",
        "replication",
        &addrs.join(","),
        &dir.template(),
        &["--local"],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let (primary, replica) = (format!("{}:3306", addrs[0]), format!("{}:3306", addrs[1]));

    // Channels: a signed webhook, e-mail, one that fails at first, one for another cluster.
    let key = ctl.data_dir().join("hook.key");
    std::fs::write(&key, "a-signing-key-of-some-length\n").unwrap();
    let add = |args: &[&str]| {
        let mut a = vec!["notify", "add"];
        a.extend_from_slice(args);
        let out = ctl.cli(&a);
        assert!(
            out.status.success(),
            "{a:?}: {}{}",
            stdout(&out),
            stderr(&out)
        );
    };
    let hook_url = hook.url("/alarms");
    let key_arg = key.display().to_string();
    add(&["hook", "--webhook", &hook_url, "--hmac-key-file", &key_arg]);
    let smtp_addr = smtp.address();
    add(&[
        "mail",
        "--email",
        "dba@example.com",
        "--smtp",
        &smtp_addr,
        "--from",
        "nines@example.com",
        "--min-severity",
        "critical",
    ]);
    let flaky_url = flaky.url("/x");
    add(&["flaky", "--webhook", &flaky_url]);
    let other_url = other.url("/x");
    add(&["crm", "--webhook", &other_url, "--cluster", "crm"]);
    let slack = HttpSink::start().await.unwrap();
    let slack_url = slack.url("/services/T0/B0/secret-token");
    add(&["chat", "--slack", &slack_url, "--min-severity", "critical"]);
    // Lists show where a channel sends, never the URL's path (a Slack URL's credential).
    let listed = ctl.json(&["notify", "list"]).to_string();
    assert!(!listed.contains("secret-token"), "{listed}");
    // Bad channels are refused, naming the field.
    let out = ctl.cli(&["notify", "add", "bad", "--webhook", "ftp://x/y"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("webhook"), "{}", stderr(&out));
    flaky.fail_with(503);

    // `notify test` reaches the webhook now and says so.
    let out = ctl.cli(&["notify", "test", "hook"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        notices(&hook)
            .iter()
            .flatten()
            .any(|n| n["event"] == "test"),
        "{:?}",
        hook.received()
    );

    let out = ctl.cli(&["cluster", "recovery", "disable", "--name", "al"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let healthy = wait_until(Duration::from_secs(20), || async {
        ctl.cluster("al")
            .await
            .is_some_and(|c| c["state"] == "healthy")
    })
    .await;
    assert!(healthy, "{:?}", ctl.cluster("al").await);
    assert!(active(&ctl, "al").is_empty(), "{:?}", active(&ctl, "al"));

    // The replica dies: one critical alarm naming it within 10 s.
    common::kill_9_node(&dir, &addrs[1]);
    let killed = Instant::now();
    let raised = wait_until(Duration::from_secs(10), || async {
        active(&ctl, "al").iter().any(|a| a["node"] == replica)
    })
    .await;
    assert!(raised, "no alarm after {:?}", killed.elapsed());
    let alarms = active(&ctl, "al");
    assert_eq!(alarms.len(), 1, "{alarms:?}");
    let a = &alarms[0];
    assert_eq!(
        (a["kind"].as_str(), a["severity"].as_str()),
        (Some("node_down"), Some("critical"))
    );
    assert!(
        a["cleared_at"].is_null() && a["acknowledged_by"].is_null(),
        "{a}"
    );
    assert!(
        a["message"]
            .as_str()
            .unwrap()
            .contains("nines node start --cluster al --node"),
        "{a}"
    );
    let id = a["id"].as_i64().unwrap();

    // The webhook hears of it within 15 s, signed; the e-mail too.
    let heard = wait_until(Duration::from_secs(15), || async {
        notices(&hook)
            .iter()
            .flatten()
            .any(|n| has(n, "raised", "node_down", Some(&replica)))
    })
    .await;
    assert!(heard, "{:?}", hook.received());
    let msg = hook
        .received()
        .into_iter()
        .find(|r| {
            r.json()
                .is_some_and(|b| b["event"] == "raised" && b["node"] == replica)
        })
        .unwrap();
    let body = msg.json().unwrap();
    for field in ["event", "cluster", "node", "severity", "title", "message"] {
        assert!(!body[field].is_null(), "{field} missing: {body}");
    }
    assert_eq!(body["severity"], "critical");
    assert_eq!(body["cluster"], "al");
    assert_eq!(
        msg.header("x-nines-signature"),
        Some(
            nines_controller::alarms::notifier::signature(
                b"a-signing-key-of-some-length",
                &msg.body
            )
            .as_str()
        )
    );
    let slacked = wait_until(Duration::from_secs(15), || async {
        slack.received().iter().any(|r| {
            r.json().is_some_and(|b| {
                b["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("node down") && t.contains(&replica))
            })
        })
    })
    .await;
    assert!(slacked, "{:?}", slack.received());
    let mailed = wait_until(Duration::from_secs(15), || async {
        smtp.messages()
            .iter()
            .any(|m| m.contains("node down") && m.contains(&replica))
    })
    .await;
    assert!(mailed, "{:?}", smtp.messages());
    assert!(smtp.messages()[0].contains("dba@example.com"));

    // The failing channel shows its failure, then delivers on a retry once it answers.
    let failed_once = wait_until(Duration::from_secs(15), || async {
        let list = ctl.json(&["notify", "list"]);
        list.as_array().unwrap().iter().any(|c| {
            c["name"] == "flaky" && c["last_error"].as_str().is_some_and(|e| e.contains("503"))
        })
    })
    .await;
    assert!(failed_once, "{}", ctl.json(&["notify", "list"]));
    flaky.fail_with(0);
    let retried = wait_until(Duration::from_secs(30), || async {
        ctl.json(&["notify", "deliveries", "flaky"])
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["state"] == "sent" && d["attempts"].as_u64() >= Some(2))
    })
    .await;
    assert!(retried, "{}", ctl.json(&["notify", "deliveries", "flaky"]));

    // Probes kept seeing the dead replica while the retry waited (5 s and more): still
    // one alarm, unchanged, announced once.
    let now = active(&ctl, "al");
    assert_eq!(now.len(), 1, "{now:?}");
    assert_eq!(now[0]["id"], id);
    assert_eq!(now[0]["updated_at"], now[0]["raised_at"], "{now:?}");
    let raised_notices = notices(&hook)
        .iter()
        .flatten()
        .filter(|n| has(n, "raised", "node_down", Some(&replica)))
        .count();
    assert_eq!(raised_notices, 1, "{:?}", hook.received());
    assert!(
        other.received().is_empty(),
        "another cluster's channel heard"
    );

    // A person acknowledges it; it stays active until the node is back.
    let out = ctl.cli(&[
        "alarm",
        "ack",
        &id.to_string(),
        "--note",
        "looking at the disk",
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let a = &active(&ctl, "al")[0];
    assert_eq!(a["acknowledged_by"], "admin");
    assert_eq!(a["ack_note"], "looking at the disk");

    // Started again: cleared within 10 s, with the time, and the webhook hears that too.
    let out = ctl.cli(&[
        "node",
        "start",
        "--cluster",
        "al",
        "--node",
        &replica,
        "--wait",
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let started = Instant::now();
    let cleared = wait_until(Duration::from_secs(10), || async {
        active(&ctl, "al").is_empty()
    })
    .await;
    assert!(
        cleared,
        "{:?} after {:?}",
        active(&ctl, "al"),
        started.elapsed()
    );
    let all = ctl.json(&["alarm", "list", "--cluster", "al", "--all"]);
    let a = all
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id)
        .unwrap();
    assert!(a["cleared_at"].is_string(), "{a}");
    let heard = wait_until(Duration::from_secs(15), || async {
        notices(&hook)
            .iter()
            .flatten()
            .any(|n| has(n, "cleared", "node_down", Some(&replica)))
    })
    .await;
    assert!(heard, "{:?}", hook.received());

    // Silenced: the alarm is raised and listed as silenced, and nothing is queued for it.
    let out = ctl.cli(&[
        "alarm",
        "silence",
        "--kind",
        "node_down",
        "--cluster",
        "al",
        "--for",
        "1h",
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    common::kill_9_node(&dir, &addrs[1]);
    let raised = wait_until(Duration::from_secs(10), || async {
        active(&ctl, "al").iter().any(|a| a["node"] == replica)
    })
    .await;
    assert!(raised);
    let a = active(&ctl, "al")
        .into_iter()
        .find(|a| a["node"] == replica)
        .unwrap();
    assert_eq!(a["silenced"], true, "{a}");
    let queued_for_it = ctl
        .json(&["notify", "deliveries", "hook", "--limit", "100"])
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["alarm_id"] == a["id"]);
    assert!(!queued_for_it, "a silenced alarm was queued");
    let out = ctl.cli(&[
        "node",
        "start",
        "--cluster",
        "al",
        "--node",
        &replica,
        "--wait",
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let silences = ctl.json(&["alarm", "silences"]);
    let sid = silences[0]["id"].to_string();
    let out = ctl.cli(&["alarm", "unsilence", &sid]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let cleared = wait_until(Duration::from_secs(10), || async {
        active(&ctl, "al").is_empty()
    })
    .await;
    assert!(cleared, "{:?}", active(&ctl, "al"));

    // A burst: both servers die at once. Both node alarms and the cluster's reach the
    // webhook in one message.
    let before = hook.received().len();
    common::kill_9_node(&dir, &addrs[0]);
    common::kill_9_node(&dir, &addrs[1]);
    let grouped = wait_until(Duration::from_secs(20), || async {
        let now = notices(&hook);
        now.len() > before
    })
    .await;
    assert!(grouped, "{:?}", hook.received());
    let first = &notices(&hook)[before];
    for (kind, node) in [
        ("node_down", Some(primary.as_str())),
        ("node_down", Some(replica.as_str())),
        ("cluster_failed", None),
    ] {
        assert!(
            first.iter().any(|n| has(n, "raised", kind, node)),
            "{kind} {node:?} not in the first message: {first:?}"
        );
    }
    let prom = ctl.get_text("/metrics").await;
    assert!(
        prom.contains(
            "nines_alarms_active{cluster=\"al\",kind=\"node_down\",severity=\"critical\"} 2"
        ),
        "{prom}"
    );
    drop(leases);
}
