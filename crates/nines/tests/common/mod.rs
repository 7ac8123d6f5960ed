//! Test harness: runs the real `nines` binary as a controller and as a CLI.

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_nines");

/// A controller process with its own data directory and port.
pub struct Controller {
    pub dir: tempfile::TempDir,
    pub url: String,
    pub token: String,
    child: Option<Child>,
    port: u16,
    extra: Vec<String>,
    env: Vec<(String, String)>,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

impl Controller {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Starts a controller with extra `nines serve` arguments.
    pub async fn start_with(extra: &[&str]) -> Self {
        Self::start_with_env(extra, &[]).await
    }

    /// Starts a controller with extra arguments and environment variables (kept for
    /// restarts until [`Controller::clear_env`]).
    pub async fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let mut c = Self {
            dir,
            url: format!("http://127.0.0.1:{port}"),
            token: String::new(),
            child: None,
            port,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        c.spawn().await;
        c
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("controller.log"))
            .expect("log");
        let child = Command::new(BIN)
            .args(["serve", "--listen", &format!("127.0.0.1:{}", self.port)])
            .arg("--data-dir")
            .arg(self.dir.path())
            .args(&self.extra)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn nines serve");
        self.child = Some(child);
        let url = format!("{}/healthz", self.url);
        let ok = wait_until(Duration::from_secs(30), || {
            let url = url.clone();
            async move {
                reqwest::get(&url)
                    .await
                    .map(|r| r.status().is_success())
                    .unwrap_or(false)
            }
        })
        .await;
        assert!(ok, "controller did not become ready: {}", self.log());
        self.token = std::fs::read_to_string(self.dir.path().join("admin.token"))
            .expect("admin.token")
            .trim()
            .to_string();
    }

    /// Forgets the environment variables given at start, for the next restart.
    pub fn clear_env(&mut self) {
        self.env.clear();
    }

    /// Whether the controller process has ended (by itself: a crash point).
    pub fn has_exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_some())
    }

    /// Kills the controller with SIGKILL (a crash) and starts it again on the same data.
    pub async fn crash_and_restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.spawn().await;
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("controller.log")).unwrap_or_default()
    }

    /// Runs the CLI against this controller.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(["--server", &self.url, "--token", &self.token])
            .args(args)
            .output()
            .expect("run nines")
    }

    /// Runs the CLI with `-o json` and parses its output; panics with stderr on failure.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut full = vec!["-o", "json"];
        full.extend_from_slice(args);
        let out = self.cli(&full);
        assert!(
            out.status.success(),
            "nines {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "nines {args:?}: not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// GET an API path as JSON.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = reqwest::Client::new()
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("GET");
        let status = r.status().as_u16();
        let v = r.json().await.unwrap_or(Value::Null);
        (status, v)
    }

    pub async fn get_text(&self, path: &str) -> String {
        reqwest::Client::new()
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("GET")
            .text()
            .await
            .expect("text")
    }

    /// Nodes of a cluster, from the API.
    pub async fn nodes(&self, cluster: &str) -> Vec<Value> {
        let (s, v) = self.get(&format!("/api/v1/nodes?cluster={cluster}")).await;
        assert_eq!(s, 200, "{v}");
        v.as_array().cloned().unwrap_or_default()
    }

    pub async fn node_state(&self, cluster: &str, address: &str) -> Option<String> {
        self.nodes(cluster)
            .await
            .into_iter()
            .find(|n| n["address"] == address)
            .and_then(|n| n["state"].as_str().map(str::to_string))
    }

    pub async fn cluster(&self, name: &str) -> Option<Value> {
        let (_, v) = self.get("/api/v1/clusters").await;
        v.as_array()?.iter().find(|c| c["name"] == name).cloned()
    }

    /// Imports a cluster with the CLI and `--wait`; returns the CLI output.
    pub fn import(
        &self,
        name: &str,
        seed: &str,
        user: &str,
        password_file: &Path,
        extra: &[&str],
    ) -> Output {
        let pw = password_file.to_string_lossy().to_string();
        let mut args = vec![
            "cluster",
            "import",
            "--name",
            name,
            "--seed",
            seed,
            "--db-user",
            user,
            "--db-password-file",
            &pw,
            "--wait",
        ];
        args.extend_from_slice(extra);
        self.cli(&args)
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- controller log ---\n{}", self.log());
        }
    }
}

/// Polls `cond` until it is true or `timeout` passes; true when it became true.
pub async fn wait_until<F, Fut>(timeout: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if cond().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn password_file(dir: &Path, password: &str) -> PathBuf {
    let p = dir.join(format!("pw-{}", rand_suffix()));
    std::fs::write(&p, format!("{password}\n")).expect("write password");
    p
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// A directory for the nodes a test deploys (under the test kit's root, so that servers a
/// killed test leaves behind are swept when their addresses are leased again). Dropping
/// it kills every server whose pid file lies below it, also when the test panics.
pub struct DeployDir {
    pub path: PathBuf,
}

impl DeployDir {
    pub fn new() -> Self {
        let path = nines_testkit::kit_root().join("deploy").join(format!(
            "{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir_all(&path).expect("deploy dir");
        use std::os::unix::fs::PermissionsExt;
        let mut p = path.clone();
        // mariadbd runs as mysql: every directory on the way must be traversable.
        while p.starts_with(nines_testkit::kit_root()) {
            let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755));
            if !p.pop() {
                break;
            }
        }
        Self { path }
    }

    /// The `--datadir` template for nodes under this directory.
    pub fn template(&self) -> String {
        format!("{}/{{host}}_{{port}}", self.path.display())
    }

    /// The data directory of a node.
    pub fn datadir(&self, addr: &str, port: u16) -> PathBuf {
        self.path.join(format!("{addr}_{port}"))
    }

    /// Every process whose command line names this directory: its servers (also one
    /// that died before writing its pid file, or still waits for a state transfer) and
    /// their SST scripts. Read from /proc, so a stale pid file never names another test's
    /// process.
    fn pids(&self) -> Vec<u32> {
        let me = self.path.to_string_lossy().to_string();
        let mut pids = Vec::new();
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for e in entries.flatten() {
                let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                    continue;
                };
                if std::fs::read(e.path().join("cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&me))
                {
                    pids.push(pid);
                }
            }
        }
        pids
    }
}

impl Drop for DeployDir {
    fn drop(&mut self) {
        for pid in self.pids() {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        }
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Runs SQL over TCP as the given user and returns the first column of every row.
pub async fn sql(addr: &str, user: &str, password: &str, q: &str) -> Result<Vec<String>, String> {
    use mysql_async::prelude::Queryable;
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(addr)
        .tcp_port(3306)
        .user(Some(user))
        .pass(Some(password))
        .prefer_socket(false);
    let mut conn = tokio::time::timeout(Duration::from_secs(5), mysql_async::Conn::new(opts))
        .await
        .map_err(|_| format!("{addr}: connect timed out"))?
        .map_err(|e| format!("{addr}: {e}"))?;
    let rows: Vec<mysql_async::Row> = conn.query(q).await.map_err(|e| format!("{addr}: {e}"))?;
    let _ = conn.disconnect().await;
    Ok(rows
        .into_iter()
        .map(|r| {
            r.get_opt::<String, _>(0)
                .and_then(|v| v.ok())
                .unwrap_or_default()
        })
        .collect())
}

/// Password of the `dba` administrator the deploy tests create.
pub const ADMIN_PW: &str = "Adm1n-Passw0rd";

/// Runs `nines cluster create --wait` with the administrator `dba` (password [`ADMIN_PW`]),
/// the given nodes (comma-separated), directory template and extra arguments.
pub fn create_cluster(
    ctl: &Controller,
    name: &str,
    kind: &str,
    nodes: &str,
    template: &str,
    extra: &[&str],
) -> Output {
    let pw = password_file(ctl.data_dir(), ADMIN_PW);
    let pw = pw.to_string_lossy().to_string();
    let mut args = vec![
        "cluster",
        "create",
        "--name",
        name,
        "--type",
        kind,
        "--nodes",
        nodes,
        "--db-admin-user",
        "dba",
        "--db-admin-password-file",
        &pw,
        "--datadir",
        template,
        "--wait",
    ];
    args.extend_from_slice(extra);
    ctl.cli(&args)
}

/// A real sshd on `addrs` and a controller whose OpenSSH uses the kit's ssh_config (known
/// hosts, strict checking).
pub async fn controller_with_sshd(addrs: &[String]) -> (nines_testkit::Sshd, Controller) {
    let sshd = nines_testkit::Sshd::start(addrs).await.expect("sshd");
    let config = sshd.ssh_config().display().to_string();
    let ctl = Controller::start_with(&["--ssh-config", &config]).await;
    (sshd, ctl)
}

/// The CLI flags that reach the kit's sshd as root with its key.
pub fn ssh_args(sshd: &nines_testkit::Sshd) -> Vec<String> {
    vec![
        "--ssh-user".into(),
        "root".into(),
        "--ssh-key".into(),
        sshd.private_key().display().to_string(),
        "--ssh-port".into(),
        sshd.port().to_string(),
    ]
}

/// Waits until nines has armed automatic failover for `cluster` (its `failover_armed`
/// event: it has seen the primary alive with its replicas); false after 30 s.
pub async fn wait_failover_armed(ctl: &Controller, cluster: &str) -> bool {
    wait_until(Duration::from_secs(30), || async {
        ctl.json(&["events", "--cluster", cluster, "--limit", "500"])
            .as_array()
            .is_some_and(|a| a.iter().any(|e| e["kind"] == "failover_armed"))
    })
    .await
}

/// The command line of a deployed node's running server (arguments joined by spaces).
pub fn node_cmdline(dir: &DeployDir, addr: &str) -> String {
    let pid = std::fs::read_to_string(format!(
        "{}.nines/mysqld.pid",
        dir.datadir(addr, 3306).display()
    ))
    .expect("pid file");
    let raw = std::fs::read(format!("/proc/{}/cmdline", pid.trim())).expect("cmdline");
    String::from_utf8_lossy(&raw).replace('\0', " ")
}

/// `kill -9` of a deployed node's server (its pid file beside the datadir).
pub fn kill_9_node(dir: &DeployDir, addr: &str) {
    let pid = std::fs::read_to_string(format!(
        "{}.nines/mysqld.pid",
        dir.datadir(addr, 3306).display()
    ))
    .expect("pid file");
    let ok = std::process::Command::new("kill")
        .args(["-9", pid.trim()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill -9 {pid}");
}

/// Stops what nines started for a cluster's load balancers on `hosts` (port 3306) when
/// dropped, and removes their directories: a test that fails midway leaves no HAProxy or
/// Keepalived running on an address the kit leases again.
pub struct LbLeftovers {
    dirs: Vec<PathBuf>,
}

impl LbLeftovers {
    pub fn new(cluster: &str, hosts: &[String]) -> Self {
        Self {
            dirs: hosts
                .iter()
                .map(|h| PathBuf::from(format!("/var/lib/nines-lb/{cluster}-{h}-3306")))
                .collect(),
        }
    }
}

impl Drop for LbLeftovers {
    fn drop(&mut self) {
        for d in &self.dirs {
            for f in ["keepalived.pid", "haproxy.pid"] {
                if let Ok(pids) = std::fs::read_to_string(d.join(f)) {
                    for pid in pids.split_whitespace() {
                        let _ = std::process::Command::new("kill")
                            .args(["-9", pid])
                            .stderr(std::process::Stdio::null())
                            .status();
                    }
                }
            }
            let _ = std::fs::remove_dir_all(d);
        }
    }
}
