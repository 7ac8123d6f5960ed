//! HAProxy in front of a real replication pair, on a leased loopback address: the
//! configuration nines renders is accepted by `haproxy -c`, writes through the read-write
//! port reach the primary and reads through the read-only port a replica, and a change of
//! primary applied through the runtime API moves new connections at once and shuts down
//! the sessions on the demoted primary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use nines_access::host::LocalHost;
use nines_model::lb::{self, BackendState, HaproxyConfig, LbNode, LbPolicy, Pool};
use nines_model::{ClusterType, NodeState, Role};
use nines_ops::lb::Haproxy;
use nines_testkit::ReplicationTopology;

fn lb_node(addr: String, primary: bool) -> LbNode {
    LbNode {
        address: addr,
        role: if primary {
            Role::Primary
        } else {
            Role::Replica
        },
        state: Some(NodeState::Online),
        read_only: Some(!primary),
        lag_seconds: (!primary).then_some(0),
        synced: false,
        in_maintenance: false,
        fenced: false,
        designated_primary: primary,
    }
}

async fn server_id(host: &str, port: u16, user: &str, pw: &str) -> Result<u32, String> {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(host.to_string())
        .tcp_port(port)
        .user(Some(user))
        .pass(Some(pw))
        .prefer_socket(false);
    let mut c = mysql_async::Conn::new(opts)
        .await
        .map_err(|e| e.to_string())?;
    let id: Option<u32> = c
        .query_first("SELECT @@server_id")
        .await
        .map_err(|e| e.to_string())?;
    let _ = c.disconnect().await;
    id.ok_or_else(|| "no row".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_follows_the_decision_without_a_reload() {
    let topo = ReplicationTopology::start(1, false)
        .await
        .expect("topology");
    let (p, r) = (topo.primary(), topo.replica(0));
    let lease = nines_testkit::lease_addresses(1).expect("lease");
    let host = lease[0].addr();
    let dir = tempfile::tempdir().unwrap();
    let ha = Haproxy::new(
        Arc::new(LocalHost::new()),
        dir.path().join("lb").display().to_string(),
    );
    let mut nodes = vec![lb_node(p.endpoint(), true), lb_node(r.endpoint(), false)];
    let config = |nodes: &[LbNode]| HaproxyConfig {
        cluster: "shop".into(),
        host: host.clone(),
        rw_port: 3306,
        ro_port: 3307,
        stats_port: 9101,
        socket: ha.socket(),
        pid_file: ha.pid_file(),
        vip: None,
        decision: lb::decide(ClusterType::Replication, nodes, None, LbPolicy::default()),
    };

    // A configuration HAProxy refuses never replaces the file.
    assert!(
        ha.write_config("global\n    bogus-keyword 1\n")
            .await
            .is_err()
    );
    let first = config(&nodes);
    ha.write_config(&lb::render(&first)).await.unwrap();
    ha.start_or_reload().await.unwrap();
    assert!(ha.is_running().await.unwrap());

    let (user, pw) = (p.user().to_string(), p.password().to_string());
    assert_eq!(
        server_id(&host, 3306, &user, &pw).await.unwrap(),
        p.server_id()
    );
    assert_eq!(
        server_id(&host, 3307, &user, &pw).await.unwrap(),
        r.server_id()
    );

    // A client holds a session on the primary through the read-write port.
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(host.clone())
        .tcp_port(3306)
        .user(Some(user.clone()))
        .pass(Some(pw.clone()))
        .prefer_socket(false);
    let mut held = mysql_async::Conn::new(opts).await.unwrap();
    held.query_drop("SELECT 1").await.unwrap();

    // The replica is promoted (as a failover would): the primary goes read-only.
    r.exec("STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only=OFF")
        .await
        .unwrap();
    p.exec("SET GLOBAL read_only=ON").await.unwrap();
    nodes[0].designated_primary = false;
    nodes[0].role = Role::Replica;
    nodes[0].read_only = Some(true);
    nodes[0].fenced = true;
    nodes[1].designated_primary = true;
    nodes[1].role = Role::Primary;
    nodes[1].read_only = Some(false);
    let second = config(&nodes);
    let started = Instant::now();
    ha.apply(&second.decision.backends, &first.decision.backends)
        .await
        .unwrap();
    assert_eq!(
        server_id(&host, 3306, &user, &pw).await.unwrap(),
        r.server_id()
    );
    let moved = started.elapsed();
    assert!(moved < Duration::from_secs(1), "{moved:?}");
    // The session on the demoted primary was shut down.
    assert!(
        held.query_drop("SELECT 1").await.is_err(),
        "session survived"
    );
    let states = ha.states().await.unwrap();
    let of = |pool: Pool, addr: &str| {
        states
            .iter()
            .find(|(pl, name, _)| *pl == pool && *name == lb::server_name(addr))
            .map(|(_, _, s)| s.clone())
            .unwrap()
    };
    assert_eq!(of(Pool::Rw, &p.endpoint()), "MAINT");
    assert_eq!(of(Pool::Rw, &r.endpoint()), "UP");
    assert_eq!(
        second
            .decision
            .backends
            .iter()
            .find(|b| b.pool == Pool::Ro && b.address == r.endpoint())
            .map(|b| b.state),
        Some(BackendState::Up),
        "no replica left: the primary serves reads"
    );

    // Prometheus can read HAProxy's own metrics.
    let metrics = std::process::Command::new("curl")
        .args(["-fsS", &format!("http://{host}:9101/metrics")])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&metrics.stdout);
    assert!(text.contains("haproxy_server_status"), "{text}");

    // The file follows too (a restart starts right), then everything goes.
    ha.write_config(&lb::render(&second)).await.unwrap();
    ha.start_or_reload().await.unwrap();
    assert_eq!(
        server_id(&host, 3306, &user, &pw).await.unwrap(),
        r.server_id()
    );
    // One look: alive, no VIP asked about, every server with HAProxy's state.
    let look = ha.look(None).await.unwrap();
    assert!(look.haproxy_running);
    assert_eq!(look.holds_vip, None);
    assert_eq!(look.servers.len(), 4, "{look:?}");
    assert!(
        look.servers.iter().any(|s| s.pool == Pool::Rw
            && s.server == lb::server_name(&r.endpoint())
            && s.sessions_total > 0),
        "{look:?}"
    );
    ha.purge().await.unwrap();
    assert!(!dir.path().join("lb").exists());
    let gone = ha.look(None).await.unwrap();
    assert!(!gone.haproxy_running && gone.servers.is_empty(), "{gone:?}");
    drop(lease);
}
