//! HAProxy deployed by nines in front of a real replication cluster: writes through the
//! read-write port reach the primary and reads through the read-only port a replica; after
//! a `kill -9` of the primary the same port takes writes again once nines has failed over,
//! with no acknowledged write lost and never a write sent to a read-only node.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{ADMIN_PW, Controller, DeployDir, create_cluster, stderr, stdout, wait_until};
use mysql_async::prelude::Queryable;

async fn conn(host: &str, port: u16) -> Result<mysql_async::Conn, String> {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(host.to_string())
        .tcp_port(port)
        .user(Some("dba"))
        .pass(Some(ADMIN_PW))
        .prefer_socket(false);
    tokio::time::timeout(Duration::from_secs(2), mysql_async::Conn::new(opts))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| e.to_string())
}

async fn server_id(host: &str, port: u16) -> Result<u64, String> {
    let mut c = conn(host, port).await?;
    let id: Option<u64> = c
        .query_first("SELECT @@server_id")
        .await
        .map_err(|e| e.to_string())?;
    let _ = c.disconnect().await;
    id.ok_or_else(|| "no row".into())
}

async fn insert(host: &str, id: u32) -> Result<(), String> {
    insert_as(host, id, "dba", ADMIN_PW).await
}

/// The application's account: no READ_ONLY ADMIN, so a read-only server refuses its
/// writes (1290) — a connection sent to one shows.
const APP_PW: &str = "App-Passw0rd-lb";

async fn insert_as(host: &str, id: u32, user: &str, pw: &str) -> Result<(), String> {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(host.to_string())
        .tcp_port(3306)
        .user(Some(user))
        .pass(Some(pw))
        .prefer_socket(false);
    let mut c = tokio::time::timeout(Duration::from_secs(2), mysql_async::Conn::new(opts))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let r = c
        .query_drop(format!("INSERT INTO app.t VALUES ({id})"))
        .await
        .map_err(|e| e.to_string());
    // A refusal names the server that refused (the connection still answers).
    let r = match r {
        Err(e) if e.contains("1290") => {
            let sid: Option<u64> = c.query_first("SELECT @@server_id").await.ok().flatten();
            Err(format!("{e} (server_id {sid:?})"))
        }
        other => other,
    };
    let _ = c.disconnect().await;
    r
}

/// A cluster of `kind` with `n` nodes deployed by a new controller, with HAProxy added in
/// front of it on one more leased address (`lb add --local --wait`).
async fn behind_haproxy(
    name: &str,
    kind: &str,
    n: usize,
) -> (
    Vec<nines_testkit::AddressLease>,
    String,
    Vec<String>,
    Controller,
    DeployDir,
    common::LbLeftovers,
) {
    let leases = nines_testkit::lease_addresses(n + 1).expect("leases");
    let mut addrs: Vec<String> = leases.iter().map(|l| l.addr()).collect();
    let lb_host = addrs.pop().expect("lease");
    let leftovers = common::LbLeftovers::new(name, std::slice::from_ref(&lb_host));
    let ctl = Controller::start().await;
    let dir = DeployDir::new();
    let out = create_cluster(
        &ctl,
        name,
        kind,
        &addrs.join(","),
        &dir.template(),
        &["--local"],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let out = ctl.cli(&[
        "lb",
        "add",
        "--cluster",
        name,
        "--type",
        "haproxy",
        "--host",
        &lb_host,
        "--local",
        "--wait",
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    (leases, lb_host, addrs, ctl, dir, leftovers)
}

/// Each node's server id, by address.
async fn server_ids(ctl: &Controller, cluster: &str) -> std::collections::HashMap<String, u64> {
    ctl.nodes(cluster)
        .await
        .iter()
        .map(|n| {
            (
                n["address"].as_str().unwrap().to_string(),
                n["server_id"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_follows_a_failover_and_no_acknowledged_write_is_lost() {
    let (leases, lb_host, nodes, ctl, dir, _leftovers) =
        behind_haproxy("lbr", "replication", 2).await;
    let nodes = &nodes[..];

    let list = ctl.json(&["lb", "list", "--cluster", "lbr"]);
    let lb = &list.as_array().unwrap()[0];
    for f in [
        "id", "type", "host", "rw_port", "ro_port", "state", "backends",
    ] {
        assert!(!lb[f].is_null(), "{f}: {lb}");
    }
    assert_eq!(
        (
            lb["type"].as_str(),
            lb["rw_port"].as_u64(),
            lb["ro_port"].as_u64()
        ),
        (Some("haproxy"), Some(3306), Some(3307))
    );
    assert_eq!(lb["state"], "running");
    let backends = lb["backends"].as_array().unwrap();
    assert_eq!(backends.len(), 4, "{lb}");
    let (p, r) = (format!("{}:3306", nodes[0]), format!("{}:3306", nodes[1]));
    // The pools follow what the monitor has seen of each node (a node not probed yet is
    // `down`): the expected states within a few probes.
    let settled = wait_until(Duration::from_secs(10), || async {
        backend(&ctl, "lbr", &p, "rw") == "up"
            && backend(&ctl, "lbr", &r, "rw") == "maint"
            && backend(&ctl, "lbr", &r, "ro") == "up"
    })
    .await;
    assert!(settled, "{}", ctl.json(&["lb", "list", "--cluster", "lbr"]));

    let ids = server_ids(&ctl, "lbr").await;
    let id_of = |a: &str| ids[a];
    assert_eq!(server_id(&lb_host, 3306).await.unwrap(), id_of(&p));
    assert_eq!(server_id(&lb_host, 3307).await.unwrap(), id_of(&r));

    // A replica that stops applying (its lag unknown, then growing) leaves the read pool,
    // reads fall back to the primary, and it comes back once it applies again.
    let mut rc = conn(nodes[1].as_str(), 3306).await.unwrap();
    rc.query_drop("STOP SLAVE SQL_THREAD").await.unwrap();
    let left = wait_until(Duration::from_secs(10), || async {
        backend(&ctl, "lbr", &r, "ro") == "maint" && backend(&ctl, "lbr", &p, "ro") == "up"
    })
    .await;
    assert!(left, "{}", ctl.json(&["lb", "list", "--cluster", "lbr"]));
    assert_eq!(server_id(&lb_host, 3307).await.unwrap(), id_of(&p));
    rc.query_drop("START SLAVE SQL_THREAD").await.unwrap();
    let _ = rc.disconnect().await;
    let back = wait_until(Duration::from_secs(10), || async {
        backend(&ctl, "lbr", &r, "ro") == "up" && backend(&ctl, "lbr", &p, "ro") == "maint"
    })
    .await;
    assert!(back, "{}", ctl.json(&["lb", "list", "--cluster", "lbr"]));

    // Writes through the load balancer, acknowledged.
    let mut c = conn(&lb_host, 3306).await.unwrap();
    c.query_drop("CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    let _ = c.disconnect().await;
    let mut acked = 0;
    for i in 1..=50 {
        insert(&lb_host, i).await.unwrap();
        acked = i;
    }

    // nines fails over only a topology it has seen whole (its `failover_armed` event).
    assert!(common::wait_failover_armed(&ctl, "lbr").await);

    // The primary dies; the same port takes writes again once nines has failed over.
    let killed = Instant::now();
    common::kill_9_node(&dir, &nodes[0]);
    let mut next = acked + 1;
    let back = wait_until(Duration::from_secs(30), || {
        let host = lb_host.clone();
        let id = next;
        async move { insert(&host, id).await.is_ok() }
    })
    .await;
    let took = killed.elapsed();
    assert!(
        back,
        "no write through the load balancer 30 s after the kill"
    );
    next += 1;
    eprintln!("kill -9 of the primary -> first write acknowledged through HAProxy: {took:?}");
    assert!(
        took < Duration::from_secs(5),
        "{took:?}: {}",
        ctl.json(&["events", "--cluster", "lbr", "--limit", "100"])
    );
    // It went to the new primary, and every acknowledged write is there.
    assert_eq!(server_id(&lb_host, 3306).await.unwrap(), id_of(&r));
    let mut c = conn(&lb_host, 3306).await.unwrap();
    let rows: Vec<u32> = c.query("SELECT id FROM app.t ORDER BY id").await.unwrap();
    let _ = c.disconnect().await;
    assert_eq!(rows, (1..next).collect::<Vec<u32>>());
    let moved = wait_until(Duration::from_secs(10), || async {
        backend(&ctl, "lbr", &r, "rw") == "up" && backend(&ctl, "lbr", &p, "rw") != "up"
    })
    .await;
    assert!(moved, "{}", ctl.json(&["lb", "list", "--cluster", "lbr"]));
    let events = ctl.json(&["events", "--cluster", "lbr", "--limit", "200"]);
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "lb_backends"),
        "{events}"
    );

    // Removed: nothing listens there any more.
    let out = ctl.cli(&[
        "lb",
        "remove",
        "--cluster",
        "lbr",
        "--host",
        &lb_host,
        "--wait",
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(!nines_testkit::port_is_open(&lb_host, 3306));
    assert!(
        ctl.json(&["lb", "list", "--cluster", "lbr"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    drop(leases);
}

fn backend(ctl: &Controller, cluster: &str, addr: &str, pool: &str) -> String {
    let l = ctl.json(&["lb", "list", "--cluster", cluster]);
    l.as_array().unwrap()[0]["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["address"] == addr && b["pool"] == pool)
        .map(|b| b["state"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn galera_behind_haproxy_has_one_writer_and_sheds_desynced_and_maintained_members() {
    let (leases, lb_host, nodes, ctl, dir, _leftovers) = behind_haproxy("lbg", "galera", 3).await;
    let nodes = &nodes[..];
    let ep = |i: usize| format!("{}:3306", nodes[i]);
    let ids = server_ids(&ctl, "lbg").await;
    let id_of = |a: &str| ids[a];

    // One writer (the first member in the configuration's order); the others are
    // backups; every member reads.
    // Backups are ready too: HAProxy uses them only if the writer fails.
    let settled = wait_until(Duration::from_secs(10), || async {
        (0..3).all(|i| {
            backend(&ctl, "lbg", &ep(i), "ro") == "up" && backend(&ctl, "lbg", &ep(i), "rw") == "up"
        })
    })
    .await;
    assert!(settled, "{}", ctl.json(&["lb", "list", "--cluster", "lbg"]));
    let l = ctl.json(&["lb", "list", "--cluster", "lbg"]);
    let writer = l[0]["writer"].as_str().unwrap_or_default().to_string();
    assert!((0..3).any(|i| ep(i) == writer), "{l}");
    for _ in 0..5 {
        assert_eq!(server_id(&lb_host, 3306).await.unwrap(), id_of(&writer));
    }
    let other = (0..3).map(ep).find(|a| *a != writer).unwrap();

    // A desynced member (a donor, a backup) leaves the read pool and comes back.
    let other_host = other.trim_end_matches(":3306").to_string();
    let mut c = conn(&other_host, 3306).await.unwrap();
    c.query_drop("SET GLOBAL wsrep_desync=ON").await.unwrap();
    let out_of_pool = wait_until(Duration::from_secs(10), || async {
        backend(&ctl, "lbg", &other, "ro") == "maint"
    })
    .await;
    assert!(
        out_of_pool,
        "{}",
        ctl.json(&["lb", "list", "--cluster", "lbg"])
    );
    c.query_drop("SET GLOBAL wsrep_desync=OFF").await.unwrap();
    let _ = c.disconnect().await;
    let back = wait_until(Duration::from_secs(10), || async {
        backend(&ctl, "lbg", &other, "ro") == "up"
    })
    .await;
    assert!(back, "{}", ctl.json(&["lb", "list", "--cluster", "lbg"]));

    // Maintenance drains the writer: the writer moves to another member, which takes
    // the writes through the same port.
    let out = ctl.cli(&[
        "maintenance",
        "on",
        "--cluster",
        "lbg",
        "--node",
        &writer,
        "--for",
        "1h",
        "--reason",
        "kernel update",
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let moved = wait_until(Duration::from_secs(10), || async {
        let l = ctl.json(&["lb", "list", "--cluster", "lbg"]);
        backend(&ctl, "lbg", &writer, "rw") == "drain"
            && l[0]["writer"].as_str().is_some_and(|w| w != writer)
    })
    .await;
    assert!(moved, "{}", ctl.json(&["lb", "list", "--cluster", "lbg"]));
    let second = ctl.json(&["lb", "list", "--cluster", "lbg"])[0]["writer"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(backend(&ctl, "lbg", &writer, "ro"), "drain");
    let writes = wait_until(Duration::from_secs(5), || async {
        server_id(&lb_host, 3306).await.ok() == Some(id_of(&second))
    })
    .await;
    assert!(writes);

    // The new writer dies: another Synced member writes.
    let out = ctl.cli(&["maintenance", "off", "--cluster", "lbg", "--node", &writer]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    common::kill_9_node(&dir, second.trim_end_matches(":3306"));
    let killed = Instant::now();
    let took_over = wait_until(Duration::from_secs(15), || async {
        server_id(&lb_host, 3306)
            .await
            .is_ok_and(|id| id != id_of(&second))
    })
    .await;
    assert!(
        took_over,
        "{}",
        ctl.json(&["lb", "list", "--cluster", "lbg"])
    );
    eprintln!(
        "kill -9 of the Galera writer -> writes through HAProxy again: {:?}",
        killed.elapsed()
    );
    drop(leases);
}

/// What a writer going through the read-write listener saw.
#[derive(Debug, Default)]
struct Writes {
    /// Acknowledged ids, in order.
    acked: Vec<u32>,
    /// (time of the ack, id).
    times: Vec<(Instant, u32)>,
    /// Writes a server refused as read-only: the listener sent a connection to a
    /// read-only node.
    read_only_refusals: Vec<String>,
}

impl Writes {
    /// The longest time without an acknowledged write after `from`, until the next ack.
    fn gap_after(&self, from: Instant) -> Duration {
        let mut prev = from;
        let mut longest = Duration::ZERO;
        for (t, _) in self.times.iter().filter(|(t, _)| *t >= from) {
            longest = longest.max(t.duration_since(prev));
            prev = *t;
        }
        longest
    }
}

/// A writer through `host:3306`, a new connection per write (as an application that
/// reconnects does), until `stop`.
fn writer(
    host: String,
    first: u32,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<Writes> {
    tokio::spawn(async move {
        let started = Instant::now();
        let mut w = Writes::default();
        let mut id = first;
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            match insert_as(&host, id, "app", APP_PW).await {
                Ok(()) => {
                    w.acked.push(id);
                    w.times.push((Instant::now(), id));
                }
                Err(e) => {
                    if e.contains("read-only") || e.contains("1290") {
                        w.read_only_refusals
                            .push(format!("{:?}: {e}", started.elapsed()));
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            id += 1;
        }
        w
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switchover_and_failover_under_a_writer_never_send_it_to_a_read_only_node() {
    let (leases, lb_host, nodes, ctl, dir, _leftovers) =
        behind_haproxy("lbw", "replication", 2).await;
    let (p, r) = (format!("{}:3306", nodes[0]), format!("{}:3306", nodes[1]));
    let settled = wait_until(Duration::from_secs(10), || async {
        backend(&ctl, "lbw", &p, "rw") == "up" && backend(&ctl, "lbw", &r, "rw") == "maint"
    })
    .await;
    assert!(settled, "{}", ctl.json(&["lb", "list", "--cluster", "lbw"]));
    let mut c = conn(&lb_host, 3306).await.unwrap();
    c.query_drop(format!(
        "CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY); \
         CREATE USER app@'%' IDENTIFIED BY '{APP_PW}'; GRANT SELECT, INSERT ON app.* TO app@'%'"
    ))
    .await
    .unwrap();
    let _ = c.disconnect().await;
    assert!(common::wait_failover_armed(&ctl, "lbw").await);

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let begun = Instant::now();
    let task = writer(lb_host.clone(), 1, stop.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;

    // A switchover while the writer writes.
    let switched = Instant::now();
    eprintln!("switchover asked at {:?}", begun.elapsed());
    let out = ctl.cli(&["cluster", "switchover", "--name", "lbw", "--wait"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    // The old primary replicates from the new one before the next step.
    let replicating = wait_until(Duration::from_secs(30), || async {
        ctl.nodes("lbw")
            .await
            .iter()
            .any(|n| n["address"] == p.as_str() && n["role"] == "replica" && n["state"] == "online")
    })
    .await;
    assert!(replicating, "{:?}", ctl.nodes("lbw").await);
    tokio::time::sleep(Duration::from_secs(2)).await;

    // The new primary dies while the writer writes.
    let killed = Instant::now();
    eprintln!(
        "kill -9 at {:?} (server ids: {:?})",
        begun.elapsed(),
        server_ids(&ctl, "lbw").await
    );
    common::kill_9_node(&dir, &nodes[1]);
    let back = wait_until(Duration::from_secs(30), || async {
        backend(&ctl, "lbw", &p, "rw") == "up"
    })
    .await;
    assert!(
        back,
        "{}",
        ctl.json(&["events", "--cluster", "lbw", "--limit", "100"])
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let w = task.await.unwrap();

    let switch_gap = {
        let before_kill: Writes = Writes {
            times: w
                .times
                .iter()
                .filter(|(t, _)| *t < killed)
                .cloned()
                .collect(),
            ..Writes::default()
        };
        before_kill.gap_after(switched)
    };
    let failover_gap = w.gap_after(killed);
    eprintln!(
        "through HAProxy under a writer: switchover pause {switch_gap:?}, kill -9 of the primary -> writes again after {failover_gap:?}; {} writes acknowledged",
        w.acked.len()
    );
    assert!(
        w.read_only_refusals.is_empty(),
        "the read-write listener sent writes to a read-only node: {:?}",
        w.read_only_refusals
    );
    assert!(switch_gap < Duration::from_secs(3), "{switch_gap:?}");
    assert!(failover_gap < Duration::from_secs(3), "{failover_gap:?}");
    assert!(w.times.iter().any(|(t, _)| *t > killed + failover_gap));
    // Every acknowledged write is on the surviving primary.
    let mut c = conn(&lb_host, 3306).await.unwrap();
    let rows: Vec<u32> = c.query("SELECT id FROM app.t ORDER BY id").await.unwrap();
    let _ = c.disconnect().await;
    let missing: Vec<&u32> = w.acked.iter().filter(|id| !rows.contains(id)).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    drop(leases);
}
