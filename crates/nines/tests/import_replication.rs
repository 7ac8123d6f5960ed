//! Import of a real GTID primary with a chained replica topology, then watching it:
//! roles, states, lag, SIGKILL of a replica seen offline within 3 s and online again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Controller, password_file, stderr, stdout, wait_until};
use nines_testkit::ReplicationTopology;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_chain_from_a_replica_and_watch_a_replica_die_and_return() {
    // primary -> r1 -> r2: seeding from r1 must find the primary upstream and r2 downstream.
    let topo = ReplicationTopology::start(2, true).await.expect("topology");
    let ctl = Controller::start().await;
    let pw = password_file(ctl.data_dir(), topo.primary().password());
    let seed = topo.replica(0).endpoint();
    let out = ctl.import("shop", &seed, topo.primary().user(), &pw, &["--local"]);
    assert!(
        out.status.success(),
        "import failed: {}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("registered replication cluster `shop` with 3 nodes"),
        "{}",
        stdout(&out)
    );

    let clusters = ctl.json(&["cluster", "list"]);
    let c = clusters
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "shop")
        .unwrap()
        .clone();
    assert_eq!(c["type"], "replication");
    assert_eq!(c["nodes"], 3);

    // Wait until every node has been probed and the cluster judged healthy.
    let healthy = wait_until(Duration::from_secs(10), || async {
        ctl.cluster("shop")
            .await
            .is_some_and(|c| c["state"] == "healthy")
    })
    .await;
    assert!(
        healthy,
        "cluster not healthy: {:?}",
        ctl.cluster("shop").await
    );

    let nodes = ctl.json(&["node", "list", "--cluster", "shop"]);
    let nodes = nodes.as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    let by_addr = |a: &str| nodes.iter().find(|n| n["address"] == a).unwrap().clone();
    let p = by_addr(&topo.primary().endpoint());
    assert_eq!(p["role"], "primary");
    assert_eq!(p["state"], "online");
    assert_eq!(p["read_only"], false);
    assert!(p["lag_seconds"].is_null());
    for r in topo.replicas() {
        let n = by_addr(&r.endpoint());
        assert_eq!(n["role"], "replica", "{n}");
        assert_eq!(n["state"], "online", "{n}");
        assert_eq!(n["read_only"], true, "{n}");
        assert!(n["lag_seconds"].is_u64(), "{n}");
    }
    // The chained replica replicates from r1, not from the primary.
    assert_eq!(
        by_addr(&topo.replica(1).endpoint())["source"],
        topo.replica(0).endpoint()
    );

    // SIGKILL a replica: offline within 3 s.
    let victim = topo.replica(1);
    let addr = victim.endpoint();
    victim.kill_9().expect("kill");
    let killed = Instant::now();
    let offline = wait_until(Duration::from_secs(3), || async {
        ctl.node_state("shop", &addr).await.as_deref() == Some("offline")
    })
    .await;
    assert!(offline, "replica not offline 3 s after SIGKILL");
    eprintln!("offline after {:?}", killed.elapsed());
    let (_, c) = ctl.get("/api/v1/clusters").await;
    let c = c
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "shop")
        .unwrap()
        .clone();
    assert_eq!(c["state"], "degraded", "{c}");
    let node = ctl
        .nodes("shop")
        .await
        .into_iter()
        .find(|n| n["address"] == addr.as_str())
        .unwrap();
    assert_eq!(node["error_kind"], "refused", "{node}");

    // Back: online within 3 s of the server accepting connections.
    victim.start_again().await.expect("restart");
    let back = Instant::now();
    let online = wait_until(Duration::from_secs(3), || async {
        ctl.node_state("shop", &addr).await.as_deref() == Some("online")
    })
    .await;
    assert!(online, "replica not online 3 s after restart");
    eprintln!("online after {:?}", back.elapsed());

    // Every change left an event with its reason.
    let events = ctl.json(&["events", "--cluster", "shop"]);
    let msgs: Vec<String> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect();
    assert!(
        msgs.iter()
            .any(|m| m.contains(&addr) && m.contains("→ offline")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.contains(&addr) && m.contains("offline → online")),
        "{msgs:?}"
    );

    // `cluster show` tells the same story, as a table and as JSON.
    let show = ctl.cli(&["cluster", "show", "shop"]);
    assert!(show.status.success(), "{}", stderr(&show));
    for n in topo.nodes() {
        assert!(stdout(&show).contains(&n.endpoint()), "{}", stdout(&show));
    }
    let detail = ctl.json(&["cluster", "show", "--name", "shop"]);
    assert_eq!(detail["node_list"].as_array().unwrap().len(), 3);
    assert_eq!(detail["host_access"], "local");
    let missing = ctl.cli(&["cluster", "show", "nope"]);
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("cluster `nope` not found"),
        "{}",
        stderr(&missing)
    );

    // The import is a job with a log.
    let jobs = ctl.json(&["job", "list"]);
    let job = &jobs.as_array().unwrap()[0];
    assert_eq!(job["kind"], "import_cluster");
    assert_eq!(job["state"], "succeeded");
    let shown = ctl.json(&["job", "show", &job["id"].to_string()]);
    assert_eq!(shown["percent"], 100);
    assert_eq!(shown["requested_by"], "admin");
    assert!(shown["finished_at"].is_string());
    let logs = ctl.cli(&["job", "logs", &job["id"].to_string()]);
    assert!(stdout(&logs).contains("found primary"), "{}", stdout(&logs));
    // The password never shows in job output or API answers.
    assert!(!stdout(&logs).contains(topo.primary().password()));
    assert!(!job.to_string().contains(topo.primary().password()));
}
