//! Replication failover and switchover on a real primary with two semi-sync replicas
//! deployed by nines, under a steady write load from an application account (no SUPER,
//! so read_only stops it): a SIGKILLed primary is replaced and rejoins as a replica with
//! every acknowledged write kept; a primary frozen for 1 s (SIGSTOP) causes no failover;
//! a switchover loses no acknowledged write.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{ADMIN_PW, Controller, DeployDir, create_cluster, sql, stderr, stdout, wait_until};
use mysql_async::prelude::Queryable;
use serde_json::Value;

const APP_PW: &str = "App-Passw0rd";

/// A deployed primary with two replicas, an `app` account and table `app.t`.
struct Cluster {
    ctl: Controller,
    dir: DeployDir,
    addrs: Vec<String>,
    _leases: Vec<nines_testkit::AddressLease>,
}

impl Cluster {
    async fn deploy(name: &str) -> Self {
        Self::deploy_with_env(name, &[]).await
    }

    /// Deployed by a controller started with these environment variables.
    async fn deploy_with_env(name: &str, env: &[(&str, &str)]) -> Self {
        let leases = nines_testkit::lease_addresses(3).expect("leases");
        let addrs: Vec<String> = leases.iter().map(|l| l.addr()).collect();
        let ctl = Controller::start_with_env(&[], env).await;
        let dir = DeployDir::new();
        let out = create_cluster(
            &ctl,
            name,
            "replication",
            &addrs.join(","),
            &dir.template(),
            &["--local", "--semi-sync"],
        );
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
        let p = &addrs[0];
        admin(p, &format!(
                "CREATE DATABASE app; CREATE TABLE app.t (id BIGINT PRIMARY KEY) ENGINE=InnoDB; \
                 CREATE USER app@'%' IDENTIFIED BY '{APP_PW}'; GRANT SELECT, INSERT ON app.* TO app@'%'"
            )).await;
        let c = Self {
            ctl,
            dir,
            addrs,
            _leases: leases,
        };
        assert!(
            c.wait_shape(name, &c.addrs[0].clone(), Duration::from_secs(20))
                .await,
            "not healthy: {:?}",
            c.nodes(name)
        );
        c.wait_armed(name).await;
        c
    }

    /// Automatic failover acts only on a topology the controller has seen healthy: waits
    /// until it says so.
    async fn wait_armed(&self, name: &str) {
        let armed = wait_until(Duration::from_secs(20), || async {
            self.ctl
                .json(&["events", "--cluster", name])
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e["kind"] == "failover_armed"))
        })
        .await;
        assert!(armed, "failover never armed: {}", self.ctl.log());
    }

    fn nodes(&self, name: &str) -> Vec<Value> {
        let v = self.ctl.json(&["node", "list", "--cluster", name]);
        v.as_array().cloned().unwrap_or_default()
    }

    /// Exactly one primary, `primary`, and every other node an online, read-only,
    /// unfenced replica replicating from it.
    fn has_shape(&self, name: &str, primary: &str) -> bool {
        let nodes = self.nodes(name);
        let primaries: Vec<&Value> = nodes.iter().filter(|n| n["role"] == "primary").collect();
        primaries.len() == 1
            && primaries[0]["address"] == format!("{primary}:3306")
            && nodes.len() == 3
            && nodes.iter().all(|n| n["state"] == "online")
            && nodes.iter().filter(|n| n["role"] != "primary").all(|n| {
                n["role"] == "replica"
                    && n["read_only"] == true
                    && n["fenced"].is_null()
                    && n["source"] == format!("{primary}:3306")
                    && n["io_thread"] == "running"
            })
    }

    async fn wait_shape(&self, name: &str, primary: &str, within: Duration) -> bool {
        wait_until(within, || async { self.has_shape(name, primary) }).await
    }

    fn jobs(&self, name: &str, kind: &str) -> Vec<Value> {
        let v = self.ctl.json(&["job", "list", "--cluster", name]);
        v.as_array()
            .unwrap()
            .iter()
            .filter(|j| j["kind"] == kind)
            .cloned()
            .collect()
    }

    fn pid(&self, addr: &str) -> String {
        let f = format!(
            "{}.nines/mysqld.pid",
            self.dir.datadir(addr, 3306).display()
        );
        std::fs::read_to_string(&f)
            .expect("pid file")
            .trim()
            .to_string()
    }

    fn signal(&self, addr: &str, sig: &str) {
        let st = std::process::Command::new("kill")
            .args([sig, &self.pid(addr)])
            .status()
            .unwrap();
        assert!(st.success());
    }

    async fn ids(&self, addr: &str) -> Vec<u64> {
        admin(addr, "SELECT id FROM app.t ORDER BY id")
            .await
            .iter()
            .map(|s| s.parse().unwrap())
            .collect()
    }
}

/// Runs SQL as the administrator `dba` and returns the first column of every row.
async fn admin(addr: &str, q: &str) -> Vec<String> {
    sql(addr, "dba", ADMIN_PW, q)
        .await
        .unwrap_or_else(|e| panic!("{q}: {e}"))
}

/// Inserts ids 1, 2, 3… as `app` into whichever node takes writes, retrying on another
/// node when a write fails; keeps the ids whose commit was acknowledged.
struct Writer {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<u64>>>,
    task: tokio::task::JoinHandle<()>,
}

async fn connect(addr: &str) -> Option<mysql_async::Conn> {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(addr)
        .tcp_port(3306)
        .user(Some("app"))
        .pass(Some(APP_PW))
        .prefer_socket(false);
    tokio::time::timeout(Duration::from_millis(500), mysql_async::Conn::new(opts))
        .await
        .ok()?
        .ok()
}

impl Writer {
    fn start(addrs: Vec<String>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let (s, a) = (Arc::clone(&stop), Arc::clone(&acked));
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let mut next = 1u64;
            let mut conn: Option<mysql_async::Conn> = None;
            let mut target = 0usize;
            // Bounded: at most two minutes whatever happens.
            while !s.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(120) {
                if conn.is_none() {
                    conn = connect(&addrs[target]).await;
                    if conn.is_none() {
                        target = (target + 1) % addrs.len();
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                }
                let c = conn.as_mut().unwrap();
                let write = tokio::time::timeout(
                    Duration::from_secs(15),
                    c.query_drop(format!("INSERT INTO app.t VALUES ({next})")),
                )
                .await;
                match write {
                    Ok(Ok(())) => {
                        a.lock().unwrap().push(next);
                        next += 1;
                    }
                    Ok(Err(mysql_async::Error::Server(e))) if e.code == 1062 => {
                        // Committed before the connection broke, acknowledgement lost.
                        next += 1;
                    }
                    _ => {
                        // Unknown outcome (or read-only): the id is never reused, so a
                        // lost acknowledgement cannot be mistaken for a kept write.
                        next += 1;
                        conn = None;
                        target = (target + 1) % addrs.len();
                    }
                }
            }
        });
        Self { stop, acked, task }
    }

    fn acked(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    async fn wait_acked_more(&self, than: usize) -> bool {
        wait_until(Duration::from_secs(20), || async {
            self.acked() > than + 20
        })
        .await
    }

    async fn finish(self) -> Vec<u64> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap();
        Arc::try_unwrap(self.acked).unwrap().into_inner().unwrap()
    }
}

fn missing(acked: &[u64], have: &[u64]) -> Vec<u64> {
    let have: std::collections::BTreeSet<u64> = have.iter().copied().collect();
    acked
        .iter()
        .filter(|i| !have.contains(i))
        .copied()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_primary_fails_over_without_losing_acknowledged_writes_and_rejoins() {
    let c = Cluster::deploy("kill").await;
    let old = c.addrs[0].clone();
    // The primary waits for acknowledgements, and /metrics says so.
    let metric =
        format!("nines_node_semi_sync_primary_active{{cluster=\"kill\",node=\"{old}:3306\"}} 1");
    assert!(
        wait_until(Duration::from_secs(5), || async {
            c.ctl.get_text("/metrics").await.contains(&metric)
        })
        .await,
        "{metric} missing"
    );
    let writer = Writer::start(c.addrs.clone());
    assert!(writer.wait_acked_more(0).await, "no write acknowledged");

    let before = writer.acked();
    c.signal(&old, "-9");
    // A new primary takes the writes.
    assert!(
        writer.wait_acked_more(before).await,
        "no write acknowledged after the kill: {:?}",
        c.ctl.log()
    );
    let jobs = c.jobs("kill", "failover");
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0]["requested_by"], "nines (auto-recovery)");
    let new_primary = || {
        c.nodes("kill")
            .iter()
            .find(|n| n["role"] == "primary" && n["address"] != format!("{old}:3306"))
            .map(|n| {
                n["address"]
                    .as_str()
                    .unwrap()
                    .trim_end_matches(":3306")
                    .to_string()
            })
    };
    assert!(
        wait_until(Duration::from_secs(5), || async { new_primary().is_some() }).await,
        "no new primary in the node list: {:?}",
        c.nodes("kill")
    );
    let new = new_primary().unwrap();

    // The old primary is restarted by nines, read-only, proven and rejoined as a replica.
    assert!(
        c.wait_shape("kill", &new, Duration::from_secs(60)).await,
        "the old primary did not rejoin: {:?}\n{}",
        c.nodes("kill"),
        c.ctl.log()
    );
    let acked = writer.finish().await;
    let on_new = c.ids(&new).await;
    let lost = missing(&acked, &on_new);
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    // Every node converges on the new primary's rows, the old primary too.
    for a in &c.addrs {
        let same = wait_until(Duration::from_secs(20), || async {
            c.ids(a).await.len() == on_new.len()
        })
        .await;
        assert!(same, "{a} did not catch up");
    }
    let events = c.ctl.json(&["events", "--cluster", "kill"]);
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"auto_failover"), "{kinds:?}");
    assert!(kinds.contains(&"rejoin"), "{kinds:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_frozen_for_one_second_is_not_failed_over() {
    let c = Cluster::deploy("frozen").await;
    let primary = c.addrs[0].clone();
    let writer = Writer::start(c.addrs.clone());
    assert!(writer.wait_acked_more(0).await);
    c.signal(&primary, "-STOP");
    tokio::time::sleep(Duration::from_secs(1)).await;
    c.signal(&primary, "-CONT");
    let before = writer.acked();
    assert!(writer.wait_acked_more(before).await);
    // Watch for longer than a failover takes (about 1 s) and a timeout suspicion needs.
    let deadline = Instant::now() + Duration::from_secs(8);
    while Instant::now() < deadline {
        assert!(c.jobs("frozen", "failover").is_empty(), "a failover ran");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(c.has_shape("frozen", &primary), "{:?}", c.nodes("frozen"));
    let acked = writer.finish().await;
    assert!(missing(&acked, &c.ids(&primary).await).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switchover_under_load_loses_nothing_and_keeps_everyone_replicating() {
    let c = Cluster::deploy("swap").await;
    let old = c.addrs[0].clone();
    let to = c.addrs[2].clone();
    let writer = Writer::start(c.addrs.clone());
    assert!(writer.wait_acked_more(0).await);
    let out = c.ctl.cli(&[
        "cluster",
        "switchover",
        "--name",
        "swap",
        "--to",
        &format!("{to}:3306"),
        "--wait",
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    // The history shows it: a switchover an operator asked for, from the old primary.
    let history = c.ctl.json(&["cluster", "failovers", "--name", "swap"]);
    let history = history.as_array().expect("a list");
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0]["kind"], "switchover", "{history:?}");
    assert_eq!(history[0]["automatic"], false, "{history:?}");
    assert_eq!(
        history[0]["old_primary"],
        format!("{old}:3306"),
        "{history:?}"
    );
    assert_eq!(
        history[0]["new_primary"],
        format!("{to}:3306"),
        "{history:?}"
    );
    let before = writer.acked();
    assert!(
        writer.wait_acked_more(before).await,
        "no write after the switchover"
    );
    assert!(
        c.wait_shape("swap", &to, Duration::from_secs(20)).await,
        "{:?}",
        c.nodes("swap")
    );
    let acked = writer.finish().await;
    let on_new = c.ids(&to).await;
    assert!(missing(&acked, &on_new).is_empty());
    let same = wait_until(Duration::from_secs(20), || async {
        c.ids(&old).await.len() == on_new.len()
    })
    .await;
    assert!(same, "the old primary does not replicate from the new one");
    // And back, with nothing in the way.
    let out = c
        .ctl
        .cli(&["cluster", "switchover", "--name", "swap", "--wait"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let settled = wait_until(Duration::from_secs(20), || async {
        c.addrs.iter().any(|a| a != &to && c.has_shape("swap", a))
    })
    .await;
    assert!(settled, "{:?}", c.nodes("swap"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_pre_hook_vetoes_and_hooks_see_the_operation() {
    let leases = nines_testkit::lease_addresses(3).expect("leases");
    let addrs: Vec<String> = leases.iter().map(|l| l.addr()).collect();
    let hooks = tempfile::tempdir().unwrap();
    let veto = hooks.path().join("veto");
    let seen = hooks.path().join("seen");
    let script = hooks.path().join("hook.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nenv | grep ^NINES_ | sort >> {seen}\nif [ -e {veto} ]; then echo 'change freeze'; exit 3; fi\n",
            seen = seen.display(),
            veto = veto.display()
        ),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .args(["+x", &script.display().to_string()])
        .status()
        .unwrap();
    let s = script.display().to_string();
    let ctl =
        Controller::start_with(&["--pre-failover-hook", &s, "--post-failover-hook", &s]).await;
    let dir = DeployDir::new();
    let out = create_cluster(
        &ctl,
        "hooked",
        "replication",
        &addrs.join(","),
        &dir.template(),
        &["--local"],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let c = Cluster {
        ctl,
        dir,
        addrs: addrs.clone(),
        _leases: leases,
    };
    assert!(
        c.wait_shape("hooked", &addrs[0], Duration::from_secs(20))
            .await
    );

    // Vetoed: the job fails with the hook's words, nothing changes.
    std::fs::write(&veto, "").unwrap();
    let out = c
        .ctl
        .cli(&["cluster", "switchover", "--name", "hooked", "--wait"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("vetoed") && err.contains("change freeze"),
        "{err}"
    );
    assert!(c.has_shape("hooked", &addrs[0]), "{:?}", c.nodes("hooked"));

    // Allowed: both hooks ran with the operation's facts.
    std::fs::remove_file(&veto).unwrap();
    let to = format!("{}:3306", addrs[1]);
    let out = c.ctl.cli(&[
        "cluster",
        "switchover",
        "--name",
        "hooked",
        "--to",
        &to,
        "--wait",
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let log = std::fs::read_to_string(&seen).unwrap();
    assert_eq!(
        log.matches("NINES_OPERATION=switchover").count(),
        3,
        "{log}"
    );
    assert!(log.contains(&format!("NINES_NEW_PRIMARY={to}")), "{log}");
    assert!(
        log.contains(&format!("NINES_OLD_PRIMARY={}:3306", addrs[0])),
        "{log}"
    );
    assert!(
        c.wait_shape("hooked", &addrs[1], Duration::from_secs(20))
            .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_failover_fences_the_old_primary_which_stays_fenced_with_errant_writes() {
    let c = Cluster::deploy("errant").await;
    let old = c.addrs[0].clone();
    let old_node = format!("{old}:3306");
    // Keep the reconciler off the old primary while the errant write is made.
    let out = c.ctl.cli(&[
        "maintenance",
        "on",
        "--cluster",
        "errant",
        "--node",
        &old_node,
        "--reason",
        "test",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let to = format!("{}:3306", c.addrs[1]);
    // Without --force a live primary is refused (a switchover's job).
    let out = c
        .ctl
        .cli(&["cluster", "failover", "--name", "errant", "--wait"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("switchover"), "{}", stderr(&out));
    let out = c.ctl.cli(&[
        "cluster", "failover", "--name", "errant", "--to", &to, "--force", "--wait",
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    // Fenced: read-only for the application, out of replication.
    let ro = admin(&old, "SELECT @@read_only").await;
    assert_eq!(ro, vec!["1".to_string()]);
    let fenced = || {
        c.nodes("errant")
            .into_iter()
            .find(|n| n["address"] == old_node)
            .and_then(|n| n["fenced"].as_str().map(str::to_string))
    };
    assert!(
        fenced().is_some_and(|f| f.starts_with("pending rejoin")),
        "{:?}",
        fenced()
    );
    // A transaction only the old primary has (an administrator bypassing read_only).
    admin(&old, "INSERT INTO app.t VALUES (424242)").await;
    let errant = admin(&old, "SELECT @@gtid_binlog_pos").await.concat();
    let out = c.ctl.cli(&[
        "maintenance",
        "off",
        "--cluster",
        "errant",
        "--node",
        &old_node,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The rejoin check refuses: the node stays fenced and an alarm names its GTIDs.
    let refused = wait_until(Duration::from_secs(20), || async {
        fenced().is_some_and(|f| f.starts_with("errant transactions"))
    })
    .await;
    assert!(refused, "{:?}\n{}", fenced(), c.ctl.log());
    let f = fenced().unwrap();
    assert!(f.contains(&errant), "{f} should name {errant}");
    let events = c.ctl.json(&["events", "--cluster", "errant"]);
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "alarm" && e["message"].as_str().unwrap().contains(&errant)),
        "{events}"
    );
    let channels = admin(&old, "SHOW ALL SLAVES STATUS").await;
    assert!(
        channels.is_empty(),
        "the fenced node must not replicate: {channels:?}"
    );
    // Nothing was thrown away: the row is still there.
    let kept = admin(&old, "SELECT COUNT(*) FROM app.t WHERE id = 424242").await;
    assert_eq!(kept, vec!["1".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switchover_whose_candidate_cannot_catch_up_restores_writes_on_the_old_primary() {
    let c = Cluster::deploy("stuck").await;
    let old = c.addrs[0].clone();
    let to = c.addrs[1].clone();
    // The candidate's applier is blocked behind a table lock held by a session.
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(to.clone())
        .tcp_port(3306)
        .user(Some("dba"))
        .pass(Some(ADMIN_PW))
        .prefer_socket(false);
    let mut lock = mysql_async::Conn::new(opts).await.unwrap();
    lock.query_drop("LOCK TABLES app.t WRITE").await.unwrap();
    admin(&old, "INSERT INTO app.t VALUES (1)").await;
    let out = c.ctl.cli(&[
        "cluster",
        "switchover",
        "--name",
        "stuck",
        "--to",
        &format!("{to}:3306"),
        "--wait",
    ]);
    assert!(!out.status.success(), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("writable again"), "{err}");
    // The old primary takes the application's writes again; nothing else moved.
    let ro = admin(&old, "SELECT @@read_only").await;
    assert_eq!(ro, vec!["0".to_string()]);
    let mut app = connect(&old).await.expect("app connects");
    app.query_drop("INSERT INTO app.t VALUES (2)")
        .await
        .unwrap();
    lock.query_drop("UNLOCK TABLES").await.unwrap();
    assert!(
        c.wait_shape("stuck", &old, Duration::from_secs(20)).await,
        "{:?}",
        c.nodes("stuck")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_restarted_in_place_keeps_what_its_replica_already_received() {
    let c = Cluster::deploy("phantom").await;
    let p = c.addrs[0].clone();
    let (r1, r2) = (c.addrs[1].clone(), c.addrs[2].clone());
    let out = c.ctl.cli(&[
        "maintenance",
        "on",
        "--cluster",
        "phantom",
        "--reason",
        "test",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // r1 receives the primary's binlog but never acknowledges it (its semi-sync side
    // off); r2 receives nothing. A commit then sits in the primary's binlog, prepared,
    // waiting for an acknowledgement that cannot come, while r1 already applied it.
    admin(
        &r1,
        "STOP SLAVE IO_THREAD; SET GLOBAL rpl_semi_sync_slave_enabled=OFF; START SLAVE IO_THREAD",
    )
    .await;
    admin(&r2, "STOP SLAVE IO_THREAD").await;
    let mut app = connect(&p).await.expect("app connects");
    let pending = tokio::spawn(async move { app.query_drop("INSERT INTO app.t VALUES (7)").await });
    let has = |addr: String, id: u32| async move {
        sql(
            &addr,
            "dba",
            ADMIN_PW,
            &format!("SELECT COUNT(*) FROM app.t WHERE id = {id}"),
        )
        .await
        .is_ok_and(|r| r == vec!["1".to_string()])
    };
    assert!(
        wait_until(Duration::from_secs(5), || has(r1.clone(), 7)).await,
        "r1 did not receive the commit"
    );
    c.signal(&p, "-9");
    assert!(
        pending.await.unwrap().is_err(),
        "the insert was acknowledged"
    );
    // Started again to stay the primary: crash recovery commits what its binlog holds.
    // (The option file's semi-sync cut, meant for a primary coming back as a replica,
    // would drop it and leave r1 ahead of its primary, replication broken.)
    let node = format!("{p}:3306");
    let out = c.ctl.cli(&[
        "node",
        "start",
        "--cluster",
        "phantom",
        "--node",
        &node,
        "--wait",
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(has(p.clone(), 7).await, "the primary lost what r1 holds");
    // Both replicas follow it again: the next commit reaches both.
    admin(
        &r1,
        "STOP SLAVE IO_THREAD; SET GLOBAL rpl_semi_sync_slave_enabled=ON; START SLAVE IO_THREAD",
    )
    .await;
    admin(&r2, "START SLAVE IO_THREAD").await;
    admin(&p, "INSERT INTO app.t VALUES (8)").await;
    for r in [&r1, &r2] {
        assert!(
            wait_until(Duration::from_secs(20), || has(r.clone(), 8)).await,
            "{r} does not replicate from the restarted primary: {:?}",
            sql(r, "dba", ADMIN_PW, "SHOW SLAVE STATUS").await
        );
    }
    assert!(has(r2.clone(), 7).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_recovery_off_a_person_fails_over_starts_and_rejoins_the_old_primary() {
    let c = Cluster::deploy("manual").await;
    let old = c.addrs[0].clone();
    let old_node = format!("{old}:3306");
    let out = c
        .ctl
        .cli(&["cluster", "recovery", "disable", "--name", "manual"]);
    assert!(out.status.success(), "{}", stderr(&out));
    admin(&old, "INSERT INTO app.t VALUES (1), (2)").await;
    c.signal(&old, "-9");
    let down = wait_until(Duration::from_secs(5), || async {
        c.ctl.node_state("manual", &old_node).await.as_deref() == Some("offline")
    })
    .await;
    assert!(down);
    // nines leaves it alone: no automatic failover, no restart.
    assert!(c.jobs("manual", "failover").is_empty());
    // Asking for a less advanced or unknown target is refused with the reason.
    let out = c.ctl.cli(&[
        "cluster",
        "failover",
        "--name",
        "manual",
        "--to",
        "127.0.0.1:3999",
        "--wait",
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("127.0.0.1:3999"), "{}", stderr(&out));
    // A plain failover: the most advanced replica, writable, the other one following it.
    let out = c
        .ctl
        .cli(&["cluster", "failover", "--name", "manual", "--wait"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let new_primary = || {
        c.nodes("manual")
            .iter()
            .find(|n| n["role"] == "primary" && n["address"] != old_node)
            .map(|n| {
                n["address"]
                    .as_str()
                    .unwrap()
                    .trim_end_matches(":3306")
                    .to_string()
            })
    };
    assert!(wait_until(Duration::from_secs(5), || async { new_primary().is_some() }).await);
    let new = new_primary().unwrap();
    admin(&new, "INSERT INTO app.t VALUES (3)").await;
    // The old primary, started by hand, comes back read-only and fenced; a rejoin by hand
    // proves its GTIDs and makes it a replica.
    let out = c.ctl.cli(&[
        "node",
        "start",
        "--cluster",
        "manual",
        "--node",
        &old_node,
        "--wait",
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let ro = admin(&old, "SELECT @@read_only").await;
    assert_eq!(ro, vec!["1".to_string()]);
    let out = c.ctl.cli(&[
        "node",
        "rejoin",
        "--cluster",
        "manual",
        "--node",
        &old_node,
        "--wait",
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        c.wait_shape("manual", &new, Duration::from_secs(20)).await,
        "{:?}",
        c.nodes("manual")
    );
    assert!(
        wait_until(Duration::from_secs(10), || async {
            c.ids(&old).await == vec![1, 2, 3]
        })
        .await,
        "{:?}",
        c.ids(&old).await
    );
    let history = c.ctl.json(&["cluster", "failovers", "--name", "manual"]);
    let h = history.as_array().unwrap();
    assert_eq!(h.len(), 1, "{history}");
    assert_eq!(h[0]["kind"], "failover");
    assert_eq!(h[0]["automatic"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promotion_made_outside_nines_is_adopted_and_the_old_primary_rejoins() {
    let c = Cluster::deploy("adopt").await;
    let (old, new, other) = (c.addrs[0].clone(), c.addrs[1].clone(), c.addrs[2].clone());
    let old_node = format!("{old}:3306");
    let out = c
        .ctl
        .cli(&["cluster", "recovery", "disable", "--name", "adopt"]);
    assert!(out.status.success(), "{}", stderr(&out));
    admin(&old, "INSERT INTO app.t VALUES (1)").await;
    // Both replicas have everything (a person promoting by hand checks that first).
    let synced = wait_until(Duration::from_secs(10), || async {
        c.ids(&new).await == vec![1] && c.ids(&other).await == vec![1]
    })
    .await;
    assert!(synced);
    c.signal(&old, "-9");
    // A person promotes a replica by hand and points the other one at it.
    admin(
        &new,
        "STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only=OFF",
    )
    .await;
    admin(
        &other,
        &format!("STOP SLAVE; CHANGE MASTER TO MASTER_HOST='{new}'; START SLAVE"),
    )
    .await;
    admin(&new, "INSERT INTO app.t VALUES (2)").await;
    // nines follows: the promoted node is the primary, the dead one fenced.
    let adopted = wait_until(Duration::from_secs(10), || async {
        let nodes = c.nodes("adopt");
        nodes
            .iter()
            .any(|n| n["address"] == format!("{new}:3306") && n["role"] == "primary")
            && nodes
                .iter()
                .any(|n| n["address"] == old_node && n["fenced"].is_string())
    })
    .await;
    assert!(adopted, "{:?}", c.nodes("adopt"));
    let events = c.ctl.json(&["events", "--cluster", "adopt"]);
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "primary_adopted"),
        "{events}"
    );
    // Back under nines's care: the old primary is restarted read-only and rejoins.
    let out = c
        .ctl
        .cli(&["cluster", "recovery", "enable", "--name", "adopt"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        c.wait_shape("adopt", &new, Duration::from_secs(60)).await,
        "{:?}",
        c.nodes("adopt")
    );
    assert!(
        wait_until(Duration::from_secs(10), || async {
            c.ids(&old).await == vec![1, 2]
        })
        .await,
        "{:?}",
        c.ids(&old).await
    );
    assert!(c.jobs("adopt", "failover").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_does_not_wait_for_a_node_being_added_which_then_follows_the_new_primary() {
    let leases = nines_testkit::lease_addresses(4).expect("leases");
    let addrs: Vec<String> = leases.iter().map(|l| l.addr()).collect();
    let ctl = Controller::start().await;
    let dir = DeployDir::new();
    let out = create_cluster(
        &ctl,
        "grow",
        "replication",
        &addrs[..3].join(","),
        &dir.template(),
        &["--local"],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let c = Cluster {
        ctl,
        dir,
        addrs: addrs[..3].to_vec(),
        _leases: leases,
    };
    assert!(
        c.wait_shape("grow", &addrs[0], Duration::from_secs(20))
            .await
    );
    admin(&addrs[0], "CREATE DATABASE app; CREATE TABLE app.t (id BIGINT PRIMARY KEY); INSERT INTO app.t VALUES (1)").await;
    c.wait_armed("grow").await;
    let out = c
        .ctl
        .cli(&["node", "add", "--cluster", "grow", "--node", &addrs[3]]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let running = wait_until(Duration::from_secs(10), || async {
        c.jobs("grow", "add_node")
            .iter()
            .any(|j| j["state"] == "running")
    })
    .await;
    assert!(running);
    c.signal(&addrs[0], "-9");
    // The failover runs while the copy does.
    let failed_over = wait_until(Duration::from_secs(10), || async {
        c.jobs("grow", "failover")
            .iter()
            .any(|j| j["state"] == "succeeded")
    })
    .await;
    assert!(
        failed_over,
        "{:?}",
        c.ctl.json(&["job", "list", "--cluster", "grow"])
    );
    let added = wait_until(Duration::from_secs(60), || async {
        c.jobs("grow", "add_node")
            .iter()
            .any(|j| j["state"] == "succeeded" || j["state"] == "failed")
    })
    .await;
    assert!(added);
    let add = &c.jobs("grow", "add_node")[0];
    assert_eq!(add["state"], "succeeded", "{add}");
    let fo = &c.jobs("grow", "failover")[0];
    let at = |j: &Value, k: &str| {
        chrono::DateTime::parse_from_rfc3339(j[k].as_str().unwrap_or_default()).unwrap()
    };
    assert!(
        at(fo, "started_at") < at(add, "finished_at"),
        "the failover did not run beside the copy: {fo} {add}"
    );
    // The new replica follows the new primary, with the data.
    let new_node = format!("{}:3306", addrs[3]);
    let follows = wait_until(Duration::from_secs(20), || async {
        let nodes = c.nodes("grow");
        let primary = nodes
            .iter()
            .find(|n| n["role"] == "primary")
            .map(|n| n["address"].clone());
        nodes.iter().any(|n| {
            n["address"] == new_node
                && n["io_thread"] == "running"
                && primary
                    .as_ref()
                    .is_some_and(|p| n["source"] == *p && *p != format!("{}:3306", addrs[0]))
        })
    })
    .await;
    assert!(follows, "{:?}", c.nodes("grow"));
    assert_eq!(c.ids(&addrs[3]).await, vec![1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_killed_in_the_middle_of_a_failover_completes_it_when_started_again() {
    // The controller dies right after stopping the replicas' IO threads, before any
    // replica is promoted (the crash point aborts it there, as a SIGKILL would).
    let mut c =
        Cluster::deploy_with_env("crash", &[("NINES_CRASH_POINT", "failover_after_io_stop")]).await;
    let old = c.addrs[0].clone();
    // As in the kill test: the monitor has seen the semi-sync primary with its replicas.
    let metric =
        format!("nines_node_semi_sync_primary_active{{cluster=\"crash\",node=\"{old}:3306\"}} 1");
    assert!(
        wait_until(Duration::from_secs(5), || async {
            c.ctl.get_text("/metrics").await.contains(&metric)
        })
        .await,
        "{metric} missing"
    );
    let writer = Writer::start(c.addrs.clone());
    assert!(writer.wait_acked_more(0).await, "no write acknowledged");
    c.signal(&old, "-9");
    let died = wait_until(Duration::from_secs(20), || {
        let exited = c.ctl.has_exited();
        async move { exited }
    })
    .await;
    assert!(
        died,
        "the controller did not reach the crash point: {}",
        c.ctl.log()
    );
    // What it left: replicas whose IO threads are stopped, and no primary.
    for r in &c.addrs[1..] {
        let running = admin(
            r,
            "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'SLAVE_RUNNING'",
        )
        .await;
        assert_eq!(
            running,
            vec!["OFF".to_string()],
            "{r}: IO thread still running"
        );
    }
    let before = writer.acked();
    c.ctl.clear_env();
    c.ctl.crash_and_restart().await;
    // The restarted controller finds the intent and completes the failover.
    assert!(
        writer.wait_acked_more(before).await,
        "no write acknowledged after the restart: {}",
        c.ctl.log()
    );
    let history = c.ctl.json(&["cluster", "failovers", "--name", "crash"]);
    let history = history.as_array().unwrap();
    assert_eq!(history.len(), 1, "one failover recorded: {history:?}");
    assert_eq!(history[0]["old_primary"], format!("{old}:3306"));
    let events = c.ctl.json(&["events", "--cluster", "crash"]);
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "promotion_resumed"),
        "{events}"
    );
    let new = history[0]["new_primary"]
        .as_str()
        .unwrap()
        .trim_end_matches(":3306")
        .to_string();
    let acked = writer.finish().await;
    let lost = missing(&acked, &c.ids(&new).await);
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    // The other replica follows the new primary.
    assert!(
        c.wait_shape("crash", &new, Duration::from_secs(60)).await,
        "{:?}\n{}",
        c.nodes("crash"),
        c.ctl.log()
    );
}
