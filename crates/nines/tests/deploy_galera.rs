//! Deploying a real three-node Galera cluster with local execution, then growing,
//! shrinking, stopping and starting it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{ADMIN_PW, Controller, DeployDir, create_cluster, sql, stderr, stdout, wait_until};

const PW: &str = ADMIN_PW;

async fn count(addr: &str) -> Result<String, String> {
    sql(addr, "dba", PW, "SELECT COUNT(*) FROM app.t")
        .await
        .map(|r| r.concat())
}

/// Galera applies a write on the other nodes right after certifying it, not before the
/// writer's commit returns: a read elsewhere polls (briefly) for it.
async fn sees(addr: &str, want: &str) -> bool {
    wait_until(Duration::from_secs(10), || async {
        count(addr).await.as_deref() == Ok(want)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn galera_deploy_scale_stop_and_start() {
    let leases = nines_testkit::lease_addresses(4).expect("leases");
    let addrs: Vec<String> = leases.iter().map(|l| l.addr()).collect();
    let dir = DeployDir::new();
    let ctl = Controller::start().await;
    let nodes = addrs[..3].join(",");
    let out = create_cluster(&ctl, "gal", "galera", &nodes, &dir.template(), &["--local"]);
    assert!(
        out.status.success(),
        "create failed: {}{}",
        stdout(&out),
        stderr(&out)
    );

    // Write through one node, read through every other.
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
    // The table reached the third node before it writes there.
    assert!(sees(&addrs[2], "0").await, "{:?}", count(&addrs[2]).await);
    sql(
        &addrs[2],
        "dba",
        PW,
        "INSERT INTO app.t VALUES (1), (2), (3)",
    )
    .await
    .unwrap();
    for a in &addrs[..3] {
        assert!(sees(a, "3").await, "{a}: {:?}", count(a).await);
    }
    let healthy = wait_until(Duration::from_secs(10), || async {
        ctl.cluster("gal")
            .await
            .is_some_and(|c| c["state"] == "healthy")
    })
    .await;
    assert!(healthy, "{:?}", ctl.cluster("gal").await);
    let c = ctl.cluster("gal").await.unwrap();
    assert_eq!(
        (c["type"].as_str(), c["nodes"].as_u64()),
        (Some("galera"), Some(3))
    );
    for n in ctl.nodes("gal").await {
        assert_eq!(n["role"], "galera", "{n}");
    }
    // Each node's files are where the template says, config and socket beside the datadir.
    for a in &addrs[..3] {
        let d = dir.datadir(a, 3306);
        assert!(d.join("grastate.dat").exists(), "{}", d.display());
        let cnf = std::fs::read_to_string(format!("{}.nines/my.cnf", d.display())).unwrap();
        assert!(
            cnf.contains(&format!("bind_address                    = {a}")),
            "{cnf}"
        );
        assert!(cnf.contains("wsrep_sst_method                = mariabackup"));
    }

    // A donor whose mariabackup cannot read a file fails the transfer: the joiner is started
    // once more, and the job's error carries what the donor logged (not only the joiner's
    // "Will never receive state"). The half-added node is then removed.
    let blocker = dir.datadir(&addrs[1], 3306).join("app").join("blocker.frm");
    std::fs::write(&blocker, b"not for mysql").unwrap();
    std::fs::set_permissions(
        &blocker,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let out = ctl.cli(&[
        "node",
        "add",
        "--cluster",
        "gal",
        "--node",
        &addrs[3],
        "--source",
        &addrs[1],
        "--wait",
    ]);
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains(&format!(
            "the state transfer from donor {}:3306 failed on the donor's side",
            addrs[1]
        )),
        "{said}"
    );
    assert!(said.contains("starting it once more as a joiner"), "{said}");
    assert!(
        said.contains(&format!("the donor {}:3306 logged:", addrs[1]))
            && said.contains("blocker.frm"),
        "{said}"
    );
    // The half-added node was unregistered; the same command works once the donor can.
    std::fs::remove_file(&blocker).unwrap();
    assert_eq!(ctl.nodes("gal").await.len(), 3);

    // Grow: a fourth node joins from the donor we choose and has the rows; shrink: purge it.
    let out = ctl.cli(&[
        "node",
        "add",
        "--cluster",
        "gal",
        "--node",
        &addrs[3],
        "--source",
        &addrs[1],
        "--wait",
    ]);
    assert!(
        out.status.success(),
        "add failed: {}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(sees(&addrs[3], "3").await, "{:?}", count(&addrs[3]).await);
    let joiner_log = std::fs::read_to_string(format!(
        "{}.nines/error.log",
        dir.datadir(&addrs[3], 3306).display()
    ))
    .unwrap();
    assert!(
        joiner_log.contains(&format!(
            "requested state transfer from '{}:3306'",
            addrs[1]
        )),
        "the chosen donor was not asked"
    );
    let size = sql(&addrs[0], "dba", PW, "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='WSREP_CLUSTER_SIZE'").await.unwrap();
    assert_eq!(size, vec!["4".to_string()]);
    assert_eq!(ctl.nodes("gal").await.len(), 4);
    let out = ctl.cli(&[
        "node",
        "remove",
        "--cluster",
        "gal",
        "--node",
        &addrs[3],
        "--purge",
        "--wait",
    ]);
    assert!(
        out.status.success(),
        "remove failed: {}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        !dir.datadir(&addrs[3], 3306).exists(),
        "purged datadir still there"
    );
    assert!(!nines_testkit::port_is_open(&addrs[3], 3306));
    assert_eq!(ctl.nodes("gal").await.len(), 3);
    let cnf = std::fs::read_to_string(format!(
        "{}.nines/my.cnf",
        dir.datadir(&addrs[0], 3306).display()
    ))
    .unwrap();
    assert!(
        !cnf.contains(&format!("{}:4567", addrs[3])),
        "removed node still in the cluster address: {cnf}"
    );

    // The last node of the Primary component is not stopped without --force.
    for a in &addrs[1..3] {
        let out = ctl.cli(&["node", "stop", "--cluster", "gal", "--node", a, "--wait"]);
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    }
    let out = ctl.cli(&[
        "node",
        "stop",
        "--cluster",
        "gal",
        "--node",
        &addrs[0],
        "--wait",
    ]);
    assert!(!out.status.success());
    assert!(
        stdout(&out).contains("last node of the Galera Primary component"),
        "{}",
        stdout(&out)
    );
    let desired = |nodes: Vec<serde_json::Value>, a: &str| {
        nodes
            .into_iter()
            .find(|n| n["address"] == format!("{a}:3306"))
            .map(|n| n["desired"].as_str().unwrap_or("").to_string())
    };
    assert_eq!(
        desired(ctl.nodes("gal").await, &addrs[1]).as_deref(),
        Some("stopped")
    );
    assert_eq!(
        desired(ctl.nodes("gal").await, &addrs[0]).as_deref(),
        Some("running")
    );
    assert!(
        nines_testkit::port_is_open(&addrs[0], 3306),
        "refused stop stopped it anyway"
    );
    sql(&addrs[0], "dba", PW, "INSERT INTO app.t VALUES (4)")
        .await
        .unwrap();

    // Stop everything, start again: bootstrapped from the most advanced node, every row there.
    let out = ctl.cli(&["cluster", "stop", "--name", "gal", "--wait"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    for a in &addrs[..3] {
        assert!(!nines_testkit::port_is_open(a, 3306), "{a} still up");
    }
    let out = ctl.cli(&["cluster", "start", "--name", "gal", "--wait"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        desired(ctl.nodes("gal").await, &addrs[1]).as_deref(),
        Some("running")
    );
    assert!(
        stdout(&out).contains(&format!("bootstrap {}:3306: the highest seqno", addrs[0])),
        "must bootstrap from the node that took the last write: {}",
        stdout(&out)
    );
    for a in &addrs[..3] {
        assert!(sees(a, "4").await, "{a}: {:?}", count(a).await);
    }
}
