//! GTID replication topology: primary -> r1 -> r2 (chained).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use mysql_async::Row;
use nines_testkit::{ReplicationTopology, wait_until};

#[tokio::test]
async fn chained_topology_replicates_to_every_replica() {
    let t = Instant::now();
    let topo = ReplicationTopology::start(2, true).await.unwrap();
    eprintln!("primary + 2 replicas replicating in {:?}", t.elapsed());

    assert_eq!(topo.replicas().len(), 2);
    assert_eq!(topo.nodes().len(), 3);
    let primary = topo.primary();
    let (r1, r2) = (topo.replica(0), topo.replica(1));
    let addrs: std::collections::HashSet<String> =
        topo.nodes().iter().map(|n| n.address()).collect();
    assert_eq!(addrs.len(), 3, "nodes share an address");
    let ids: std::collections::HashSet<u32> = topo.nodes().iter().map(|n| n.server_id()).collect();
    assert_eq!(ids.len(), 3, "server ids are not unique");

    // r1 replicates from the primary, r2 from r1.
    for (replica, source) in [(r1, primary), (r2, r1)] {
        let row: Row = replica
            .query_first("SHOW SLAVE STATUS")
            .await
            .unwrap()
            .unwrap();
        let host: String = row.get("Master_Host").unwrap();
        assert_eq!(host, source.address());
        let using_gtid: String = row.get("Using_Gtid").unwrap();
        assert_eq!(using_gtid, "Slave_Pos");
        assert_eq!(
            replica
                .global_variable("read_only")
                .await
                .unwrap()
                .as_deref(),
            Some("ON")
        );
    }
    assert_eq!(topo.source_of(1).address(), r1.address());
    assert_eq!(
        primary
            .global_variable("read_only")
            .await
            .unwrap()
            .as_deref(),
        Some("OFF")
    );

    primary
        .exec("CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY, v TEXT); INSERT INTO app.t VALUES (1, 'from primary')")
        .await
        .unwrap();
    for replica in topo.replicas() {
        let v = wait_until(
            Duration::from_secs(30),
            &format!("row on {}", replica.endpoint()),
            || async move {
                let v: Option<String> = replica
                    .query_first("SELECT v FROM app.t WHERE id = 1")
                    .await?;
                Ok(v)
            },
        )
        .await
        .unwrap();
        assert_eq!(v, "from primary");
    }
    let pos = primary
        .global_variable("gtid_binlog_pos")
        .await
        .unwrap()
        .unwrap();
    assert!(!pos.is_empty());
    topo.sync_replicas(Duration::from_secs(30)).await.unwrap();
    for replica in topo.replicas() {
        assert_eq!(
            replica.global_variable("gtid_slave_pos").await.unwrap(),
            Some(pos.clone())
        );
    }

    // A frozen primary (no heartbeats) is noticed within seconds by its
    // direct replica (heartbeat 1 s, slave_net_timeout 4 s): the IO thread
    // leaves "Yes" although the TCP connection stays open.
    let t = Instant::now();
    primary.sigstop().unwrap();
    wait_until(
        Duration::from_secs(30),
        "r1 to notice the frozen primary",
        || async {
            let row: Row = r1.query_first("SHOW SLAVE STATUS").await?.unwrap();
            let io: String = row.get("Slave_IO_Running").unwrap();
            Ok((io != "Yes").then_some(()))
        },
    )
    .await
    .unwrap();
    let noticed = t.elapsed();
    primary.sigcont().unwrap();
    assert!(
        noticed >= Duration::from_secs(2),
        "noticed too early: {noticed:?}"
    );
    eprintln!("replica noticed the frozen primary in {noticed:?}");
}

#[tokio::test]
async fn unchained_topology_replicates_from_primary() {
    let topo = ReplicationTopology::start(1, false).await.unwrap();
    let row: Row = topo
        .replica(0)
        .query_first("SHOW SLAVE STATUS")
        .await
        .unwrap()
        .unwrap();
    let host: String = row.get("Master_Host").unwrap();
    assert_eq!(host, topo.primary().address());
    topo.primary()
        .exec(
            "CREATE DATABASE x; CREATE TABLE x.t (id INT PRIMARY KEY); INSERT INTO x.t VALUES (5)",
        )
        .await
        .unwrap();
    topo.sync_replicas(Duration::from_secs(30)).await.unwrap();
    let ids: Vec<i32> = topo
        .replica(0)
        .query_rows("SELECT id FROM x.t")
        .await
        .unwrap();
    assert_eq!(ids, vec![5]);
}
