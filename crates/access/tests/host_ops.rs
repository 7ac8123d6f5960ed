//! The host-level primitives of a deploy (directories, ports, packages, services, SQL
//! through the local client) against real things: this machine through `LocalHost`, and
//! the same machine through `SshHost` and a real sshd (`nines_testkit::Sshd`) on a
//! leased loopback address. The service tests initialise real datadirs and run real
//! `mariadbd` processes, killed by pid by a guard even when a test panics.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::ErrorKind;
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nines_access::host::service::{ServiceKind, ServiceSpec};
use nines_access::host::{
    HostAccess, HostError, LocalHost, PackageManager, SshHost, SshTarget, fs, packages, ports,
    service, sql,
};
use nines_testkit::{AddressLease, Sshd, lease_address, port_is_open};

const T: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------
// Fixtures.
// ---------------------------------------------------------------------------------------

/// A leased address with a real sshd on it, and host access over it.
struct SshFixture {
    host: SshHost,
    _sshd: Sshd,
    lease: AddressLease,
}

async fn ssh_fixture() -> SshFixture {
    let lease = tokio::task::spawn_blocking(lease_address)
        .await
        .unwrap()
        .expect("lease an address");
    let sshd = Sshd::start(&[lease.addr()]).await.expect("start sshd");
    let mut target = SshTarget::new(lease.addr(), sshd.user());
    target.port = sshd.port();
    target.key_path = Some(sshd.private_key());
    target.config_file = Some(sshd.ssh_config());
    target.connect_timeout = Duration::from_secs(5);
    SshFixture {
        host: SshHost::new(target),
        _sshd: sshd,
        lease,
    }
}

/// A temporary directory every user can traverse (servers run as `mysql`).
fn shared_tempdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

fn path_str(p: &Path) -> String {
    p.to_str().expect("utf-8 path").to_owned()
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn user_ids(name: &str) -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 4 && f[0] == name)
        .map(|f| (f[2].parse().unwrap(), f[3].parse().unwrap()))
        .unwrap_or_else(|| panic!("user {name} not in /etc/passwd"))
}

/// The process no longer runs: no /proc entry, or a zombie waiting for its reaper.
fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with(['Z', 'X'])),
        Err(_) => true,
    }
}

fn is_invalid_input(e: &HostError) -> bool {
    matches!(e, HostError::Io { source, .. } if source.kind() == ErrorKind::InvalidInput)
}

/// Poll `check` until it is true or `timeout` passes.
async fn eventually(timeout: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------
// A MariaDB node directory, and a guard that kills its server by pid.
// ---------------------------------------------------------------------------------------

struct Node {
    dir: tempfile::TempDir,
    addr: String,
    spec: ServiceSpec,
}

impl Node {
    /// A node directory for a server on `addr:3306` with a minimal config (plus `extra`
    /// lines), owned by mysql; the datadir initialised unless `init` is false.
    fn prepare(addr: &str, extra: &str, init: bool) -> Node {
        let dir = shared_tempdir();
        let d = dir.path();
        std::fs::create_dir(d.join("data")).expect("mkdir data");
        // A private tmpdir: concurrent `mariadb-install-db` runs sharing /tmp collide
        // on their temporary table names and fail.
        std::fs::create_dir(d.join("tmp")).expect("mkdir tmp");
        let cfg = d.join("my.cnf");
        std::fs::write(
            &cfg,
            format!(
                "[mysqld]\n\
                 user=mysql\n\
                 datadir={d}/data\n\
                 socket={d}/mysqld.sock\n\
                 pid-file={d}/mysqld.pid\n\
                 log-error={d}/error.log\n\
                 tmpdir={d}/tmp\n\
                 bind-address={addr}\n\
                 port=3306\n\
                 innodb_buffer_pool_size=32M\n\
                 innodb_log_file_size=16M\n\
                 performance_schema=OFF\n\
                 skip-name-resolve\n\
                 {extra}\n",
                d = d.display()
            ),
        )
        .expect("write my.cnf");
        let (uid, gid) = user_ids("mysql");
        for p in [d.to_path_buf(), d.join("data"), d.join("tmp"), cfg.clone()] {
            std::os::unix::fs::chown(&p, Some(uid), Some(gid)).expect("chown");
        }
        if init {
            let out = Command::new("mariadb-install-db")
                .arg(format!("--defaults-file={}", cfg.display()))
                .args([
                    "--user=mysql",
                    "--auth-root-authentication-method=socket",
                    "--skip-test-db",
                ])
                .output()
                .expect("run mariadb-install-db");
            assert!(
                out.status.success(),
                "mariadb-install-db failed: {}{}\n--- error.log ---\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                std::fs::read_to_string(d.join("error.log")).unwrap_or_default()
            );
        }
        let spec = ServiceSpec::new(
            format!("nines-mariadb-{addr}-3306"),
            path_str(&cfg),
            path_str(&d.join("mysqld.pid")),
            path_str(&d.join("error.log")),
        );
        Node {
            dir,
            addr: addr.to_owned(),
            spec,
        }
    }

    fn socket(&self) -> String {
        path_str(&self.dir.path().join("mysqld.sock"))
    }

    fn guard(&self) -> ServerGuard {
        ServerGuard {
            files: vec![
                PathBuf::from(&self.spec.pid_file),
                PathBuf::from(self.spec.launch_file()),
            ],
            config: self.spec.config_file.clone(),
        }
    }
}

/// Kills (SIGKILL, by pid) whatever server runs with this config, on drop: also when
/// a test panics halfway. Declare it after the node so it drops first.
struct ServerGuard {
    files: Vec<PathBuf>,
    config: String,
}

impl ServerGuard {
    fn live_pids(&self) -> Vec<u32> {
        let want = format!("--defaults-file={}", self.config);
        let mut pids: Vec<u32> = self
            .files
            .iter()
            .filter_map(|f| std::fs::read_to_string(f).ok())
            .filter_map(|s| s.trim().parse().ok())
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| c.split(|b| *b == 0).any(|arg| arg == want.as_bytes()))
            })
            .collect();
        pids.dedup();
        pids
    }
}

impl Drop for ServerGuard {
    fn drop(&mut self) {
        for pid in self.live_pids() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// fs
// ---------------------------------------------------------------------------------------

async fn check_probe_dir(h: &dyn HostAccess) {
    let dir = shared_tempdir();
    let base = path_str(dir.path());
    std::fs::create_dir(dir.path().join("full")).unwrap();
    std::fs::write(dir.path().join("full/file"), "x").unwrap();
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let before = names_in(dir.path());

    // Absent, two levels down.
    let p = fs::probe_dir(h, &format!("{base}/a/b/"), T).await.unwrap();
    assert_eq!(p.path, format!("{base}/a/b"));
    assert!(!p.exists && !p.is_dir && p.empty, "{p:?}");
    assert_eq!(p.nearest_existing_ancestor, base);
    assert!(p.ancestor_writable, "{p:?}");
    assert!(p.free_bytes.is_some_and(|b| b > 0), "{p:?}");

    // A directory with a file in it.
    let p = fs::probe_dir(h, &format!("{base}/full"), T).await.unwrap();
    assert!(p.exists && p.is_dir && !p.empty, "{p:?}");
    assert_eq!(p.nearest_existing_ancestor, format!("{base}/full"));
    assert!(p.ancestor_writable);

    // An empty directory.
    let p = fs::probe_dir(h, &format!("{base}/empty"), T).await.unwrap();
    assert!(p.exists && p.is_dir && p.empty, "{p:?}");

    // A file is not an empty directory.
    let p = fs::probe_dir(h, &format!("{base}/full/file"), T)
        .await
        .unwrap();
    assert!(p.exists && !p.is_dir && !p.empty, "{p:?}");
    assert_eq!(p.nearest_existing_ancestor, format!("{base}/full"));

    // Under /proc root passes `test -w`, but cannot create anything.
    let p = fs::probe_dir(h, "/proc/nines-probe-test/data", T)
        .await
        .unwrap();
    assert!(!p.exists && p.empty, "{p:?}");
    assert_eq!(p.nearest_existing_ancestor, "/proc");
    assert!(!p.ancestor_writable, "{p:?}");

    // The probes left nothing behind.
    assert_eq!(names_in(dir.path()), before);
    assert_eq!(names_in(&dir.path().join("full")), ["file"]);
    assert!(names_in(&dir.path().join("empty")).is_empty());

    // A relative path is refused before anything runs.
    let e = fs::probe_dir(h, "relative/dir", T).await.unwrap_err();
    assert!(is_invalid_input(&e), "{e}");
    assert!(e.to_string().starts_with(&h.describe()), "{e}");
}

#[tokio::test]
async fn probe_dir_locally() {
    check_probe_dir(&LocalHost::new()).await;
}

#[tokio::test]
async fn probe_dir_over_ssh() {
    let f = ssh_fixture().await;
    check_probe_dir(&f.host).await;
}

async fn check_dir_changes(h: &dyn HostAccess) {
    let dir = shared_tempdir();
    let base = path_str(dir.path());
    let target = format!("{base}/srv/node1/data");

    for _ in 0..2 {
        // Twice: idempotent.
        fs::ensure_dir(h, &target, Some("mysql:mysql"), 0o750, T)
            .await
            .unwrap();
        let meta = std::fs::metadata(&target).unwrap();
        assert!(meta.is_dir());
        assert_eq!((meta.uid(), meta.gid()), user_ids("mysql"));
        assert_eq!(meta.mode() & 0o7777, 0o750);
    }
    // Without an owner, only the mode changes.
    fs::ensure_dir(h, &target, None, 0o700, T).await.unwrap();
    let meta = std::fs::metadata(&target).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o700);
    assert_eq!(meta.uid(), user_ids("mysql").0);

    assert!(fs::file_exists(h, &target, T).await.unwrap());
    assert!(
        !fs::file_exists(h, &format!("{base}/nothing/here"), T)
            .await
            .unwrap()
    );

    // A file in the way is an error naming the host.
    std::fs::write(dir.path().join("file"), "x").unwrap();
    let e = fs::ensure_dir(h, &format!("{base}/file"), None, 0o755, T)
        .await
        .unwrap_err();
    assert!(matches!(e, HostError::CommandFailed { .. }), "{e}");
    assert!(e.to_string().starts_with(&h.describe()), "{e}");
    let e = fs::ensure_dir(h, &target, Some("mysql; rm -rf /"), 0o755, T)
        .await
        .unwrap_err();
    assert!(is_invalid_input(&e), "{e}");

    // Dangerous removals are refused.
    for bad in [
        "/",
        "/srv",
        "/var/lib/",
        "/etc",
        "",
        "/tmp/../etc/x",
        "relative/x",
    ] {
        let e = fs::remove_tree(h, bad, T).await.unwrap_err();
        assert!(is_invalid_input(&e), "{bad:?}: {e}");
        assert!(e.to_string().contains("refusing to remove"), "{e}");
    }
    assert!(Path::new("/etc/passwd").exists());

    // A real tree goes, and removing it again is fine.
    std::fs::write(Path::new(&target).join("ibdata1"), "x").unwrap();
    fs::remove_tree(h, &format!("{base}/srv"), T).await.unwrap();
    assert!(!dir.path().join("srv").exists());
    assert!(!fs::file_exists(h, &target, T).await.unwrap());
    fs::remove_tree(h, &format!("{base}/srv"), T).await.unwrap();
    assert_eq!(names_in(dir.path()), ["file"]);
}

#[tokio::test]
async fn dir_changes_locally() {
    check_dir_changes(&LocalHost::new()).await;
}

#[tokio::test]
async fn dir_changes_over_ssh() {
    let f = ssh_fixture().await;
    check_dir_changes(&f.host).await;
}

// ---------------------------------------------------------------------------------------
// ports
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn listening_sees_a_real_listener() {
    let f = ssh_fixture().await;
    let addr = f.lease.addr();
    let listener = TcpListener::bind((f.lease.ip(), 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    // A port that was free a moment ago on our own leased address (nobody else binds it).
    let free_port = TcpListener::bind((f.lease.ip(), 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let hosts: [&dyn HostAccess; 2] = [&LocalHost::new(), &f.host];
    for h in hosts {
        let ls = ports::listening(h, T).await.unwrap();
        let found = ports::port_taken(&ls, &addr, port)
            .unwrap_or_else(|| panic!("{addr}:{port} not found in {ls:?}"));
        assert_eq!(found.address, addr);
        assert_eq!(found.port, port);
        assert_eq!(found.to_string(), format!("{addr}:{port}"));
        assert_eq!(ports::port_taken(&ls, &addr, free_port), None);
        // The sshd of the fixture listens too.
        assert!(ports::port_taken(&ls, &addr, f.host.target().port).is_some());
    }
    drop(listener);
    let ls = ports::listening(&f.host, T).await.unwrap();
    assert_eq!(ports::port_taken(&ls, &addr, port), None);
}

// ---------------------------------------------------------------------------------------
// packages (queries only: nothing is installed)
// ---------------------------------------------------------------------------------------

const MADE_UP: &str = "nines-no-such-package-4711";

async fn check_package_queries(h: &dyn HostAccess) {
    let got = packages::installed(h, PackageManager::Apt, &["mariadb-server", MADE_UP], T)
        .await
        .unwrap();
    assert_eq!(
        got,
        vec![
            ("mariadb-server".to_owned(), true),
            (MADE_UP.to_owned(), false)
        ]
    );

    let got = packages::installable(
        h,
        PackageManager::Apt,
        &["mariadb-server", MADE_UP, "galera-4"],
        T,
    )
    .await
    .unwrap();
    assert_eq!(got.len(), 3);
    assert_eq!(got[1], (MADE_UP.to_owned(), None));
    let has_lists = std::fs::read_dir("/var/lib/apt/lists").is_ok_and(|entries| {
        entries.filter_map(Result::ok).any(|e| {
            e.file_name().to_string_lossy().ends_with("_Packages")
                || e.file_name().to_string_lossy().contains("_Packages.")
        })
    });
    if has_lists {
        let candidate = got[0].1.as_deref().expect("a candidate for mariadb-server");
        assert!(candidate.contains("10."), "{candidate}");
        assert!(got[2].1.is_some(), "galera-4: {got:?}");
    } else {
        eprintln!("note: no apt lists on this machine; candidate versions not checked");
    }

    // Bad names are refused before anything runs; empty asks are empty answers.
    let e = packages::installed(h, PackageManager::Apt, &["-oAPT::x=1"], T)
        .await
        .unwrap_err();
    assert!(is_invalid_input(&e), "{e}");
    assert!(
        packages::installed(h, PackageManager::Apt, &[], T)
            .await
            .unwrap()
            .is_empty()
    );
    // zypper is not supported, and says so.
    let e = packages::install(h, PackageManager::Zypper, &["mariadb"], T)
        .await
        .unwrap_err();
    assert!(
        matches!(e, HostError::Io { ref source, .. } if source.kind() == ErrorKind::Unsupported),
        "{e}"
    );
}

#[tokio::test]
async fn package_queries_locally() {
    check_package_queries(&LocalHost::new()).await;
}

#[tokio::test]
async fn package_queries_over_ssh() {
    let f = ssh_fixture().await;
    check_package_queries(&f.host).await;
}

// ---------------------------------------------------------------------------------------
// service (Process kind) and sql
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn process_service_lifecycle_over_ssh() {
    let f = ssh_fixture().await;
    let h: &dyn HostAccess = &f.host;
    let local = LocalHost::new();
    let node = Node::prepare(&f.lease.addr(), "", true);
    let _guard = node.guard();
    let spec = &node.spec;
    let kind = ServiceKind::Process;
    let addr = node.addr.clone();

    // Nothing on the port, nothing running.
    let ls = ports::listening(h, T).await.unwrap();
    assert_eq!(ports::port_taken(&ls, &addr, 3306), None);
    let st = service::status(h, kind, spec, T).await.unwrap();
    assert!(!st.running && st.pid.is_none(), "{st:?}");

    // Start; the pid is the pid file's and the status's.
    let pid = service::start(h, kind, spec, &[], Duration::from_secs(60))
        .await
        .unwrap();
    let pid_file = std::fs::read_to_string(&spec.pid_file).unwrap();
    assert_eq!(pid_file.trim(), pid.to_string());
    let st = service::status(h, kind, spec, T).await.unwrap();
    assert!(st.running, "{st:?}");
    assert_eq!(st.pid, Some(pid));
    // Running as mysql, in its own session (not the ssh session's).
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(
        uid_line.split_whitespace().nth(2).unwrap(),
        user_ids("mysql").0.to_string()
    );
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
    assert_eq!(
        fields[3],
        pid.to_string(),
        "session id is the server's own pid"
    );

    // SQL as the socket-authenticated root.
    sql::wait_sql_ready(h, &node.socket(), T).await.unwrap();
    let out = sql::run_sql(h, &node.socket(), "CREATE DATABASE x; SHOW DATABASES", T)
        .await
        .unwrap();
    assert!(out.lines().any(|l| l == "x"), "{out}");
    assert!(out.lines().any(|l| l == "mysql"), "{out}");
    let who = sql::run_sql(h, &node.socket(), "SELECT CURRENT_USER()", T)
        .await
        .unwrap();
    assert_eq!(who.trim(), "root@localhost");

    // Errors carry the client's message but never the SQL.
    let e = sql::run_sql(h, &node.socket(), "SELECT * FROM mysql.nines_nope", T)
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("doesn't exist"), "{msg}");
    assert!(msg.starts_with(&h.describe()), "{msg}");
    assert!(!msg.contains("SELECT"), "{msg}");
    let e = sql::run_sql(
        h,
        &node.socket(),
        "CREATE USER 'a'@'%' IDENTIFIED BYY 'Sup3rSecret'",
        T,
    )
    .await
    .unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("ERROR 1064"), "{msg}");
    assert!(!msg.contains("Sup3rSecret"), "{msg}");
    assert!(!msg.contains("IDENTIFIED"), "{msg}");

    // The port is taken now.
    let ls = ports::listening(h, T).await.unwrap();
    let l = ports::port_taken(&ls, &addr, 3306).expect("mariadbd listens");
    assert_eq!(l.address, addr);

    // Starting again while running: nothing happens, same pid.
    assert_eq!(service::start(h, kind, spec, &[], T).await.unwrap(), pid);

    // A recovery run is refused while the server runs.
    let e = service::wsrep_recover(h, spec, T).await.unwrap_err();
    assert!(e.to_string().contains("is running"), "{e}");

    // The server outlives the ssh connection that started it.
    f.host.shutdown().await;
    let st = service::status(&local, kind, spec, T).await.unwrap();
    assert_eq!(st.pid, Some(pid));

    // A clean stop over a new connection: gone, pid file removed, port closed.
    let f2 = SshHost::new(f.host.target().clone());
    let h: &dyn HostAccess = &f2;
    service::stop(h, kind, spec, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(process_gone(pid));
    let st = service::status(h, kind, spec, T).await.unwrap();
    assert!(!st.running && st.pid.is_none(), "{st:?}");
    assert!(!Path::new(&spec.pid_file).exists());
    assert!(!Path::new(&spec.launch_file()).exists());
    assert!(!port_is_open(&addr, 3306));
    let ls = ports::listening(h, T).await.unwrap();
    assert_eq!(ports::port_taken(&ls, &addr, 3306), None);
    // Stopping a stopped server is fine.
    service::stop(h, kind, spec, T).await.unwrap();

    // The datadir survives a restart.
    let pid2 = service::start(h, kind, spec, &[], Duration::from_secs(60))
        .await
        .unwrap();
    assert_ne!(pid2, pid);
    sql::wait_sql_ready(h, &node.socket(), T).await.unwrap();
    let out = sql::run_sql(h, &node.socket(), "SHOW DATABASES LIKE 'x'", T)
        .await
        .unwrap();
    assert_eq!(out.trim(), "x");

    // kill: SIGKILL, gone, stale pid file removed.
    service::kill(h, kind, spec, T).await.unwrap();
    assert!(process_gone(pid2));
    assert!(!Path::new(&spec.pid_file).exists());
    assert!(!service::status(h, kind, spec, T).await.unwrap().running);

    // wsrep recovery on the stopped (non-Galera) datadir runs and returns the log.
    let log = service::wsrep_recover(h, spec, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(log.contains("InnoDB"), "{log}");
    assert!(log.contains("WSREP"), "{log}");
    assert_eq!(
        nines_access::server::parse::parse_wsrep_recover(&log),
        None,
        "no Galera position without Galera"
    );
    assert!(!service::status(h, kind, spec, T).await.unwrap().running);

    // remove: stops a running server and leaves no helper files.
    service::start(h, kind, spec, &[], Duration::from_secs(60))
        .await
        .unwrap();
    assert!(Path::new(&spec.launch_file()).exists());
    service::remove(h, kind, spec, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(!service::status(h, kind, spec, T).await.unwrap().running);
    assert!(!Path::new(&spec.launch_file()).exists());
    assert!(!Path::new(&spec.pid_file).exists());
    service::remove(h, kind, spec, T).await.unwrap();
    // What belongs to the caller stays.
    assert!(Path::new(&spec.config_file).exists());
    assert!(Path::new(&spec.log_file).exists());
    f2.shutdown().await;
}

#[tokio::test]
async fn start_failure_reports_the_error_log() {
    let lease = tokio::task::spawn_blocking(lease_address)
        .await
        .unwrap()
        .expect("lease an address");
    let h = LocalHost::new();
    let node = Node::prepare(&lease.addr(), "nines_bogus_option=1", false);
    let _guard = node.guard();
    let spec = &node.spec;

    // A stale pid file naming a live process that is not the server (this test).
    std::fs::write(&spec.pid_file, format!("{}\n", std::process::id())).unwrap();
    let st = service::status(&h, ServiceKind::Process, spec, T)
        .await
        .unwrap();
    assert!(!st.running, "a reused pid is not the server: {st:?}");

    let started = Instant::now();
    let e = service::start(&h, ServiceKind::Process, spec, &[], Duration::from_secs(60))
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(msg.starts_with("local: start nines-mariadb-"), "{msg}");
    assert!(msg.contains("exited during startup"), "{msg}");
    assert!(msg.contains("nines_bogus_option"), "{msg}");
    assert!(msg.contains(&spec.log_file), "{msg}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the failure was noticed at once"
    );
    assert!(
        !service::status(&h, ServiceKind::Process, spec, T)
            .await
            .unwrap()
            .running
    );
    // The log the start created belongs to the directory's owner (mysql), so the
    // server can reopen it after dropping privileges.
    let meta = std::fs::metadata(&spec.log_file).unwrap();
    assert_eq!(meta.uid(), user_ids("mysql").0);

    // Arguments that could break out of their word are refused.
    let e = service::start(&h, ServiceKind::Process, spec, &["--a b"], T)
        .await
        .unwrap_err();
    assert!(is_invalid_input(&e), "{e}");
    service::remove(&h, ServiceKind::Process, spec, T)
        .await
        .unwrap();
    assert!(!Path::new(&spec.launch_file()).exists());
}

#[tokio::test]
async fn process_service_with_extra_args_locally() {
    let lease = tokio::task::spawn_blocking(lease_address)
        .await
        .unwrap()
        .expect("lease an address");
    let h = LocalHost::new();
    let node = Node::prepare(&lease.addr(), "", true);
    let _guard = node.guard();
    let spec = &node.spec;
    let pid = service::start(
        &h,
        ServiceKind::Process,
        spec,
        &["--max-connections=77", "--read-only"],
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    assert!(args.contains(&&b"--max-connections=77"[..]), "{cmdline:?}");
    sql::wait_sql_ready(&h, &node.socket(), T).await.unwrap();
    let out = sql::run_sql(
        &h,
        &node.socket(),
        "SELECT @@max_connections, @@read_only",
        T,
    )
    .await
    .unwrap();
    assert_eq!(out.trim(), "77\t1");

    // Readiness on a socket that never answers times out, naming the socket.
    let e = sql::wait_sql_ready(&h, "/nonexistent/mysqld.sock", Duration::from_millis(600))
        .await
        .unwrap_err();
    assert!(matches!(e, HostError::Timeout { .. }), "{e}");
    assert!(e.to_string().contains("/nonexistent/mysqld.sock"), "{e}");

    // A stop that cannot finish in time (the server is frozen with SIGSTOP) names the
    // pid, does not escalate, and leaves the server to die of the pending SIGTERM.
    let sig = |s: &str| {
        let ok = Command::new("kill")
            .args([s, &pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {s} {pid}");
    };
    sig("-STOP");
    let e = service::stop(&h, ServiceKind::Process, spec, Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(matches!(e, HostError::Timeout { .. }), "{e}");
    assert!(e.to_string().contains(&format!("pid {pid}")), "{e}");
    let st = service::status(&h, ServiceKind::Process, spec, T)
        .await
        .unwrap();
    assert_eq!(st.pid, Some(pid), "still there after a timed-out stop");
    sig("-CONT");
    eventually(Duration::from_secs(60), "the server to exit", || {
        process_gone(pid)
    })
    .await;
    assert!(
        !service::status(&h, ServiceKind::Process, spec, T)
            .await
            .unwrap()
            .running
    );
    assert!(!port_is_open(&node.addr, 3306));
    service::remove(&h, ServiceKind::Process, spec, T)
        .await
        .unwrap();
    assert!(!Path::new(&spec.launch_file()).exists());
}
