//! A deployed Galera cluster whose three servers are all killed with SIGKILL serves again,
//! recovered by nines from its most advanced node, with every acknowledged write.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{ADMIN_PW, Controller, DeployDir, create_cluster, sql, stderr, stdout, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fully_crashed_galera_cluster_is_recovered_with_every_acknowledged_write() {
    let leases = nines_testkit::lease_addresses(3).expect("leases");
    let addrs: Vec<String> = leases.iter().map(|l| l.addr()).collect();
    let dir = DeployDir::new();
    let ctl = Controller::start().await;
    let out = create_cluster(
        &ctl,
        "gal",
        "galera",
        &addrs.join(","),
        &dir.template(),
        &["--local"],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    sql(&addrs[0], "dba", ADMIN_PW, "CREATE DATABASE app")
        .await
        .unwrap();
    sql(
        &addrs[0],
        "dba",
        ADMIN_PW,
        "CREATE TABLE app.t (id INT PRIMARY KEY)",
    )
    .await
    .unwrap();
    // Acknowledged writes through every node.
    let mut acknowledged = 0;
    for i in 0..30 {
        let a = &addrs[i % 3];
        if sql(
            a,
            "dba",
            ADMIN_PW,
            &format!("INSERT INTO app.t VALUES ({i})"),
        )
        .await
        .is_ok()
        {
            acknowledged += 1;
        }
    }
    assert_eq!(acknowledged, 30);
    let healthy = wait_until(Duration::from_secs(15), || async {
        ctl.cluster("gal")
            .await
            .is_some_and(|c| c["state"] == "healthy")
    })
    .await;
    assert!(healthy, "{:?}", ctl.cluster("gal").await);

    let history = sql(&addrs[0], "dba", ADMIN_PW, "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'WSREP_CLUSTER_STATE_UUID'")
        .await
        .unwrap()
        .concat();
    assert_eq!(history.len(), 36, "{history:?}");
    // Every server killed at once.
    for a in &addrs {
        let pid_file = format!("{}.nines/mysqld.pid", dir.datadir(a, 3306).display());
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        let _ = std::process::Command::new("kill")
            .args(["-9", pid.trim()])
            .status();
    }
    let failed = wait_until(Duration::from_secs(10), || async {
        ctl.cluster("gal")
            .await
            .is_some_and(|c| c["state"] == "failed")
    })
    .await;
    assert!(failed, "the monitor did not see the cluster fail");

    // nines recovers it: all three synced, every acknowledged row everywhere.
    let recovered = wait_until(Duration::from_secs(180), || async {
        ctl.cluster("gal")
            .await
            .is_some_and(|c| c["state"] == "healthy")
    })
    .await;
    let events = ctl.json(&["events", "--cluster", "gal"]);
    if !recovered {
        let jobs = ctl.json(&["job", "list", "--cluster", "gal"]);
        let logs: Vec<String> = jobs
            .as_array()
            .unwrap()
            .iter()
            .map(|j| stdout(&ctl.cli(&["job", "logs", &j["id"].to_string()])))
            .collect();
        panic!("not recovered: {events}\njobs: {jobs}\nlogs: {logs:#?}");
    }
    for a in &addrs {
        // The same history goes on (the recovered position was handed to the bootstrap):
        // not a new cluster UUID.
        let uuid = sql(a, "dba", ADMIN_PW, "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'WSREP_CLUSTER_STATE_UUID'")
            .await
            .unwrap();
        assert_eq!(uuid.concat(), history, "{a}: a new cluster history");
    }
    for a in &addrs {
        let n = sql(a, "dba", ADMIN_PW, "SELECT COUNT(*) FROM app.t")
            .await
            .unwrap();
        assert_eq!(n, vec![acknowledged.to_string()], "{a}");
    }
    let recovery = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "auto_galera_recovery")
        .expect("an auto_galera_recovery event");
    assert!(
        recovery["message"]
            .as_str()
            .unwrap()
            .contains("recovering the Galera cluster"),
        "{recovery}"
    );
    let jobs = ctl.json(&["job", "list", "--cluster", "gal"]);
    let job = jobs
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["kind"] == "galera_recovery")
        .expect("a recovery job");
    assert_eq!(job["requested_by"], "nines (auto-recovery)");
    let log = stdout(&ctl.cli(&["job", "logs", &job["id"].to_string()]));
    assert!(
        log.contains("recovering the position") && log.contains("the highest"),
        "{log}"
    );
}
