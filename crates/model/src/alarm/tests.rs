use chrono::{TimeZone, Utc};

use super::*;

fn node(addr: &str, state: Option<NodeState>) -> MonitoredNode {
    MonitoredNode {
        address: addr.into(),
        state,
        reason: "connection refused".into(),
        desired_running: true,
        in_maintenance: false,
        stopped_channels: vec![],
    }
}

fn cluster(nodes: Vec<MonitoredNode>) -> MonitoredCluster {
    MonitoredCluster {
        name: "shop".into(),
        cluster_type: ClusterType::Replication,
        state: Some(ClusterState::Degraded),
        reason: String::new(),
        in_maintenance: false,
        auto_recovery: false,
        deployed: true,
        nodes,
    }
}

/// What a pass raises: (node, kind, severity).
type Raised = Vec<(Option<String>, AlarmKind, Severity)>;

fn kinds(c: &MonitoredCluster) -> Raised {
    monitor_conditions(c)
        .into_iter()
        .map(|c| (c.key.node, c.key.kind, c.severity))
        .collect()
}

#[test]
fn the_monitor_raises_what_a_person_did_not_ask_for() {
    use NodeState::*;
    let a = "10.0.0.1:3306";
    let b = "10.0.0.2:3306";
    let down = |n: MonitoredNode| cluster(vec![n, node(b, Some(Online))]);
    let cases: Vec<(&str, MonitoredCluster, Raised)> = vec![
        (
            "a node that should run and does not answer",
            down(node(a, Some(Offline))),
            vec![(Some(a.into()), AlarmKind::NodeDown, Severity::Critical)],
        ),
        (
            "stopped by a person",
            down(MonitoredNode {
                desired_running: false,
                ..node(a, Some(Offline))
            }),
            vec![],
        ),
        (
            "in maintenance",
            down(MonitoredNode {
                in_maintenance: true,
                ..node(a, Some(Offline))
            }),
            vec![],
        ),
        ("not probed yet", down(node(a, None)), vec![]),
        (
            "degraded is not down",
            down(node(a, Some(Degraded))),
            vec![],
        ),
        (
            "replication stopped on a reachable replica",
            down(MonitoredNode {
                stopped_channels: vec![(String::new(), "Error 1062: duplicate key".into())],
                ..node(a, Some(Degraded))
            }),
            vec![(
                Some(a.into()),
                AlarmKind::ReplicationBroken,
                Severity::Critical,
            )],
        ),
        (
            "a standalone server down is one alarm, not two",
            MonitoredCluster {
                cluster_type: ClusterType::Standalone,
                state: Some(ClusterState::Failed),
                ..cluster(vec![node(a, Some(Offline))])
            },
            vec![(Some(a.into()), AlarmKind::NodeDown, Severity::Critical)],
        ),
        (
            "the whole cluster in maintenance",
            MonitoredCluster {
                in_maintenance: true,
                state: Some(ClusterState::Failed),
                ..down(node(a, Some(Offline)))
            },
            vec![],
        ),
        (
            "a failed cluster, and the node that made it so",
            MonitoredCluster {
                state: Some(ClusterState::Failed),
                reason: "no primary answers".into(),
                ..down(node(a, Some(Offline)))
            },
            vec![
                (Some(a.into()), AlarmKind::NodeDown, Severity::Critical),
                (None, AlarmKind::ClusterFailed, Severity::Critical),
            ],
        ),
    ];
    for (what, c, want) in cases {
        assert_eq!(kinds(&c), want, "{what}");
    }
}

#[test]
fn a_node_down_message_says_what_to_do() {
    let c = cluster(vec![node("10.0.0.1:3306", Some(NodeState::Offline))]);
    let m = &monitor_conditions(&c)[0];
    assert!(m.message.contains("connection refused"), "{}", m.message);
    assert!(
        m.message
            .contains("nines node start --cluster shop --node 10.0.0.1:3306"),
        "{}",
        m.message
    );
    assert_eq!(m.title, "node down: 10.0.0.1:3306 (shop)");
    let auto = MonitoredCluster {
        auto_recovery: true,
        ..c.clone()
    };
    assert!(
        monitor_conditions(&auto)[0]
            .message
            .contains("restarts it by itself")
    );
    let imported = MonitoredCluster {
        deployed: false,
        ..c
    };
    assert!(
        monitor_conditions(&imported)[0]
            .message
            .contains("cannot start it")
    );
}

fn active(c: &Condition) -> Active {
    Active {
        key: c.key.clone(),
        severity: c.severity,
        title: c.title.clone(),
        message: c.message.clone(),
    }
}

#[test]
fn a_pass_raises_new_conditions_updates_changed_ones_and_clears_the_rest() {
    let down =
        |n: &str, m: &str| Condition::new("shop", Some(n), AlarmKind::NodeDown, m.to_string());
    let a = down("a:1", "refused");
    let b = down("b:1", "refused");
    let other_source = Condition::new("shop", None, AlarmKind::SemiSync, "x".into());
    let other_cluster = Condition::new("crm", Some("c:1"), AlarmKind::NodeDown, "x".into());
    let now = vec![
        active(&a),
        active(&b),
        active(&other_source),
        active(&other_cluster),
    ];
    // a goes on (same message), b ended, d is new, a reported twice counts once.
    let d = down("d:1", "timed out");
    let changes = diff(
        "shop",
        Source::Monitor,
        &now,
        vec![a.clone(), d.clone(), a.clone()],
    );
    assert_eq!(
        changes,
        vec![Change::Raise(d), Change::Clear(b.key.clone())]
    );
    // A changed message or severity is an update, not a new alarm.
    let a2 = down("a:1", "timed out").with_severity(Severity::Warning);
    assert_eq!(
        diff("shop", Source::Monitor, &[active(&a)], vec![a2.clone()]),
        vec![Change::Update(a2)]
    );
    // Nothing found: everything of that source and cluster clears, nothing else.
    assert_eq!(
        diff("shop", Source::Monitor, &now, vec![]),
        vec![Change::Clear(a.key), Change::Clear(b.key)]
    );
}

#[test]
fn silences_cover_their_kind_on_their_cluster_until_they_end() {
    let t = |s: i64| Utc.timestamp_opt(1_800_000_000 + s, 0).single().unwrap();
    let key = |cluster: &str, kind: AlarmKind| AlarmKey {
        cluster: cluster.into(),
        node: Some("a:1".into()),
        kind,
    };
    let s = vec![
        Silence {
            kind: AlarmKind::NodeDown,
            cluster: Some("shop".into()),
            until: t(100),
        },
        Silence {
            kind: AlarmKind::Advisor("disk_space".into()),
            cluster: None,
            until: t(100),
        },
    ];
    let cases = [
        (key("shop", AlarmKind::NodeDown), t(50), true),
        (key("shop", AlarmKind::NodeDown), t(100), false),
        (key("crm", AlarmKind::NodeDown), t(50), false),
        (key("shop", AlarmKind::ClusterFailed), t(50), false),
        (
            key("crm", AlarmKind::Advisor("disk_space".into())),
            t(50),
            true,
        ),
        (key("crm", AlarmKind::Advisor("disk".into())), t(50), false),
    ];
    for (k, now, want) in cases {
        assert_eq!(silenced(&k, &s, now), want, "{k:?} at {now}");
    }
}

#[test]
fn kinds_round_trip_and_unknown_ones_are_named() {
    for k in AlarmKind::BUILT_IN {
        assert_eq!(k.as_string().parse::<AlarmKind>().unwrap(), k);
    }
    assert_eq!(
        "advisor.galera_no_pk".parse::<AlarmKind>().unwrap(),
        AlarmKind::Advisor("galera_no_pk".into())
    );
    let e = "node_dwn".parse::<AlarmKind>().unwrap_err();
    assert!(e.contains("node_down"), "{e}");
    assert!("advisor.".parse::<AlarmKind>().is_err());
    assert!("advisor.a b".parse::<AlarmKind>().is_err());
    assert!("critical".parse::<Severity>().unwrap() > Severity::Warning);
    assert!("loud".parse::<Severity>().unwrap_err().contains("critical"));
}
