//! Node auto-recovery on a deployed cluster: a server killed with SIGKILL is restarted by
//! nines after the grace period; a node in maintenance, or a cluster with recovery
//! disabled, is left alone.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Controller, DeployDir, create_cluster, stderr, stdout, wait_until};

fn kill_server(dir: &DeployDir, addr: &str) {
    let pid_file = format!("{}.nines/mysqld.pid", dir.datadir(addr, 3306).display());
    let pid = std::fs::read_to_string(&pid_file).expect("pid file");
    let status = std::process::Command::new("kill")
        .args(["-9", pid.trim()])
        .status()
        .expect("kill");
    assert!(status.success());
}

async fn comes_back(ctl: &Controller, addr: &str, within: Duration) -> bool {
    let node = format!("{addr}:3306");
    wait_until(within, || async {
        ctl.node_state("solo", &node).await.as_deref() == Some("online")
    })
    .await
}

async fn goes_down(ctl: &Controller, addr: &str) {
    let node = format!("{addr}:3306");
    let down = wait_until(Duration::from_secs(5), || async {
        ctl.node_state("solo", &node).await.as_deref() == Some("offline")
    })
    .await;
    assert!(down, "the monitor did not see {node} die");
}

fn auto_jobs(ctl: &Controller) -> usize {
    let jobs = ctl.json(&["job", "list", "--cluster", "solo"]);
    jobs.as_array()
        .unwrap()
        .iter()
        .filter(|j| j["requested_by"] == "nines (auto-recovery)")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_is_restarted_unless_in_maintenance_or_recovery_is_off() {
    let lease = nines_testkit::lease_address().expect("lease");
    let addr = lease.addr();
    let dir = DeployDir::new();
    let ctl = Controller::start().await;
    let out = create_cluster(
        &ctl,
        "solo",
        "standalone",
        &addr,
        &dir.template(),
        &["--local"],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(comes_back(&ctl, &addr, Duration::from_secs(10)).await);

    // Killed: restarted after the grace period (5 s), by a job that says who asked.
    kill_server(&dir, &addr);
    goes_down(&ctl, &addr).await;
    assert!(
        comes_back(&ctl, &addr, Duration::from_secs(30)).await,
        "not restarted"
    );
    assert_eq!(auto_jobs(&ctl), 1);
    let events = ctl.json(&["events", "--cluster", "solo"]);
    let restart = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "auto_restart")
        .expect("an auto_restart event");
    assert!(
        restart["message"]
            .as_str()
            .unwrap()
            .contains("restart attempt 1 of 3"),
        "{restart}"
    );

    // In maintenance: left down for well past the grace period.
    let node = format!("{addr}:3306");
    let out = ctl.cli(&[
        "maintenance",
        "on",
        "--cluster",
        "solo",
        "--node",
        &node,
        "--reason",
        "test",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    kill_server(&dir, &addr);
    goes_down(&ctl, &addr).await;
    assert!(
        !comes_back(&ctl, &addr, Duration::from_secs(12)).await,
        "restarted in maintenance"
    );
    assert_eq!(auto_jobs(&ctl), 1);
    // Maintenance over: nines restarts it.
    let out = ctl.cli(&["maintenance", "off", "--cluster", "solo", "--node", &node]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        comes_back(&ctl, &addr, Duration::from_secs(30)).await,
        "not restarted after maintenance"
    );

    // Recovery disabled: left down too.
    let out = ctl.cli(&["cluster", "recovery", "disable", "--name", "solo"]);
    assert!(out.status.success(), "{}", stderr(&out));
    kill_server(&dir, &addr);
    goes_down(&ctl, &addr).await;
    assert!(
        !comes_back(&ctl, &addr, Duration::from_secs(12)).await,
        "restarted with recovery off"
    );
    let jobs_before = auto_jobs(&ctl);
    let out = ctl.cli(&["cluster", "recovery", "enable", "--name", "solo"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        comes_back(&ctl, &addr, Duration::from_secs(30)).await,
        "not restarted after enable"
    );
    assert_eq!(auto_jobs(&ctl), jobs_before + 1);
}
