//! Address leases: distinct across threads and processes, leftovers killed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::time::Duration;

use nines_testkit::{
    AddressLease, MariaDbServer, ServerOptions, lease_addresses, lock_file_path, port_is_open,
    try_lease_address, wait_port_closed, wait_until,
};

#[test]
fn parallel_leases_are_distinct() {
    let handles: Vec<_> = (0..8)
        .map(|_| std::thread::spawn(|| lease_addresses(3).unwrap()))
        .collect();
    let leases: Vec<AddressLease> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert_eq!(leases.len(), 24);
    let distinct: HashSet<String> = leases.iter().map(AddressLease::addr).collect();
    assert_eq!(distinct.len(), 24, "duplicate addresses: {leases:?}");
    for l in &leases {
        assert!((20..=250).contains(&l.octet()));
        // Leased here: a second lease of the same address must fail.
        assert!(try_lease_address(&l.addr()).unwrap().is_none());
        assert_eq!(AddressLease::find(&l.addr()).unwrap().addr(), l.addr());
    }
    // Released on drop.
    let addr = leases[0].addr();
    drop(leases);
    let again = try_lease_address(&addr).unwrap();
    assert!(again.is_some(), "{addr} not released");
}

#[test]
fn a_lock_held_by_another_process_excludes_the_address() {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    // Another process takes the lock of a free address (flock(1) uses
    // flock(2), like the kit). It runs in its own process group, so killing
    // the group ends flock and its command (which inherits the lock).
    let (mut holder, addr) = loop {
        let lease = nines_testkit::lease_address().unwrap();
        let addr = lease.addr();
        let lock = lock_file_path(&addr).unwrap();
        drop(lease);
        let mut holder = std::process::Command::new("flock")
            .arg("-n")
            .arg(&lock)
            .args(["-c", "echo locked; exec sleep 60"])
            .stdout(std::process::Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(holder.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        if line.trim() == "locked" {
            break (holder, addr);
        }
        // Someone else leased it in between: try another address.
        holder.wait().unwrap();
    };
    let refused = try_lease_address(&addr).unwrap().is_none();
    let killed = std::process::Command::new("kill")
        .args(["-s", "KILL", "--", &format!("-{}", holder.id())])
        .status()
        .unwrap();
    holder.wait().unwrap();
    assert!(killed.success());
    assert!(
        refused,
        "address {addr} leased although another process holds its lock"
    );
    // The lock dies with the process.
    let again = (0..50).find_map(|_| {
        std::thread::sleep(Duration::from_millis(20));
        try_lease_address(&addr).unwrap()
    });
    assert!(again.is_some(), "{addr} still locked after its holder died");
}

/// Helper run as a child process by the tests below: starts a server,
/// reports "<address> <pid>", then waits to be SIGKILLed.
#[tokio::test]
#[ignore = "helper, run by other tests in a child process"]
async fn leftover_child_helper() {
    let Ok(out) = std::env::var("NINES_TESTKIT_LEFTOVER_OUT") else {
        return;
    };
    let server = MariaDbServer::start(ServerOptions::default())
        .await
        .unwrap();
    std::fs::write(&out, format!("{} {}", server.address(), server.pid())).unwrap();
    tokio::time::sleep(Duration::from_secs(120)).await;
    drop(server);
}

/// Runs `leftover_child_helper` in a child process; returns the child, the
/// server's address and pid once the server runs.
async fn child_with_server(tag: &str) -> (std::process::Child, String, u32) {
    let out = std::env::temp_dir().join(format!("nines-testkit-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_file(&out);
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "leftover_child_helper",
            "--ignored",
            "--nocapture",
        ])
        .env("NINES_TESTKIT_LEFTOVER_OUT", &out)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let report = wait_until(Duration::from_secs(60), "child to start its server", || {
        let out = out.clone();
        async move { Ok(std::fs::read_to_string(&out).ok().filter(|s| !s.is_empty())) }
    })
    .await
    .unwrap();
    let _ = std::fs::remove_file(&out);
    let (addr, pid) = report.split_once(' ').unwrap();
    (child, addr.to_owned(), pid.parse().unwrap())
}

fn sigkill(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {pid} failed");
}

/// Pids of the processes in process group `pgid`.
fn group_members(pgid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                let rest = &stat[stat.rfind(')').unwrap() + 2..];
                rest.split_whitespace().nth(2) == Some(pgid.to_string().as_str())
            })
        })
        .collect()
}

#[tokio::test]
async fn a_killed_test_process_takes_its_servers_along() {
    let (mut child, addr, _pid) = child_with_server("watchdog").await;
    assert!(port_is_open(&addr, 3306));
    // The test process dies hard; the watchdog kills its server.
    child.kill().unwrap();
    child.wait().unwrap();
    wait_port_closed(&addr, 3306, Duration::from_secs(15))
        .await
        .unwrap();
}

#[tokio::test]
async fn leftover_server_is_killed_by_next_owner() {
    let (mut child, addr, pid) = child_with_server("leftover").await;
    // Simulate a leftover that survived its test: kill its watchdog (the
    // other member of the server's process group), then the test process.
    let watchdogs: Vec<u32> = group_members(pid)
        .into_iter()
        .filter(|&p| p != pid)
        .collect();
    assert_eq!(watchdogs.len(), 1, "expected one watchdog in group {pid}");
    sigkill(watchdogs[0]);
    child.kill().unwrap();
    child.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        port_is_open(&addr, 3306),
        "leftover server on {addr} should still run"
    );

    // The next owner kills the leftover (via the pid file) and gets a
    // usable address.
    let lease = try_lease_address(&addr)
        .unwrap()
        .expect("address not leased");
    assert!(
        !port_is_open(&addr, 3306),
        "leftover on {addr} still listening"
    );
    let server = MariaDbServer::start(ServerOptions::new().lease(lease))
        .await
        .unwrap();
    assert_eq!(server.address(), addr);
    let one: Option<i32> = server.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
}
