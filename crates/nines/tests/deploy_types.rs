//! Every cluster type deployed over both transports: standalone and Galera over SSH,
//! standalone and replication locally. Each written through one node and read on every other.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{
    ADMIN_PW, Controller, DeployDir, controller_with_sshd, create_cluster, sql, ssh_args, stderr,
    stdout, wait_until,
};

const PW: &str = ADMIN_PW;

async fn rows_everywhere(addrs: &[String]) {
    sql(&addrs[0], "dba", PW, "CREATE DATABASE app")
        .await
        .unwrap();
    sql(
        &addrs[0],
        "dba",
        PW,
        "CREATE TABLE app.t (id INT PRIMARY KEY)",
    )
    .await
    .unwrap();
    sql(&addrs[0], "dba", PW, "INSERT INTO app.t VALUES (7)")
        .await
        .unwrap();
    for a in addrs {
        let seen = wait_until(Duration::from_secs(15), || async {
            sql(a, "dba", PW, "SELECT id FROM app.t").await == Ok(vec!["7".to_string()])
        })
        .await;
        assert!(seen, "{a} does not have the row");
    }
}

fn create(
    ctl: &Controller,
    name: &str,
    kind: &str,
    addrs: &[String],
    template: &str,
    extra: &[&str],
) {
    let out = create_cluster(ctl, name, kind, &addrs.join(","), template, extra);
    assert!(
        out.status.success(),
        "create {name} failed: {}{}",
        stdout(&out),
        stderr(&out)
    );
}

async fn healthy(ctl: &Controller, name: &str, kind: &str, n: u64) {
    let ok = wait_until(Duration::from_secs(15), || async {
        ctl.cluster(name)
            .await
            .is_some_and(|c| c["state"] == "healthy")
    })
    .await;
    let c = ctl.cluster(name).await.unwrap();
    assert!(ok, "{c}");
    assert_eq!(c["type"], kind);
    assert_eq!(c["nodes"], n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_and_galera_over_ssh() {
    let leases = nines_testkit::lease_addresses(4).expect("leases");
    let addrs: Vec<String> = leases.iter().map(|l| l.addr()).collect();
    let (sshd, ctl) = controller_with_sshd(&addrs).await;
    let dir = DeployDir::new();
    let ssh_owned = ssh_args(&sshd);
    let ssh: Vec<&str> = ssh_owned.iter().map(String::as_str).collect();

    create(
        &ctl,
        "solo",
        "standalone",
        &addrs[3..],
        &dir.template(),
        &ssh,
    );
    rows_everywhere(&addrs[3..]).await;
    healthy(&ctl, "solo", "standalone", 1).await;

    create(&ctl, "gal", "galera", &addrs[..3], &dir.template(), &ssh);
    rows_everywhere(&addrs[..3]).await;
    healthy(&ctl, "gal", "galera", 3).await;
    // The deploy said what it did on which host.
    let jobs = ctl.json(&["job", "list", "--cluster", "gal"]);
    let id = jobs[0]["id"].to_string();
    let log = stdout(&ctl.cli(&["job", "logs", &id]));
    for a in &addrs[..3] {
        assert!(log.contains(&format!("{a}:3306: prepared")), "{log}");
    }
    assert!(log.contains("bootstrapping a new Galera cluster"), "{log}");
    // No password of any account in the log.
    assert!(!log.contains(PW), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_and_replication_locally() {
    let leases = nines_testkit::lease_addresses(3).expect("leases");
    let addrs: Vec<String> = leases.iter().map(|l| l.addr()).collect();
    let dir = DeployDir::new();
    let ctl = Controller::start().await;

    create(
        &ctl,
        "solo",
        "standalone",
        &addrs[2..],
        &dir.template(),
        &["--local"],
    );
    rows_everywhere(&addrs[2..]).await;
    healthy(&ctl, "solo", "standalone", 1).await;
    // The user's admin logs in over TCP from 127.0.0.1 with all privileges.
    let grants = sql(&addrs[2], "dba", PW, "SHOW GRANTS").await.unwrap();
    assert!(
        grants[0].contains("GRANT ALL PRIVILEGES ON *.*")
            && grants[0].contains("WITH GRANT OPTION"),
        "{grants:?}"
    );

    create(
        &ctl,
        "rep",
        "replication",
        &addrs[..2],
        &dir.template(),
        &["--local"],
    );
    rows_everywhere(&addrs[..2]).await;
    healthy(&ctl, "rep", "replication", 2).await;
    let n = ctl.nodes("rep").await;
    let replica = n.iter().find(|n| n["role"] == "replica").unwrap();
    assert!(replica["lag_seconds"].is_u64(), "{replica}");
    assert_eq!(replica["read_only"], true);

    // Delete with purge: servers stopped, files gone, cluster unregistered.
    let out = ctl.cli(&["cluster", "delete", "--name", "rep", "--purge", "--wait"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    for a in &addrs[..2] {
        assert!(!nines_testkit::port_is_open(a, 3306), "{a} still serving");
        assert!(!dir.datadir(a, 3306).exists(), "{a} datadir left");
    }
    assert!(ctl.cluster("rep").await.is_none());
    assert!(ctl.cluster("solo").await.is_some());
}
