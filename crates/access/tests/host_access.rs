//! Host access against real things: `LocalHost` on this machine, and `SshHost` against
//! a real OpenSSH server that each test starts on its own loopback address
//! ([`start_sshd`]), with generated host and client keys and strict host key checking.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nines_access::host::{
    HostAccess, HostCommand, HostError, LocalHost, MAX_CONCURRENT_COMMANDS, SshHost, SshTarget,
    cpu_usage, host_facts, host_metrics,
};

const T: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------
// A real sshd for the tests.
// ---------------------------------------------------------------------------------------

/// A running `sshd -D` on 127.0.0.N:port, killed on drop (also when a test panics).
struct TestSshd {
    child: Child,
    dir: tempfile::TempDir,
    addr: Ipv4Addr,
    port: u16,
}

impl TestSshd {
    fn host(&self) -> String {
        self.addr.to_string()
    }
    fn port(&self) -> u16 {
        self.port
    }
    fn user(&self) -> &str {
        "root"
    }
    fn private_key(&self) -> PathBuf {
        self.dir.path().join("client_key")
    }
    fn known_hosts(&self) -> PathBuf {
        self.dir.path().join("known_hosts")
    }
    fn ssh_config(&self) -> PathBuf {
        self.dir.path().join("ssh_config")
    }
    fn dir(&self) -> &Path {
        self.dir.path()
    }
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// A target that trusts this server through the generated ssh_config.
    fn target(&self) -> SshTarget {
        let mut t = SshTarget::new(self.host(), self.user());
        t.port = self.port();
        t.key_path = Some(self.private_key());
        t.config_file = Some(self.ssh_config());
        t.connect_timeout = Duration::from_secs(5);
        t
    }
}

impl Drop for TestSshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "nines-test", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .expect("run ssh-keygen");
    assert!(status.success(), "ssh-keygen failed for {}", path.display());
}

fn public_key(path: &Path) -> String {
    let text = std::fs::read_to_string(path.with_extension("pub")).expect("read public key");
    text.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Start a real sshd on a free 127.0.0.200-210 address and 2300-2399 port. The one
/// place to switch to `nines_testkit::Sshd` once it exists.
fn start_sshd() -> TestSshd {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = tempfile::tempdir().expect("tempdir");
    let host_key = dir.path().join("host_key");
    let client_key = dir.path().join("client_key");
    keygen(&host_key);
    keygen(&client_key);
    std::fs::write(
        dir.path().join("authorized_keys"),
        format!("{}\n", public_key(&client_key)),
    )
    .expect("write authorized_keys");
    std::fs::create_dir_all("/run/sshd").expect("mkdir /run/sshd");

    let salt = std::process::id();
    for _ in 0..60 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed) + salt;
        let addr = Ipv4Addr::new(127, 0, 0, 200 + (n % 11) as u8);
        let port = 2300 + ((n / 11 + n) % 100) as u16;
        if TcpListener::bind(SocketAddrV4::new(addr, port)).is_err() {
            continue;
        }
        let config = dir.path().join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "ListenAddress {addr}:{port}\n\
                 HostKey {host_key}\n\
                 AuthorizedKeysFile {dir}/authorized_keys\n\
                 PermitRootLogin prohibit-password\n\
                 PasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\n\
                 StrictModes no\n\
                 UsePAM no\n\
                 MaxSessions 10\n\
                 PidFile {dir}/sshd.pid\n",
                host_key = host_key.display(),
                dir = dir.path().display(),
            ),
        )
        .expect("write sshd_config");
        let log = std::fs::File::create(dir.path().join("sshd.log")).expect("log file");
        let mut child = Command::new("/usr/sbin/sshd")
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start sshd");
        let deadline = Instant::now() + Duration::from_secs(10);
        let listening = loop {
            if TcpStream::connect(SocketAddrV4::new(addr, port)).is_ok() {
                break true;
            }
            if child.try_wait().expect("poll sshd").is_some() || Instant::now() > deadline {
                break false;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if !listening {
            // Lost a race for the port (or sshd refused to start): try the next one.
            let _ = child.kill();
            let _ = child.wait();
            continue;
        }
        std::fs::write(
            dir.path().join("known_hosts"),
            format!("[{addr}]:{port} {}\n", public_key(&host_key)),
        )
        .expect("write known_hosts");
        std::fs::write(
            dir.path().join("ssh_config"),
            format!(
                "Host *\n  UserKnownHostsFile {}\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n",
                dir.path().join("known_hosts").display()
            ),
        )
        .expect("write ssh_config");
        return TestSshd {
            child,
            dir,
            addr,
            port,
        };
    }
    panic!("could not start sshd on any 127.0.0.200-210:2300-2399 address");
}

/// Poll `check` every 20 ms until it holds or `within` passes.
fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if check() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether the process whose `/proc/<pid>/stat` this is still runs (a zombie does not).
fn alive(stat_path: &str) -> bool {
    match std::fs::read_to_string(stat_path) {
        Err(_) => false,
        Ok(s) => !s
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o7777
}

fn nul_split(bytes: &[u8]) -> Vec<String> {
    let mut parts: Vec<String> = bytes
        .split(|b| *b == 0)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    assert_eq!(parts.pop().as_deref(), Some(""), "output must end in NUL");
    parts
}

const TRICKY_ARGS: &[&str] = &[
    "plain",
    "two words",
    "it's",
    "\"double\"",
    "$HOME",
    "`id`",
    "$(id)",
    "back\\slash",
    "",
    "!bang",
    "*",
    ";",
    "a\nb",
    "tab\there",
    "~",
    "-n",
];

fn printf_tricky() -> HostCommand {
    HostCommand::new("printf")
        .arg("%s\\0")
        .args(TRICKY_ARGS.iter().copied())
}

// ---------------------------------------------------------------------------------------
// Shared checks, run against both transports.
// ---------------------------------------------------------------------------------------

async fn check_files(h: &dyn HostAccess, dir: &Path) {
    let path = dir.join("my file.cnf");
    let p = path.to_str().expect("utf8 path");
    let contents: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    h.write_file(p, &contents, 0o640, T).await.expect("write");
    assert_eq!(std::fs::read(&path).expect("read back"), contents);
    assert_eq!(mode_of(&path), 0o640);
    assert_eq!(h.read_file(p, T).await.expect("read"), contents);

    // Overwrite in place with another mode; no temporary file is left behind.
    h.write_file(p, b"second\n", 0o600, T)
        .await
        .expect("overwrite");
    assert_eq!(h.read_file(p, T).await.expect("read"), b"second\n");
    assert_eq!(mode_of(&path), 0o600);
    let names: Vec<String> = std::fs::read_dir(dir)
        .expect("readdir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["my file.cnf"]);

    let missing = dir.join("missing");
    let err = h
        .read_file(missing.to_str().expect("utf8"), T)
        .await
        .expect_err("missing file");
    assert!(err.is_not_found(), "{err:?}");
    assert!(err.to_string().starts_with(&h.describe()), "{err}");

    let nowhere = dir.join("no/such/dir/f");
    let err = h
        .write_file(nowhere.to_str().expect("utf8"), b"x", 0o644, T)
        .await
        .expect_err("missing directory");
    assert!(err.is_not_found(), "{err:?}");
}

async fn check_nonzero_exit(h: &dyn HostAccess) {
    let out = h
        .run(
            &HostCommand::shell("echo partial; echo 'it broke' >&2; exit 3"),
            T,
        )
        .await
        .expect("run");
    assert_eq!(out.status, Some(3));
    assert_eq!(out.stdout, b"partial\n");
    match out.check() {
        Err(HostError::CommandFailed {
            host,
            program,
            status,
            stderr,
        }) => {
            assert_eq!(host, h.describe());
            assert_eq!(program, "sh");
            assert_eq!(status, Some(3));
            assert_eq!(stderr, "it broke");
        }
        other => panic!("expected CommandFailed, got {other:?}"),
    }

    let err = h
        .run(&HostCommand::new("nines-no-such-program"), T)
        .await
        .expect("run")
        .check()
        .expect_err("missing program");
    match &err {
        HostError::CommandFailed { status, stderr, .. } => {
            assert_eq!(*status, Some(127), "{err}");
            assert!(stderr.contains("nines-no-such-program"), "{err}");
        }
        other => panic!("expected CommandFailed, got {other:?}"),
    }
}

async fn check_facts(h: &dyn HostAccess) {
    let facts = host_facts(h, "/tmp/nines/not/yet/created", T)
        .await
        .expect("facts");
    let cpus = std::thread::available_parallelism().expect("cpus").get();
    assert_eq!(facts.cpu_count as usize, cpus);
    assert!(facts.memory_total_bytes > 0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").expect("osrelease");
    assert_eq!(facts.kernel, kernel.trim());
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    assert_eq!(facts.hostname, hostname.trim());
    let os_release = std::fs::read_to_string("/etc/os-release").expect("os-release");
    assert!(
        os_release
            .lines()
            .any(|l| l.trim_matches('"') == format!("ID={}", facts.os.id)
                || l == format!("ID=\"{}\"", facts.os.id)),
        "{:?}",
        facts.os
    );
    assert!(!facts.os.pretty_name.is_empty());
    assert_eq!(
        facts.package_manager.is_some(),
        ["apt-get", "dnf", "yum", "zypper"]
            .iter()
            .any(|p| Path::new("/usr/bin").join(p).exists())
    );
    assert_eq!(facts.systemd, Path::new("/run/systemd/system").is_dir());
    let disk = facts.disk.expect("disk of the nearest existing ancestor");
    assert_eq!(disk.path, "/tmp/nines/not/yet/created");
    assert!(disk.total_bytes > 0 && disk.total_bytes >= disk.available_bytes);
}

async fn check_metrics(h: &dyn HostAccess) {
    let paths = vec!["/".to_owned(), "/tmp".to_owned()];
    let first = host_metrics(h, &paths, T).await.expect("metrics");
    assert!(first.memory.total_bytes > 0);
    assert!(first.memory.available_bytes <= first.memory.total_bytes);
    assert!(first.cpu_count >= 1);
    assert!(first.cpu.total() > 0);
    assert!(first.uptime_seconds > 0.0);
    let got: Vec<&str> = first.disks.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(got, ["/", "/tmp"]);
    assert!(first.disks.iter().all(|d| d.total_bytes > 0));
    let json = serde_json::to_value(&first).expect("json");
    assert!(json["cpu"]["idle"].is_u64());

    // A later sample has advanced counters; the usage between them adds up to 1.
    let mut later = None;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let m = host_metrics(h, &[], T).await.expect("metrics");
        if m.cpu.total() > first.cpu.total() {
            later = Some(m);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let later = later.expect("CPU counters advance");
    assert!(later.disks.is_empty());
    let u = cpu_usage(&first.cpu, &later.cpu);
    let sum = u.busy + u.iowait + u.steal + u.idle;
    assert!((sum - 1.0).abs() < 1e-9, "{u:?}");
    assert!(
        [u.busy, u.iowait, u.steal, u.idle]
            .iter()
            .all(|f| (0.0..=1.0).contains(f))
    );
}

// ---------------------------------------------------------------------------------------
// LocalHost
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn local_runs_a_program_with_arguments() {
    let h = LocalHost::new();
    assert_eq!(h.describe(), "local");
    let out = h
        .run(&HostCommand::new("echo").arg("hello world"), T)
        .await
        .expect("run")
        .check()
        .expect("exit 0");
    assert_eq!(out.stdout_text(), "hello world\n");
    let out = h.run(&printf_tricky(), T).await.expect("run");
    assert_eq!(nul_split(&out.stdout), TRICKY_ARGS);
}

#[tokio::test]
async fn local_passes_stdin_and_env() {
    let h = LocalHost::new();
    let cmd = HostCommand::shell("cat; printf '|%s' \"$NINES_X\"")
        .stdin(b"from stdin".to_vec())
        .env("NINES_X", "a 'quoted' value");
    let out = h.run(&cmd, T).await.expect("run").check().expect("ok");
    assert_eq!(out.stdout_text(), "from stdin|a 'quoted' value");
    // A program that ignores a large stdin still completes.
    let cmd = HostCommand::new("true").stdin(vec![b'x'; 1 << 20]);
    assert!(h.run(&cmd, T).await.expect("run").success());
}

#[tokio::test]
async fn local_nonzero_exit_is_command_failed() {
    check_nonzero_exit(&LocalHost::new()).await;
}

#[tokio::test]
async fn an_abandoned_local_command_takes_its_children_with_it() {
    // A cancelled job drops the future of the command it waits for: a pipeline's other
    // processes must not run on.
    let h = LocalHost::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("pid");
    let cmd = HostCommand::shell("sleep 30 & echo $! > \"$1\"; wait")
        .arg(pid_file.to_str().expect("utf8"));
    let run = h.run(&cmd, Duration::from_secs(60));
    let written = async {
        while std::fs::read_to_string(&pid_file).map_or(true, |p| p.trim().is_empty()) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::select! {
        r = run => panic!("the command ended by itself: {r:?}"),
        () = written => {}
    }
    // `run` was dropped by the select.
    let pid = std::fs::read_to_string(&pid_file).expect("pid file");
    let stat = format!("/proc/{}/stat", pid.trim());
    let gone = eventually(Duration::from_secs(3), || !alive(&stat));
    assert!(gone, "sleep {} survived its abandoned command", pid.trim());
}

#[tokio::test]
async fn local_timeout_kills_the_process_group() {
    let h = LocalHost::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("pid");
    let cmd = HostCommand::shell("sleep 30 & echo $! > \"$1\"; wait")
        .arg(pid_file.to_str().expect("utf8"));
    let started = Instant::now();
    let err = h
        .run(&cmd, Duration::from_millis(300))
        .await
        .expect_err("must time out");
    let elapsed = started.elapsed();
    assert!(matches!(err, HostError::Timeout { .. }), "{err:?}");
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
    assert!(err.to_string().starts_with("local: "), "{err}");

    // The grandchild `sleep 30` is gone too (dead or a zombie awaiting its reaper).
    let pid = std::fs::read_to_string(&pid_file).expect("pid file");
    let stat = format!("/proc/{}/stat", pid.trim());
    let gone = eventually(Duration::from_secs(3), || !alive(&stat));
    assert!(gone, "sleep {} survived the timeout", pid.trim());

    let started = Instant::now();
    let err = h
        .run(
            &HostCommand::new("sleep").arg("5"),
            Duration::from_millis(200),
        )
        .await
        .expect_err("must time out");
    assert!(matches!(err, HostError::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn local_files_roundtrip_atomically_with_mode() {
    let dir = tempfile::tempdir().expect("tempdir");
    check_files(&LocalHost::new(), dir.path()).await;
}

#[tokio::test]
async fn local_host_facts() {
    check_facts(&LocalHost::new()).await;
}

#[tokio::test]
async fn local_host_metrics() {
    check_metrics(&LocalHost::new()).await;
}

// ---------------------------------------------------------------------------------------
// SshHost against a real sshd
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_arguments_arrive_intact() {
    let sshd = start_sshd();
    let h = SshHost::new(sshd.target());
    assert_eq!(
        h.describe(),
        format!("ssh root@{}:{}", sshd.host(), sshd.port())
    );
    let out = h.run(&printf_tricky(), T).await.expect("run");
    assert!(out.success(), "{out:?}\n{}", sshd.log());
    assert_eq!(nul_split(&out.stdout), TRICKY_ARGS);

    // stdin (binary) and environment variables, with quotes in the value.
    let input: Vec<u8> = (0..=255u8).collect();
    let cmd = HostCommand::shell("cat; printf '|%s' \"$NINES_X\"")
        .stdin(input.clone())
        .env("NINES_X", "a 'quoted' $value");
    let out = h.run(&cmd, T).await.expect("run").check().expect("ok");
    let mut want = input;
    want.extend_from_slice(b"|a 'quoted' $value");
    assert_eq!(out.stdout, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_nonzero_exit_is_command_failed() {
    let sshd = start_sshd();
    let h = SshHost::new(sshd.target());
    check_nonzero_exit(&h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_timeout_returns_fast_and_the_host_stays_usable() {
    let sshd = start_sshd();
    let h = SshHost::new(sshd.target());
    h.run(&HostCommand::new("true"), T)
        .await
        .expect("connect")
        .check()
        .expect("true");
    let started = Instant::now();
    let err = h
        .run(
            &HostCommand::new("sleep").arg("5"),
            Duration::from_millis(500),
        )
        .await
        .expect_err("must time out");
    assert!(matches!(err, HostError::Timeout { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(err.to_string().starts_with(&h.describe()), "{err}");

    // The remote program is killed too, not left running on the host.
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("pid");
    let cmd =
        HostCommand::shell("echo $$ > \"$1\"; exec sleep 30").arg(pid_file.to_str().expect("utf8"));
    let err = h
        .run(&cmd, Duration::from_millis(500))
        .await
        .expect_err("must time out");
    assert!(matches!(err, HostError::Timeout { .. }), "{err:?}");
    let pid = std::fs::read_to_string(&pid_file).expect("pid file");
    let stat = format!("/proc/{}/stat", pid.trim());
    assert!(
        eventually(Duration::from_secs(5), || !alive(&stat)),
        "remote sleep {} survived the timeout",
        pid.trim()
    );

    let out = h
        .run(&HostCommand::new("echo").arg("still here"), T)
        .await
        .expect("run after timeout");
    assert_eq!(out.stdout_text(), "still here\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_files_roundtrip_atomically_with_mode() {
    let sshd = start_sshd();
    let h = SshHost::new(sshd.target());
    let dir = tempfile::tempdir().expect("tempdir");
    check_files(&h, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_host_facts_and_metrics() {
    let sshd = start_sshd();
    let h = SshHost::new(sshd.target());
    check_facts(&h).await;
    check_metrics(&h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_unknown_host_key_is_refused() {
    let sshd = start_sshd();
    let empty = sshd.dir().join("empty_known_hosts");
    std::fs::write(&empty, "").expect("write");
    let config = sshd.dir().join("strict_config");
    std::fs::write(
        &config,
        format!(
            "Host *\n  UserKnownHostsFile {}\n  GlobalKnownHostsFile /dev/null\n",
            empty.display()
        ),
    )
    .expect("write");
    let mut target = sshd.target();
    target.config_file = Some(config);
    let h = SshHost::new(target);
    let err = h
        .run(&HostCommand::new("true"), T)
        .await
        .expect_err("unknown host key must not be accepted");
    assert!(matches!(err, HostError::HostKey { .. }), "{err:?}");
    assert!(err.to_string().starts_with(&h.describe()), "{err}");
    // Strict means nothing was learned either.
    assert_eq!(std::fs::read_to_string(&empty).expect("read"), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_changed_host_key_is_refused() {
    let sshd = start_sshd();
    let other = sshd.dir().join("other_host_key");
    keygen(&other);
    let known = sshd.dir().join("wrong_known_hosts");
    std::fs::write(
        &known,
        format!("[{}]:{} {}\n", sshd.host(), sshd.port(), public_key(&other)),
    )
    .expect("write");
    let mut target = sshd.target();
    target.config_file = None;
    target.known_hosts_file = Some(known);
    let err = SshHost::new(target)
        .run(&HostCommand::new("true"), T)
        .await
        .expect_err("changed host key must not be accepted");
    assert!(matches!(err, HostError::HostKey { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_wrong_key_is_auth_error() {
    let sshd = start_sshd();
    let wrong = sshd.dir().join("wrong_key");
    keygen(&wrong);
    let mut target = sshd.target();
    target.key_path = Some(wrong);
    let h = SshHost::new(target);
    let err = h
        .run(&HostCommand::new("true"), T)
        .await
        .expect_err("wrong key");
    assert!(matches!(err, HostError::Auth { .. }), "{err:?}");
    assert!(err.to_string().contains("Permission denied"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_nothing_listening_is_unreachable() {
    let sshd = start_sshd();
    // A port on the same address that is free right now.
    let free = TcpListener::bind(SocketAddrV4::new(sshd.addr, 0)).expect("bind");
    let port = free.local_addr().expect("addr").port();
    drop(free);
    let mut target = sshd.target();
    target.port = port;
    let h = SshHost::new(target);
    let started = Instant::now();
    let err = h
        .run(&HostCommand::new("true"), T)
        .await
        .expect_err("nothing listens");
    assert!(matches!(err, HostError::Unreachable { .. }), "{err:?}");
    assert!(err.is_connectivity());
    assert!(err.to_string().contains(&format!(":{port}")), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_concurrent_commands_share_the_connection_within_the_cap() {
    let sshd = start_sshd();
    let h = SshHost::new(sshd.target());
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf8").to_owned();
    // Each command registers itself, counts who is running, waits, and deregisters.
    // 20 at once is more than sshd's MaxSessions (10): without the cap some would fail.
    let script = "mkdir \"$1/$2\" && ls \"$1\" | wc -l && sleep 0.3 && rmdir \"$1/$2\"";
    let runs = (0..20).map(|i| {
        let cmd = HostCommand::shell(script).arg(d.clone()).arg(i.to_string());
        let h = &h;
        async move { h.run(&cmd, T).await }
    });
    let results = futures::future::join_all(runs).await;
    let mut peak = 0;
    for r in results {
        let out = r.expect("run").check().expect("command succeeds");
        let running: usize = out.stdout_text().trim().parse().expect("count");
        peak = peak.max(running);
    }
    assert!(peak <= MAX_CONCURRENT_COMMANDS, "peak {peak}");
    assert!(peak >= 2, "commands did not overlap (peak {peak})");
    assert_eq!(std::fs::read_dir(dir.path()).expect("readdir").count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_reconnects_when_the_master_dies() {
    let sshd = start_sshd();
    // This one trusts the server through `known_hosts_file` instead of an ssh_config.
    let mut target = sshd.target();
    target.config_file = None;
    target.known_hosts_file = Some(sshd.known_hosts());
    let h = SshHost::new(target);
    h.run(&HostCommand::new("true"), T).await.expect("connect");
    let socket = h.control_socket().await.expect("master is open");
    // Stop the master connection behind the host's back.
    let status = Command::new("ssh")
        .arg("-S")
        .arg(&socket)
        .args(["-O", "exit", "unused"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("ssh -O exit");
    assert!(status.success());
    assert!(eventually(Duration::from_secs(5), || !socket.exists()));

    let out = h
        .run(&HostCommand::new("echo").arg("again"), T)
        .await
        .expect("run after the master died");
    assert_eq!(out.stdout_text(), "again\n");
    let new_socket = h.control_socket().await.expect("new master");
    assert_ne!(new_socket, socket);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_shutdown_cancels_further_commands() {
    let sshd = start_sshd();
    let h = SshHost::new(sshd.target());
    h.run(&HostCommand::new("true"), T).await.expect("connect");
    let socket = h.control_socket().await.expect("master is open");
    h.shutdown().await;
    assert!(eventually(Duration::from_secs(5), || !socket.exists()));
    let err = h
        .run(&HostCommand::new("true"), T)
        .await
        .expect_err("shut down");
    assert!(matches!(err, HostError::Cancelled { .. }), "{err:?}");
}
