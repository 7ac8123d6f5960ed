//! Two HAProxy load balancers deployed by nines over SSH onto hosts in network namespaces
//! the test creates (veth pairs on a bridge: VRRP needs a real network), sharing a virtual
//! IP kept by Keepalived. Killing the VIP holder's HAProxy moves the VIP to its peer and
//! writes through the VIP are acknowledged again; nines raises `lb_down`, starts that
//! HAProxy again and clears the alarm, and the VIP stays where it went (no second move);
//! removing the holder moves the VIP back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{ADMIN_PW, Controller, DeployDir, create_cluster, stderr, stdout, wait_until};
use mysql_async::prelude::Queryable;
use nines_testkit::NetnsLab;
use serde_json::Value;

const VIP: &str = "10.231.0.100";

async fn conn(socket: &Path) -> Result<mysql_async::Conn, String> {
    let opts = mysql_async::OptsBuilder::default()
        .socket(Some(socket.display().to_string()))
        .user(Some("dba"))
        .pass(Some(ADMIN_PW));
    tokio::time::timeout(Duration::from_secs(3), mysql_async::Conn::new(opts))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| e.to_string())
}

async fn insert(socket: &Path, id: u32) -> Result<(), String> {
    let mut c = conn(socket).await?;
    let r = tokio::time::timeout(
        Duration::from_secs(3),
        c.query_drop(format!("INSERT INTO app.t VALUES ({id})")),
    )
    .await
    .map_err(|_| "insert timed out".to_string())
    .and_then(|r| r.map_err(|e| e.to_string()));
    let _ = c.disconnect().await;
    r
}

fn lbs(ctl: &Controller) -> Vec<Value> {
    ctl.json(&["lb", "list", "--cluster", "vipc"])
        .as_array()
        .unwrap()
        .clone()
}

fn active_lb_alarms(ctl: &Controller) -> Vec<Value> {
    ctl.json(&["alarm", "list", "--cluster", "vipc"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"].as_str().unwrap_or("").starts_with("lb_"))
        .cloned()
        .collect()
}

fn lb_add(ctl: &Controller, host: &str, key: &Path) {
    let key = key.display().to_string();
    let out = ctl.cli(&[
        "lb",
        "add",
        "--cluster",
        "vipc",
        "--type",
        "haproxy",
        "--host",
        host,
        "--ssh-user",
        "root",
        "--ssh-key",
        &key,
        "--vip",
        VIP,
        "--keepalived",
        "--wait",
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
}

fn haproxy_pid(lab: &NetnsLab, i: usize) -> String {
    let host = &lab.hosts()[i].address;
    lab.exec(
        i,
        &format!("head -n1 /var/lib/nines-lb/vipc-{host}-3306/haproxy.pid"),
    )
    .unwrap()
    .trim()
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vip_moves_to_the_peer_when_haproxy_dies_and_nines_restarts_it() {
    let mut lab = NetnsLab::start(2).await.expect("lab");
    let leases = nines_testkit::lease_addresses(2).expect("leases");
    let nodes: Vec<String> = leases.iter().map(|l| l.addr()).collect();
    let config = lab.ssh_config().unwrap().display().to_string();
    let ctl = Controller::start_with(&["--ssh-config", &config]).await;
    let dir = DeployDir::new();
    let out = create_cluster(
        &ctl,
        "vipc",
        "replication",
        &nodes.join(","),
        &dir.template(),
        &["--local"],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    lab.forward_into(
        &nodes
            .iter()
            .map(|n| format!("{n}:3306"))
            .collect::<Vec<_>>(),
    )
    .await
    .unwrap();
    let hosts: Vec<(String, PathBuf)> = lab
        .hosts()
        .iter()
        .map(|h| (h.address.clone(), h.private_key()))
        .collect();
    let _leftovers = common::LbLeftovers::new(
        "vipc",
        &hosts.iter().map(|h| h.0.clone()).collect::<Vec<_>>(),
    );
    for (host, key) in &hosts {
        lb_add(&ctl, host, key);
    }

    // One holder; the list says which.
    let one = wait_until(Duration::from_secs(20), || async {
        lab.holders(VIP).len() == 1
            && lbs(&ctl).iter().filter(|l| l["vip_held"] == true).count() == 1
            && lbs(&ctl)
                .iter()
                .all(|l| l["haproxy"] == "running" && l["keepalived"] == "running")
    })
    .await;
    assert!(one, "holders {:?}: {:?}", lab.holders(VIP), lbs(&ctl));
    let holder = lab.holders(VIP)[0];
    let other = 1 - holder;
    for l in lbs(&ctl) {
        assert_eq!(l["vip"], VIP, "{l}");
        assert_eq!(l["haproxy"], "running", "{l}");
        assert_eq!(l["keepalived"], "running", "{l}");
    }

    // Writes through the VIP reach the primary.
    let vip = lab.client_socket(VIP, 3306).await.unwrap();
    let settled = wait_until(Duration::from_secs(15), || async {
        match conn(&vip).await {
            Ok(mut c) => {
                let ok = c
                    .query_drop("CREATE DATABASE IF NOT EXISTS app; CREATE TABLE IF NOT EXISTS app.t (id INT PRIMARY KEY)")
                    .await
                    .is_ok();
                let _ = c.disconnect().await;
                ok
            }
            Err(_) => false,
        }
    })
    .await;
    assert!(settled, "no write through the VIP: {:?}", lbs(&ctl));
    let mut acked = Vec::new();
    for i in 1..=20 {
        insert(&vip, i).await.unwrap();
        acked.push(i);
    }

    // The holder's HAProxy dies: the VIP moves, the same address takes writes again.
    let killed = Instant::now();
    lab.exec(holder, &format!("kill -9 {}", haproxy_pid(&lab, holder)))
        .unwrap();
    let mut next = 21;
    let back = wait_until(Duration::from_secs(20), || {
        let vip = vip.clone();
        let id = next;
        async move { insert(&vip, id).await.is_ok() }
    })
    .await;
    let took = killed.elapsed();
    assert!(back, "no write through the VIP 20 s after HAProxy died");
    acked.push(next);
    next += 1;
    eprintln!(
        "kill -9 of the VIP holder's HAProxy -> write acknowledged through the VIP: {took:?}"
    );
    assert_eq!(lab.holders(VIP), vec![other]);

    // nines sees it (lb_down on the dead one), starts HAProxy again, clears the alarm.
    let dead_name = format!("{}:3306", hosts[holder].0);
    let raised = wait_until(Duration::from_secs(20), || async {
        active_lb_alarms(&ctl)
            .iter()
            .any(|a| a["kind"] == "lb_down" && a["node"] == dead_name.as_str())
            || ctl
                .json(&["alarm", "list", "--cluster", "vipc", "--all"])
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["kind"] == "lb_down")
    })
    .await;
    assert!(
        raised,
        "{}",
        ctl.json(&["alarm", "list", "--cluster", "vipc", "--all"])
    );
    let restarted = wait_until(Duration::from_secs(40), || async {
        active_lb_alarms(&ctl).is_empty() && lbs(&ctl).iter().all(|l| l["haproxy"] == "running")
    })
    .await;
    assert!(
        restarted,
        "{:?} {}",
        lbs(&ctl),
        ctl.json(&["events", "--cluster", "vipc", "--limit", "50"])
    );
    let events = ctl.json(&["events", "--cluster", "vipc", "--limit", "200"]);
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "lb_restarted"),
        "{events}"
    );
    // No second move: the VIP stays with the peer that took it.
    assert_eq!(lab.holders(VIP), vec![other]);

    // Metrics of both load balancers.
    let metrics = ctl.get_text("/metrics").await;
    for h in &hosts {
        assert!(
            metrics.contains(&format!(
                "nines_lb_up{{cluster=\"vipc\",lb=\"{}:3306\"}} 1",
                h.0
            )),
            "{metrics}"
        );
    }
    assert!(metrics.contains(&format!(
        "nines_lb_vip_held{{cluster=\"vipc\",lb=\"{}:3306\",vip=\"{VIP}\"}} 1",
        hosts[other].0
    )));
    assert!(
        metrics.contains("nines_lb_backend_sessions_total{"),
        "{metrics}"
    );

    // Removing the holder gives the VIP back to the first one.
    let out = ctl.cli(&[
        "lb",
        "remove",
        "--cluster",
        "vipc",
        "--host",
        &hosts[other].0,
        "--wait",
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let moved = wait_until(Duration::from_secs(15), || async {
        lab.holders(VIP) == vec![holder]
    })
    .await;
    assert!(moved, "{:?}", lab.holders(VIP));
    let again = wait_until(Duration::from_secs(15), || {
        let vip = vip.clone();
        let id = next;
        async move { insert(&vip, id).await.is_ok() }
    })
    .await;
    assert!(again);
    acked.push(next);

    // Every acknowledged write is on the primary.
    let mut c = conn(&vip).await.unwrap();
    let rows: Vec<u32> = c.query("SELECT id FROM app.t ORDER BY id").await.unwrap();
    let _ = c.disconnect().await;
    assert_eq!(rows, acked);
    let out = ctl.cli(&[
        "lb",
        "remove",
        "--cluster",
        "vipc",
        "--host",
        &hosts[holder].0,
        "--wait",
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(lab.holders(VIP).is_empty());
    drop(lab);
    drop(leases);
}
