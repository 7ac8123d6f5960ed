//! A primary cut off from the controller while its replicas still replicate from it is
//! not failed over.
//!
//! On loopback every connection comes from 127.0.0.1, so the controller's connections
//! cannot be told from the replicas' by their source. The primary therefore listens on
//! two leased addresses (`bind-address=X,Y`): nines imports and monitors it as X, while
//! the replicas replicate and the application writes through Y. The cut is a pair of
//! iptables rules dropping TCP packets to and from X:3306 (connections and queries time
//! out, nothing is refused), so only the controller loses the primary. Under a steady
//! write load, for longer than a failover takes, nines must see the primary go offline,
//! hear from the replicas that they still receive from it, and start no failover; every
//! write acknowledged during the cut must reach the replicas, and the primary must come
//! back online once the cut heals. As a control, cutting Y as well (the replicas lose
//! the primary too) must then bring an automatic failover: what held nines back was the
//! replicas' testimony.
//!
//! The rules are removed by a watchdog process in its own process group that waits for
//! its stdin to close: when the guard drops (also during a panic) or when the test
//! process dies in any other way (a runner's SIGKILL), the rules go.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Controller, password_file, sql, stderr, stdout, wait_until};
use mysql_async::prelude::Queryable;
use nines_testkit::{MariaDbServer, ServerOptions};
use serde_json::Value;

const APP_PW: &str = "App-Passw0rd";
const REPL_PW: &str = "Repl-Passw0rd";
const CLUSTER: &str = "cut";
/// How long the cut lasts: well over a failover's ~1 s and the 2 probe timeouts plus
/// 2 heartbeat periods a suspicion and a confirmation need.
const CUT_FOR: Duration = Duration::from_secs(12);

/// iptables rules dropping every TCP packet to and from `addr:port` (a partition of
/// that address and port from everything on this machine), removed on drop.
struct PacketDrop {
    /// Each rule's specification after the chain, words separated by spaces.
    rules: Vec<String>,
    /// Holding this keeps the watchdog waiting; closing it makes it delete the rules.
    stdin: Option<ChildStdin>,
    watchdog: Option<Child>,
}

fn iptables(args: &[&str]) -> std::process::Output {
    Command::new("iptables")
        .arg("-w")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run iptables (scripts/deps.sh installs it)")
}

/// `iptables -w <op> OUTPUT <rule>`.
fn iptables_rule(op: &str, rule: &str) -> std::process::Output {
    let mut args = vec![op, "OUTPUT"];
    args.extend(rule.split(' '));
    iptables(&args)
}

impl PacketDrop {
    fn install(addr: &str, port: u16) -> Self {
        use std::os::unix::process::CommandExt;
        let tag = "-m comment --comment nines-failover-cutoff-test -j DROP";
        let rules = vec![
            format!("-d {addr}/32 -p tcp --dport {port} {tag}"),
            format!("-s {addr}/32 -p tcp --sport {port} {tag}"),
        ];
        // The watchdog first: no rule without something that will remove it. It lives
        // in its own process group so that a runner killing the test's group spares it.
        let mut watchdog = Command::new("/bin/sh")
            .args([
                "-c",
                // Word splitting of $r is wanted: each rule is one argument here.
                "read -r _; for r in \"$@\"; do while iptables -w -D OUTPUT $r 2>/dev/null; do :; done; done",
                "nines-cut-watchdog",
            ])
            .args(&rules)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("spawn the iptables watchdog");
        let stdin = watchdog.stdin.take();
        let guard = Self {
            rules,
            stdin,
            watchdog: Some(watchdog),
        };
        for rule in &guard.rules {
            let out = iptables_rule("-A", rule);
            assert!(
                out.status.success(),
                "iptables -A OUTPUT {rule} failed (the test needs root and iptables): {}",
                stderr(&out)
            );
        }
        assert!(
            guard.present(),
            "iptables rules not in place: {:?}",
            guard.rules
        );
        guard
    }

    /// Whether every rule is in place.
    fn present(&self) -> bool {
        self.rules
            .iter()
            .all(|r| iptables_rule("-C", r).status.success())
    }

    fn any_present(&self) -> bool {
        self.rules
            .iter()
            .any(|r| iptables_rule("-C", r).status.success())
    }

    /// Removes the rules now; true when they are gone.
    fn heal(&mut self) -> bool {
        drop(self.stdin.take());
        if let Some(mut w) = self.watchdog.take() {
            // iptables -w takes a moment at most; never hang a test on it.
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(w.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = w.kill();
            let _ = w.wait();
        }
        for rule in &self.rules {
            while iptables_rule("-C", rule).status.success() {
                if !iptables_rule("-D", rule).status.success() {
                    break;
                }
            }
        }
        !self.any_present()
    }
}

impl Drop for PacketDrop {
    fn drop(&mut self) {
        if !self.heal() {
            eprintln!("iptables rules {:?} could not be removed", self.rules);
        }
    }
}

/// Runs SQL as the kit's admin and returns the first column of every row.
async fn admin_sql(addr: &str, pw: &str, q: &str) -> Vec<String> {
    sql(addr, nines_testkit::ADMIN_USER, pw, q)
        .await
        .unwrap_or_else(|e| panic!("{q}: {e}"))
}

async fn ids(addr: &str, pw: &str) -> Vec<u64> {
    admin_sql(addr, pw, "SELECT id FROM app.t ORDER BY id")
        .await
        .iter()
        .map(|s| s.parse().unwrap())
        .collect()
}

fn missing(acked: &[u64], have: &[u64]) -> Vec<u64> {
    let have: std::collections::BTreeSet<u64> = have.iter().copied().collect();
    acked
        .iter()
        .filter(|i| !have.contains(i))
        .copied()
        .collect()
}

/// Inserts ids 1, 2, 3… as `app` through one address, reconnecting after an error;
/// keeps the ids whose commit was acknowledged and counts failed attempts.
struct Writer {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<u64>>>,
    failures: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Writer {
    fn start(addr: String) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let (s, a, f) = (Arc::clone(&stop), Arc::clone(&acked), Arc::clone(&failures));
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let mut next = 1u64;
            let mut conn: Option<mysql_async::Conn> = None;
            // Bounded: at most three minutes whatever happens.
            while !s.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(180) {
                if conn.is_none() {
                    let opts = mysql_async::OptsBuilder::default()
                        .ip_or_hostname(addr.clone())
                        .tcp_port(3306)
                        .user(Some("app"))
                        .pass(Some(APP_PW))
                        .prefer_socket(false);
                    match tokio::time::timeout(Duration::from_secs(1), mysql_async::Conn::new(opts))
                        .await
                    {
                        Ok(Ok(c)) => conn = Some(c),
                        other => {
                            f.lock().unwrap().push(format!("connect: {other:?}"));
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    }
                }
                let c = conn.as_mut().unwrap();
                let write = tokio::time::timeout(
                    Duration::from_secs(5),
                    c.query_drop(format!("INSERT INTO app.t VALUES ({next})")),
                )
                .await;
                match write {
                    Ok(Ok(())) => a.lock().unwrap().push(next),
                    other => {
                        f.lock().unwrap().push(format!("insert {next}: {other:?}"));
                        conn = None;
                    }
                }
                // An id is never reused: a lost acknowledgement is never taken for a
                // kept write.
                next += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        Self {
            stop,
            acked,
            failures,
            task,
        }
    }

    fn acked(&self) -> Vec<u64> {
        self.acked.lock().unwrap().clone()
    }

    fn failures(&self) -> Vec<String> {
        self.failures.lock().unwrap().clone()
    }

    async fn finish(self) -> Vec<u64> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap();
        Arc::try_unwrap(self.acked).unwrap().into_inner().unwrap()
    }
}

fn nodes(ctl: &Controller) -> Vec<Value> {
    ctl.json(&["node", "list", "--cluster", CLUSTER])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn node(ctl: &Controller, endpoint: &str) -> Value {
    nodes(ctl)
        .into_iter()
        .find(|n| n["address"] == endpoint)
        .unwrap_or(Value::Null)
}

fn jobs(ctl: &Controller, kind: &str) -> Vec<Value> {
    ctl.json(&["job", "list", "--cluster", CLUSTER])
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["kind"] == kind)
        .cloned()
        .collect()
}

/// The primary `primary` online, and every replica online, read-only and replicating
/// (IO thread running) from `source`.
fn has_shape(ctl: &Controller, primary: &str, source: &str) -> bool {
    let nodes = nodes(ctl);
    let primaries: Vec<&Value> = nodes.iter().filter(|n| n["role"] == "primary").collect();
    primaries.len() == 1
        && primaries[0]["address"] == primary
        && nodes.len() == 3
        && nodes.iter().all(|n| n["state"] == "online")
        && nodes.iter().filter(|n| n["role"] != "primary").all(|n| {
            n["role"] == "replica"
                && n["read_only"] == true
                && n["source"] == source
                && n["io_thread"] == "running"
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_cut_off_from_the_controller_but_still_replicating_is_not_failed_over() {
    // Fail early, before starting anything, when the cut cannot be made here.
    let probe = iptables(&["-S", "OUTPUT"]);
    assert!(
        probe.status.success(),
        "iptables does not work here (root and the iptables package are needed): {}",
        stderr(&probe)
    );

    // X: the primary as nines knows it; Y: the same server for its replicas and the app.
    let leases = nines_testkit::lease_addresses(4).expect("leases");
    let (x, y) = (leases[0].addr(), leases[1].addr());
    let pw = nines_testkit::random_password(20);
    let opts = |i: usize| {
        ServerOptions::new()
            .lease(leases[i].clone())
            .password(pw.clone())
            .read_only(i != 0)
    };
    // MariaDB 10.11 takes a comma-separated list; the last line wins.
    let (p, r1, r2) = tokio::try_join!(
        MariaDbServer::start(opts(0).config_line(format!("bind-address={x},{y}"))),
        MariaDbServer::start(opts(2)),
        MariaDbServer::start(opts(3)),
    )
    .expect("servers");
    let servers = [p, r1, r2];
    let (primary, replicas) = (&servers[0], &servers[1..]);
    let (px, py) = (format!("{x}:3306"), format!("{y}:3306"));
    assert_eq!(
        admin_sql(&y, &pw, "SELECT @@server_id").await,
        vec![primary.server_id().to_string()],
        "{y} is not the primary's second address"
    );
    let repl = format!(
        "SET sql_log_bin=0; CREATE USER repl@'%' IDENTIFIED BY '{REPL_PW}'; \
         GRANT REPLICATION SLAVE, REPLICATION SLAVE ADMIN, BINLOG MONITOR ON *.* TO repl@'%'; \
         SET sql_log_bin=1"
    );
    for s in &servers {
        s.exec(&repl).await.expect("repl account");
    }
    primary
        .exec(&format!(
            "CREATE DATABASE app; CREATE TABLE app.t (id BIGINT PRIMARY KEY) ENGINE=InnoDB; \
             CREATE USER app@'%' IDENTIFIED BY '{APP_PW}'; GRANT SELECT, INSERT ON app.* TO app@'%'"
        ))
        .await
        .expect("app schema");
    let point_at = |host: &str| {
        format!(
            "STOP SLAVE; CHANGE MASTER TO MASTER_HOST='{host}', MASTER_PORT=3306, \
             MASTER_USER='repl', MASTER_PASSWORD='{REPL_PW}', MASTER_USE_GTID=slave_pos, \
             MASTER_HEARTBEAT_PERIOD=1, MASTER_CONNECT_RETRY=1; START SLAVE"
        )
    };
    // Replicating from X first: import walks the topology by the replicas' source
    // addresses.
    for r in replicas {
        r.exec(&point_at(&x)).await.expect("point at X");
    }

    let ctl = Controller::start().await;
    let pwf = password_file(ctl.data_dir(), &pw);
    let out = ctl.import(CLUSTER, &px, primary.user(), &pwf, &["--local"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        wait_until(Duration::from_secs(20), || async {
            has_shape(&ctl, &px, &px)
        })
        .await,
        "not healthy after import: {:?}",
        nodes(&ctl)
    );

    // Now the replicas replicate from Y; nines matches their channel to the primary by
    // its server_id.
    for r in replicas {
        r.exec(&point_at(&y)).await.expect("point at Y");
    }
    assert!(
        wait_until(Duration::from_secs(20), || async {
            has_shape(&ctl, &px, &py)
                && ctl
                    .cluster(CLUSTER)
                    .await
                    .is_some_and(|c| c["state"] == "healthy")
        })
        .await,
        "replicas not seen replicating from {py}: {:?}",
        nodes(&ctl)
    );
    // The reconciler has seen this topology healthy: automatic failover is armed.
    assert!(
        wait_until(Duration::from_secs(20), || async {
            ctl.json(&["events", "--cluster", CLUSTER])
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e["kind"] == "failover_armed"))
        })
        .await,
        "failover never armed"
    );

    let writer = Writer::start(y.clone());
    assert!(
        wait_until(Duration::from_secs(20), || async {
            writer.acked().len() > 50
        })
        .await,
        "no write acknowledged: {:?}",
        writer.failures()
    );
    assert!(jobs(&ctl, "failover").is_empty());

    // The cut: packets to and from X:3306 vanish; Y is untouched.
    let mut cut = PacketDrop::install(&x, 3306);
    let cut_at = Instant::now();
    let acked_before = writer.acked().len();
    let mut seen_offline = false;
    let mut primary_states = Vec::new();
    while cut_at.elapsed() < CUT_FOR {
        let failovers = jobs(&ctl, "failover");
        assert!(
            failovers.is_empty(),
            "a failover started during the cut: {failovers:?}\n{:?}",
            nodes(&ctl)
        );
        let p = node(&ctl, &px);
        let state = p["state"].as_str().unwrap_or("?").to_string();
        seen_offline |= state == "offline";
        if primary_states.last() != Some(&state) {
            primary_states.push(state);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The controller really lost the primary: its probes timed out.
    let p = node(&ctl, &px);
    assert!(
        seen_offline && p["state"] == "offline",
        "the cut did not reach the controller: states {primary_states:?}, now {p}"
    );
    assert_eq!(p["error_kind"], "timeout", "{p}");
    // Still the designated primary, still writable through Y, still the replicas' source.
    assert_eq!(p["role"], "primary", "{p}");
    assert!(jobs(&ctl, "failover").is_empty());
    assert_eq!(admin_sql(&y, &pw, "SELECT @@read_only").await, vec!["0"]);
    for r in replicas {
        let n = node(&ctl, &r.endpoint());
        assert_eq!(n["role"], "replica", "{n}");
        assert_eq!(n["state"], "online", "{n}");
        assert_eq!(n["source"], py, "{n}");
        assert_eq!(n["io_thread"], "running", "{n}");
        assert_eq!(
            admin_sql(&r.address(), &pw, "SELECT @@read_only").await,
            vec!["1"]
        );
    }
    // The writes went on during the cut, and reached the replicas.
    let acked_in_cut = writer.acked();
    assert!(
        acked_in_cut.len() > acked_before + 100,
        "writes stalled during the cut: {} before, {} after; failures {:?}",
        acked_before,
        acked_in_cut.len(),
        writer.failures()
    );
    for r in replicas {
        let a = r.address();
        let caught_up = wait_until(Duration::from_secs(20), || async {
            missing(&acked_in_cut, &ids(&a, &pw).await).is_empty()
        })
        .await;
        assert!(
            caught_up,
            "{a} lacks writes acknowledged during the cut: {:?}",
            missing(&acked_in_cut, &ids(&a, &pw).await)
        );
    }

    // Heal: the primary is online again and nothing changed.
    assert!(cut.heal(), "the iptables rule is still there");
    let healed_at = Instant::now();
    assert!(
        wait_until(Duration::from_secs(15), || async {
            has_shape(&ctl, &px, &py)
                && ctl
                    .cluster(CLUSTER)
                    .await
                    .is_some_and(|c| c["state"] == "healthy")
        })
        .await,
        "not healthy after the cut healed: {:?}",
        nodes(&ctl)
    );
    eprintln!(
        "primary states during the cut: {primary_states:?}; online again {:?} after the heal",
        healed_at.elapsed()
    );
    assert!(jobs(&ctl, "failover").is_empty());
    let acked = writer.finish().await;
    for a in [&y, &replicas[0].address(), &replicas[1].address()] {
        let caught_up = wait_until(Duration::from_secs(20), || async {
            missing(&acked, &ids(a, &pw).await).is_empty()
        })
        .await;
        assert!(caught_up, "{a} lacks acknowledged writes");
    }

    let seen = events(&ctl);
    eprintln!("events:\n{}", seen.join("\n"));
    assert!(
        !seen.iter().any(|e| e.contains("auto_failover")),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|e| e.contains(&px) && e.contains("online → offline")),
        "{seen:?}"
    );
    // The operator is told why nothing happened.
    assert!(
        seen.iter()
            .any(|e| e.starts_with("\"alarm\"") && e.contains("still receive")),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|e| e.contains(&px) && e.contains("offline → online")),
        "{seen:?}"
    );

    // The control: the same cut, with the replicas now cut off from the primary too. They
    // confirm, and nines fails over: what held it back above was their testimony, not a
    // topology it did not know or a channel it could not match to the primary.
    let _cut_x = PacketDrop::install(&x, 3306);
    let _cut_y = PacketDrop::install(&y, 3306);
    let cut_at = Instant::now();
    assert!(
        wait_until(Duration::from_secs(30), || async {
            !jobs(&ctl, "failover").is_empty()
        })
        .await,
        "no failover once the replicas lost the primary too: {:?}\n{:?}",
        nodes(&ctl),
        events(&ctl)
    );
    eprintln!("failover job {:?} after the full cut", cut_at.elapsed());
    let failovers = jobs(&ctl, "failover");
    assert_eq!(failovers.len(), 1, "{failovers:?}");
    assert_eq!(failovers[0]["requested_by"], "nines (auto-recovery)");
    let seen = events(&ctl);
    let auto = seen.iter().find(|e| e.contains("auto_failover"));
    assert!(auto.is_some(), "{seen:?}");
    eprintln!("{}", auto.unwrap());
}

/// The cluster's events as `kind message`, newest first.
fn events(ctl: &Controller) -> Vec<String> {
    ctl.json(&["events", "--cluster", CLUSTER])
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{} {}", e["kind"], e["message"]))
        .collect()
}
