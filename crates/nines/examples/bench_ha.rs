//! High-availability benchmark driven by bench/ha.sh, against a running controller (found
//! through `NINES_SERVER` and `NINES_DATA_DIR`, as the CLI finds it) on loopback addresses
//! leased from the test kit:
//!
//! 1. **Failover**: a fresh primary with two semi-sync replicas per run, an application
//!    account without SUPER writing every few milliseconds (trying the next node on
//!    error); `kill -9` of the primary, then the time until the first write another node
//!    acknowledges, and until the old primary is back as a replica (full shape).
//! 2. **Switchover**: one such cluster under the same writes, `nines cluster switchover
//!    --wait` again and again; the write pause is the longest gap between consecutive
//!    acknowledged writes from the last one before the call to the first one the new
//!    primary acknowledges.
//! 3. **Galera full crash**: one three-node Galera cluster, all three servers killed with
//!    SIGKILL at once; the time until every node is Synced and accepts a write.
//!
//! 4. **Failover behind HAProxy**: as 1, with HAProxy deployed by nines (`lb add`) on a
//!    fourth address and the writer going through its read-write port only (reconnecting
//!    on error): the time from the kill to the first write acknowledged through the same
//!    port.
//!
//! Prints a line per run to stderr and a summary table to stdout.
//! Usage: bench_ha --nines PATH --work DIR [--failovers N] [--switchovers N] [--galera-crashes N]
//!        [--galera-partial N] [--lb-failovers N]

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::Parser;
use mysql_async::prelude::Queryable;
use serde_json::Value;

const ADMIN_PW: &str = "Bench-Adm1n-Passw0rd";
const APP_PW: &str = "Bench-App-Passw0rd";

#[derive(Parser)]
struct Args {
    /// The nines binary (the CLI; the controller must already run).
    #[arg(long)]
    nines: PathBuf,
    /// A directory for password files and node data (`<work>/db/{host}_{port}`).
    #[arg(long)]
    work: PathBuf,
    /// Failovers to measure (a fresh cluster each); 0 skips the part.
    #[arg(long, default_value_t = 10)]
    failovers: usize,
    /// Switchovers to measure (on one cluster); 0 skips the part.
    #[arg(long, default_value_t = 10)]
    switchovers: usize,
    /// Full Galera crashes to measure (on one cluster); 0 skips the part.
    #[arg(long, default_value_t = 10)]
    galera_crashes: usize,
    /// Crashes that kill two of the three Galera nodes.
    #[arg(long, default_value_t = 10)]
    galera_partial: usize,
    /// Failovers to measure behind HAProxy (a fresh cluster and load balancer each).
    #[arg(long, default_value_t = 0)]
    lb_failovers: usize,
    /// Pause between two writes of the writer, in milliseconds.
    #[arg(long, default_value_t = 5)]
    write_interval_ms: u64,
}

/// The CLI, run against the controller of the environment.
struct Nines {
    bin: PathBuf,
}

impl Nines {
    async fn run(&self, args: &[&str]) -> Result<String> {
        let out = tokio::process::Command::new(&self.bin)
            .args(args)
            .output()
            .await
            .with_context(|| format!("running {}", self.bin.display()))?;
        if !out.status.success() {
            bail!(
                "nines {}: {}{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    async fn json(&self, args: &[&str]) -> Result<Value> {
        let mut full = vec!["-o", "json"];
        full.extend_from_slice(args);
        let out = self.run(&full).await?;
        serde_json::from_str(&out).with_context(|| format!("nines {args:?}: not JSON: {out}"))
    }

    async fn nodes(&self, cluster: &str) -> Result<Vec<Value>> {
        let v = self.json(&["node", "list", "--cluster", cluster]).await?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    /// Jobs of a cluster, newest first.
    async fn jobs(&self, cluster: &str) -> Result<Vec<Value>> {
        let v = self.json(&["job", "list", "--cluster", cluster]).await?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    /// A job's log lines (`-o json` prints one object per line).
    async fn job_logs(&self, id: i64) -> Result<Vec<Value>> {
        let out = self
            .run(&["-o", "json", "job", "logs", &id.to_string()])
            .await?;
        Ok(out
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect())
    }

    /// The single primary with every other node an online, read-only, unfenced replica
    /// whose IO thread runs from it; None otherwise.
    async fn replication_shape(&self, cluster: &str) -> Option<String> {
        let nodes = self.nodes(cluster).await.ok()?;
        let primaries: Vec<&Value> = nodes.iter().filter(|n| n["role"] == "primary").collect();
        if primaries.len() != 1 || nodes.len() != 3 {
            return None;
        }
        let primary = primaries[0]["address"].as_str()?.to_string();
        let ok = nodes.iter().all(|n| n["state"] == "online")
            && nodes.iter().filter(|n| n["role"] != "primary").all(|n| {
                n["role"] == "replica"
                    && n["read_only"] == true
                    && n["fenced"].is_null()
                    && n["source"] == primary.as_str()
                    && n["io_thread"] == "running"
            });
        ok.then(|| primary.trim_end_matches(":3306").to_string())
    }
}

/// Runs `f` every 100 ms until it returns Some or `within` passes.
async fn poll<T, F, Fut>(within: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn connect(addr: &str, user: &str, pw: &str, timeout: Duration) -> Result<mysql_async::Conn> {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(addr)
        .tcp_port(3306)
        .user(Some(user))
        .pass(Some(pw))
        .prefer_socket(false);
    Ok(tokio::time::timeout(timeout, mysql_async::Conn::new(opts))
        .await
        .with_context(|| format!("{addr}: connect timed out"))??)
}

/// Runs SQL as the administrator; the first column of every row, as text.
async fn admin_sql(addr: &str, q: &str) -> Result<Vec<String>> {
    let mut c = connect(addr, "dba", ADMIN_PW, Duration::from_secs(2)).await?;
    let rows: Vec<mysql_async::Row> = tokio::time::timeout(Duration::from_secs(5), c.query(q))
        .await
        .with_context(|| format!("{addr}: query timed out"))??;
    let _ = c.disconnect().await;
    Ok(rows
        .into_iter()
        .map(|r| {
            r.get_opt::<String, _>(0)
                .and_then(|v| v.ok())
                .unwrap_or_default()
        })
        .collect())
}

/// One acknowledged write: when, and which node (index) acknowledged it.
#[derive(Clone, Copy)]
struct Ack {
    at: Instant,
    node: usize,
    id: u64,
}

/// Inserts ids 1, 2, 3… into `app.t` every `interval`, into whichever node takes writes:
/// on an error it tries the next node at once (read-only replicas refuse the application
/// account, which has no SUPER). Keeps every acknowledged write.
struct Writer {
    stop: Arc<AtomicBool>,
    acks: Arc<Mutex<Vec<Ack>>>,
    /// When writes failed (connection lost, refused, a server error).
    errors: Arc<Mutex<Vec<Instant>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Writer {
    fn start(addrs: Vec<String>, user: &'static str, pw: &'static str, interval: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let acks = Arc::new(Mutex::new(Vec::new()));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let (s, a, errs) = (Arc::clone(&stop), Arc::clone(&acks), Arc::clone(&errors));
        let task = tokio::spawn(async move {
            let mut conns: Vec<Option<mysql_async::Conn>> = addrs.iter().map(|_| None).collect();
            let mut target = 0usize;
            let mut next = 1u64;
            while !s.load(Ordering::Relaxed) {
                if conns[target].is_none() {
                    match connect(&addrs[target], user, pw, Duration::from_millis(500)).await {
                        Ok(c) => conns[target] = Some(c),
                        Err(_) => {
                            if let Ok(mut v) = errs.lock() {
                                v.push(Instant::now());
                            }
                            target = (target + 1) % addrs.len();
                            tokio::time::sleep(Duration::from_millis(2)).await;
                            continue;
                        }
                    }
                }
                let Some(c) = conns[target].as_mut() else {
                    continue;
                };
                let id = next;
                next += 1;
                let write = tokio::time::timeout(
                    Duration::from_secs(10),
                    c.query_drop(format!("INSERT INTO app.t (id) VALUES ({id})")),
                )
                .await;
                match write {
                    Ok(Ok(())) => {
                        let at = Instant::now();
                        if let Ok(mut v) = a.lock() {
                            v.push(Ack {
                                at,
                                node: target,
                                id,
                            });
                        }
                        tokio::time::sleep(interval).await;
                    }
                    // Read-only (1290), not ready (Galera 1047): the connection is fine,
                    // the node does not take writes; try the next one.
                    Ok(Err(mysql_async::Error::Server(_))) => {
                        if let Ok(mut v) = errs.lock() {
                            v.push(Instant::now());
                        }
                        if addrs.len() == 1 {
                            // Behind a load balancer: a new connection may go elsewhere.
                            conns[target] = None;
                            tokio::time::sleep(Duration::from_millis(2)).await;
                        }
                        target = (target + 1) % addrs.len();
                    }
                    _ => {
                        if let Ok(mut v) = errs.lock() {
                            v.push(Instant::now());
                        }
                        conns[target] = None;
                        target = (target + 1) % addrs.len();
                    }
                }
            }
        });
        Self {
            stop,
            acks,
            errors,
            task,
        }
    }

    /// The first write acknowledged after the first failed write after `t` (what the
    /// dying server acknowledged in flight does not count as the recovery).
    fn first_after_failure(&self, t: Instant) -> Option<Ack> {
        let failed = *self.errors.lock().ok()?.iter().find(|e| **e > t)?;
        let v = self.acks.lock().ok()?;
        v.iter().find(|a| a.at > failed).copied()
    }

    fn acks(&self) -> Vec<Ack> {
        self.acks.lock().map(|v| v.clone()).unwrap_or_default()
    }

    fn count(&self) -> usize {
        self.acks.lock().map(|v| v.len()).unwrap_or(0)
    }

    /// The first write acknowledged after `t` by a node other than `not`.
    fn first_after(&self, t: Instant, not: usize) -> Option<Ack> {
        let v = self.acks.lock().ok()?;
        v.iter().find(|a| a.at > t && a.node != not).copied()
    }

    async fn wait_more(&self, n: usize, within: Duration) -> bool {
        let base = self.count();
        poll(within, || async {
            (self.count() >= base + n).then_some(())
        })
        .await
        .is_some()
    }

    async fn finish(self) -> Vec<Ack> {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        self.acks.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

/// Seconds since the epoch of an RFC 3339 UTC timestamp as the API prints it
/// (`2026-11-24T09:08:16.123456Z`).
fn parse_ts(s: &str) -> Option<f64> {
    let s = s.strip_suffix('Z').or_else(|| s.strip_suffix("+00:00"))?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.split(':');
    let (h, mi) = (
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<i64>().ok()?,
    );
    let sec: f64 = t.next()?.parse().ok()?;
    // Days from the civil date (H. Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + h * 3_600 + mi * 60) as f64 + sec)
}

fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn ts(v: &Value) -> Option<f64> {
    v.as_str().and_then(parse_ts)
}

/// The newest job of `kind` created after `since` (unix seconds), once finished.
async fn finished_job(nines: &Nines, cluster: &str, kind: &str, since: f64) -> Option<Value> {
    poll(Duration::from_secs(120), || async {
        let jobs = nines.jobs(cluster).await.ok()?;
        jobs.into_iter()
            .find(|j| j["kind"] == kind && ts(&j["created_at"]).is_some_and(|c| c >= since - 0.5))
            .filter(|j| !j["finished_at"].is_null())
    })
    .await
}

/// A job's log lines as `+S.SSs message`, relative to `t0` (unix seconds).
async fn job_trace(nines: &Nines, job: &Value, t0: f64) -> String {
    let Some(id) = job["id"].as_i64() else {
        return String::new();
    };
    let mut out = format!(
        "    job {id} ({}, {}): created +{:.2}s, started +{:.2}s, finished +{:.2}s\n",
        job["kind"].as_str().unwrap_or("?"),
        job["state"].as_str().unwrap_or("?"),
        ts(&job["created_at"]).map_or(f64::NAN, |t| t - t0),
        ts(&job["started_at"]).map_or(f64::NAN, |t| t - t0),
        ts(&job["finished_at"]).map_or(f64::NAN, |t| t - t0),
    );
    for l in nines.job_logs(id).await.unwrap_or_default() {
        out.push_str(&format!(
            "    +{:7.3}s {}\n",
            ts(&l["at"]).map_or(f64::NAN, |t| t - t0),
            l["message"].as_str().unwrap_or("")
        ));
    }
    out
}

struct Bench {
    nines: Nines,
    work: PathBuf,
    pw_file: String,
    addrs: Vec<String>,
    /// Where HAProxy listens in the load balancer part.
    lb_host: String,
    interval: Duration,
    _leases: Vec<nines_testkit::AddressLease>,
}

impl Bench {
    fn datadir_template(&self) -> String {
        format!("{}/db/{{host}}_{{port}}", self.work.display())
    }

    fn pid(&self, addr: &str) -> Result<String> {
        let f = format!("{}/db/{addr}_3306.nines/mysqld.pid", self.work.display());
        Ok(std::fs::read_to_string(&f)
            .with_context(|| format!("reading {f}"))?
            .trim()
            .to_string())
    }

    async fn kill9(&self, addrs: &[String]) -> Result<()> {
        let pids = addrs
            .iter()
            .map(|a| self.pid(a))
            .collect::<Result<Vec<_>>>()?;
        let st = tokio::process::Command::new("kill")
            .arg("-9")
            .args(&pids)
            .status()
            .await?;
        if !st.success() {
            bail!("kill -9 {pids:?} failed");
        }
        Ok(())
    }

    async fn create(&self, name: &str, kind: &str, extra: &[&str]) -> Result<()> {
        let nodes = self.addrs.join(",");
        let template = self.datadir_template();
        let mut args = vec![
            "cluster",
            "create",
            "--name",
            name,
            "--type",
            kind,
            "--nodes",
            &nodes,
            "--db-admin-user",
            "dba",
            "--db-admin-password-file",
            &self.pw_file,
            "--datadir",
            &template,
            "--local",
            "--wait",
        ];
        args.extend_from_slice(extra);
        if let Err(e) = self.nines.run(&args).await {
            // What the failed job says to do: the same command again resumes it.
            let first: Vec<String> = format!("{e:#}")
                .lines()
                .filter(|l| l.contains("fail"))
                .map(str::to_string)
                .collect();
            eprintln!(
                "ODD: creating {name} failed, retrying the same command once: {}",
                first.join(" | ")
            );
            self.nines.run(&args).await?;
        }
        Ok(())
    }

    async fn delete(&self, name: &str) -> Result<()> {
        self.nines
            .run(&["cluster", "delete", "--name", name, "--purge", "--wait"])
            .await?;
        Ok(())
    }

    /// A replication cluster with table `app.t` and the account `app` (no SUPER), in
    /// full shape with the first address as primary.
    async fn replication(&self, name: &str) -> Result<()> {
        self.create(name, "replication", &["--semi-sync"]).await?;
        admin_sql(
            &self.addrs[0],
            &format!(
                "CREATE DATABASE app; CREATE TABLE app.t (id BIGINT PRIMARY KEY) ENGINE=InnoDB; \
                 CREATE USER app@'%' IDENTIFIED BY '{APP_PW}'; GRANT SELECT, INSERT ON app.* TO app@'%'"
            ),
        )
        .await?;
        let first = self.addrs[0].clone();
        poll(Duration::from_secs(30), || async {
            (self.nines.replication_shape(name).await.as_deref() == Some(first.as_str()))
                .then_some(())
        })
        .await
        .with_context(|| format!("{name}: not one primary {first} with two replicas in 30 s"))?;
        Ok(())
    }

    fn index(&self, addr: &str) -> usize {
        let a = addr.trim_end_matches(":3306");
        self.addrs.iter().position(|x| x == a).unwrap_or(usize::MAX)
    }
}

#[derive(Default)]
struct FailoverRun {
    first_write: f64,
    detect: f64,
    job: f64,
    rejoin: Option<f64>,
    lost: usize,
    trace: String,
}

async fn failover_run(b: &Bench, i: usize) -> Result<FailoverRun> {
    let name = format!("ha-fo{i}");
    b.replication(&name).await?;
    let writer = Writer::start(b.addrs.clone(), "app", APP_PW, b.interval);
    let result = async {
        // Two seconds of steady writes: semi-sync on, samples in the monitor.
        tokio::time::sleep(Duration::from_secs(2)).await;
        if !writer.wait_more(50, Duration::from_secs(10)).await {
            bail!("the writer does not write");
        }
        let old = b.addrs[0].clone();
        let t0 = Instant::now();
        let kill_wall = now_unix();
        b.kill9(std::slice::from_ref(&old)).await?;
        let first = poll(Duration::from_secs(30), || async {
            writer.first_after(t0, 0)
        })
        .await
        .context("no write acknowledged by another node within 30 s of the kill")?;
        let mut run = FailoverRun {
            first_write: (first.at - t0).as_secs_f64(),
            ..Default::default()
        };
        let job = finished_job(&b.nines, &name, "failover", kill_wall)
            .await
            .context("no finished failover job")?;
        if job["state"] != "succeeded" {
            bail!("failover job {}: {}", job["id"], job["error"]);
        }
        run.detect = ts(&job["created_at"]).unwrap_or(f64::NAN) - kill_wall;
        run.job = ts(&job["finished_at"]).unwrap_or(f64::NAN)
            - ts(&job["started_at"]).unwrap_or(f64::NAN);
        run.trace = job_trace(&b.nines, &job, kill_wall).await;
        let new = b.addrs[first.node].clone();
        run.rejoin = poll(Duration::from_secs(120), || async {
            (b.nines.replication_shape(&name).await.as_deref() == Some(new.as_str()))
                .then(|| t0.elapsed().as_secs_f64())
        })
        .await;
        Ok((run, new))
    }
    .await;
    let acks = writer.finish().await;
    let (mut run, new) = result?;
    let have: std::collections::BTreeSet<u64> = admin_sql(&new, "SELECT id FROM app.t")
        .await?
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    run.lost = acks.iter().filter(|a| !have.contains(&a.id)).count();
    b.delete(&name).await?;
    Ok(run)
}

/// One failover behind HAProxy: a fresh cluster with a load balancer, the writer going
/// through its read-write port only.
async fn lb_failover_run(b: &Bench, i: usize) -> Result<FailoverRun> {
    let name = format!("ha-lb{i}");
    b.replication(&name).await?;
    b.nines
        .run(&[
            "lb",
            "add",
            "--cluster",
            &name,
            "--type",
            "haproxy",
            "--host",
            &b.lb_host,
            "--local",
            "--wait",
        ])
        .await?;
    let primary = format!("{}:3306", b.addrs[0]);
    poll(Duration::from_secs(15), || async {
        let l = b
            .nines
            .json(&["lb", "list", "--cluster", &name])
            .await
            .ok()?;
        l[0]["backends"]
            .as_array()?
            .iter()
            .any(|x| x["pool"] == "rw" && x["address"] == primary.as_str() && x["state"] == "up")
            .then_some(())
    })
    .await
    .context("the primary is not up in the read-write pool within 15 s")?;
    let writer = Writer::start(vec![b.lb_host.clone()], "app", APP_PW, b.interval);
    let result = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        if !writer.wait_more(50, Duration::from_secs(10)).await {
            bail!("the writer does not write through HAProxy");
        }
        let old = b.addrs[0].clone();
        let t0 = Instant::now();
        b.kill9(std::slice::from_ref(&old)).await?;
        let first = poll(Duration::from_secs(30), || async {
            writer.first_after_failure(t0)
        })
        .await
        .context("no write acknowledged through HAProxy within 30 s of the kill")?;
        // Which node took it: the designated primary now.
        let new = poll(Duration::from_secs(30), || async {
            let nodes = b.nines.nodes(&name).await.ok()?;
            nodes
                .iter()
                .find(|n| n["role"] == "primary" && n["address"] != primary.as_str())
                .and_then(|n| n["address"].as_str())
                .map(|a| a.trim_end_matches(":3306").to_string())
        })
        .await
        .context("no new primary")?;
        Ok((
            FailoverRun {
                first_write: (first.at - t0).as_secs_f64(),
                ..Default::default()
            },
            new,
        ))
    }
    .await;
    let acks = writer.finish().await;
    let (mut run, new) = result?;
    let have: std::collections::BTreeSet<u64> = admin_sql(&new, "SELECT id FROM app.t")
        .await?
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    run.lost = acks.iter().filter(|a| !have.contains(&a.id)).count();
    b.nines
        .run(&[
            "lb",
            "remove",
            "--cluster",
            &name,
            "--host",
            &b.lb_host,
            "--wait",
        ])
        .await?;
    b.delete(&name).await?;
    Ok(run)
}

struct SwitchoverRun {
    pause: f64,
    call: f64,
    job: f64,
    trace: String,
}

async fn switchovers(b: &Bench, n: usize) -> Result<Vec<SwitchoverRun>> {
    let name = "ha-so";
    b.replication(name).await?;
    let writer = Writer::start(b.addrs.clone(), "app", APP_PW, b.interval);
    let mut runs = Vec::new();
    let result = async {
        for k in 1..=n {
            let primary = poll(Duration::from_secs(60), || async {
                b.nines.replication_shape(name).await
            })
            .await
            .context("the cluster is not back in shape after the switchover")?;
            tokio::time::sleep(Duration::from_secs(1)).await;
            if !writer.wait_more(50, Duration::from_secs(10)).await {
                bail!("the writer does not write");
            }
            let p = b.index(&primary);
            let t0 = Instant::now();
            let wall = now_unix();
            b.nines
                .run(&["cluster", "switchover", "--name", name, "--wait"])
                .await?;
            let call = t0.elapsed().as_secs_f64();
            let first = poll(Duration::from_secs(30), || async { writer.first_after(t0, p) })
                .await
                .context("no write acknowledged by the new primary within 30 s")?;
            let acks = writer.acks();
            let from = acks.iter().rposition(|a| a.at <= t0).unwrap_or(0);
            let to = acks
                .iter()
                .position(|a| a.at == first.at && a.id == first.id)
                .unwrap_or(from);
            let pause = acks[from..=to.max(from)]
                .windows(2)
                .map(|w| (w[1].at - w[0].at).as_secs_f64())
                .fold(0.0, f64::max);
            let job = finished_job(&b.nines, name, "switchover", wall)
                .await
                .context("no finished switchover job")?;
            let run = SwitchoverRun {
                pause,
                call,
                job: ts(&job["finished_at"]).unwrap_or(f64::NAN)
                    - ts(&job["started_at"]).unwrap_or(f64::NAN),
                trace: job_trace(&b.nines, &job, wall).await,
            };
            eprintln!(
                "switchover {k}/{n}: {primary} -> {}: write pause {:.3}s (CLI call {:.2}s, job {:.2}s)",
                b.addrs[first.node], run.pause, run.call, run.job
            );
            runs.push(run);
        }
        Ok(())
    }
    .await;
    let acks = writer.finish().await;
    result?;
    let primary = poll(Duration::from_secs(60), || async {
        b.nines.replication_shape(name).await
    })
    .await
    .context("not in shape after the last switchover")?;
    let have: std::collections::BTreeSet<u64> = admin_sql(&primary, "SELECT id FROM app.t")
        .await?
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    let lost = acks.iter().filter(|a| !have.contains(&a.id)).count();
    eprintln!(
        "switchovers: {} writes acknowledged, {lost} missing on the final primary",
        acks.len()
    );
    if lost > 0 {
        bail!("{lost} acknowledged writes lost over the switchovers");
    }
    b.delete(name).await?;
    Ok(runs)
}

struct GaleraRun {
    serving: f64,
    first_write: f64,
    detect: f64,
    job: f64,
    trace: String,
}

async fn galera_synced(addr: &str) -> bool {
    admin_sql(
        addr,
        "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS \
         WHERE VARIABLE_NAME = 'WSREP_LOCAL_STATE_COMMENT'",
    )
    .await
    .is_ok_and(|v| v.first().map(String::as_str) == Some("Synced"))
}

async fn galera_write(addr: &str, id: u64) -> bool {
    admin_sql(addr, &format!("INSERT INTO app.t (id) VALUES ({id})"))
        .await
        .is_ok()
}

/// `n` crashes of a deployed three-node Galera cluster, each killing the last `killed`
/// nodes with SIGKILL (3: all of them; 2: a majority, the first node survives).
async fn galera_crashes(b: &Bench, n: usize, killed: usize) -> Result<Vec<GaleraRun>> {
    let name = if killed == 3 { "ha-gal" } else { "ha-gal-part" };
    let victims = &b.addrs[b.addrs.len() - killed..];
    let t = Instant::now();
    b.create(name, "galera", &[]).await?;
    eprintln!("galera: deployed in {:.1}s", t.elapsed().as_secs_f64());
    admin_sql(
        &b.addrs[0],
        "CREATE DATABASE app; CREATE TABLE app.t (id BIGINT PRIMARY KEY) ENGINE=InnoDB",
    )
    .await?;
    let mut next = 0u64;
    let mut runs = Vec::new();
    for k in 1..=n {
        // Healthy in nines's eyes, no job in flight, every node Synced and writable.
        poll(Duration::from_secs(180), || async {
            let clusters = b.nines.json(&["cluster", "list"]).await.ok()?;
            let healthy = clusters
                .as_array()?
                .iter()
                .any(|c| c["name"] == name && c["state"] == "healthy");
            let jobs = b.nines.jobs(name).await.ok()?;
            let idle = jobs.iter().all(|j| !j["finished_at"].is_null());
            (healthy && idle).then_some(())
        })
        .await
        .context("the Galera cluster is not healthy and idle")?;
        for a in &b.addrs {
            next += 1;
            if !galera_synced(a).await || !galera_write(a, next).await {
                bail!("{a} is not Synced and writable before crash {k}");
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let t0 = Instant::now();
        let wall = now_unix();
        b.kill9(victims).await?;
        // Every 100 ms: a write on any node (the first one accepted is noted), then,
        // once one was, every node Synced and taking a write.
        let mut first_write = None;
        let serving = loop {
            if t0.elapsed() > Duration::from_secs(300) {
                bail!("the Galera cluster did not serve again within 300 s of crash {k}");
            }
            if first_write.is_none() {
                for a in &b.addrs {
                    next += 1;
                    if galera_write(a, next).await {
                        first_write = Some(t0.elapsed().as_secs_f64());
                        break;
                    }
                }
            }
            if first_write.is_some() {
                let mut all = true;
                for a in &b.addrs {
                    all = all && galera_synced(a).await;
                }
                for a in &b.addrs {
                    next += 1;
                    all = all && galera_write(a, next).await;
                }
                if all {
                    break t0.elapsed().as_secs_f64();
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let job = finished_job(&b.nines, name, "galera_recovery", wall)
            .await
            .context("no finished recovery job")?;
        let run = GaleraRun {
            serving,
            first_write: first_write.unwrap_or(f64::NAN),
            detect: ts(&job["created_at"]).unwrap_or(f64::NAN) - wall,
            job: ts(&job["finished_at"]).unwrap_or(f64::NAN)
                - ts(&job["started_at"]).unwrap_or(f64::NAN),
            trace: job_trace(&b.nines, &job, wall).await,
        };
        eprintln!(
            "galera crash ({killed} of 3 killed) {k}/{n}: all Synced and writable after {:.2}s (first write {:.2}s, detection {:.2}s, recovery job {:.2}s)",
            run.serving, run.first_write, run.detect, run.job
        );
        runs.push(run);
    }
    let rows = admin_sql(&b.addrs[0], "SELECT COUNT(*) FROM app.t").await?;
    eprintln!(
        "galera: {} rows after the crashes",
        rows.first().map(String::as_str).unwrap_or("?")
    );
    b.delete(name).await?;
    Ok(runs)
}

struct Stats {
    n: usize,
    median: f64,
    min: f64,
    max: f64,
}

fn stats(v: &[f64]) -> Option<Stats> {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return None;
    }
    s.sort_by(f64::total_cmp);
    let n = s.len();
    let median = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    Some(Stats {
        n,
        median,
        min: s[0],
        max: s[n - 1],
    })
}

fn row(label: &str, v: &[f64], target: &str, ok: Option<fn(&Stats) -> bool>) -> String {
    match stats(v) {
        Some(s) => format!(
            "{label:<58} {:>4} {:>8.3} {:>8.3} {:>8.3}  {target}{}",
            s.n,
            s.median,
            s.min,
            s.max,
            match ok {
                Some(f) if f(&s) => " (met)",
                Some(_) => " (MISSED)",
                None => "",
            }
        ),
        None => format!("{label:<58} {:>4}", 0),
    }
}

fn all(v: &[f64]) -> String {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let parts: Vec<String> = s.iter().map(|x| format!("{x:.2}")).collect();
    format!("[{}]", parts.join(", "))
}

fn slowest<T>(runs: &[T], key: fn(&T) -> f64) -> Option<&T> {
    runs.iter().max_by(|a, b| key(a).total_cmp(&key(b)))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    let leases = nines_testkit::lease_addresses(4).context("leasing loopback addresses")?;
    let mut addrs: Vec<String> = leases.iter().map(|l| l.addr()).collect();
    let lb_host = addrs.pop().context("four leases")?;
    let pw_file = args.work.join("admin.pw");
    std::fs::write(&pw_file, format!("{ADMIN_PW}\n"))?;
    let b = Bench {
        nines: Nines {
            bin: args.nines.clone(),
        },
        work: args.work.clone(),
        pw_file: pw_file.display().to_string(),
        addrs,
        lb_host,
        interval: Duration::from_millis(args.write_interval_ms),
        _leases: leases,
    };
    eprintln!("nodes: {}", b.addrs.join(", "));

    let mut failovers = Vec::new();
    for i in 1..=args.failovers {
        let r = failover_run(&b, i)
            .await
            .with_context(|| format!("failover run {i}"))?;
        eprintln!(
            "failover {i}/{}: first write on the new primary {:.3}s after the kill (detection {:.2}s, job {:.2}s), full shape again after {}, {} acknowledged writes lost",
            args.failovers,
            r.first_write,
            r.detect,
            r.job,
            r.rejoin
                .map_or("NEVER (120 s)".to_string(), |x| format!("{x:.1}s")),
            r.lost
        );
        failovers.push(r);
    }
    let mut lb_runs = Vec::new();
    for i in 1..=args.lb_failovers {
        let r = lb_failover_run(&b, i)
            .await
            .with_context(|| format!("failover behind HAProxy, run {i}"))?;
        eprintln!(
            "failover behind HAProxy {i}/{}: first write through the read-write port {:.3}s after the kill, {} acknowledged writes lost",
            args.lb_failovers, r.first_write, r.lost
        );
        lb_runs.push(r);
    }
    let switches = if args.switchovers > 0 {
        switchovers(&b, args.switchovers).await?
    } else {
        Vec::new()
    };
    let galera = if args.galera_crashes > 0 {
        galera_crashes(&b, args.galera_crashes, 3).await?
    } else {
        Vec::new()
    };
    let partial = if args.galera_partial > 0 {
        galera_crashes(&b, args.galera_partial, 2).await?
    } else {
        Vec::new()
    };

    let head = format!(
        "{:<58} {:>4} {:>8} {:>8} {:>8}  target",
        "measurement (seconds)", "runs", "median", "min", "max"
    );
    let mut out = vec![head.clone(), "-".repeat(head.len() + 20)];
    if !failovers.is_empty() {
        let fw: Vec<f64> = failovers.iter().map(|r| r.first_write).collect();
        out.push(row(
            "failover: kill -9 primary -> first write on new primary",
            &fw,
            "median <= 1 s, max <= 2 s",
            Some(|s| s.median <= 1.0 && s.max <= 2.0),
        ));
        let d: Vec<f64> = failovers.iter().map(|r| r.detect).collect();
        out.push(row("  of which kill -> failover job queued", &d, "", None));
        let j: Vec<f64> = failovers.iter().map(|r| r.job).collect();
        out.push(row("  failover job, start -> end", &j, "", None));
        let rj: Vec<f64> = failovers.iter().filter_map(|r| r.rejoin).collect();
        out.push(row(
            "failover: kill -9 -> old primary rejoined (full shape)",
            &rj,
            "",
            None,
        ));
        let lost: usize = failovers.iter().map(|r| r.lost).sum();
        let never = failovers.iter().filter(|r| r.rejoin.is_none()).count();
        out.push(format!(
            "  acknowledged writes lost: {lost}; rejoins not done within 120 s: {never}; first writes: {}",
            all(&fw)
        ));
    }
    if !lb_runs.is_empty() {
        let fw: Vec<f64> = lb_runs.iter().map(|r| r.first_write).collect();
        out.push(row(
            "behind HAProxy: kill -9 primary -> first write acknowledged",
            &fw,
            "median <= 1 s",
            Some(|s| s.median <= 1.0),
        ));
        let lost: usize = lb_runs.iter().map(|r| r.lost).sum();
        out.push(format!(
            "  acknowledged writes lost: {lost}; first writes: {}",
            all(&fw)
        ));
    }
    if !switches.is_empty() {
        let p: Vec<f64> = switches.iter().map(|r| r.pause).collect();
        out.push(row(
            "switchover: longest gap between acknowledged writes",
            &p,
            "median <= 0.5 s",
            Some(|s| s.median <= 0.5),
        ));
        let c: Vec<f64> = switches.iter().map(|r| r.call).collect();
        out.push(row("  switchover --wait CLI call", &c, "", None));
        let j: Vec<f64> = switches.iter().map(|r| r.job).collect();
        out.push(row("  switchover job, start -> end", &j, "", None));
        out.push(format!("  pauses: {}", all(&p)));
    }
    if !galera.is_empty() {
        let s: Vec<f64> = galera.iter().map(|r| r.serving).collect();
        out.push(row(
            "galera: kill -9 all 3 -> all Synced, each takes a write",
            &s,
            "<= 60 s",
            Some(|s| s.max <= 60.0),
        ));
        let f: Vec<f64> = galera.iter().map(|r| r.first_write).collect();
        out.push(row(
            "  kill -> first write accepted by any node",
            &f,
            "",
            None,
        ));
        let d: Vec<f64> = galera.iter().map(|r| r.detect).collect();
        out.push(row("  kill -> recovery job queued", &d, "", None));
        let j: Vec<f64> = galera.iter().map(|r| r.job).collect();
        out.push(row(
            "  recovery job (galera_recovery), start -> end",
            &j,
            "",
            None,
        ));
        out.push(format!("  all: {}", all(&s)));
    }
    if !partial.is_empty() {
        let f: Vec<f64> = partial.iter().map(|r| r.first_write).collect();
        out.push(row(
            "galera: kill -9 2 of 3 -> survivor takes a write",
            &f,
            "<= 30 s",
            Some(|s| s.max <= 30.0),
        ));
        let s: Vec<f64> = partial.iter().map(|r| r.serving).collect();
        out.push(row(
            "galera: kill -9 2 of 3 -> all Synced, each takes a write",
            &s,
            "<= 120 s",
            Some(|s| s.max <= 120.0),
        ));
        let d: Vec<f64> = partial.iter().map(|r| r.detect).collect();
        out.push(row("  kill -> recovery job queued", &d, "", None));
        let j: Vec<f64> = partial.iter().map(|r| r.job).collect();
        out.push(row("  recovery job, start -> end", &j, "", None));
        out.push(format!("  survivor writable: {}", all(&f)));
    }
    println!("{}", out.join("\n"));

    // What dominates: the job logs of the slowest runs, times from the kill (or call).
    if let Some(r) = slowest(&failovers, |r| r.first_write) {
        eprintln!(
            "\nslowest failover ({:.3}s), times from the kill:\n{}",
            r.first_write, r.trace
        );
    }
    if let Some(r) = slowest(&switches, |r| r.pause) {
        eprintln!(
            "slowest switchover (pause {:.3}s), times from the call:\n{}",
            r.pause, r.trace
        );
    }
    if let Some(r) = slowest(&partial, |r| r.serving) {
        eprintln!(
            "slowest Galera recovery from 2 of 3 killed ({:.2}s), times from the kill:\n{}",
            r.serving, r.trace
        );
    }
    if let Some(r) = slowest(&galera, |r| r.serving) {
        eprintln!(
            "slowest Galera recovery ({:.2}s), times from the kill:\n{}",
            r.serving, r.trace
        );
    }
    Ok(())
}
