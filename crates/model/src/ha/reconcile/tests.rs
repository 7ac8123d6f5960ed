use super::*;
use crate::ha::testkit::{Cluster, ep, t};
use crate::ha::view::ProbeStatus;
use crate::job::{ClusterAction, JobSpec};
use crate::snapshot::ProbeErrorKind;

const UUID: &str = "6b7c5a1e-0f3a-11ef-9a42-8f1a2b3c4d5e";

fn wsrep(status: &str, size: u32) -> WsrepStatus {
    WsrepStatus {
        enabled: true,
        local_state: if status == "Primary" {
            "Synced"
        } else {
            "Initialized"
        }
        .into(),
        cluster_status: status.into(),
        cluster_size: size,
        cluster_state_uuid: UUID.into(),
        last_committed: 100,
        ready: status == "Primary",
        connected: true,
        incoming_addresses: vec![],
        recv_queue: 0,
        flow_control_paused: 0.0,
    }
}

fn up(n: u8, w: Option<WsrepStatus>) -> NodeFacts {
    NodeFacts {
        endpoint: ep(n),
        deployed: true,
        desired_running: true,
        fence: None,
        state: Some(NodeState::Online),
        probe: ProbeStatus::Reachable,
        wsrep: w,
    }
}

fn failing(n: u8, kind: ProbeErrorKind, since: i64) -> NodeFacts {
    NodeFacts {
        state: Some(NodeState::Offline),
        probe: ProbeStatus::Failing {
            kind,
            consecutive: 3,
            since: t(since),
        },
        wsrep: None,
        ..up(n, None)
    }
}

fn down(n: u8) -> NodeFacts {
    failing(n, ProbeErrorKind::Refused, -30)
}

fn snapshot(cluster_type: ClusterType, nodes: Vec<NodeFacts>) -> ClusterSnapshot {
    ClusterSnapshot {
        id: 7,
        name: "c".into(),
        cluster_type,
        deployed: true,
        policy: HaPolicy::default(),
        maintenance: vec![],
        nodes,
        probes_fresh: true,
        running: vec![],
        queued: vec![],
        primary: None,
        semi_sync: false,
        replication: None,
        refusals: vec![],
    }
}

/// A repair job for `subject` that ended refused at `at`.
fn refusal(repair: Repair, subject: &str, at: i64) -> Refusal {
    Refusal {
        repair,
        subject: subject.to_string(),
        job: 41,
        at: t(at),
        message: "node is fenced".into(),
    }
}

fn galera(nodes: Vec<NodeFacts>) -> ClusterSnapshot {
    snapshot(ClusterType::Galera, nodes)
}

/// A replication snapshot from a testkit scenario (node 1 the designated primary).
fn replication(c: Cluster, facts: Vec<NodeFacts>) -> ClusterSnapshot {
    let mut view = c.view;
    view.topology = None;
    ClusterSnapshot {
        primary: Some(ep(1)),
        replication: Some(view),
        ..snapshot(ClusterType::Replication, facts)
    }
}

/// What an intent is, in a word and its subject, for the tables.
fn summary(i: &Intent) -> String {
    match i {
        Intent::Submit { spec, attempt, .. } => format!(
            "submit {}{}",
            spec.kind(),
            attempt
                .as_ref()
                .map(|(r, s)| format!(" ({r} {s})"))
                .unwrap_or_default()
        ),
        Intent::Raise { alarm, subject, .. } => format!("raise {alarm} {subject}"),
        Intent::Clear { alarm, subject, .. } => format!("clear {alarm} {subject}"),
        Intent::ClearAttempts { repair, subject } => format!("forget {repair} {subject}"),
        Intent::Adopt { primary, .. } => format!("adopt {primary}"),
        Intent::Event(n) => format!("event {}", n.kind),
    }
}

fn memory_with(f: impl FnOnce(&mut HaMemory)) -> HaMemory {
    let mut m = HaMemory::default();
    f(&mut m);
    m
}

#[test]
fn reconcile_scenarios() {
    let n2 = ep(2).to_string();
    let busy = vec![
        JobSpec::ClusterAction {
            cluster: "c".into(),
            action: ClusterAction::RollingRestart,
        }
        .locks(),
    ];
    let healthy_replication = Cluster::mariadb("0-1-100")
        .replica(2, "0-1-100")
        .replica(3, "0-1-100");
    let replication_facts = || vec![up(1, None), up(2, None), up(3, None)];
    // (name, snapshot, observations before, memory, intents wanted, a message must say)
    type Case = (
        &'static str,
        ClusterSnapshot,
        Observations,
        HaMemory,
        Vec<String>,
        &'static str,
    );
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let cases: Vec<Case> = vec![
        (
            "a dead standalone server is restarted after the grace period",
            snapshot(ClusterType::Standalone, vec![down(2)]),
            Observations::default(),
            HaMemory::default(),
            // First seen now: the grace period starts.
            s(&[]),
            "",
        ),
        (
            "…and once the grace period is over",
            snapshot(ClusterType::Standalone, vec![down(2)]),
            Observations {
                down_since: [((7, ep(2)), t(-6))].into(),
                ..Default::default()
            },
            HaMemory::default(),
            vec![format!("submit node_start (node_restart {n2})")],
            "attempt 1 of 3",
        ),
        (
            "a restart waits for an operator's job",
            ClusterSnapshot {
                running: busy.clone(),
                ..snapshot(ClusterType::Standalone, vec![down(2)])
            },
            Observations {
                down_since: [((7, ep(2)), t(-6))].into(),
                ..Default::default()
            },
            HaMemory::default(),
            s(&[]),
            "",
        ),
        (
            "nothing on probes that predate the last job",
            ClusterSnapshot {
                probes_fresh: false,
                ..snapshot(ClusterType::Standalone, vec![down(2)])
            },
            Observations {
                down_since: [((7, ep(2)), t(-6))].into(),
                ..Default::default()
            },
            HaMemory::default(),
            s(&[]),
            "",
        ),
        (
            "restarts ran out: one alarm",
            snapshot(ClusterType::Standalone, vec![down(2)]),
            Observations {
                down_since: [((7, ep(2)), t(-100))].into(),
                ..Default::default()
            },
            memory_with(|m| {
                for at in [-95, -85, -65] {
                    m.note_attempt(7, Repair::NodeRestart, &ep(2).to_string(), t(at));
                }
            }),
            vec![format!("raise node_restart {n2}")],
            "the most allowed is 3",
        ),
        (
            "…raised once",
            snapshot(ClusterType::Standalone, vec![down(2)]),
            Observations {
                down_since: [((7, ep(2)), t(-100))].into(),
                ..Default::default()
            },
            memory_with(|m| {
                for at in [-95, -85, -65] {
                    m.note_attempt(7, Repair::NodeRestart, &ep(2).to_string(), t(at));
                }
                m.note_raised(7, AlarmKind::NodeRestart, &ep(2).to_string());
            }),
            s(&[]),
            "",
        ),
        (
            "a restarted controller keeps counting from the first stored attempt",
            snapshot(ClusterType::Standalone, vec![down(2)]),
            Observations::default(),
            memory_with(|m| {
                for at in [-95, -85, -65] {
                    m.note_attempt(7, Repair::NodeRestart, &ep(2).to_string(), t(at));
                }
            }),
            vec![format!("raise node_restart {n2}")],
            "",
        ),
        (
            "the last restart was refused: alarm at once, no new attempt yet",
            ClusterSnapshot {
                refusals: vec![refusal(Repair::NodeRestart, &n2, -5)],
                ..snapshot(ClusterType::Standalone, vec![down(2)])
            },
            Observations {
                down_since: [((7, ep(2)), t(-30))].into(),
                ..Default::default()
            },
            memory_with(|m| m.note_attempt(7, Repair::NodeRestart, &n2, t(-20))),
            vec![format!("raise node_restart {n2}")],
            "refused by job 41 (node is fenced)",
        ),
        (
            "…and tried again once the longest wait (40 s) has passed",
            ClusterSnapshot {
                refusals: vec![refusal(Repair::NodeRestart, &n2, -45)],
                ..snapshot(ClusterType::Standalone, vec![down(2)])
            },
            Observations {
                down_since: [((7, ep(2)), t(-60))].into(),
                ..Default::default()
            },
            memory_with(|m| m.note_attempt(7, Repair::NodeRestart, &n2, t(-50))),
            vec![format!("submit node_start (node_restart {n2})")],
            "attempt 2 of 3",
        ),
        (
            "a refusal before the latest attempt does not hold it back",
            ClusterSnapshot {
                refusals: vec![refusal(Repair::NodeRestart, &n2, -25)],
                ..snapshot(ClusterType::Standalone, vec![down(2)])
            },
            Observations {
                down_since: [((7, ep(2)), t(-60))].into(),
                ..Default::default()
            },
            memory_with(|m| {
                m.note_attempt(7, Repair::NodeRestart, &n2, t(-30));
                m.note_attempt(7, Repair::NodeRestart, &n2, t(-20));
            }),
            vec![format!("submit node_start (node_restart {n2})")],
            "attempt 3 of 3",
        ),
        (
            "another node's refusal does not hold this one back",
            ClusterSnapshot {
                refusals: vec![refusal(Repair::NodeRestart, &ep(3).to_string(), -5)],
                ..snapshot(ClusterType::Standalone, vec![down(2)])
            },
            Observations {
                down_since: [((7, ep(2)), t(-30))].into(),
                ..Default::default()
            },
            memory_with(|m| m.note_attempt(7, Repair::NodeRestart, &n2, t(-20))),
            vec![format!("submit node_start (node_restart {n2})")],
            "",
        ),
        (
            "back up: its attempts and alarm are cleared",
            snapshot(ClusterType::Standalone, vec![up(2, None)]),
            Observations::default(),
            memory_with(|m| {
                m.note_attempt(7, Repair::NodeRestart, &ep(2).to_string(), t(-5));
                m.note_raised(7, AlarmKind::NodeRestart, &ep(2).to_string());
            }),
            vec![
                format!("forget node_restart {n2}"),
                format!("clear node_restart {n2}"),
            ],
            "",
        ),
        (
            "Galera, two of three killed: recover at once, no node restart",
            galera(vec![up(1, Some(wsrep("non-Primary", 1))), down(2), down(3)]),
            Observations {
                down_since: [((7, ep(2)), t(-60)), ((7, ep(3)), t(-60))].into(),
                ..Default::default()
            },
            HaMemory::default(),
            s(&["submit galera_recovery (galera_recovery )"]),
            "they cannot form one without the dead",
        ),
        (
            "Galera: a recovery job that refused holds the next one back, with its reason",
            ClusterSnapshot {
                refusals: vec![refusal(Repair::GaleraRecovery, "", -5)],
                ..galera(vec![up(1, Some(wsrep("non-Primary", 1))), down(2), down(3)])
            },
            Observations {
                down_since: [((7, ep(2)), t(-60)), ((7, ep(3)), t(-60))].into(),
                ..Default::default()
            },
            memory_with(|m| m.note_attempt(7, Repair::GaleraRecovery, "", t(-20))),
            s(&["raise galera_recovery "]),
            "galera_recovery of the cluster was refused by job 41",
        ),
        (
            "Galera, two frozen: refused with an alarm that says what to do",
            galera(vec![
                up(1, Some(wsrep("non-Primary", 1))),
                failing(2, ProbeErrorKind::Timeout, -40),
                failing(3, ProbeErrorKind::Timeout, -40),
            ]),
            Observations {
                no_primary_since: [(7, t(-40))].into(),
                ..Default::default()
            },
            HaMemory::default(),
            s(&["raise galera_recovery "]),
            "nines cluster recover --bootstrap-from ADDR --force",
        ),
        (
            "Galera serves again: the recovery's attempts and alarm are cleared",
            galera(vec![
                up(1, Some(wsrep("Primary", 3))),
                up(2, Some(wsrep("Primary", 3))),
                up(3, Some(wsrep("Primary", 3))),
            ]),
            Observations {
                no_primary_since: [(7, t(-40))].into(),
                ..Default::default()
            },
            memory_with(|m| {
                m.note_attempt(7, Repair::GaleraRecovery, "", t(-30));
                m.note_raised(7, AlarmKind::GaleraRecovery, "");
            }),
            s(&["forget galera_recovery ", "clear galera_recovery "]),
            "",
        ),
        (
            "Galera, one killed and evicted: a plain restart",
            galera(vec![
                up(1, Some(wsrep("Primary", 2))),
                up(2, Some(wsrep("Primary", 2))),
                down(3),
            ]),
            Observations {
                down_since: [((7, ep(3)), t(-10))].into(),
                ..Default::default()
            },
            HaMemory::default(),
            vec![format!("submit node_start (node_restart {})", ep(3))],
            "never --wsrep-new-cluster",
        ),
        (
            "Galera, one killed, not evicted yet: the restart waits",
            galera(vec![
                up(1, Some(wsrep("Primary", 3))),
                up(2, Some(wsrep("Primary", 3))),
                down(3),
            ]),
            Observations {
                down_since: [((7, ep(3)), t(-10))].into(),
                ..Default::default()
            },
            HaMemory::default(),
            s(&[]),
            "",
        ),
        (
            "Galera stopped by the operator stays stopped",
            galera(
                (1..=3)
                    .map(|n| NodeFacts {
                        desired_running: false,
                        ..down(n)
                    })
                    .collect(),
            ),
            Observations::default(),
            HaMemory::default(),
            s(&[]),
            "",
        ),
        (
            "replication, healthy: the topology is confirmed, old alarms and attempts cleared",
            replication(healthy_replication.clone(), replication_facts()),
            Observations::default(),
            memory_with(|m| {
                m.note_attempt(7, Repair::Failover, "", t(-300));
                m.note_raised(7, AlarmKind::Failover, "");
            }),
            s(&[
                "event failover_armed",
                "clear failover ",
                "forget failover ",
            ]),
            "",
        ),
        (
            "replication, primary killed with a known topology: fail over",
            replication(
                healthy_replication.clone().primary_killed(),
                vec![down(1), up(2, None), up(3, None)],
            ),
            Observations {
                confirmed: [(7, (ep(1), t(-2)))].into(),
                ..Default::default()
            },
            HaMemory::default(),
            s(&["submit failover (failover )"]),
            "failing over from 127.0.0.11:3306",
        ),
        (
            "…not without a known topology (nor a node restart of the primary yet)",
            replication(
                healthy_replication.clone().primary_killed(),
                vec![down(1), up(2, None), up(3, None)],
            ),
            Observations::default(),
            HaMemory::default(),
            s(&["raise failover "]),
            "automatic failover refused",
        ),
        (
            "…and not past the budget",
            replication(
                healthy_replication.clone().primary_killed(),
                vec![down(1), up(2, None), up(3, None)],
            ),
            Observations {
                confirmed: [(7, (ep(1), t(-2)))].into(),
                ..Default::default()
            },
            memory_with(|m| {
                for at in [-100, -90, -70] {
                    m.note_attempt(7, Repair::Failover, "", t(at));
                }
            }),
            s(&["raise failover "]),
            "3 failover jobs failed for this outage",
        ),
        (
            "a failover runs beside a data copy",
            ClusterSnapshot {
                running: vec![
                    JobSpec::AddNode {
                        cluster: "c".into(),
                        node: ep(4),
                        source: None,
                        from_backup: None,
                    }
                    .locks(),
                ],
                ..replication(
                    healthy_replication.clone().primary_killed(),
                    vec![down(1), up(2, None), up(3, None)],
                )
            },
            Observations {
                confirmed: [(7, (ep(1), t(-2)))].into(),
                ..Default::default()
            },
            HaMemory::default(),
            s(&["submit failover (failover )"]),
            "",
        ),
        (
            "a fenced former primary that answers is rejoined",
            {
                let mut facts = replication_facts();
                facts[2].fence = Some(Fence::PendingRejoin("failed over".into()));
                replication(healthy_replication.clone(), facts)
            },
            Observations::default(),
            HaMemory::default(),
            vec![
                "event failover_armed".to_string(),
                format!("submit rejoin (rejoin {})", ep(3)),
            ],
            "checking its GTIDs",
        ),
    ];
    for (name, snap, mut obs, memory, want, needle) in cases {
        let got = reconcile(&snap, &mut obs, &memory, t(0));
        let summary: Vec<String> = got.iter().map(summary).collect();
        assert_eq!(summary, want, "{name}: {got:#?}");
        if !needle.is_empty() {
            let text: Vec<&str> = got
                .iter()
                .map(|i| match i {
                    Intent::Submit { event, .. } => event.message.as_str(),
                    Intent::Raise { message, .. } => message.as_str(),
                    _ => "",
                })
                .collect();
            assert!(
                text.iter().any(|m| m.contains(needle)),
                "{name}: no message says `{needle}`: {text:#?}"
            );
        }
    }
}

#[test]
fn observations_follow_the_cluster() {
    let mut obs = Observations::default();
    let m = HaMemory::default();
    // A node seen refusing is down since now; seen answering, it is not.
    reconcile(
        &snapshot(ClusterType::Standalone, vec![down(2)]),
        &mut obs,
        &m,
        t(0),
    );
    assert_eq!(obs.down_since.get(&(7, ep(2))), Some(&t(0)));
    reconcile(
        &snapshot(ClusterType::Standalone, vec![down(2)]),
        &mut obs,
        &m,
        t(3),
    );
    assert_eq!(obs.down_since.get(&(7, ep(2))), Some(&t(0)), "kept");
    reconcile(
        &snapshot(ClusterType::Standalone, vec![up(2, None)]),
        &mut obs,
        &m,
        t(4),
    );
    assert!(obs.down_since.is_empty());
    // Galera without a Primary component: since when, until one is back.
    let lost = galera(vec![
        up(1, Some(wsrep("non-Primary", 1))),
        failing(2, ProbeErrorKind::Timeout, -1),
    ]);
    reconcile(&lost, &mut obs, &m, t(5));
    assert_eq!(obs.no_primary_since.get(&7), Some(&t(5)));
    let back = galera(vec![
        up(1, Some(wsrep("Primary", 2))),
        up(2, Some(wsrep("Primary", 2))),
    ]);
    reconcile(&back, &mut obs, &m, t(6));
    assert!(obs.no_primary_since.is_empty());
    // The replication topology is confirmed when seen healthy.
    let healthy = replication(
        Cluster::mariadb("0-1-9").replica(2, "0-1-9"),
        vec![up(1, None), up(2, None)],
    );
    let first = reconcile(&healthy, &mut obs, &m, t(7));
    assert_eq!(obs.confirmed.get(&7), Some(&(ep(1), t(7))));
    assert!(
        matches!(&first[..], [Intent::Event(n)] if n.kind == crate::event::EventKind::FailoverArmed)
    );
    let again = reconcile(&healthy, &mut obs, &m, t(8));
    assert!(again.is_empty(), "armed once: {again:?}");
    assert_eq!(obs.confirmed.get(&7), Some(&(ep(1), t(8))));
}
