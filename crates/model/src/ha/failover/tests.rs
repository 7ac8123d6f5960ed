use super::*;
use crate::ha::maintenance::{Maintenance, MaintenanceScope};
use crate::ha::testkit::{Cluster, U, assert_mentions, ep, t};
use crate::ha::view::{FailoverRecord, SemiSyncState};
use crate::replication::IoThreadState::Connecting;
use crate::snapshot::ProbeErrorKind::{Refused, Timeout};

/// Primary 0-1-100; replica 2 received 0-1-100, replica 3 received 0-1-101.
fn maria() -> Cluster {
    Cluster::mariadb("0-1-100")
        .replica(2, "0-1-100")
        .replica(3, "0-1-101")
}

/// What a test expects.
#[derive(Debug)]
enum Want {
    NoAction,
    Refuse,
    /// Failover to replica n.
    To(u8),
}

fn check(
    name: &str,
    view: &ReplicationView,
    policy: &HaPolicy,
    want: Want,
    needle: &str,
) -> FailoverDecision {
    let d = decide_failover(view, policy, t(0));
    let ok = match (&want, &d.action) {
        (Want::NoAction, FailoverAction::NoAction) | (Want::Refuse, FailoverAction::Refuse) => true,
        (Want::To(n), FailoverAction::Failover(p)) => p.candidate == ep(*n),
        _ => false,
    };
    assert!(
        ok,
        "{name}: want {want:?}, got {:?}\n  {}",
        d.action,
        d.reasons.join("\n  ")
    );
    assert_mentions(&d.reasons, needle);
    d
}

fn plan(d: &FailoverDecision) -> &FailoverPlan {
    match &d.action {
        FailoverAction::Failover(p) => p,
        other => panic!("not a failover: {other:?}"),
    }
}

fn window(scope: MaintenanceScope) -> Maintenance {
    Maintenance {
        scope,
        reason: "kernel upgrade".into(),
        since: t(-600),
        until: Some(t(600)),
    }
}

#[test]
fn detection_scenarios() {
    let p = HaPolicy::default();
    let cases: Vec<(&str, Cluster, Want, &str)> = vec![
        (
            "dead primary: the most advanced replica is promoted",
            maria().primary_killed(),
            Want::To(3),
            "127.0.0.13:3306 has received the most (0-1-101)",
        ),
        (
            "unreachable primary whose replicas still receive events: no failover",
            maria().primary_fails(Timeout, 10),
            Want::NoAction,
            "this controller is the one cut off",
        ),
        (
            "one second SIGSTOP: one timed-out probe, IO threads Running",
            maria().primary_fails(Timeout, 1),
            Want::NoAction,
            "needs 2 consecutive misses",
        ),
        (
            "SIGSTOP resumed: second timeout but heartbeats already moving again",
            maria().primary_fails(Timeout, 2),
            Want::NoAction,
            "heartbeats went from 10 to 13",
        ),
        (
            "replicas not probed since the suspicion: wait",
            maria().primary_killed().node(2, |n| {
                n.samples
                    .iter_mut()
                    .for_each(|s| s.at -= chrono::Duration::seconds(5))
            }),
            Want::NoAction,
            "predates the primary's first failed probe",
        ),
        (
            "frozen or cut-off primary, replicas silent for 3 heartbeat periods",
            maria().primary_fails(Timeout, 3).silent(2).silent(3),
            Want::To(3),
            "may still be running",
        ),
        (
            "no replicas: cannot confirm, never automatic",
            Cluster::mariadb("0-1-100").primary_fails(Refused, 5),
            Want::Refuse,
            "never fails over on its own probes alone",
        ),
        (
            "every replica unreachable too: cannot confirm",
            maria()
                .primary_killed()
                .fails(2, Refused, 10)
                .fails(3, Refused, 10),
            Want::Refuse,
            "no reachable replica",
        ),
    ];
    for (name, c, want, needle) in cases {
        check(name, &c.view, &p, want, needle);
    }
}

#[test]
fn dead_primary_plan() {
    let c = maria()
        .replica(4, "0-1-100")
        .primary_killed()
        .fails(4, Refused, 10);
    let d = check(
        "plan",
        &c.view,
        &HaPolicy::default(),
        Want::To(3),
        "refuses connections",
    );
    let p = plan(&d);
    assert_eq!(p.old_primary, ep(1));
    assert_eq!(p.apply_until.to_string(), "0-1-101");
    assert_eq!(p.others, vec![ep(2)]);
    assert_eq!(p.unreachable, vec![ep(4)]);
    assert!(!p.fence_old_primary, "refused: nothing listens to fence");
    assert_mentions(
        &d.reasons,
        "promote 127.0.0.13:3306 once it has applied 0-1-101",
    );
    assert_mentions(&d.reasons, "replica 127.0.0.14:3306 does not answer");
}

#[test]
fn gates() {
    let dead = || maria().primary_killed();
    let off = HaPolicy {
        automatic_recovery: false,
        ..HaPolicy::default()
    };
    let with = |f: &dyn Fn(&mut ReplicationView)| {
        let mut c = dead();
        f(&mut c.view);
        c
    };
    let cases: Vec<(&str, Cluster, HaPolicy, Want, &str)> = vec![
        (
            "recovery disabled",
            dead(),
            off,
            Want::NoAction,
            "automatic recovery is disabled",
        ),
        (
            "recovery disabled still says what it saw",
            dead(),
            HaPolicy {
                automatic_recovery: false,
                ..HaPolicy::default()
            },
            Want::NoAction,
            "the primary is dead",
        ),
        (
            "cluster maintenance",
            with(&|v| v.maintenance.push(window(MaintenanceScope::Cluster))),
            HaPolicy::default(),
            Want::NoAction,
            "the cluster is in maintenance (kernel upgrade",
        ),
        (
            "primary in maintenance",
            with(&|v| v.maintenance.push(window(MaintenanceScope::Node(ep(1))))),
            HaPolicy::default(),
            Want::NoAction,
            "the primary is in maintenance",
        ),
        (
            "expired maintenance does not hold",
            with(&|v| {
                let mut m = window(MaintenanceScope::Cluster);
                m.until = Some(t(-1));
                v.maintenance.push(m);
            }),
            HaPolicy::default(),
            Want::To(3),
            "no unacknowledged automatic failover",
        ),
        (
            "topology unknown",
            with(&|v| v.topology = None),
            HaPolicy::default(),
            Want::Refuse,
            "without a known topology",
        ),
        (
            "topology unknown, nothing failing",
            {
                let mut c = maria();
                c.view.topology = None;
                c
            },
            HaPolicy::default(),
            Want::NoAction,
            "every node answers",
        ),
        (
            "within the block window",
            with(&|v| {
                v.failovers.push(FailoverRecord {
                    at: t(-120),
                    acknowledged: false,
                })
            }),
            HaPolicy::default(),
            Want::Refuse,
            "within the block window of 5 min",
        ),
        (
            "acknowledged failover does not block",
            with(&|v| {
                v.failovers.push(FailoverRecord {
                    at: t(-120),
                    acknowledged: true,
                })
            }),
            HaPolicy::default(),
            Want::To(3),
            "1 of the daily budget of 3",
        ),
        (
            "block window over",
            with(&|v| {
                v.failovers.push(FailoverRecord {
                    at: t(-301),
                    acknowledged: false,
                })
            }),
            HaPolicy::default(),
            Want::To(3),
            "no unacknowledged automatic failover within the block window",
        ),
        (
            "daily budget spent",
            with(&|v| {
                for h in [2, 10, 20] {
                    v.failovers.push(FailoverRecord {
                        at: t(-h * 3600),
                        acknowledged: true,
                    });
                }
            }),
            HaPolicy::default(),
            Want::Refuse,
            "reach the daily budget of 3",
        ),
        (
            "failovers older than a day do not count",
            with(&|v| {
                for h in [25, 30, 40] {
                    v.failovers.push(FailoverRecord {
                        at: t(-h * 3600),
                        acknowledged: false,
                    });
                }
            }),
            HaPolicy::default(),
            Want::To(3),
            "0 of the daily budget",
        ),
    ];
    for (name, c, policy, want, needle) in cases {
        check(name, &c.view, &policy, want, needle);
    }
}

#[test]
fn candidate_exclusions() {
    // Replicas 2 and 3 received the same; replica 2 (lowest address) wins unless excluded.
    let base = || {
        Cluster::mariadb("0-1-100")
            .replica(2, "0-1-100")
            .replica(3, "0-1-100")
            .primary_killed()
    };
    let excluded = HaPolicy {
        excluded_candidates: vec![ep(2)],
        ..HaPolicy::default()
    };
    let cases: Vec<(&str, Cluster, HaPolicy, Want, &str)> = vec![
        (
            "a tie",
            base(),
            HaPolicy::default(),
            Want::To(2),
            "lowest address",
        ),
        (
            "a tie broken by preference",
            base(),
            HaPolicy {
                preferred_candidates: vec![ep(3)],
                ..HaPolicy::default()
            },
            Want::To(3),
            "configured preference order",
        ),
        (
            "a tie broken by lag",
            base().edit(2, |s| s.replication[0].seconds_behind = Some(3)),
            HaPolicy::default(),
            Want::To(3),
            "lower lag (0 s against 3 s)",
        ),
        (
            "excluded by policy",
            base(),
            excluded,
            Want::To(3),
            "excluded from promotion",
        ),
        (
            "lagging candidate",
            base().edit(2, |s| s.replication[0].seconds_behind = Some(500)),
            HaPolicy::default(),
            Want::To(3),
            "lags 500 s behind, above the limit of 10 s",
        ),
        (
            "delayed replica",
            base().edit(2, |s| s.replication[0].sql_delay = 3600),
            HaPolicy::default(),
            Want::To(3),
            "delayed replica (SQL_Delay 3600 s)",
        ),
        (
            "binlog off",
            base().edit(2, |s| s.log_bin = false),
            HaPolicy::default(),
            Want::To(3),
            "binary log is off",
        ),
        (
            "log_slave_updates off",
            base().edit(2, |s| s.log_slave_updates = false),
            HaPolicy::default(),
            Want::To(3),
            "log_slave_updates is off",
        ),
        (
            "SQL thread failed",
            base().edit(2, |s| {
                let ch = &mut s.replication[0];
                ch.sql_running = false;
                ch.last_sql_errno = 1062;
                ch.last_sql_error = "Duplicate entry".into();
            }),
            HaPolicy::default(),
            Want::To(3),
            "SQL thread stopped with error 1062",
        ),
        (
            "replica in maintenance",
            {
                let mut c = base();
                c.view
                    .maintenance
                    .push(window(MaintenanceScope::Node(ep(2))));
                c
            },
            HaPolicy::default(),
            Want::To(3),
            "in maintenance (kernel upgrade)",
        ),
        (
            "every candidate lagging",
            base()
                .edit(2, |s| s.replication[0].seconds_behind = Some(500))
                .edit(3, |s| s.replication[0].seconds_behind = Some(60)),
            HaPolicy::default(),
            Want::Refuse,
            "every one of them is excluded",
        ),
        (
            // The most advanced replica lags: promoting the other would lose 0-1-101.
            "lagging candidate that is the most advanced",
            maria()
                .primary_killed()
                .edit(3, |s| s.replication[0].seconds_behind = Some(500)),
            HaPolicy::default(),
            Want::Refuse,
            "received 0-1-101, which the chosen candidate 127.0.0.12:3306 lacks",
        ),
    ];
    for (name, c, policy, want, needle) in cases {
        check(name, &c.view, &policy, want, needle);
    }
}

#[test]
fn lost_transactions_bound() {
    // The primary reported 0-1-110 before dying; the replicas received 0-1-100.
    let c = || {
        Cluster::mariadb("0-1-110")
            .replica(2, "0-1-100")
            .replica(3, "0-1-100")
            .primary_killed()
    };
    check(
        "candidates lack what the primary had",
        &c().view,
        &HaPolicy::default(),
        Want::Refuse,
        "lacks 10 transaction(s) the primary reported",
    );
    let lenient = HaPolicy {
        max_candidate_lag: crate::ha::CandidateLagLimit {
            max_missing_transactions: Some(20),
            ..Default::default()
        },
        ..HaPolicy::default()
    };
    check(
        "within the loss limit",
        &c().view,
        &lenient,
        Want::To(2),
        "they are lost",
    );
}

#[test]
fn errant_gtids() {
    // Replica 3 is the most advanced only because of its own writes in domain 1.
    let c = Cluster::mariadb("0-1-100")
        .replica(2, "0-1-100")
        .replica(3, "0-1-100")
        .edit(3, |s| s.gtid_executed = "0-1-100,1-3-5".into())
        .primary_killed();
    let d = check(
        "MariaDB errant replica",
        &c.view,
        &HaPolicy::default(),
        Want::To(2),
        "errant transactions 1-3-5",
    );
    let p = plan(&d);
    assert_eq!(p.errant.len(), 1);
    assert_eq!(p.errant[0].endpoint, ep(3));
    assert_eq!(p.errant[0].errant.gtids, "1-3-5");
    assert_eq!(
        p.others,
        vec![ep(3)],
        "an errant replica is still repointed"
    );

    let primary = format!("{}:1-100", U[1]);
    let c = Cluster::mysql(&primary)
        .replica(2, &primary)
        .replica(3, &primary)
        .edit(2, |s| {
            s.gtid_executed = format!("{}:1-100,{}:1-2", U[1], U[2])
        })
        .primary_killed();
    check(
        "MySQL errant replica",
        &c.view,
        &HaPolicy::default(),
        Want::To(3),
        &format!("errant transactions {}:1-2", U[2]),
    );

    let c = Cluster::mariadb("0-1-100")
        .replica(2, "0-1-100")
        .edit(2, |s| s.gtid_executed = "0-2-60".into())
        .primary_killed();
    check(
        "the only replica is errant",
        &c.view,
        &HaPolicy::default(),
        Want::Refuse,
        "written on this server itself",
    );
}

#[test]
fn mysql_gtid_sets_are_compared_as_sets() {
    let g = |s: &str| format!("{}:{s}", U[1]);
    let c = Cluster::mysql(&g("1-100"))
        .replica(2, &g("1-100"))
        .replica(3, &g("1-104"))
        .primary_killed();
    let d = check(
        "MySQL most advanced",
        &c.view,
        &HaPolicy::default(),
        Want::To(3),
        &format!("has received the most ({})", g("1-104")),
    );
    assert_eq!(plan(&d).apply_until.to_string(), g("1-104"));
    // Multi-threaded replicas can hold gaps: 1-100:102 and 1-101 do not compare.
    let c = Cluster::mysql(&g("1-100"))
        .replica(2, &g("1-100:102"))
        .replica(3, &g("1-101"))
        .primary_killed();
    check(
        "MySQL incomparable sets",
        &c.view,
        &HaPolicy::default(),
        Want::Refuse,
        "neither contains the other",
    );
}

#[test]
fn mariadb_incomparable_positions_refuse() {
    let c = Cluster::mariadb("0-1-100,1-1-50")
        .replica(2, "0-1-100,1-1-50")
        .replica(3, "0-1-99,1-1-51")
        .primary_killed();
    let p = HaPolicy {
        max_candidate_lag: crate::ha::CandidateLagLimit {
            max_missing_transactions: None,
            ..Default::default()
        },
        ..HaPolicy::default()
    };
    check(
        "diverged",
        &c.view,
        &p,
        Want::Refuse,
        "neither contains the other",
    );
}

#[test]
fn semi_sync() {
    let require = HaPolicy {
        require_semi_sync_ack: true,
        max_candidate_lag: crate::ha::CandidateLagLimit {
            max_missing_transactions: Some(10),
            ..Default::default()
        },
        ..HaPolicy::default()
    };
    let state = |active, clients| SemiSyncState {
        at: t(-2),
        active,
        clients,
    };
    // The primary reported 0-1-105; the replicas have 0-1-100 (loss within the limit).
    let behind = |s: Option<SemiSyncState>| {
        let mut c = Cluster::mariadb("0-1-105")
            .replica(2, "0-1-100")
            .replica(3, "0-1-100")
            .primary_killed();
        c.view.primary_semi_sync = s;
        c
    };
    let even = |s: Option<SemiSyncState>| {
        let mut c = maria().primary_killed();
        c.view.primary_semi_sync = s;
        c
    };
    let cases: Vec<(&str, Cluster, HaPolicy, Want, &str)> = vec![
        (
            "semi-sync degraded to async: refuse",
            behind(Some(state(false, 0))),
            require.clone(),
            Want::Refuse,
            "fallen back to asynchronous replication",
        ),
        (
            "semi-sync on but no client: refuse",
            behind(Some(state(true, 0))),
            require.clone(),
            Want::Refuse,
            "0 semi-sync client(s)",
        ),
        (
            "semi-sync state unknown: refuse",
            behind(None),
            require.clone(),
            Want::Refuse,
            "semi-sync state is unknown",
        ),
        (
            "semi-sync degraded, but the candidate has all the primary reported",
            even(Some(state(false, 0))),
            require.clone(),
            Want::To(3),
            "has every GTID the primary reported in its last sample",
        ),
        (
            "semi-sync healthy",
            behind(Some(state(true, 2))),
            require.clone(),
            Want::To(2),
            "semi-sync was on",
        ),
        (
            "semi-sync healthy but a replica is unreachable",
            {
                let mut c = behind(Some(state(true, 1)))
                    .replica(4, "0-1-100")
                    .fails(4, Timeout, 9);
                c.view.primary_semi_sync = Some(state(true, 1));
                c
            },
            require.clone(),
            Want::Refuse,
            "127.0.0.14:3306 do not answer",
        ),
        (
            "semi-sync not required",
            behind(Some(state(false, 0))),
            HaPolicy {
                require_semi_sync_ack: false,
                ..require.clone()
            },
            Want::To(2),
            "they are lost",
        ),
    ];
    for (name, c, policy, want, needle) in cases {
        check(name, &c.view, &policy, want, needle);
    }
}

#[test]
fn replicas_of_other_sources_are_ignored() {
    // Replica 4 replicates from replica 3 (a chain): not a witness, not a candidate.
    let c = maria()
        .replica(4, "0-1-101")
        .edit(4, |s| {
            let ch = &mut s.replication[0];
            ch.source_host = ep(3).host;
            ch.source_server_id = 3;
        })
        .io(4, Connecting, 2003)
        .primary_killed();
    let d = check(
        "chain",
        &c.view,
        &HaPolicy::default(),
        Want::To(3),
        "has received the most",
    );
    assert_eq!(plan(&d).others, vec![ep(2)]);
}

// ---- Failovers a person asks for (and automatic ones re-planned by their job) ----

fn requested(
    view: &ReplicationView,
    to: Option<u8>,
    force: bool,
) -> Result<(FailoverPlan, Vec<String>), Vec<String>> {
    let to = to.map(ep);
    requested_failover(view, to.as_ref(), force, &HaPolicy::default(), t(0))
}

#[test]
fn requested_failover_of_a_live_primary_needs_force_and_then_fences_it() {
    let c = maria();
    let err = requested(&c.view, None, false).unwrap_err();
    assert_mentions(&err, "use a switchover");
    let (plan, reasons) = requested(&c.view, None, true).unwrap();
    assert_eq!(plan.candidate, ep(3));
    assert!(plan.fence_old_primary);
    assert_mentions(&reasons, "forced");
}

#[test]
fn requested_failover_of_a_dead_primary_picks_the_most_advanced_without_automatic_gates() {
    // Recovery off, a recent failover in the block window, cluster in maintenance: a
    // person decides, so none of these stop a requested failover.
    let mut c = maria().primary_killed();
    c.view.failovers.push(FailoverRecord {
        at: t(-10),
        acknowledged: false,
    });
    c.view.maintenance.push(window(MaintenanceScope::Cluster));
    let (plan, _) = requested(&c.view, None, false).unwrap();
    assert_eq!(plan.candidate, ep(3));
    assert_eq!(plan.others, vec![ep(2)]);
    assert!(!plan.fence_old_primary, "nothing listens: nothing to fence");
}

#[test]
fn requested_failover_to_a_less_advanced_replica_is_refused_unless_forced() {
    let c = maria().primary_killed();
    let err = requested(&c.view, Some(2), false).unwrap_err();
    assert_mentions(&err, "would lose");
    assert_mentions(&err, "--force");
    let (plan, reasons) = requested(&c.view, Some(2), true).unwrap();
    assert_eq!(plan.candidate, ep(2));
    assert_eq!(plan.others, vec![ep(3)]);
    assert_mentions(&reasons, "0-1-101");
}

#[test]
fn requested_failover_rejects_the_primary_itself_and_strangers() {
    let c = maria().primary_killed();
    assert_mentions(
        &requested(&c.view, Some(1), true).unwrap_err(),
        "primary itself",
    );
    assert_mentions(
        &requested(&c.view, Some(9), true).unwrap_err(),
        "not a node of this cluster",
    );
}

#[test]
fn requested_failover_without_a_known_primary_is_refused() {
    let mut c = maria().primary_killed();
    c.view.topology = None;
    assert_mentions(
        &requested(&c.view, None, true).unwrap_err(),
        "no primary is known",
    );
}
