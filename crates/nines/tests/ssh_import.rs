//! Import with host access over SSH to a real sshd: host facts in the job log, host
//! metrics (CPU, memory, load, datadir disk) in the node list and in /metrics.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Controller, password_file, stderr, stdout, wait_until};
use nines_testkit::{MariaDbServer, ServerOptions, Sshd};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_with_ssh_host_access_reads_host_facts_and_metrics() {
    let server = MariaDbServer::start(ServerOptions::default())
        .await
        .expect("server");
    let sshd = Sshd::start(&[server.address()]).await.expect("sshd");
    let config = sshd.ssh_config().display().to_string();
    let ctl = Controller::start_with(&["--ssh-config", &config, "--host-interval", "1s"]).await;
    let pw = password_file(ctl.data_dir(), server.password());
    let key = sshd.private_key().display().to_string();
    let port = sshd.port().to_string();
    let out = ctl.import(
        "db",
        &server.endpoint(),
        server.user(),
        &pw,
        &[
            "--ssh-user",
            sshd.user(),
            "--ssh-key",
            &key,
            "--ssh-port",
            &port,
        ],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let log = stdout(&out);
    assert!(
        log.contains(&format!(
            "host {} (ssh {}@{}:{port})",
            server.address(),
            sshd.user(),
            server.address()
        )),
        "{log}"
    );
    assert!(log.contains("CPUs") && log.contains("MiB memory"), "{log}");

    // Host metrics arrive over SSH, measured on the filesystem of the node's datadir.
    let got = wait_until(Duration::from_secs(15), || async {
        ctl.nodes("db").await.first().is_some_and(|n| {
            n["host"]["mem_total_bytes"].as_u64().unwrap_or(0) > 0
                && n["host"]["cpu_busy"].is_f64()
                && n["host"]["disk_total_bytes"].as_u64().unwrap_or(0) > 0
        })
    })
    .await;
    assert!(got, "no host metrics: {:?}", ctl.nodes("db").await);
    let n = ctl.nodes("db").await.remove(0);
    let mem = n["host"]["mem_total_bytes"].as_u64().unwrap();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kb: u64 = meminfo
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(mem, kb * 1024, "memory read over SSH is this machine's");
    let metrics = ctl.get_text("/metrics").await;
    assert!(
        metrics.contains("nines_host_memory_total_bytes{cluster=\"db\""),
        "{metrics}"
    );
}
