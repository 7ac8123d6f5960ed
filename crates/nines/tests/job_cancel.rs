//! `nines job cancel` on a long step: a replica's data copy whose source is frozen
//! (SIGSTOP, so mariabackup waits on it forever) ends as cancelled within seconds, leaves
//! no process of the copy running on either host and no half-added node registered, and
//! the same `node add` then succeeds once the source runs again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{ADMIN_PW, Controller, DeployDir, create_cluster, sql, stderr, stdout, wait_until};
use serde_json::Value;

/// Command lines of live processes that contain `needle`.
fn processes_with(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Zombies wait for their reaper; they run nothing.
        if stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z'))
        {
            continue;
        }
        let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(needle) {
            found.push(cmd);
        }
    }
    found
}

fn job(ctl: &Controller, id: i64) -> Value {
    ctl.json(&["job", "show", &id.to_string()])
}

fn add_node(ctl: &Controller, node: &str, source: Option<&str>) -> i64 {
    let mut args = vec!["node", "add", "--cluster", "grow", "--node", node];
    if let Some(s) = source {
        args.extend(["--source", s]);
    }
    let out = ctl.cli(&args);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let jobs = ctl.json(&["job", "list", "--cluster", "grow"]);
    jobs.as_array()
        .unwrap()
        .iter()
        .filter(|j| j["kind"] == "add_node")
        .map(|j| j["id"].as_i64().unwrap())
        .max()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_stuck_data_copy_ends_it_everywhere_and_changes_nothing() {
    let leases = nines_testkit::lease_addresses(3).expect("leases");
    let addrs: Vec<String> = leases.iter().map(|l| l.addr()).collect();
    let ctl = Controller::start().await;
    let dir = DeployDir::new();
    let out = create_cluster(
        &ctl,
        "grow",
        "replication",
        &addrs[..2].join(","),
        &dir.template(),
        &["--local"],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    sql(
        &addrs[0],
        "dba",
        ADMIN_PW,
        "CREATE DATABASE app; CREATE TABLE app.t (id BIGINT PRIMARY KEY); INSERT INTO app.t VALUES (7)",
    )
    .await
    .expect("seed data");

    // Freeze the replica the copy will read from: mariabackup connects and waits.
    let source = addrs[1].clone();
    let pid_file = format!("{}.nines/mysqld.pid", dir.datadir(&source, 3306).display());
    let pid = std::fs::read_to_string(&pid_file)
        .expect("pid")
        .trim()
        .to_string();
    let signal = |sig: &str| {
        assert!(
            std::process::Command::new("kill")
                .args([sig, &pid])
                .status()
                .unwrap()
                .success()
        );
    };
    signal("-STOP");

    let new = addrs[2].clone();
    let new_node = format!("{new}:3306");
    let source_node = format!("{source}:3306");
    let id = add_node(&ctl, &new_node, Some(&source_node));
    // The copy's two ends run: the receiver on the new node's address, and mariabackup.
    let receiver = format!("TCP-LISTEN:4444,bind={new}");
    let copying = wait_until(Duration::from_secs(60), || async {
        !processes_with(&receiver).is_empty() && !processes_with(".copy-").is_empty()
    })
    .await;
    assert!(copying, "the copy did not start: {}", job(&ctl, id));

    let out = ctl.cli(&["job", "cancel", &id.to_string()]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let cancelled = wait_until(Duration::from_secs(30), || async {
        job(&ctl, id)["state"] == "cancelled"
    })
    .await;
    assert!(cancelled, "not cancelled: {}", job(&ctl, id));
    let logs = stdout(&ctl.cli(&["job", "logs", &id.to_string()]));
    assert!(logs.contains("cancelled by request"), "{logs}");

    // Nothing of the copy runs on; the node is not registered.
    let ended = wait_until(Duration::from_secs(10), || async {
        processes_with(&receiver).is_empty()
            && processes_with(".copy-").is_empty()
            && processes_with(&format!("TCP:{new}:4444")).is_empty()
    })
    .await;
    assert!(
        ended,
        "left running: {:?} {:?}",
        processes_with(&receiver),
        processes_with(".copy-")
    );
    let nodes = ctl.json(&["node", "list", "--cluster", "grow"]);
    assert!(
        nodes
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["address"] != new_node.as_str()),
        "{nodes}"
    );

    // Once the source runs again, the same add succeeds (nothing left blocks it).
    signal("-CONT");
    let again = add_node(&ctl, &new_node, None);
    let done = wait_until(Duration::from_secs(120), || async {
        job(&ctl, again)["state"]
            .as_str()
            .is_some_and(|s| s != "queued" && s != "running")
    })
    .await;
    assert!(done, "{}", job(&ctl, again));
    assert_eq!(
        job(&ctl, again)["state"],
        "succeeded",
        "{}",
        job(&ctl, again)
    );
    let ids = sql(&new, "dba", ADMIN_PW, "SELECT id FROM app.t")
        .await
        .expect("read the new replica");
    assert_eq!(ids, vec!["7".to_string()]);
    drop(leases);
}
