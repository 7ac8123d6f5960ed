use super::*;
use crate::ha::maintenance::{Maintenance, MaintenanceScope};
use crate::ha::testkit::{assert_mentions, ep, t};

const UUID: &str = "6b7c5a1e-0f3a-11ef-9a42-8f1a2b3c4d5e";
const OTHER: &str = "9d8e7f60-0f3a-11ef-8b11-aabbccddeeff";
const NIL: &str = "00000000-0000-0000-0000-000000000000";

fn wsrep(status: &str, state: &str, seqno: i64, size: u32) -> WsrepStatus {
    WsrepStatus {
        enabled: true,
        local_state: state.into(),
        cluster_status: status.into(),
        cluster_size: size,
        cluster_state_uuid: UUID.into(),
        last_committed: seqno,
        ready: status == "Primary",
        connected: true,
        incoming_addresses: vec![],
        recv_queue: 0,
        flow_control_paused: 0.0,
    }
}

fn node(n: u8, probe: ProbeStatus, w: Option<WsrepStatus>) -> GaleraNode {
    GaleraNode {
        endpoint: ep(n),
        probe,
        wsrep: w,
        down_confirmed: false,
        grastate: None,
        recovered: None,
    }
}

fn synced(n: u8, size: u32) -> GaleraNode {
    node(
        n,
        ProbeStatus::Reachable,
        Some(wsrep("Primary", "Synced", 100, size)),
    )
}

fn non_primary(n: u8, seqno: i64) -> GaleraNode {
    node(
        n,
        ProbeStatus::Reachable,
        Some(wsrep("non-Primary", "Initialized", seqno, 1)),
    )
}

fn failing(n: u8, kind: ProbeErrorKind) -> GaleraNode {
    node(
        n,
        ProbeStatus::Failing {
            kind,
            consecutive: 30,
            since: t(-30),
        },
        None,
    )
}

fn down(n: u8) -> GaleraNode {
    failing(n, ProbeErrorKind::Refused)
}

fn pos(n: u8, uuid: &str, seqno: i64, safe: bool) -> Option<GaleraPosition> {
    Some(GaleraPosition {
        node: format!("grastate of node {n}"),
        uuid: uuid.into(),
        seqno,
        safe_to_bootstrap: safe,
    })
}

/// Node n down with grastate.dat saying `seqno`.
fn crashed(n: u8, seqno: i64) -> GaleraNode {
    GaleraNode {
        grastate: pos(n, UUID, seqno, false),
        ..down(n)
    }
}

fn view(nodes: Vec<GaleraNode>) -> GaleraView {
    GaleraView {
        nodes,
        no_primary_since: Some(t(-30)),
        maintenance: vec![],
    }
}

#[derive(Debug)]
enum Want {
    NoAction,
    Wait(i64),
    Collect(Vec<u8>, Vec<u8>),
    /// Bootstrap node, method, stop first, then join.
    Bootstrap(u8, BootstrapMethod, Vec<u8>, Vec<u8>),
    Refuse,
}

fn matches(want: &Want, got: &GaleraAction) -> bool {
    let eps = |v: &[u8]| v.iter().map(|n| ep(*n)).collect::<Vec<_>>();
    match (want, got) {
        (Want::NoAction, GaleraAction::NoAction) | (Want::Refuse, GaleraAction::Refuse) => true,
        (Want::Wait(s), GaleraAction::Wait { until }) => *until == t(*s),
        (
            Want::Collect(g, r),
            GaleraAction::CollectPositions {
                grastate,
                wsrep_recover,
            },
        ) => *grastate == eps(g) && *wsrep_recover == eps(r),
        (
            Want::Bootstrap(n, m, st, j),
            GaleraAction::Bootstrap {
                node,
                method,
                stop_first,
                then_join,
            },
        ) => *node == ep(*n) && method == m && *stop_first == eps(st) && *then_join == eps(j),
        _ => false,
    }
}

#[test]
fn galera_recovery_scenarios() {
    use BootstrapMethod::{NewCluster, PcBootstrap};
    use ProbeErrorKind::Timeout;
    let cases: Vec<(&str, GaleraView, Want, &str)> = vec![
        (
            "healthy cluster",
            view(vec![synced(1, 3), synced(2, 3), synced(3, 3)]),
            Want::NoAction,
            "in a Primary component of 3",
        ),
        (
            "one node down, the others Primary: node recovery's business",
            view(vec![synced(1, 2), synced(2, 2), crashed(3, -1)]),
            Want::NoAction,
            "rejoin by node recovery, never by a bootstrap",
        ),
        (
            "all nodes crashed, positions not collected yet",
            view(vec![down(1), down(2), down(3)]),
            Want::Collect(vec![1, 2, 3], vec![]),
            "read grastate.dat on 127.0.0.11:3306, 127.0.0.12:3306, 127.0.0.13:3306",
        ),
        (
            "all nodes crashed with different seqnos",
            view(vec![crashed(1, 10), crashed(2, 12), crashed(3, 11)]),
            Want::Bootstrap(2, NewCluster, vec![], vec![3, 1]),
            "the highest seqno (12)",
        ),
        (
            "all nodes crashed: no waiting, nothing can heal by itself",
            GaleraView {
                no_primary_since: Some(t(-1)),
                ..view(vec![crashed(1, 10), crashed(2, 12), crashed(3, 11)])
            },
            Want::Bootstrap(2, NewCluster, vec![], vec![3, 1]),
            "every server is down",
        ),
        (
            "seqno -1 needs --wsrep-recover",
            view(vec![crashed(1, 10), crashed(2, -1), crashed(3, 11)]),
            Want::Collect(vec![], vec![2]),
            "run mysqld --wsrep-recover there",
        ),
        (
            "a recovered position wins over grastate's -1",
            view(vec![
                crashed(1, 10),
                GaleraNode {
                    recovered: pos(2, UUID, 15, false),
                    ..crashed(2, -1)
                },
                crashed(3, 11),
            ]),
            Want::Bootstrap(2, NewCluster, vec![], vec![3, 1]),
            "--wsrep-recover found 6b7c5a1e-0f3a-11ef-9a42-8f1a2b3c4d5e:15",
        ),
        (
            "two cluster UUIDs: refuse",
            view(vec![
                crashed(1, 10),
                GaleraNode {
                    grastate: pos(2, OTHER, 50, true),
                    ..down(2)
                },
                crashed(3, 11),
            ]),
            Want::Refuse,
            "disagree on the cluster UUID",
        ),
        (
            "safe_to_bootstrap alone never decides",
            view(vec![
                GaleraNode {
                    grastate: pos(1, UUID, 10, true),
                    ..down(1)
                },
                crashed(2, 12),
            ]),
            Want::Bootstrap(2, NewCluster, vec![], vec![1]),
            "the highest seqno (12)",
        ),
        (
            "a tie goes to safe_to_bootstrap",
            view(vec![
                crashed(1, 12),
                GaleraNode {
                    grastate: pos(2, UUID, 12, true),
                    ..down(2)
                },
            ]),
            Want::Bootstrap(2, NewCluster, vec![], vec![1]),
            "same seqno",
        ),
        (
            "a node that never joined is not a source, and joins last",
            view(vec![
                GaleraNode {
                    recovered: pos(1, NIL, -1, false),
                    ..crashed(1, -1)
                },
                crashed(2, 7),
            ]),
            Want::Bootstrap(2, NewCluster, vec![], vec![1]),
            "the highest seqno (7)",
        ),
        (
            "partition: a minority is non-Primary, the others time out",
            view(vec![
                non_primary(1, 100),
                failing(2, Timeout),
                failing(3, Timeout),
            ]),
            Want::Refuse,
            "could make two Primary components",
        ),
        (
            "partition: before the timeout, wait",
            GaleraView {
                no_primary_since: Some(t(-4)),
                ..view(vec![
                    non_primary(1, 100),
                    failing(2, Timeout),
                    failing(3, Timeout),
                ])
            },
            Want::Wait(6),
            "less than the 10 s Galera gets to restore it itself",
        ),
        (
            "the far side confirmed down: recover",
            view(vec![
                non_primary(1, 100),
                GaleraNode {
                    down_confirmed: true,
                    grastate: pos(2, UUID, 90, false),
                    ..failing(2, Timeout)
                },
                GaleraNode {
                    down_confirmed: true,
                    ..failing(3, Timeout)
                },
            ]),
            Want::Collect(vec![3], vec![]),
            "confirmed not running",
        ),
        (
            "survivor of two crashes is the most advanced: pc.bootstrap",
            view(vec![non_primary(1, 100), crashed(2, 98), crashed(3, 99)]),
            Want::Bootstrap(1, PcBootstrap, vec![], vec![3, 2]),
            "with pc.bootstrap on the running server",
        ),
        (
            "crashed node ahead of the survivor",
            view(vec![non_primary(1, 100), crashed(2, 101), crashed(3, 99)]),
            Want::Bootstrap(2, NewCluster, vec![1], vec![1, 3]),
            "first stop 127.0.0.11:3306",
        ),
        (
            "two of three killed: no waiting, the survivor cannot heal alone",
            GaleraView {
                no_primary_since: Some(t(-1)),
                ..view(vec![non_primary(1, 100), down(2), down(3)])
            },
            Want::Collect(vec![2, 3], vec![]),
            "cannot form one without the dead, so recover now",
        ),
        (
            "two of three killed, positions known: pc.bootstrap at once",
            GaleraView {
                no_primary_since: Some(t(-1)),
                ..view(vec![non_primary(1, 100), crashed(2, 98), crashed(3, 99)])
            },
            Want::Bootstrap(1, PcBootstrap, vec![], vec![3, 2]),
            "with pc.bootstrap on the running server",
        ),
        (
            "one killed, one frozen: wait first",
            GaleraView {
                no_primary_since: Some(t(-1)),
                ..view(vec![non_primary(1, 100), down(2), failing(3, Timeout)])
            },
            Want::Wait(9),
            "less than the 10 s",
        ),
        (
            "one killed, one frozen: then refuse, naming the blocker and the way out",
            view(vec![non_primary(1, 100), down(2), failing(3, Timeout)]),
            Want::Refuse,
            "127.0.0.13:3306 may still be running",
        ),
        (
            "two frozen: refuse and tell the operator what to do",
            view(vec![
                non_primary(1, 100),
                failing(2, Timeout),
                failing(3, Timeout),
            ]),
            Want::Refuse,
            "nines cluster recover --bootstrap-from ADDR --force",
        ),
        (
            "every node up and non-Primary for longer than the timeout",
            view(vec![
                non_primary(1, 100),
                non_primary(2, 103),
                non_primary(3, 101),
            ]),
            Want::Bootstrap(2, PcBootstrap, vec![], vec![3, 1]),
            "at least the 10 s allowed",
        ),
        (
            "every node up and non-Primary, time not recorded: wait the full timeout",
            GaleraView {
                no_primary_since: None,
                ..view(vec![non_primary(1, 100), non_primary(2, 103)])
            },
            Want::Wait(10),
            "look again at",
        ),
        (
            "a node answering without wsrep",
            view(vec![
                non_primary(1, 100),
                node(2, ProbeStatus::Reachable, None),
            ]),
            Want::Refuse,
            "answers without wsrep",
        ),
    ];
    let policy = HaPolicy::default();
    for (name, v, want, needle) in cases {
        let d = decide_galera_recovery(&v, &policy, t(0));
        assert!(
            matches(&want, &d.action),
            "{name}: want {want:?}, got {:?}\n  {}",
            d.action,
            d.reasons.join("\n  ")
        );
        assert_mentions(&d.reasons, needle);
    }
}

#[test]
fn switches_and_maintenance() {
    let crashed_all = || view(vec![crashed(1, 10), crashed(2, 12)]);
    let off = HaPolicy {
        automatic_recovery: false,
        ..HaPolicy::default()
    };
    let d = decide_galera_recovery(&crashed_all(), &off, t(0));
    assert_eq!(d.action, GaleraAction::NoAction);
    assert_mentions(&d.reasons, "automatic recovery is disabled");

    let mut v = crashed_all();
    v.maintenance.push(Maintenance {
        scope: MaintenanceScope::Cluster,
        reason: "storage migration".into(),
        since: t(-100),
        until: None,
    });
    let d = decide_galera_recovery(&v, &HaPolicy::default(), t(0));
    assert_eq!(d.action, GaleraAction::NoAction);
    assert_mentions(&d.reasons, "storage migration");

    let mut v = crashed_all();
    v.maintenance.push(Maintenance {
        scope: MaintenanceScope::Node(ep(1)),
        reason: "disk replacement".into(),
        since: t(-100),
        until: Some(t(100)),
    });
    let d = decide_galera_recovery(&v, &HaPolicy::default(), t(0));
    assert_eq!(d.action, GaleraAction::Refuse);
    assert_mentions(&d.reasons, "would have to touch it");
}

#[test]
fn the_job_plans_without_waiting_or_switches() {
    // The reconciler waited and checked the switches; the job plans from what it sees.
    let mut v = view(vec![non_primary(1, 100), non_primary(2, 103)]);
    v.no_primary_since = None;
    let d = plan_galera_recovery(&v);
    assert!(
        matches(
            &Want::Bootstrap(2, BootstrapMethod::PcBootstrap, vec![], vec![1]),
            &d.action
        ),
        "{d:?}"
    );
    // A node that came back in a Primary component in the meantime: nothing to do.
    let d = plan_galera_recovery(&view(vec![synced(1, 2), synced(2, 2), down(3)]));
    assert_eq!(d.action, GaleraAction::NoAction);
    // Still no bootstrap beside a node that does not answer.
    let d = plan_galera_recovery(&view(vec![
        non_primary(1, 100),
        failing(2, ProbeErrorKind::Timeout),
    ]));
    assert_eq!(d.action, GaleraAction::Refuse);
}

#[test]
fn forced_recovery_scenarios() {
    use BootstrapMethod::{NewCluster, PcBootstrap};
    use ProbeErrorKind::Timeout;
    let frozen = |n| failing(n, Timeout);
    let cases: Vec<(&str, GaleraView, u8, Want, &str)> = vec![
        (
            "two frozen: a person bootstraps the survivor, the frozen are left alone",
            view(vec![non_primary(1, 100), frozen(2), frozen(3)]),
            1,
            Want::Bootstrap(1, PcBootstrap, vec![], vec![]),
            "127.0.0.12:3306 is left as it is",
        ),
        (
            "a stopped node chosen: the running one stops first and joins",
            view(vec![non_primary(1, 100), crashed(2, 100), frozen(3)]),
            2,
            Want::Bootstrap(2, NewCluster, vec![1], vec![1]),
            "forced by a person: bootstrap 127.0.0.12:3306 (seqno 100)",
        ),
        (
            "a node ahead of the chosen one is never made to join",
            view(vec![non_primary(1, 100), crashed(2, 105), crashed(3, 90)]),
            1,
            Want::Bootstrap(1, PcBootstrap, vec![], vec![3]),
            "127.0.0.12:3306 is ahead of 127.0.0.11:3306 (seqno 105 > 100)",
        ),
        (
            "a running node ahead of a stopped chosen one is stopped, not joined",
            view(vec![non_primary(1, 100), crashed(2, 90)]),
            2,
            Want::Bootstrap(2, NewCluster, vec![1], vec![]),
            "left stopped for a person to decide",
        ),
        (
            "positions are collected first",
            view(vec![non_primary(1, 100), down(2), frozen(3)]),
            1,
            Want::Collect(vec![2], vec![]),
            "read grastate.dat on 127.0.0.12:3306",
        ),
        (
            "never beside a Primary component",
            view(vec![synced(1, 2), synced(2, 2), crashed(3, 100)]),
            3,
            Want::Refuse,
            "a second Primary component",
        ),
        (
            "not a node of the cluster",
            view(vec![non_primary(1, 100), frozen(2)]),
            4,
            Want::Refuse,
            "is not a node of this cluster",
        ),
        (
            "a node that does not answer cannot bootstrap",
            view(vec![non_primary(1, 100), frozen(2)]),
            2,
            Want::Refuse,
            "cannot bootstrap a server it cannot reach",
        ),
    ];
    for (name, v, from, want, needle) in cases {
        let d = forced_galera_recovery(&v, &ep(from));
        assert!(
            matches(&want, &d.action),
            "{name}: want {want:?}, got {:?}\n  {}",
            d.action,
            d.reasons.join("\n  ")
        );
        assert_mentions(&d.reasons, needle);
    }
}

#[test]
fn a_dead_node_joins_only_a_component_that_evicted_the_dead() {
    let cases = [
        (
            "healthy",
            vec![synced(1, 3), synced(2, 3), synced(3, 3)],
            true,
        ),
        (
            "one dead, evicted",
            vec![synced(1, 2), synced(2, 2), down(3)],
            true,
        ),
        (
            "one dead, not evicted yet: the component still counts it",
            vec![synced(1, 3), synced(2, 3), down(3)],
            false,
        ),
        (
            "two dead, the survivor has not noticed yet",
            vec![synced(1, 3), down(2), down(3)],
            false,
        ),
        (
            "two dead, the survivor non-Primary",
            vec![non_primary(1, 100), down(2), down(3)],
            false,
        ),
        (
            "a bootstrapped survivor",
            vec![synced(1, 1), down(2), down(3)],
            true,
        ),
    ];
    for (name, nodes, want) in cases {
        assert_eq!(joinable_primary(&view(nodes)), want, "{name}");
    }
}
