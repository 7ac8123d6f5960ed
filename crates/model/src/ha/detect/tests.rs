use super::*;
use crate::ha::maintenance::{Maintenance, MaintenanceScope};
use crate::ha::testkit::{Cluster, U, assert_mentions, ep, t};
use crate::ha::view::TimedSample;
use crate::replication::IoThreadState::{Connecting, Stopped};

fn maria() -> Cluster {
    Cluster::mariadb("0-1-100")
        .replica(2, "0-1-100")
        .replica(3, "0-1-100")
}

fn in_maintenance(n: u8) -> Maintenance {
    Maintenance {
        scope: MaintenanceScope::Node(ep(n)),
        reason: "nightly backup".into(),
        since: t(-60),
        until: None,
    }
}

#[test]
fn primary_health_scenarios() {
    use PrimaryHealth::*;
    use ProbeErrorKind::{Auth, Refused, Timeout};
    let mysql_gtids = format!("{}:1-100", U[1]);
    let cases: Vec<(&str, Cluster, PrimaryHealth, &str)> = vec![
        (
            "primary answers",
            maria(),
            Alive,
            "answered its latest probe",
        ),
        (
            // kill -9: nothing listens, the replicas' IO threads reconnect at once.
            "dead primary: refused and every IO thread reconnecting",
            maria().primary_killed(),
            Dead,
            "reconnecting",
        ),
        (
            "dead primary: the reason names the refused connection",
            maria().primary_killed(),
            Dead,
            "refuses connections",
        ),
        (
            // SIGSTOP for 1 s: one probe times out, replicas still Running.
            "one second SIGSTOP: one timeout is not even a suspicion",
            maria().primary_fails(Timeout, 1),
            Alive,
            "needs 2 consecutive misses",
        ),
        (
            // Frozen a little longer: two timeouts, replicas silent for only 1 s.
            "frozen primary: silence shorter than two heartbeat periods",
            maria()
                .primary_fails(Timeout, 2)
                .silent(2)
                .silent(3)
                .node(2, |n| n.samples[0].at = t(-1))
                .node(3, |n| n.samples[0].at = t(-1)),
            Suspect,
            "less than the 2 s",
        ),
        (
            // The controller is cut off; the replicas still get heartbeats.
            "controller cut off: replicas still receive heartbeats",
            maria().primary_fails(Timeout, 5),
            Unreachable,
            "heartbeats went from 10 to 13",
        ),
        (
            "controller cut off: replicas still receive transactions",
            maria()
                .primary_fails(Timeout, 5)
                .silent(2)
                .silent(3)
                .edit_latest(2, |s| s.replication[0].received_gtids = "0-1-104".into()),
            Unreachable,
            "received GTIDs went from 0-1-100 to 0-1-104",
        ),
        (
            // Network cut or a long freeze: TCP has not noticed, but nothing arrives.
            "primary silent for three heartbeat periods",
            maria().primary_fails(Timeout, 3).silent(2).silent(3),
            Dead,
            "neither heartbeats (10) nor received GTIDs",
        ),
        (
            "no replicas at all: nothing can confirm",
            Cluster::mariadb("0-1-100").primary_fails(Refused, 4),
            Unconfirmable,
            "never fails over on its own probes alone",
        ),
        (
            "auth failure means the server runs",
            maria().primary_fails(Auth, 9),
            Alive,
            "rejects the monitor's credentials",
        ),
        (
            "replica sample older than the suspicion",
            maria().primary_killed().node(3, |n| {
                n.samples
                    .iter_mut()
                    .for_each(|s| s.at -= Duration::seconds(3))
            }),
            Suspect,
            "predates the primary's first failed probe",
        ),
        (
            // A backup stopped replica 3's IO thread; replica 2 lost the primary.
            "a replica stopped by a backup abstains",
            maria().primary_killed().io(3, Stopped, 0),
            Dead,
            "stopped without a connection error",
        ),
        (
            "the only replica was stopped by a backup",
            Cluster::mariadb("0-1-100")
                .replica(2, "0-1-100")
                .primary_fails(Refused, 2)
                .io(2, Stopped, 0),
            Unconfirmable,
            "no reachable replica",
        ),
        (
            "IO thread gave up after connection errors",
            maria().primary_killed().io(3, Stopped, 2013),
            Dead,
            "stopped after a connection error",
        ),
        (
            "MySQL without heartbeat counters: only a disconnect confirms",
            Cluster::mysql(&mysql_gtids)
                .replica(2, &mysql_gtids)
                .primary_fails(Timeout, 4)
                .silent(2)
                .edit(2, |s| s.replication[0].received_heartbeats = None),
            Suspect,
            "no heartbeat counter",
        ),
        (
            "MySQL replica reconnecting confirms",
            Cluster::mysql(&mysql_gtids)
                .replica(2, &mysql_gtids)
                .primary_killed(),
            Dead,
            "reconnecting",
        ),
        (
            // nines and replica 2 on one side, primary and replica 3 on the other.
            "partition: a replica stopped answering with the primary",
            maria()
                .primary_fails(Timeout, 3)
                .silent(2)
                .io(2, Connecting, 2003)
                .fails(3, Timeout, 2),
            Unconfirmable,
            "beyond the same network partition",
        ),
        (
            // Replica 3's server died earlier, independently.
            "a replica down before the primary abstains",
            maria().primary_killed().fails(3, Refused, 30),
            Dead,
            "unreachable itself",
        ),
        (
            // Replica 3 stopped answering long before the primary failed.
            "a replica lost before the primary abstains",
            maria().primary_killed().fails(3, Timeout, 30),
            Dead,
            "127.0.0.13:3306 is unreachable itself (timeout",
        ),
        (
            "a replica in maintenance may still veto",
            {
                let mut c = maria()
                    .primary_fails(Timeout, 3)
                    .silent(2)
                    .io(2, Connecting, 2003);
                c.view.maintenance.push(in_maintenance(3));
                c
            },
            Unreachable,
            "replica 127.0.0.13:3306 still receives",
        ),
        (
            "a replica in maintenance never confirms",
            {
                let mut c = Cluster::mariadb("0-1-100")
                    .replica(2, "0-1-100")
                    .primary_killed();
                c.view.maintenance.push(in_maintenance(2));
                c
            },
            Unconfirmable,
            "in maintenance, so it cannot confirm",
        ),
        (
            "topology unknown",
            {
                let mut c = maria().primary_killed();
                c.view.topology = None;
                c
            },
            Unknown,
            "topology is not known",
        ),
    ];
    let policy = HaPolicy::default();
    for (name, cluster, want, needle) in cases {
        let v = primary_health(&cluster.view, &policy, t(0));
        assert_eq!(v.action, want, "{name}: {:#?}", v.reasons);
        assert_mentions(&v.reasons, needle);
    }
}

#[test]
fn heartbeat_window_follows_the_period_and_policy() {
    // Period 2 s, 2 periods: samples 3 s apart are not enough; 4 s apart are.
    let with_gap = |gap: i64| {
        maria()
            .primary_fails(ProbeErrorKind::Timeout, 3)
            .silent(2)
            .silent(3)
            .node(2, |n| {
                n.samples[0].at = t(-gap);
                n.samples.iter_mut().for_each(|s| {
                    std::sync::Arc::make_mut(&mut s.sample).replication[0].heartbeat_period =
                        Some(2.0)
                });
            })
            .node(3, |n| {
                n.samples[0].at = t(-gap);
                n.samples.iter_mut().for_each(|s| {
                    std::sync::Arc::make_mut(&mut s.sample).replication[0].heartbeat_period =
                        Some(2.0)
                });
            })
    };
    let policy = HaPolicy::default();
    let v = primary_health(&with_gap(3).view, &policy, t(0));
    assert_eq!(v.action, PrimaryHealth::Suspect, "{:#?}", v.reasons);
    assert_mentions(&v.reasons, "less than the 4 s");
    let v = primary_health(&with_gap(4).view, &policy, t(0));
    assert_eq!(v.action, PrimaryHealth::Dead, "{:#?}", v.reasons);
    // Three periods required: 4 s is not enough any more.
    let strict = HaPolicy {
        confirm_heartbeat_periods: 3,
        ..HaPolicy::default()
    };
    let v = primary_health(&with_gap(4).view, &strict, t(0));
    assert_eq!(v.action, PrimaryHealth::Suspect, "{:#?}", v.reasons);
}

#[test]
fn the_window_uses_the_newest_sample_that_spans_it() {
    // Samples at -5 (hb 1), -3 (hb 13), 0 (hb 13): within the last 3 s nothing moved,
    // which spans the 2 s window: stalled, although the counter moved earlier.
    let c = maria()
        .primary_fails(ProbeErrorKind::Timeout, 3)
        .silent(2)
        .silent(3)
        .node(2, |n| {
            let mut older: TimedSample = n.samples[0].clone();
            older.at = t(-5);
            std::sync::Arc::make_mut(&mut older.sample).replication[0].received_heartbeats =
                Some(1);
            n.samples.insert(0, older);
        });
    let v = primary_health(&c.view, &HaPolicy::default(), t(0));
    assert_eq!(v.action, PrimaryHealth::Dead, "{:#?}", v.reasons);
}

#[test]
fn connection_errors_are_the_network_ones() {
    for e in [2003, 2013, 2006, 1159] {
        assert!(is_connection_error(e), "{e}");
    }
    for e in [0, 1236, 1045, 1062] {
        assert!(!is_connection_error(e), "{e}");
    }
}
