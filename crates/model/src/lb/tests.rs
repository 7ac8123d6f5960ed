use super::*;

fn node(addr: &str, role: Role) -> LbNode {
    LbNode {
        address: addr.into(),
        role,
        state: Some(NodeState::Online),
        read_only: Some(role != Role::Primary),
        lag_seconds: (role == Role::Replica).then_some(0),
        synced: role == Role::Galera,
        in_maintenance: false,
        fenced: false,
        designated_primary: role == Role::Primary,
    }
}

const P: &str = "10.0.0.1:3306";
const R1: &str = "10.0.0.2:3306";
const R2: &str = "10.0.0.3:3306";

/// (address, pool, state) of every backend.
fn states(d: &Decision) -> Vec<(&str, Pool, BackendState)> {
    d.backends
        .iter()
        .map(|b| (b.address.as_str(), b.pool, b.state))
        .collect()
}

fn state_of(d: &Decision, addr: &str, pool: Pool) -> BackendState {
    d.backends
        .iter()
        .find(|b| b.address == addr && b.pool == pool)
        .map(|b| b.state)
        .expect("backend")
}

#[test]
fn replication_writes_go_to_the_writable_primary_only() {
    use BackendState::*;
    let healthy = vec![
        node(P, Role::Primary),
        node(R1, Role::Replica),
        node(R2, Role::Replica),
    ];
    let d = decide(
        ClusterType::Replication,
        &healthy,
        None,
        LbPolicy::default(),
    );
    assert_eq!(
        states(&d),
        vec![
            (P, Pool::Rw, Up),
            (R1, Pool::Rw, Maint),
            (R2, Pool::Rw, Maint),
            (P, Pool::Ro, Maint),
            (R1, Pool::Ro, Up),
            (R2, Pool::Ro, Up),
        ]
    );
    type Bend = fn(&mut Vec<LbNode>);
    let cases: Vec<(&str, Bend, &str, Pool, BackendState)> = vec![
        (
            "the primary dies",
            |n| n[0].state = Some(NodeState::Offline),
            P,
            Pool::Rw,
            Down,
        ),
        (
            "a read-only primary (mid-switchover) takes no writes",
            |n| n[0].read_only = Some(true),
            P,
            Pool::Rw,
            Maint,
        ),
        (
            "a fenced old primary takes no writes",
            |n| n[0].fenced = true,
            P,
            Pool::Rw,
            Maint,
        ),
        (
            "the primary in maintenance is drained",
            |n| n[0].in_maintenance = true,
            P,
            Pool::Rw,
            Drain,
        ),
        (
            "a replica past the lag limit leaves the read pool",
            |n| n[1].lag_seconds = Some(11),
            R1,
            Pool::Ro,
            Maint,
        ),
        (
            "a replica at the lag limit stays",
            |n| n[1].lag_seconds = Some(10),
            R1,
            Pool::Ro,
            Up,
        ),
        (
            "a replica that stopped replicating leaves",
            |n| n[1].lag_seconds = None,
            R1,
            Pool::Ro,
            Maint,
        ),
        (
            "a replica in maintenance is drained",
            |n| n[1].in_maintenance = true,
            R1,
            Pool::Ro,
            Drain,
        ),
        (
            "a dead replica is down",
            |n| n[1].state = Some(NodeState::Offline),
            R1,
            Pool::Ro,
            Down,
        ),
        // After a failover: the new designated primary is writable, the old one fenced.
        (
            "after a failover the new primary takes writes",
            |n| {
                n[0].designated_primary = false;
                n[0].fenced = true;
                n[0].role = Role::Replica;
                n[1].designated_primary = true;
                n[1].role = Role::Primary;
                n[1].read_only = Some(false);
            },
            R1,
            Pool::Rw,
            Up,
        ),
    ];
    for (what, bend, addr, pool, want) in cases {
        let mut nodes = healthy.clone();
        bend(&mut nodes);
        let d = decide(ClusterType::Replication, &nodes, None, LbPolicy::default());
        assert_eq!(state_of(&d, addr, pool), want, "{what}");
        // Whatever happens, no read-only node is up in the read-write pool.
        for n in &nodes {
            if n.read_only != Some(false) {
                assert_ne!(
                    state_of(&d, &n.address, Pool::Rw),
                    Up,
                    "{what}: {}",
                    n.address
                );
            }
        }
    }
}

#[test]
fn reads_fall_back_to_the_primary_only_when_no_replica_qualifies() {
    use BackendState::*;
    let mut nodes = vec![node(P, Role::Primary), node(R1, Role::Replica)];
    nodes[1].lag_seconds = Some(100);
    let d = decide(ClusterType::Replication, &nodes, None, LbPolicy::default());
    assert_eq!(state_of(&d, P, Pool::Ro), Up);
    let no_fallback = LbPolicy {
        ro_fallback_to_primary: false,
        ..LbPolicy::default()
    };
    let d = decide(ClusterType::Replication, &nodes, None, no_fallback);
    assert_eq!(state_of(&d, P, Pool::Ro), Maint);
    nodes[1].lag_seconds = Some(1);
    let d = decide(ClusterType::Replication, &nodes, None, LbPolicy::default());
    assert_eq!(state_of(&d, P, Pool::Ro), Maint);
}

#[test]
fn galera_has_one_writer_kept_while_synced_and_backups_in_order() {
    use BackendState::*;
    let (a, b2, c) = ("10.0.0.1:3306", "10.0.0.2:3306", "10.0.0.3:3306");
    let nodes = vec![
        node(a, Role::Galera),
        node(b2, Role::Galera),
        node(c, Role::Galera),
    ];
    let d = decide(ClusterType::Galera, &nodes, None, LbPolicy::default());
    assert_eq!(d.writer.as_deref(), Some(a));
    let rw: Vec<(&str, BackendState, bool)> = d
        .backends
        .iter()
        .filter(|x| x.pool == Pool::Rw)
        .map(|x| (x.address.as_str(), x.state, x.backup))
        .collect();
    assert_eq!(rw, vec![(a, Up, false), (b2, Up, true), (c, Up, true)]);
    // The current writer is kept while it is Synced.
    let d = decide(ClusterType::Galera, &nodes, Some(c), LbPolicy::default());
    assert_eq!(d.writer.as_deref(), Some(c));
    // A donor leaves both pools; the writer moves to the first Synced member.
    let mut donor = nodes.clone();
    donor[2].synced = false;
    let d = decide(ClusterType::Galera, &donor, Some(c), LbPolicy::default());
    assert_eq!(d.writer.as_deref(), Some(a));
    assert_eq!(state_of(&d, c, Pool::Rw), Maint);
    assert_eq!(state_of(&d, c, Pool::Ro), Maint);
    // Maintenance drains; a dead member is down; nothing Synced: no writer.
    let mut m = nodes.clone();
    m[0].in_maintenance = true;
    m[1].state = Some(NodeState::Offline);
    let d = decide(ClusterType::Galera, &m, Some(a), LbPolicy::default());
    assert_eq!(d.writer.as_deref(), Some(c));
    assert_eq!(state_of(&d, a, Pool::Rw), Drain);
    assert_eq!(state_of(&d, a, Pool::Ro), Drain);
    assert_eq!(state_of(&d, b2, Pool::Ro), Down);
    let mut none = nodes;
    for n in &mut none {
        n.synced = false;
    }
    assert_eq!(
        decide(ClusterType::Galera, &none, None, LbPolicy::default()).writer,
        None
    );
}

#[test]
fn the_configuration_carries_the_decision() {
    let mut nodes = vec![
        node(P, Role::Primary),
        node(R1, Role::Replica),
        node(R2, Role::Replica),
    ];
    nodes[2].in_maintenance = true;
    let c = HaproxyConfig {
        cluster: "shop".into(),
        host: "127.0.0.50".into(),
        rw_port: 3306,
        ro_port: 3307,
        stats_port: 9101,
        socket: "/run/nines/lb.sock".into(),
        pid_file: "/run/nines/lb.pid".into(),
        vip: Some("10.9.0.100".into()),
        decision: decide(ClusterType::Replication, &nodes, None, LbPolicy::default()),
    };
    let text = render(&c);
    assert!(text.contains("bind 127.0.0.50:3306"), "{text}");
    assert!(text.contains("bind 127.0.0.50:3307"), "{text}");
    assert!(text.contains("bind 10.9.0.100:3306 transparent"), "{text}");
    assert!(text.contains("bind 10.9.0.100:3307 transparent"), "{text}");
    assert!(text.contains("stats socket /run/nines/lb.sock mode 600 level admin"));
    assert!(
        text.contains("server 10_0_0_1_3306 10.0.0.1:3306 check\n"),
        "{text}"
    );
    assert!(
        text.contains("server 10_0_0_2_3306 10.0.0.2:3306 check disabled\n"),
        "{text}"
    );
    assert!(
        text.contains("server 10_0_0_3_3306 10.0.0.3:3306 check weight 0\n"),
        "{text}"
    );
    assert!(text.contains("prometheus-exporter"));
    assert_eq!(server_name("[::1]:3306"), "___1__3306");
    assert_eq!(BackendState::Down.runtime(), "ready");
    assert_eq!("drain".parse::<BackendState>(), Ok(BackendState::Drain));
}

#[test]
fn keepalived_tracks_haproxy_and_talks_unicast() {
    let text = render_keepalived(&KeepalivedConfig {
        cluster: "shop".into(),
        interface: "veth0".into(),
        vip: "10.99.0.100/24".into(),
        virtual_router_id: 51,
        priority: 150,
        source: "10.99.0.1".into(),
        peers: vec!["10.99.0.2".into()],
        haproxy_pid_file: "/var/lib/nines-lb/shop/haproxy.pid".into(),
    });
    assert!(text.contains("virtual_router_id 51"), "{text}");
    assert!(text.contains("priority 150"));
    assert!(text.contains("unicast_src_ip 10.99.0.1"));
    assert!(text.contains("        10.99.0.2\n"), "{text}");
    assert!(text.contains("10.99.0.100/24 dev veth0"));
    assert!(text.contains("kill -0 $(head -n1 /var/lib/nines-lb/shop/haproxy.pid)"));
    assert!(text.contains("weight 0"));
    assert!(text.contains("nopreempt"));
    let alone = render_keepalived(&KeepalivedConfig {
        cluster: "shop".into(),
        interface: "veth0".into(),
        vip: "10.99.0.100/24".into(),
        virtual_router_id: 51,
        priority: 150,
        source: "10.99.0.1".into(),
        peers: vec![],
        haproxy_pid_file: "/x/haproxy.pid".into(),
    });
    assert!(!alone.contains("unicast"), "{alone}");
}

#[test]
fn vrrp_priorities_router_ids_and_prefixes() {
    assert_eq!(vrrp_priority(0), 150);
    assert_eq!(vrrp_priority(1), 140);
    assert_eq!(vrrp_priority(10), 50);
    assert_eq!(vrrp_priority(99), 50);
    assert_eq!(free_router_id(&[]), Some(51));
    assert_eq!(free_router_id(&[51, 52]), Some(53));
    let all_high: Vec<u8> = (51..=255).collect();
    assert_eq!(free_router_id(&all_high), Some(1));
    let every: Vec<u8> = (1..=255).collect();
    assert_eq!(free_router_id(&every), None);
    let cases = [
        ("10.0.0.100", "10.0.0.1", 24, "10.0.0.100/24"),
        ("10.0.1.100", "10.0.0.1", 24, "10.0.1.100/32"),
        ("10.0.1.100", "10.0.0.1", 16, "10.0.1.100/16"),
        ("10.0.0.100", "10.0.0.1", 0, "10.0.0.100/0"),
        ("fe80::1", "10.0.0.1", 24, "fe80::1/32"),
    ];
    for (vip, addr, prefix, want) in cases {
        assert_eq!(
            vip_with_prefix(vip, addr, prefix),
            want,
            "{vip} {addr}/{prefix}"
        );
    }
}

#[test]
fn downs_are_counted_within_the_window() {
    type Case<'a> = (&'a [(i64, u64)], i64, u64);
    let cases: [Case; 5] = [
        (&[], 100, 0),
        (&[(10, 0), (20, 1), (30, 3)], 40, 3),
        // Samples older than the window do not count.
        (&[(10, 0), (20, 5), (700, 6), (710, 8)], 720, 2),
        // HAProxy restarted: the counter starts again.
        (&[(10, 4), (20, 5), (30, 0), (40, 2)], 50, 3),
        (&[(10, 7), (20, 7)], 30, 0),
    ];
    for (samples, now, want) in cases {
        assert_eq!(downs_within(samples, now, 600), want, "{samples:?}");
    }
}

fn look(name: &str, vip: Option<&str>, running: Option<bool>, holds: Option<bool>) -> LbLook {
    LbLook {
        name: name.into(),
        vip: vip.map(Into::into),
        haproxy_running: running,
        holds_vip: holds,
        flapping: Vec::new(),
    }
}

#[test]
fn load_balancer_conditions() {
    use crate::alarm::AlarmKind;
    let v = Some("10.0.0.100");
    let flappy = LbLook {
        flapping: vec![(Pool::Ro, "10.0.0.3:3306".into(), 4)],
        ..look("a:3306", None, Some(true), None)
    };
    type Case<'a> = (&'a str, Vec<LbLook>, Vec<(AlarmKind, &'a str)>);
    let cases: Vec<Case> = vec![
        (
            "all well",
            vec![
                look("a:3306", v, Some(true), Some(true)),
                look("b:3306", v, Some(true), Some(false)),
            ],
            vec![],
        ),
        (
            "haproxy dead",
            vec![look("a:3306", None, Some(false), None)],
            vec![(AlarmKind::LbDown, "a:3306")],
        ),
        (
            "host silent",
            vec![look("a:3306", None, None, None)],
            vec![(AlarmKind::LbDown, "a:3306")],
        ),
        (
            "vip lost",
            vec![
                look("a:3306", v, Some(true), Some(false)),
                look("b:3306", v, Some(true), Some(false)),
            ],
            vec![(AlarmKind::LbVip, "10.0.0.100")],
        ),
        (
            "vip split",
            vec![
                look("a:3306", v, Some(true), Some(true)),
                look("b:3306", v, Some(true), Some(true)),
            ],
            vec![(AlarmKind::LbVip, "10.0.0.100")],
        ),
        // A silent peer may hold the VIP: only its own lb_down.
        (
            "vip unknown",
            vec![
                look("a:3306", v, None, None),
                look("b:3306", v, Some(true), Some(false)),
            ],
            vec![(AlarmKind::LbDown, "a:3306")],
        ),
        (
            "moved to the peer",
            vec![
                look("a:3306", v, Some(false), Some(false)),
                look("b:3306", v, Some(true), Some(true)),
            ],
            vec![(AlarmKind::LbDown, "a:3306")],
        ),
        (
            "flapping",
            vec![flappy],
            vec![(AlarmKind::LbBackendFlapping, "a:3306")],
        ),
    ];
    for (name, looks, want) in cases {
        let got: Vec<(AlarmKind, String)> = conditions("shop", &looks)
            .into_iter()
            .map(|c| (c.key.kind, c.key.node.unwrap_or_default()))
            .collect();
        let want: Vec<(AlarmKind, String)> =
            want.into_iter().map(|(k, n)| (k, n.to_string())).collect();
        assert_eq!(got, want, "{name}");
    }
    let c = conditions(
        "shop",
        &[
            look("a:3306", v, Some(true), Some(true)),
            look("b:3306", v, Some(true), Some(true)),
        ],
    );
    assert!(
        c[0].message.contains("a:3306 and b:3306"),
        "{}",
        c[0].message
    );
}
