//! A deployed three-node Galera cluster that loses part of its nodes, with default
//! settings: one killed is restarted; two killed leave a survivor without a Primary
//! component, which nines bootstraps in place (it is the most advanced) or replaces by a
//! more advanced dead node; two frozen are never bootstrapped around (they may be alive),
//! and the cluster is whole again once they resume. Every acknowledged write survives.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{ADMIN_PW, Controller, DeployDir, create_cluster, sql, stderr, stdout, wait_until};
use serde_json::Value;

const CLUSTER: &str = "gal";

fn signal(dir: &DeployDir, addr: &str, sig: &str) {
    let pid_file = format!("{}.nines/mysqld.pid", dir.datadir(addr, 3306).display());
    let pid = std::fs::read_to_string(&pid_file).expect("pid file");
    let status = std::process::Command::new("kill")
        .args([sig, pid.trim()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill {sig} {addr}");
}

/// A deployed Galera cluster with a table `app.t` and the rows `0..rows` written through
/// every node in turn.
async fn deployed(rows: usize) -> (Vec<nines_testkit::AddressLease>, DeployDir, Controller) {
    let leases = nines_testkit::lease_addresses(3).expect("leases");
    let addrs: Vec<String> = leases.iter().map(|l| l.addr()).collect();
    let dir = DeployDir::new();
    let ctl = Controller::start().await;
    let out = create_cluster(
        &ctl,
        CLUSTER,
        "galera",
        &addrs.join(","),
        &dir.template(),
        &["--local"],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    for q in [
        "CREATE DATABASE app",
        "CREATE TABLE app.t (id INT PRIMARY KEY)",
    ] {
        sql(&addrs[0], "dba", ADMIN_PW, q).await.unwrap();
    }
    // DDL is certified everywhere at once but applied on the other nodes a moment later
    // (wsrep_sync_wait is off): wait until each has the table before writing through it.
    for a in &addrs {
        let there = wait_until(Duration::from_secs(10), || async {
            sql(a, "dba", ADMIN_PW, "SELECT COUNT(*) FROM app.t")
                .await
                .is_ok()
        })
        .await;
        assert!(there, "{a} never got app.t");
    }
    for i in 0..rows {
        insert(&addrs[i % 3], i).await.unwrap();
    }
    assert!(healthy(&ctl, Duration::from_secs(15)).await);
    (leases, dir, ctl)
}

async fn insert(addr: &str, id: usize) -> Result<Vec<String>, String> {
    sql(
        addr,
        "dba",
        ADMIN_PW,
        &format!("INSERT INTO app.t VALUES ({id})"),
    )
    .await
}

async fn healthy(ctl: &Controller, within: Duration) -> bool {
    wait_until(within, || async {
        ctl.cluster(CLUSTER)
            .await
            .is_some_and(|c| c["state"] == "healthy")
    })
    .await
}

async fn status(addr: &str, var: &str) -> String {
    sql(
        addr,
        "dba",
        ADMIN_PW,
        &format!(
            "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = '{var}'"
        ),
    )
    .await
    .map(|v| v.concat())
    .unwrap_or_else(|e| e)
}

/// Every node Synced, in a Primary component of three.
async fn all_synced(addrs: &[String], within: Duration) -> bool {
    wait_until(within, || async {
        for a in addrs {
            if status(a, "WSREP_LOCAL_STATE_COMMENT").await != "Synced"
                || status(a, "WSREP_CLUSTER_SIZE").await != "3"
            {
                return false;
            }
        }
        true
    })
    .await
}

/// Every acknowledged row on every node.
async fn assert_rows(addrs: &[String], acknowledged: &[usize]) {
    let mut want: Vec<String> = acknowledged.iter().map(|i| i.to_string()).collect();
    want.sort();
    for a in addrs {
        let mut got = sql(a, "dba", ADMIN_PW, "SELECT id FROM app.t")
            .await
            .unwrap();
        got.sort();
        assert_eq!(got, want, "{a}: rows differ from the acknowledged ones");
    }
}

fn jobs(ctl: &Controller) -> Vec<Value> {
    ctl.json(&["job", "list", "--cluster", CLUSTER])
        .as_array()
        .unwrap()
        .clone()
}

/// The first job of `kind` once it has ended (the nodes may be Synced a moment before
/// the job records its end).
async fn ended_job(ctl: &Controller, kind: &str) -> Value {
    let ended = |j: &Value| {
        j["kind"] == kind
            && ["succeeded", "failed", "cancelled"].contains(&j["state"].as_str().unwrap_or(""))
    };
    let found = wait_until(Duration::from_secs(30), || async {
        jobs(ctl).iter().any(&ended)
    })
    .await;
    assert!(found, "no ended {kind} job: {}", dump(ctl));
    jobs(ctl).into_iter().find(|j| ended(j)).unwrap()
}

fn job_log(ctl: &Controller, job: &Value) -> String {
    stdout(&ctl.cli(&["job", "logs", &job["id"].to_string()]))
}

fn dump(ctl: &Controller) -> String {
    let jobs = jobs(ctl);
    let logs: Vec<String> = jobs.iter().map(|j| job_log(ctl, j)).collect();
    format!(
        "events: {}\njobs: {jobs:?}\nlogs: {logs:#?}",
        ctl.json(&["events", "--cluster", CLUSTER])
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_killed_is_restarted_and_two_killed_are_recovered_from_the_survivor() {
    let (leases, dir, ctl) = deployed(30).await;
    let addrs: Vec<String> = leases.iter().map(|l| l.addr()).collect();
    let mut acknowledged: Vec<usize> = (0..30).collect();

    // One of three killed: the other two keep a Primary component, and nines restarts
    // the dead one, which joins them.
    signal(&dir, &addrs[2], "-9");
    insert(&addrs[0], 30).await.unwrap();
    acknowledged.push(30);
    assert!(
        all_synced(&addrs, Duration::from_secs(90)).await,
        "{}",
        dump(&ctl)
    );
    let restarts: Vec<Value> = jobs(&ctl)
        .into_iter()
        .filter(|j| j["kind"] == "node_start")
        .collect();
    assert_eq!(restarts.len(), 1, "{}", dump(&ctl));
    assert!(
        !jobs(&ctl).iter().any(|j| j["kind"] == "galera_recovery"),
        "no bootstrap while a Primary component serves: {}",
        dump(&ctl)
    );
    assert!(healthy(&ctl, Duration::from_secs(15)).await);

    // Two of three killed: the survivor goes non-Primary. It is the most advanced, so
    // nines bootstraps it in place: writable again within 30 s, all Synced within 120 s.
    insert(&addrs[0], 31).await.unwrap();
    acknowledged.push(31);
    let killed = Instant::now();
    signal(&dir, &addrs[1], "-9");
    signal(&dir, &addrs[2], "-9");
    let mut next = 100;
    let writable = wait_until(Duration::from_secs(30), || {
        let a = addrs[0].clone();
        let id = next;
        next += 1;
        async move { insert(&a, id).await.is_ok() }
    })
    .await;
    assert!(
        writable,
        "the survivor took no write within 30 s: {}",
        dump(&ctl)
    );
    let took = killed.elapsed();
    acknowledged.push(next - 1);
    assert!(
        all_synced(&addrs, Duration::from_secs(120) - took).await,
        "not all Synced within 120 s: {}",
        dump(&ctl)
    );
    assert_rows(&addrs, &acknowledged).await;
    let recovery = ended_job(&ctl, "galera_recovery").await;
    assert_eq!(recovery["requested_by"], "nines (auto-recovery)");
    assert_eq!(recovery["state"], "succeeded", "{}", dump(&ctl));
    let log = job_log(&ctl, &recovery);
    assert!(
        log.contains(&format!(
            "bootstrapping the Primary component on the running {}:3306 (pc.bootstrap=YES)",
            addrs[0]
        )),
        "{log}"
    );
    assert!(
        log.contains("IST where the donor still has the gap"),
        "{log}"
    );
    let events = ctl.json(&["events", "--cluster", CLUSTER]);
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "galera_recovered"),
        "{events}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_killed_with_a_dead_node_ahead_bootstraps_from_the_dead_node() {
    let (leases, dir, ctl) = deployed(10).await;
    let addrs: Vec<String> = leases.iter().map(|l| l.addr()).collect();
    let mut acknowledged: Vec<usize> = (0..10).collect();

    // The first node freezes; the other two evict it and go on taking writes, so they
    // are ahead of it.
    signal(&dir, &addrs[0], "-STOP");
    let evicted = wait_until(Duration::from_secs(30), || async {
        status(&addrs[1], "WSREP_CLUSTER_SIZE").await == "2"
    })
    .await;
    assert!(evicted, "the frozen node was not evicted");
    for i in 10..20 {
        insert(&addrs[1 + i % 2], i).await.unwrap();
        acknowledged.push(i);
    }
    // Then both die, and the frozen node wakes up alone, behind, non-Primary.
    signal(&dir, &addrs[1], "-9");
    signal(&dir, &addrs[2], "-9");
    signal(&dir, &addrs[0], "-CONT");

    assert!(
        all_synced(&addrs, Duration::from_secs(150)).await,
        "not recovered: {}",
        dump(&ctl)
    );
    assert_rows(&addrs, &acknowledged).await;
    let recovery = ended_job(&ctl, "galera_recovery").await;
    assert_eq!(recovery["state"], "succeeded", "{}", dump(&ctl));
    let log = job_log(&ctl, &recovery);
    assert!(
        log.contains(&format!("first stop {}:3306", addrs[0])),
        "the survivor behind is stopped first: {log}"
    );
    assert!(log.contains("--wsrep-new-cluster"), "{log}");
    assert!(
        !log.contains(&format!(
            "starting {}:3306 with --wsrep-new-cluster",
            addrs[0]
        )),
        "the node behind must not bootstrap: {log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_frozen_are_never_bootstrapped_around_and_the_cluster_heals_when_they_resume() {
    let (leases, dir, ctl) = deployed(20).await;
    let addrs: Vec<String> = leases.iter().map(|l| l.addr()).collect();
    let acknowledged: Vec<usize> = (0..20).collect();

    signal(&dir, &addrs[1], "-STOP");
    signal(&dir, &addrs[2], "-STOP");
    let frozen_at = Instant::now();
    let non_primary = wait_until(Duration::from_secs(30), || async {
        status(&addrs[0], "WSREP_CLUSTER_STATUS").await == "non-Primary"
    })
    .await;
    assert!(non_primary, "the survivor stayed Primary alone?");
    // For the whole 45 s: the survivor stays non-Primary and nines bootstraps nothing.
    while frozen_at.elapsed() < Duration::from_secs(45) {
        assert_ne!(
            status(&addrs[0], "WSREP_CLUSTER_STATUS").await,
            "Primary",
            "the survivor became Primary while the others may be alive: {}",
            dump(&ctl)
        );
        assert!(
            !jobs(&ctl).iter().any(|j| j["kind"] == "galera_recovery"),
            "a recovery ran beside frozen nodes: {}",
            dump(&ctl)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The refusal is an alarm that names the blockers and the way out.
    let events = ctl.json(&["events", "--cluster", CLUSTER]);
    let alarm = events
        .as_array()
        .unwrap()
        .iter()
        // The reconciler's refusal, not the monitor's alarms about the frozen nodes.
        .find(|e| {
            e["kind"] == "alarm"
                && e["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("nines cluster recover"))
        })
        .unwrap_or_else(|| panic!("no alarm: {events}"))
        .clone();
    let msg = alarm["message"].as_str().unwrap();
    assert!(
        msg.contains(&format!("{}:3306", addrs[1]))
            && msg.contains("nines cluster recover --bootstrap-from ADDR --force"),
        "{msg}"
    );

    signal(&dir, &addrs[1], "-CONT");
    signal(&dir, &addrs[2], "-CONT");
    assert!(
        all_synced(&addrs, Duration::from_secs(60)).await,
        "not whole within 60 s of resuming: {}",
        dump(&ctl)
    );
    assert_rows(&addrs, &acknowledged).await;
}
