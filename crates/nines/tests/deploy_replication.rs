//! Deploying a real primary with two replicas over SSH (to the test kit's sshd), with
//! semi-synchronous replication; adding and removing a replica; the primary's stop
//! refused; a rolling restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{
    ADMIN_PW, DeployDir, controller_with_sshd, create_cluster, sql, ssh_args, stderr, stdout,
    wait_until,
};

const PW: &str = ADMIN_PW;

async fn count(addr: &str) -> String {
    sql(addr, "dba", PW, "SELECT COUNT(*) FROM app.t")
        .await
        .map(|r| r.concat())
        .unwrap_or_else(|e| e)
}

async fn wait_count(addr: &str, want: &str) -> bool {
    wait_until(Duration::from_secs(15), || async {
        count(addr).await == want
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_over_ssh_deploy_scale_and_restart() {
    let leases = nines_testkit::lease_addresses(4).expect("leases");
    let addrs: Vec<String> = leases.iter().map(|l| l.addr()).collect();
    let (sshd, ctl) = controller_with_sshd(&addrs).await;
    let dir = DeployDir::new();
    let ssh_owned = ssh_args(&sshd);
    let ssh: Vec<&str> = ssh_owned.iter().map(String::as_str).collect();
    let nodes = addrs[..3].join(",");
    let mut extra = vec!["--semi-sync"];
    extra.extend_from_slice(&ssh);
    let out = create_cluster(&ctl, "shop", "replication", &nodes, &dir.template(), &extra);
    assert!(
        out.status.success(),
        "create failed: {}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("semi-synchronous replication on"),
        "{}",
        stdout(&out)
    );

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
    sql(&addrs[0], "dba", PW, "INSERT INTO app.t VALUES (1), (2)")
        .await
        .unwrap();
    for a in &addrs[1..3] {
        assert!(wait_count(a, "2").await, "{a}: {}", count(a).await);
    }
    // Replicas are read-only; the primary waits for a replica's acknowledgement.
    let ro = sql(&addrs[1], "dba", PW, "SELECT @@read_only")
        .await
        .unwrap();
    assert_eq!(ro, vec!["1".to_string()]);
    let semi = sql(
        &addrs[0],
        "dba",
        PW,
        "SELECT @@rpl_semi_sync_master_enabled",
    )
    .await
    .unwrap();
    assert_eq!(semi, vec!["1".to_string()]);

    let healthy = wait_until(Duration::from_secs(15), || async {
        ctl.cluster("shop")
            .await
            .is_some_and(|c| c["state"] == "healthy")
    })
    .await;
    assert!(healthy, "{:?}", ctl.cluster("shop").await);
    let nodes = ctl.json(&["node", "list", "--cluster", "shop"]);
    let nodes = nodes.as_array().unwrap();
    let role = |a: &str| {
        nodes
            .iter()
            .find(|n| n["address"] == format!("{a}:3306"))
            .map(|n| {
                (
                    n["role"].as_str().unwrap().to_string(),
                    n["read_only"].as_bool().unwrap(),
                )
            })
            .unwrap()
    };
    assert_eq!(role(&addrs[0]), ("primary".into(), false));
    assert_eq!(role(&addrs[1]), ("replica".into(), true));
    assert_eq!(role(&addrs[2]), ("replica".into(), true));

    // The primary with replicas is not stopped without --force.
    let out = ctl.cli(&[
        "node",
        "stop",
        "--cluster",
        "shop",
        "--node",
        &addrs[0],
        "--wait",
    ]);
    assert!(!out.status.success());
    assert!(stdout(&out).contains("is the primary"), "{}", stdout(&out));
    assert!(nines_testkit::port_is_open(&addrs[0], 3306));

    // A new replica is copied by mariabackup and replicates from the primary.
    let out = ctl.cli(&[
        "node",
        "add",
        "--cluster",
        "shop",
        "--node",
        &addrs[3],
        "--wait",
    ]);
    assert!(
        out.status.success(),
        "add failed: {}{}",
        stdout(&out),
        stderr(&out)
    );
    // Chosen automatically: a running replica, so the primary keeps its resources for writes.
    let from_replica = addrs[1..3]
        .iter()
        .any(|a| stdout(&out).contains(&format!("copying data from {a}:3306")));
    assert!(from_replica, "{}", stdout(&out));
    assert_eq!(count(&addrs[3]).await, "2");
    sql(&addrs[0], "dba", PW, "INSERT INTO app.t VALUES (3)")
        .await
        .unwrap();
    assert!(
        wait_count(&addrs[3], "3").await,
        "new replica does not replicate"
    );

    // Excluded from promotion (a reporting replica, say)…
    let out = ctl.cli(&[
        "cluster",
        "ha-policy",
        "--name",
        "shop",
        "--exclude-candidate",
        &addrs[3],
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    // Remove it (stop, keep data); it leaves the candidate list too.
    let out = ctl.cli(&[
        "node",
        "remove",
        "--cluster",
        "shop",
        "--node",
        &addrs[3],
        "--wait",
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(!nines_testkit::port_is_open(&addrs[3], 3306));
    assert!(
        dir.datadir(&addrs[3], 3306).join("ibdata1").exists(),
        "data must be kept"
    );
    assert_eq!(ctl.nodes("shop").await.len(), 3);
    let policy = ctl.json(&["cluster", "ha-policy", "--name", "shop"]);
    assert_eq!(
        policy["policy"]["excluded_candidates"],
        serde_json::json!([]),
        "{policy}"
    );

    // Rolling restart: node by node, the cluster keeps its data and replication.
    let out = ctl.cli(&["cluster", "rolling-restart", "--name", "shop", "--wait"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    sql(&addrs[0], "dba", PW, "INSERT INTO app.t VALUES (4)")
        .await
        .unwrap();
    for a in &addrs[1..3] {
        assert!(
            wait_count(a, "4").await,
            "{a} after restart: {}",
            count(a).await
        );
    }
    // The primary's planned restart is not mistaken for a crash, not even right after the
    // job ends while the monitor has not yet probed the restarted server: watched for
    // longer than a failover takes.
    let until = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < until {
        let jobs = ctl.json(&["job", "list", "--cluster", "shop"]);
        assert!(
            !jobs
                .as_array()
                .unwrap()
                .iter()
                .any(|j| j["kind"] == "failover"),
            "{jobs}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ro = sql(&addrs[0], "dba", PW, "SELECT @@read_only")
        .await
        .unwrap();
    assert_eq!(
        ro,
        vec!["0".to_string()],
        "the primary must be writable after its restart"
    );
    // Restarted to stay the primary, it ran without the semi-sync binlog cut its option
    // file asks for (which would leave its replicas ahead of it after a crash); the
    // replicas keep the file's role.
    // (`init_rpl_role` is a start option, not a variable: read from the command line.)
    let primary = common::node_cmdline(&dir, &addrs[0]);
    assert!(primary.contains("--init-rpl-role=MASTER"), "{primary}");
    let replica = common::node_cmdline(&dir, &addrs[1]);
    assert!(!replica.contains("--init-rpl-role"), "{replica}");
}
