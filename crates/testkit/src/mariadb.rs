//! A real, throwaway `mariadbd` on a leased loopback address.

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use mysql_async::prelude::{FromRow, Queryable};
use mysql_async::{Conn, Opts, OptsBuilder};

use crate::lease::{AddressLease, lease_address};
use crate::process::{GroupChild, Signal, wait_exit};
use crate::util::{
    POLL_INTERVAL, keep_dirs, next_counter, random_password, run_dir, tail_file, user_ids,
};

/// The admin account the kit creates on every server (`'nines'@'%'`, all
/// privileges with grant option, usable over TCP). `root` stays socket-only.
pub const ADMIN_USER: &str = "nines";
/// The port every server listens on (on its own address).
pub const MARIADB_PORT: u16 = 3306;
/// The Galera provider library.
pub const GALERA_PROVIDER: &str = "/usr/lib/galera/libgalera_smm.so";

const MARIADBD: &str = "/usr/sbin/mariadbd";
const INSTALL_DB: &str = "mariadb-install-db";
/// Default time a server gets to accept connections after its start.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Default for Galera nodes (a joiner first receives a state transfer).
const GALERA_READY_TIMEOUT: Duration = Duration::from_secs(90);
/// Time a clean shutdown may take.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// Timeout of one connection attempt.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Lines of the error log included in errors.
const LOG_TAIL_LINES: usize = 40;

/// Galera settings of one node (see [`crate::GaleraCluster`]).
#[derive(Debug, Clone)]
pub struct GaleraOptions {
    /// `wsrep_cluster_name`.
    pub cluster_name: String,
    /// Addresses of all members, for `wsrep_cluster_address=gcomm://A:4567,...`.
    pub cluster_addresses: Vec<String>,
    /// Start this node with `--wsrep-new-cluster` (the first node only).
    pub bootstrap: bool,
}

/// How to start a [`MariaDbServer`]. `ServerOptions::default()` gives a
/// standalone server on a freshly leased address.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// Address to run on; `None` leases a new one.
    pub lease: Option<AddressLease>,
    /// Password of the [`ADMIN_USER`] account; `None` picks a random one.
    pub password: Option<String>,
    /// `server_id`; `None` derives a unique one from the address and a counter.
    pub server_id: Option<u32>,
    /// Start with `read_only=ON`.
    pub read_only: bool,
    /// Extra lines appended to the `[mysqld]` section of `my.cnf`.
    pub extra_config: Vec<String>,
    /// Galera node settings; `None` for a plain server.
    pub galera: Option<GaleraOptions>,
    /// How long to wait for the server to accept connections (default 60 s,
    /// 90 s for Galera nodes).
    pub ready_timeout: Option<Duration>,
}

impl ServerOptions {
    /// Same as `ServerOptions::default()`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs the server on `lease`.
    pub fn lease(mut self, lease: AddressLease) -> Self {
        self.lease = Some(lease);
        self
    }

    /// Sets the admin password.
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Sets `server_id`.
    pub fn server_id(mut self, id: u32) -> Self {
        self.server_id = Some(id);
        self
    }

    /// Sets `read_only`.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Appends a line to the `[mysqld]` section, e.g. `"max_connections=20"`.
    pub fn config_line(mut self, line: impl Into<String>) -> Self {
        self.extra_config.push(line.into());
        self
    }

    /// Makes the server a Galera node.
    pub fn galera(mut self, galera: GaleraOptions) -> Self {
        self.galera = Some(galera);
        self
    }

    /// Sets how long to wait for the server to accept connections.
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = Some(timeout);
        self
    }
}

/// A real MariaDB 10.11 server on `<leased address>:3306`, running as the
/// `mysql` user in its own process group, with its own directory
/// (`<kit_root>/run/<addr>-<pid>-<n>/`: `data/`, `my.cnf`, socket, pid file,
/// `error.log`).
///
/// Binary logging with GTIDs is on (`log_bin`, `log_slave_updates`,
/// `binlog_format=ROW`, `gtid_strict_mode`), `report_host` is the address,
/// and the [`ADMIN_USER`] account is usable over TCP. Memory is kept small.
///
/// Dropping the server SIGKILLs its process group and removes its directory
/// (also during a panic).
#[derive(Debug)]
pub struct MariaDbServer {
    lease: AddressLease,
    dir: PathBuf,
    password: String,
    server_id: u32,
    galera: Option<GaleraOptions>,
    ready_timeout: Duration,
    child: Mutex<Option<GroupChild>>,
    last_pid: AtomicU32,
}

impl MariaDbServer {
    /// Initialises a data directory (`mariadb-install-db`), starts `mariadbd`
    /// and waits until the admin account can run a query over TCP.
    ///
    /// On failure the error includes the tail of the error log, and
    /// everything started so far is cleaned up.
    pub async fn start(opts: ServerOptions) -> Result<MariaDbServer> {
        let lease = match opts.lease.clone() {
            Some(lease) => lease,
            None => tokio::task::spawn_blocking(lease_address)
                .await
                .context("join lease task")??,
        };
        let counter = next_counter();
        let dir = run_dir()?.join(format!(
            "{}-{}-{}",
            lease.addr(),
            std::process::id(),
            counter
        ));
        let server_id = opts
            .server_id
            .unwrap_or_else(|| u32::from(lease.octet()) * 1000 + counter % 1000);
        let ready_timeout = opts.ready_timeout.unwrap_or(if opts.galera.is_some() {
            GALERA_READY_TIMEOUT
        } else {
            READY_TIMEOUT
        });
        let server = MariaDbServer {
            lease,
            dir,
            password: opts.password.clone().unwrap_or_else(|| random_password(20)),
            server_id,
            galera: opts.galera.clone(),
            ready_timeout,
            child: Mutex::new(None),
            last_pid: AtomicU32::new(0),
        };
        // From here on, Drop cleans up whatever was created.
        server.prepare(&opts).await?;
        let bootstrap = server.galera.as_ref().is_some_and(|g| g.bootstrap);
        let args: &[&str] = if bootstrap {
            &["--wsrep-new-cluster"]
        } else {
            &[]
        };
        server.spawn(args)?;
        server.wait_ready().await?;
        Ok(server)
    }

    /// Creates the directory, writes `my.cnf` and runs `mariadb-install-db`.
    async fn prepare(&self, opts: &ServerOptions) -> Result<()> {
        let (uid, gid) = user_ids("mysql")?;
        for d in [self.dir.clone(), self.datadir(), self.dir.join("tmp")] {
            std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
        }
        std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("chmod {}", self.dir.display()))?;
        let cnf = self.config_path();
        std::fs::write(&cnf, self.render_config(opts))
            .with_context(|| format!("writing {}", cnf.display()))?;
        for p in [
            self.dir.clone(),
            self.datadir(),
            self.dir.join("tmp"),
            cnf.clone(),
        ] {
            std::os::unix::fs::chown(&p, Some(uid), Some(gid))
                .with_context(|| format!("chown mysql {}", p.display()))?;
        }
        // The admin account is created at initialisation (bootstrap mode
        // writes no binary log, so every server starts with an empty GTID
        // position and replicas line up with their primary).
        let init_sql = self.dir.join("init.sql");
        std::fs::write(&init_sql, self.init_sql())
            .with_context(|| format!("writing {}", init_sql.display()))?;
        std::fs::set_permissions(&init_sql, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("chmod {}", init_sql.display()))?;

        let output = tokio::process::Command::new(INSTALL_DB)
            .arg(format!("--defaults-file={}", cnf.display()))
            .arg("--auth-root-authentication-method=normal")
            .arg("--skip-test-db")
            .arg(format!("--extra-file={}", init_sql.display()))
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .with_context(|| format!("running {INSTALL_DB}"))?;
        if !output.status.success() {
            bail!(
                "{INSTALL_DB} for {} failed ({}):\n{}{}\n--- {} ---\n{}",
                self.endpoint(),
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr),
                self.error_log().display(),
                tail_file(&self.error_log(), LOG_TAIL_LINES)
            );
        }
        Ok(())
    }

    fn init_sql(&self) -> String {
        // CREATE USER / GRANT do not work in bootstrap mode (no grant
        // tables loaded), so write the privilege row directly, like the
        // system tables script does for root.
        let pw = sql_quote(&self.password);
        format!(
            "USE mysql;\n\
             DELETE FROM global_priv WHERE User='root' AND Host<>'localhost';\n\
             REPLACE INTO global_priv VALUES ('%', '{ADMIN_USER}', CONCAT(\
             '{{\"access\":18446744073709551615,\"plugin\":\"mysql_native_password\",\
             \"authentication_string\":\"', PASSWORD({pw}), '\"}}'));\n"
        )
    }

    fn render_config(&self, opts: &ServerOptions) -> String {
        let addr = self.address();
        let dir = self.dir.display();
        let mut cnf = String::new();
        let _ = write!(
            cnf,
            "# Written by nines-testkit.\n\
             [mysqld]\n\
             user=mysql\n\
             datadir={dir}/data\n\
             socket={dir}/mysqld.sock\n\
             pid-file={dir}/mysqld.pid\n\
             log-error={dir}/error.log\n\
             tmpdir={dir}/tmp\n\
             bind-address={addr}\n\
             port={MARIADB_PORT}\n\
             server_id={id}\n\
             log_bin=mariadb-bin\n\
             relay_log=relay-bin\n\
             log_slave_updates=ON\n\
             binlog_format=ROW\n\
             gtid_strict_mode=ON\n\
             report_host={addr}\n\
             report_port={MARIADB_PORT}\n\
             slave_net_timeout=4\n\
             skip-name-resolve\n\
             max_connections=100\n\
             performance_schema=OFF\n\
             innodb_buffer_pool_size=32M\n\
             innodb_log_file_size=16M\n\
             innodb_log_buffer_size=4M\n\
             innodb_flush_log_at_trx_commit=2\n\
             sync_binlog=0\n\
             key_buffer_size=4M\n\
             aria_pagecache_buffer_size=8M\n\
             read_only={ro}\n",
            id = self.server_id,
            ro = if opts.read_only { "ON" } else { "OFF" },
        );
        if let Some(g) = &self.galera {
            let members: Vec<String> = g
                .cluster_addresses
                .iter()
                .map(|a| format!("{a}:4567"))
                .collect();
            let _ = write!(
                cnf,
                "wsrep_on=ON\n\
                 wsrep_provider={GALERA_PROVIDER}\n\
                 wsrep_cluster_name={name}\n\
                 wsrep_cluster_address=gcomm://{members}\n\
                 wsrep_node_address={addr}\n\
                 wsrep_node_name={addr}\n\
                 wsrep_node_incoming_address={addr}:{MARIADB_PORT}\n\
                 wsrep_provider_options=\"gmcast.listen_addr=tcp://{addr}:4567;ist.recv_addr={addr}:4568;gcache.size=64M\"\n\
                 wsrep_sst_receive_address={addr}:4444\n\
                 wsrep_sst_method=rsync\n\
                 innodb_autoinc_lock_mode=2\n\
                 default_storage_engine=InnoDB\n",
                name = g.cluster_name,
                members = members.join(","),
            );
        }
        for line in &opts.extra_config {
            cnf.push_str(line);
            cnf.push('\n');
        }
        cnf
    }

    /// Spawns mariadbd (not waiting for readiness).
    fn spawn(&self, extra_args: &[&str]) -> Result<()> {
        let mut guard = self
            .child
            .lock()
            .map_err(|_| anyhow!("server state poisoned"))?;
        if let Some(child) = guard.as_mut()
            && child.is_running()
        {
            bail!(
                "{} is already running (pid {})",
                self.endpoint(),
                child.pid()
            );
        }
        let out_path = self.dir.join("mariadbd.out");
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&out_path)
            .with_context(|| format!("opening {}", out_path.display()))?;
        let err = out.try_clone().context("dup output file")?;
        let mut cmd = Command::new(MARIADBD);
        cmd.arg(format!("--defaults-file={}", self.config_path().display()))
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = GroupChild::spawn(cmd)?;
        let pid = child.pid();
        self.lease.register_pid(pid, "mariadbd");
        self.last_pid.store(pid, Ordering::Relaxed);
        *guard = Some(child);
        Ok(())
    }

    /// Waits until the server accepts the admin account over TCP and answers
    /// a query, failing early (with the error log tail) if mariadbd exits.
    async fn wait_ready(&self) -> Result<()> {
        let deadline = Instant::now() + self.ready_timeout;
        let probe = if self.galera.is_some() {
            // Allowed also while a node is not (yet) in the primary component.
            "SHOW GLOBAL STATUS LIKE 'wsrep_ready'"
        } else {
            "SELECT 1"
        };
        loop {
            if let Some(status) = self.exit_status()? {
                bail!(
                    "mariadbd for {} exited during startup ({status})\n--- {} ---\n{}",
                    self.endpoint(),
                    self.error_log().display(),
                    tail_file(&self.error_log(), LOG_TAIL_LINES)
                );
            }
            let last_err = match self.try_query_drop(probe).await {
                Ok(()) => return Ok(()),
                Err(e) => format!("{e:#}"),
            };
            if Instant::now() >= deadline {
                bail!(
                    "mariadbd for {} not ready within {:?}: {last_err}\n--- {} ---\n{}",
                    self.endpoint(),
                    self.ready_timeout,
                    self.error_log().display(),
                    tail_file(&self.error_log(), LOG_TAIL_LINES)
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    async fn try_query_drop(&self, sql: &str) -> Result<()> {
        let mut conn = self.conn().await?;
        let res = conn.query_drop(sql).await;
        let _ = conn.disconnect().await;
        res.with_context(|| format!("{sql} on {}", self.endpoint()))
    }

    fn exit_status(&self) -> Result<Option<std::process::ExitStatus>> {
        let mut guard = self
            .child
            .lock()
            .map_err(|_| anyhow!("server state poisoned"))?;
        Ok(guard.as_mut().and_then(GroupChild::try_exited))
    }

    // ----- identity -------------------------------------------------------

    /// `"127.0.0.N:3306"`.
    pub fn endpoint(&self) -> String {
        format!("{}:{MARIADB_PORT}", self.address())
    }

    /// The server's address, e.g. `"127.0.0.42"`.
    pub fn address(&self) -> String {
        self.lease.addr()
    }

    /// The lease of the server's address.
    pub fn lease(&self) -> &AddressLease {
        &self.lease
    }

    /// Always [`MARIADB_PORT`] (3306).
    pub fn port(&self) -> u16 {
        MARIADB_PORT
    }

    /// The admin user ([`ADMIN_USER`]).
    pub fn user(&self) -> &str {
        ADMIN_USER
    }

    /// The admin password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The configured `server_id`.
    pub fn server_id(&self) -> u32 {
        self.server_id
    }

    /// Pid of the current (or last) mariadbd process; 0 before the first start.
    pub fn pid(&self) -> u32 {
        self.last_pid.load(Ordering::Relaxed)
    }

    /// Whether mariadbd is running (not killed, stopped or crashed).
    pub fn is_running(&self) -> bool {
        self.child
            .lock()
            .ok()
            .and_then(|mut g| g.as_mut().map(GroupChild::is_running))
            .unwrap_or(false)
    }

    /// The server's own directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The data directory (`<dir>/data`).
    pub fn datadir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The error log (`<dir>/error.log`).
    pub fn error_log(&self) -> PathBuf {
        self.dir.join("error.log")
    }

    /// The config file (`<dir>/my.cnf`).
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("my.cnf")
    }

    /// The unix socket (`<dir>/mysqld.sock`), where `root` can log in
    /// without a password.
    pub fn socket_path(&self) -> PathBuf {
        self.dir.join("mysqld.sock")
    }

    /// Galera settings, if this is a Galera node.
    pub fn galera_options(&self) -> Option<&GaleraOptions> {
        self.galera.as_ref()
    }

    /// Writes the admin password to `<dir>/password` (mode 0600).
    pub fn write_password_file(&self) -> Result<PathBuf> {
        write_password_file(&self.dir, &self.password)
    }

    // ----- SQL helpers ----------------------------------------------------

    /// Connection options for the admin account over TCP (never the socket).
    pub fn mysql_opts(&self) -> Opts {
        OptsBuilder::default()
            .ip_or_hostname(self.address())
            .tcp_port(MARIADB_PORT)
            .user(Some(ADMIN_USER))
            .pass(Some(self.password.clone()))
            .prefer_socket(false)
            .into()
    }

    /// Connection options for `root` over the unix socket.
    pub fn root_socket_opts(&self) -> Opts {
        OptsBuilder::default()
            .socket(Some(self.socket_path().to_string_lossy().into_owned()))
            .user(Some("root"))
            .into()
    }

    /// A new admin connection over TCP (5 s connect timeout).
    pub async fn conn(&self) -> Result<Conn> {
        match tokio::time::timeout(CONNECT_TIMEOUT, Conn::new(self.mysql_opts())).await {
            Ok(res) => res.with_context(|| format!("connecting to {}", self.endpoint())),
            Err(_) => bail!(
                "connecting to {} timed out after {CONNECT_TIMEOUT:?}",
                self.endpoint()
            ),
        }
    }

    /// Runs one statement (or several separated by `;`) on a new connection.
    pub async fn exec(&self, sql: &str) -> Result<()> {
        self.try_query_drop(sql).await
    }

    /// Runs a query on a new connection and returns all rows.
    pub async fn query_rows<T>(&self, sql: &str) -> Result<Vec<T>>
    where
        T: FromRow + Send + 'static,
    {
        let mut conn = self.conn().await?;
        let res = conn.query::<T, _>(sql).await;
        let _ = conn.disconnect().await;
        res.with_context(|| format!("{sql} on {}", self.endpoint()))
    }

    /// Runs a query on a new connection and returns the first row, if any.
    pub async fn query_first<T>(&self, sql: &str) -> Result<Option<T>>
    where
        T: FromRow + Send + 'static,
    {
        let mut conn = self.conn().await?;
        let res = conn.query_first::<T, _>(sql).await;
        let _ = conn.disconnect().await;
        res.with_context(|| format!("{sql} on {}", self.endpoint()))
    }

    /// `SHOW GLOBAL STATUS` value of `name` (e.g. `wsrep_cluster_size`).
    pub async fn global_status(&self, name: &str) -> Result<Option<String>> {
        check_identifier(name)?;
        let row: Option<(String, String)> = self
            .query_first(&format!("SHOW GLOBAL STATUS LIKE '{name}'"))
            .await?;
        Ok(row.map(|(_, v)| v))
    }

    /// Value of the global system variable `name` (e.g. `gtid_binlog_pos`).
    pub async fn global_variable(&self, name: &str) -> Result<Option<String>> {
        check_identifier(name)?;
        let row: Option<(String, String)> = self
            .query_first(&format!("SHOW GLOBAL VARIABLES LIKE '{name}'"))
            .await?;
        Ok(row.map(|(_, v)| v))
    }

    // ----- process control ------------------------------------------------

    /// Sends `sig` to the mariadbd process (not its group).
    pub fn signal(&self, sig: Signal) -> Result<()> {
        let mut guard = self
            .child
            .lock()
            .map_err(|_| anyhow!("server state poisoned"))?;
        match guard.as_mut() {
            Some(child) => child.signal(sig),
            None => bail!("{} was never started", self.endpoint()),
        }
    }

    /// Crashes the server: SIGKILLs its process group (mariadbd and any SST
    /// helpers) and reaps it, so its ports are closed when this returns. The
    /// data directory is kept; see [`MariaDbServer::start_again`].
    pub fn kill_9(&self) -> Result<()> {
        let mut guard = self
            .child
            .lock()
            .map_err(|_| anyhow!("server state poisoned"))?;
        let child = guard
            .as_mut()
            .ok_or_else(|| anyhow!("{} was never started", self.endpoint()))?;
        if !child.is_running() {
            bail!("{} is not running", self.endpoint());
        }
        child.kill_group_and_reap();
        self.lease.unregister_pid(child.pid());
        Ok(())
    }

    /// Freezes mariadbd with SIGSTOP (sockets stay open, nothing answers).
    pub fn sigstop(&self) -> Result<()> {
        self.signal(Signal::Stop)
    }

    /// Resumes mariadbd after [`MariaDbServer::sigstop`].
    pub fn sigcont(&self) -> Result<()> {
        self.signal(Signal::Cont)
    }

    /// Clean shutdown: SIGTERM (plus SIGCONT in case it is frozen), then waits
    /// up to 60 s for the process to exit. On timeout the server is killed
    /// and an error returned.
    pub async fn stop(&self) -> Result<()> {
        self.signal(Signal::Term)?;
        let _ = self.signal(Signal::Cont);
        let res = wait_exit(STOP_TIMEOUT, || self.exit_status().ok().flatten()).await;
        let pid = self.pid();
        self.lease.unregister_pid(pid);
        match res {
            Ok(_) => {
                if let Ok(mut guard) = self.child.lock()
                    && let Some(child) = guard.as_mut()
                {
                    child.finish();
                }
                Ok(())
            }
            Err(e) => {
                if let Ok(mut guard) = self.child.lock()
                    && let Some(child) = guard.as_mut()
                {
                    child.kill_group_and_reap();
                }
                Err(e).with_context(|| {
                    format!(
                        "stopping {}\n--- {} ---\n{}",
                        self.endpoint(),
                        self.error_log().display(),
                        tail_file(&self.error_log(), LOG_TAIL_LINES)
                    )
                })
            }
        }
    }

    /// Starts mariadbd again on the same data directory and config (after
    /// [`stop`](Self::stop) or [`kill_9`](Self::kill_9)) and waits until it
    /// accepts connections. A Galera node rejoins its cluster (no
    /// `--wsrep-new-cluster`).
    pub async fn start_again(&self) -> Result<()> {
        self.start_again_with_args(&[]).await
    }

    /// Like [`start_again`](Self::start_again) with extra `mariadbd`
    /// arguments, e.g. `["--wsrep-new-cluster"]`.
    pub async fn start_again_with_args(&self, args: &[&str]) -> Result<()> {
        self.spawn(args)?;
        self.wait_ready().await
    }
}

impl Drop for MariaDbServer {
    fn drop(&mut self) {
        if let Ok(mut guard) = self.child.lock()
            && let Some(child) = guard.as_mut()
        {
            child.kill_group_and_reap();
            self.lease.unregister_pid(child.pid());
        }
        if !keep_dirs() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Writes `password` to `<dir>/password` with mode 0600 (no trailing newline)
/// and returns the file's path.
pub fn write_password_file(dir: &Path, password: &str) -> Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join("password");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("chmod {}", path.display()))?;
    file.write_all(password.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Quotes a string as an SQL literal.
pub(crate) fn sql_quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

fn check_identifier(name: &str) -> Result<()> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        bail!("invalid variable name {name:?}");
    }
    Ok(())
}
