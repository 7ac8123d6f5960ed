//! A three-node Galera cluster.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use nines_testkit::{GaleraCluster, wait_until};

#[tokio::test]
async fn three_node_cluster_replicates_and_rejoins() {
    let t = Instant::now();
    let cluster = GaleraCluster::start(3).await.unwrap();
    eprintln!("3-node Galera cluster synced in {:?}", t.elapsed());

    assert_eq!(cluster.nodes().len(), 3);
    for node in cluster.nodes() {
        assert_eq!(
            node.global_status("wsrep_cluster_size")
                .await
                .unwrap()
                .as_deref(),
            Some("3"),
            "on {}",
            node.endpoint()
        );
        assert_eq!(
            node.global_status("wsrep_local_state_comment")
                .await
                .unwrap()
                .as_deref(),
            Some("Synced")
        );
        assert_eq!(
            node.global_variable("wsrep_node_address").await.unwrap(),
            Some(node.address())
        );
    }

    // A write on node 1 is readable on the others.
    cluster
        .node(1)
        .exec("CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY AUTO_INCREMENT, v TEXT); INSERT INTO app.t (v) VALUES ('from node 1')")
        .await
        .unwrap();
    for i in [0, 2] {
        let node = cluster.node(i);
        let v = wait_until(
            Duration::from_secs(30),
            "row on other node",
            || async move {
                let v: Option<String> = node.query_first("SELECT v FROM app.t").await?;
                Ok(v)
            },
        )
        .await
        .unwrap();
        assert_eq!(v, "from node 1");
    }

    // Crash node 2: the others form a cluster of 2.
    cluster.node(2).kill_9().unwrap();
    wait_until(Duration::from_secs(60), "cluster size 2", || async {
        let s0 = cluster.node(0).global_status("wsrep_cluster_size").await?;
        let s1 = cluster.node(1).global_status("wsrep_cluster_size").await?;
        Ok((s0.as_deref() == Some("2") && s1.as_deref() == Some("2")).then_some(()))
    })
    .await
    .unwrap();
    cluster
        .node(0)
        .exec("INSERT INTO app.t (v) VALUES ('while node 2 was down')")
        .await
        .unwrap();

    // It rejoins and catches up.
    let t = Instant::now();
    cluster.start_node_again(2).await.unwrap();
    eprintln!("crashed node rejoined in {:?}", t.elapsed());
    for node in cluster.nodes() {
        assert_eq!(
            node.global_status("wsrep_cluster_size")
                .await
                .unwrap()
                .as_deref(),
            Some("3")
        );
    }
    let n: Option<i64> = cluster
        .node(2)
        .query_first("SELECT COUNT(*) FROM app.t")
        .await
        .unwrap();
    assert_eq!(n, Some(2));

    // A clean stop and restart (IST) works too.
    cluster.node(1).stop().await.unwrap();
    cluster
        .wait_synced(2, Duration::from_secs(60))
        .await
        .unwrap();
    let t = Instant::now();
    cluster.start_node_again(1).await.unwrap();
    eprintln!("stopped node rejoined in {:?}", t.elapsed());
    assert_eq!(cluster.running_nodes(), 3);
}
