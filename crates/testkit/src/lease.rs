//! Loopback address leases guarded by OS file locks.
//!
//! Each address `127.0.0.N` has a lock file `<kit_root>/locks/127.0.0.N.lock`.
//! A process owns the address while it holds an exclusive `flock` on that
//! file; the kernel drops the lock when the process dies, however it dies.
//! Next to the lock, `127.0.0.N.pids` lists the processes the kit started on
//! that address (pid, command name, start time). A new owner kills those
//! leftovers (after checking that the pid still names the same process) and
//! only uses the address once its ports are free.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::net::{Ipv4Addr, TcpListener};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rand::Rng;

use crate::process::{Signal, process_cmdline, process_comm, signal_group, signal_pid};
use crate::util::{POLL_INTERVAL, kit_root, locks_dir, run_dir};

/// Lowest last octet handed out (`127.0.0.20`).
pub const FIRST_OCTET: u8 = 20;
/// Highest last octet handed out (`127.0.0.250`).
pub const LAST_OCTET: u8 = 250;
/// Ports that must be free on an address before it is handed out: MariaDB,
/// Galera replication, Galera IST and SST.
pub const GUARDED_PORTS: [u16; 4] = [3306, 4567, 4568, 4444];
/// Ports [`crate::Sshd`] picks from; also checked before handing out an address.
pub const SSHD_PORTS: RangeInclusive<u16> = 2200..=2299;

/// How long a new owner waits for leftovers' ports to close before skipping.
const LEFTOVER_WAIT: Duration = Duration::from_secs(10);

/// Leases that are alive in this process, by address.
static REGISTRY: Mutex<BTreeMap<Ipv4Addr, Weak<LeaseInner>>> = Mutex::new(BTreeMap::new());

/// Exclusive use of one loopback address `127.0.0.N` by this process.
///
/// Cheap to clone; the address stays leased until the last clone is dropped
/// (servers keep a clone, so keep the lease, or a server on it, alive as long
/// as anything uses the address).
#[derive(Debug, Clone)]
pub struct AddressLease {
    inner: Arc<LeaseInner>,
}

#[derive(Debug)]
struct LeaseInner {
    ip: Ipv4Addr,
    pid_path: PathBuf,
    /// Processes started on this address: (pid, comm, start time).
    pids: Mutex<Vec<PidEntry>>,
    /// Holds the flock; closing it (on drop) releases the address.
    _lock: File,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct PidEntry {
    pid: u32,
    comm: String,
    start_time: u64,
}

impl AddressLease {
    /// The leased address.
    pub fn ip(&self) -> Ipv4Addr {
        self.inner.ip
    }

    /// The leased address as text, e.g. `"127.0.0.42"`.
    pub fn addr(&self) -> String {
        self.inner.ip.to_string()
    }

    /// The last octet of the address (`42` for `127.0.0.42`).
    pub fn octet(&self) -> u8 {
        self.inner.ip.octets()[3]
    }

    /// The lease this process holds on `addr`, if any.
    pub fn find(addr: &str) -> Option<AddressLease> {
        let ip: Ipv4Addr = addr.parse().ok()?;
        let registry = REGISTRY.lock().ok()?;
        registry
            .get(&ip)
            .and_then(Weak::upgrade)
            .map(|inner| AddressLease { inner })
    }

    /// Records a process started on this address, so that a later owner can
    /// kill it if this process dies without cleaning up.
    ///
    /// `comm` is the process's command name after exec (e.g. `mariadbd`);
    /// it is checked, with the start time, before a later owner kills `pid`.
    pub(crate) fn register_pid(&self, pid: u32, comm: &str) {
        let entry = PidEntry {
            pid,
            comm: comm.to_owned(),
            start_time: process_start_time(pid).unwrap_or(0),
        };
        if let Ok(mut pids) = self.inner.pids.lock() {
            pids.retain(|e| e.pid != pid);
            pids.push(entry);
            write_pid_file(&self.inner.pid_path, &pids);
        }
    }

    /// Forgets a process recorded with [`AddressLease::register_pid`].
    pub(crate) fn unregister_pid(&self, pid: u32) {
        if let Ok(mut pids) = self.inner.pids.lock() {
            pids.retain(|e| e.pid != pid);
            write_pid_file(&self.inner.pid_path, &pids);
        }
    }
}

impl Drop for LeaseInner {
    fn drop(&mut self) {
        // Still holding the lock here: nobody else can be using the file.
        let _ = std::fs::remove_file(&self.pid_path);
        if let Ok(mut registry) = REGISTRY.lock()
            && registry
                .get(&self.ip)
                .is_some_and(|w| w.strong_count() == 0)
        {
            registry.remove(&self.ip);
        }
    }
}

/// Leases one free loopback address. See [`lease_addresses`].
pub fn lease_address() -> Result<AddressLease> {
    let mut leases = lease_addresses(1)?;
    leases.pop().context("no address leased")
}

/// Leases `n` distinct free loopback addresses in
/// `127.0.0.20..=127.0.0.250`.
///
/// Safe against concurrent callers in this and in other processes (file
/// locks). Leftover servers of dead processes on a candidate address are
/// killed (via the kit's pid files, or failing that, listeners whose command
/// line points into the kit's directory); an address whose ports stay busy is
/// skipped. Blocks for up to ~10 s per address only when leftovers exist.
pub fn lease_addresses(n: usize) -> Result<Vec<AddressLease>> {
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return Ok(out);
    }
    let dir = locks_dir()?;
    sweep_dead_owners_run_dirs();
    let count = usize::from(LAST_OCTET - FIRST_OCTET) + 1;
    // Start at a random place to keep parallel processes from contending.
    let start = rand::rng().random_range(0..count);
    for i in 0..count {
        let Ok(offset) = u8::try_from((start + i) % count) else {
            continue;
        };
        if let Some(lease) = try_lease(&dir, FIRST_OCTET + offset)? {
            out.push(lease);
            if out.len() == n {
                return Ok(out);
            }
        }
    }
    bail!(
        "only {} of {n} loopback addresses could be leased in 127.0.0.{FIRST_OCTET}..=127.0.0.{LAST_OCTET} \
         (all others are leased, or their ports are taken: check `ss -ltnp` for servers on 0.0.0.0)",
        out.len()
    )
}

/// Tries to lease one specific address `127.0.0.N` (N in
/// `20..=250`): `Ok(None)` if another lease holds it or its ports stay busy.
/// Leftovers of dead processes on it are killed as in [`lease_addresses`].
pub fn try_lease_address(addr: &str) -> Result<Option<AddressLease>> {
    let ip: Ipv4Addr = addr
        .parse()
        .with_context(|| format!("invalid address {addr:?}"))?;
    let [a, b, c, octet] = ip.octets();
    if (a, b, c) != (127, 0, 0) || !(FIRST_OCTET..=LAST_OCTET).contains(&octet) {
        bail!("{addr} is outside 127.0.0.{FIRST_OCTET}..=127.0.0.{LAST_OCTET}");
    }
    let dir = locks_dir()?;
    sweep_dead_owners_run_dirs();
    try_lease(&dir, octet)
}

/// The lock file guarding `addr` (for tests and diagnostics).
pub fn lock_file_path(addr: &str) -> Result<PathBuf> {
    Ok(locks_dir()?.join(format!("{addr}.lock")))
}

fn try_lease(dir: &Path, octet: u8) -> Result<Option<AddressLease>> {
    let ip = Ipv4Addr::new(127, 0, 0, octet);
    {
        let registry = REGISTRY
            .lock()
            .map_err(|_| anyhow::anyhow!("lease registry poisoned"))?;
        if registry.get(&ip).is_some_and(|w| w.strong_count() > 0) {
            return Ok(None);
        }
    }
    let lock_path = dir.join(format!("{ip}.lock"));
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("opening {}", lock_path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok(None),
        Err(TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("locking {}", lock_path.display()));
        }
    }
    let pid_path = dir.join(format!("{ip}.pids"));
    if kill_recorded_leftovers(&pid_path) {
        wait_ports_free(ip, LEFTOVER_WAIT);
    }
    if !ports_free(ip) && kill_kit_listeners(ip) {
        wait_ports_free(ip, LEFTOVER_WAIT);
    }
    let busy = busy_ports(ip);
    if !busy.is_empty() {
        // Not ours to kill (or unkillable): leave the address alone.
        eprintln!("nines-testkit: skipping {ip}: ports {busy:?} in use by something else");
        return Ok(None);
    }
    write_pid_file(&pid_path, &[]);
    remove_stale_run_dirs(ip);

    let inner = Arc::new(LeaseInner {
        ip,
        pid_path,
        pids: Mutex::new(Vec::new()),
        _lock: file,
    });
    let mut registry = REGISTRY
        .lock()
        .map_err(|_| anyhow::anyhow!("lease registry poisoned"))?;
    registry.insert(ip, Arc::downgrade(&inner));
    Ok(Some(AddressLease { inner }))
}

/// Start time (in clock ticks since boot) of a process, from /proc/<pid>/stat.
fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 2 (comm) is in parentheses and may contain spaces: skip past it.
    let rest = &stat[stat.rfind(')')? + 2..];
    // rest starts at field 3; starttime is field 22.
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn write_pid_file(path: &Path, pids: &[PidEntry]) {
    let text: String = pids
        .iter()
        .map(|e| format!("{} {} {}\n", e.pid, e.comm, e.start_time))
        .collect();
    let _ = std::fs::write(path, text);
}

fn read_pid_file(path: &Path) -> Vec<PidEntry> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| {
            let mut it = line.split_whitespace();
            Some(PidEntry {
                pid: it.next()?.parse().ok()?,
                comm: it.next()?.to_owned(),
                start_time: it.next()?.parse().ok()?,
            })
        })
        .collect()
}

/// Kills the processes a dead previous owner recorded for this address, if
/// the pid still names the same process (same comm and start time).
/// Returns whether anything was killed.
fn kill_recorded_leftovers(pid_path: &Path) -> bool {
    let mut killed = false;
    for entry in read_pid_file(pid_path) {
        let same_process = process_comm(entry.pid).as_deref() == Some(entry.comm.as_str())
            && process_start_time(entry.pid) == Some(entry.start_time);
        if same_process {
            eprintln!(
                "nines-testkit: killing leftover {} (pid {}) from {}",
                entry.comm,
                entry.pid,
                pid_path.display()
            );
            let _ = signal_group(entry.pid, Signal::Kill);
            let _ = signal_pid(entry.pid, Signal::Kill);
            killed = true;
        }
    }
    killed
}

/// Last resort: kill processes listening on `ip` whose command line points
/// into the kit's directory (a leftover started by the kit whose pid was not
/// recorded, e.g. a process killed between spawn and record).
/// Returns whether anything was killed.
fn kill_kit_listeners(ip: Ipv4Addr) -> bool {
    let mut killed = false;
    let root = kit_root();
    let root = root.to_string_lossy();
    let Ok(out) = Command::new("ss")
        .args(["-ltnpH", &format!("src {ip}")])
        .output()
    else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    for pid in text.split("pid=").skip(1).filter_map(|s| {
        s.split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|p| p.parse::<u32>().ok())
    }) {
        if process_cmdline(pid).is_some_and(|c| c.contains(root.as_ref())) {
            eprintln!("nines-testkit: killing leftover listener pid {pid} on {ip}");
            let _ = signal_group(pid, Signal::Kill);
            let _ = signal_pid(pid, Signal::Kill);
            killed = true;
        }
    }
    killed
}

/// Ports of `ip` (guarded and sshd ones) that cannot be bound.
fn busy_ports(ip: Ipv4Addr) -> Vec<u16> {
    GUARDED_PORTS
        .iter()
        .copied()
        .chain(SSHD_PORTS)
        .filter(|&port| TcpListener::bind((ip, port)).is_err())
        .collect()
}

fn ports_free(ip: Ipv4Addr) -> bool {
    busy_ports(ip).is_empty()
}

fn wait_ports_free(ip: Ipv4Addr, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if ports_free(ip) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Removes run directories of earlier owners of `ip` (named `<ip>-<pid>-<n>`):
/// we own the address now, and its leftovers were killed.
fn remove_stale_run_dirs(ip: Ipv4Addr) {
    let Ok(run) = run_dir() else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(&run) else {
        return;
    };
    let prefix = format!("{ip}-");
    let mine = format!("{ip}-{}-", std::process::id());
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && !name.starts_with(&mine) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Removes run directories (`<name>-<owner pid>-<n>`) whose owner process
/// is gone and whose server (pid in `mysqld.pid` / `sshd.pid`) no longer
/// runs: what a test process killed before its `Drop`s ran leaves behind
/// (its watchdogs killed the servers themselves).
fn sweep_dead_owners_run_dirs() {
    let Ok(run) = run_dir() else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(&run) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(owner) = name.rsplit('-').nth(1).and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if owner == std::process::id() || Path::new(&format!("/proc/{owner}")).exists() {
            continue;
        }
        let dir = entry.path();
        let server_alive = [("mysqld.pid", "mariadbd"), ("sshd.pid", "sshd")]
            .iter()
            .any(|(file, comm)| {
                std::fs::read_to_string(dir.join(file))
                    .ok()
                    .and_then(|t| t.trim().parse::<u32>().ok())
                    .is_some_and(|pid| process_comm(pid).as_deref() == Some(*comm))
            });
        if !server_alive {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}
