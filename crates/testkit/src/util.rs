//! Small helpers shared by the kit: directories, polling, ports, passwords.

use std::future::Future;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use rand::Rng;
use rand::distr::Alphanumeric;

/// Interval between two polls of a condition.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Root directory of the kit: `$NINES_TESTKIT_DIR` or `/tmp/nines-testkit`.
///
/// Holds `locks/` (address locks and pid files, shared by all processes) and
/// `run/` (one directory per server).
pub fn kit_root() -> PathBuf {
    std::env::var_os("NINES_TESTKIT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/nines-testkit"))
}

/// Creates `dir` (and parents) and makes it world-traversable (0755), so that
/// servers running as `mysql` can reach their own directories below it.
pub(crate) fn ensure_shared_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mode = std::fs::metadata(dir)
        .with_context(|| format!("stat {}", dir.display()))?
        .permissions()
        .mode();
    if mode & 0o755 != 0o755 {
        // Another process may have created it with a restrictive umask; we
        // are root (or the owner), so widen it. Ignore races with others.
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
    }
    Ok(())
}

/// `<kit_root>/locks`, created if missing.
pub(crate) fn locks_dir() -> Result<PathBuf> {
    let root = kit_root();
    ensure_shared_dir(&root)?;
    let dir = root.join("locks");
    ensure_shared_dir(&dir)?;
    Ok(dir)
}

/// `<kit_root>/run`, created if missing.
pub(crate) fn run_dir() -> Result<PathBuf> {
    let root = kit_root();
    ensure_shared_dir(&root)?;
    let dir = root.join("run");
    ensure_shared_dir(&dir)?;
    Ok(dir)
}

/// A process-wide counter, used to make directory names and server ids unique.
pub(crate) fn next_counter() -> u32 {
    static COUNTER: AtomicU32 = AtomicU32::new(1);
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// Whether `NINES_TESTKIT_KEEP_DIRS` asks to keep server directories.
pub(crate) fn keep_dirs() -> bool {
    std::env::var("NINES_TESTKIT_KEEP_DIRS").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// A random alphanumeric password of `len` characters.
pub fn random_password(len: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// Looks up the uid and gid of a local user in `/etc/passwd`.
pub(crate) fn user_ids(name: &str) -> Result<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").context("reading /etc/passwd")?;
    for line in passwd.lines() {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() >= 4 && fields[0] == name {
            let uid = fields[2].parse().context("uid in /etc/passwd")?;
            let gid = fields[3].parse().context("gid in /etc/passwd")?;
            return Ok((uid, gid));
        }
    }
    bail!("user {name:?} not found in /etc/passwd")
}

/// The last `lines` lines of a text file, or a note saying why there are none.
pub(crate) fn tail_file(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            let start = all.len().saturating_sub(lines);
            all[start..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// Whether something accepts TCP connections on `addr:port` (connect with a
/// short timeout).
pub fn port_is_open(addr: &str, port: u16) -> bool {
    let Ok(ip) = addr.parse::<std::net::IpAddr>() else {
        return false;
    };
    TcpStream::connect_timeout(&SocketAddr::new(ip, port), Duration::from_millis(500)).is_ok()
}

/// Polls until nothing accepts connections on `addr:port`, up to `timeout`.
pub async fn wait_port_closed(addr: &str, port: u16, timeout: Duration) -> Result<()> {
    let addr = addr.to_owned();
    wait_until(timeout, &format!("{addr}:{port} to close"), || {
        let addr = addr.clone();
        async move {
            let open = tokio::task::spawn_blocking(move || port_is_open(&addr, port))
                .await
                .context("join port probe")?;
            Ok((!open).then_some(()))
        }
    })
    .await
}

/// Polls `check` until it returns `Ok(Some(value))` or `timeout` passes.
///
/// `Ok(None)` and `Err(_)` both mean "not yet"; the last error (if any) is
/// included in the timeout error, which names `what` was awaited.
pub async fn wait_until<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut last_err: Option<anyhow::Error> = None;
    loop {
        match check().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
        if Instant::now() >= deadline {
            return Err(match last_err {
                Some(e) => anyhow!("timed out after {timeout:?} waiting for {what}: {e:#}"),
                None => anyhow!("timed out after {timeout:?} waiting for {what}"),
            });
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}
