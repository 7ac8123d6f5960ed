//! Child processes started by the kit: each runs in its own process group,
//! is signalled by pid, and is reaped by us (no zombies, no pid reuse races).

use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use rustix::process::{Pid, kill_process, kill_process_group};

use crate::util::POLL_INTERVAL;

/// A signal the kit can send to a server process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// `SIGKILL`: immediate death, like a crash or power loss of the process.
    Kill,
    /// `SIGTERM`: clean shutdown.
    Term,
    /// `SIGSTOP`: freeze (the server keeps its sockets but stops answering).
    Stop,
    /// `SIGCONT`: resume after [`Signal::Stop`].
    Cont,
    /// `SIGHUP`.
    Hup,
    /// `SIGINT`.
    Int,
}

impl Signal {
    fn raw(self) -> rustix::process::Signal {
        use rustix::process::Signal as S;
        match self {
            Signal::Kill => S::KILL,
            Signal::Term => S::TERM,
            Signal::Stop => S::STOP,
            Signal::Cont => S::CONT,
            Signal::Hup => S::HUP,
            Signal::Int => S::INT,
        }
    }
}

fn pid_of(raw: u32) -> Result<Pid> {
    i32::try_from(raw)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| anyhow!("invalid pid {raw}"))
}

/// Sends `sig` to the single process `pid`.
pub(crate) fn signal_pid(pid: u32, sig: Signal) -> Result<()> {
    kill_process(pid_of(pid)?, sig.raw()).with_context(|| format!("kill -{sig:?} {pid}"))
}

/// Sends `sig` to the process group `pgid`.
pub(crate) fn signal_group(pgid: u32, sig: Signal) -> Result<()> {
    kill_process_group(pid_of(pgid)?, sig.raw()).with_context(|| format!("kill -{sig:?} -{pgid}"))
}

/// The `comm` (short command name) of a live process, if it exists.
pub(crate) fn process_comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_owned())
}

/// The command line of a live process (arguments joined by spaces).
pub(crate) fn process_cmdline(pid: u32) -> Option<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .ok()
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
}

/// A child process leading its own process group, with a watchdog.
///
/// The watchdog is a tiny `sh` in the same process group that blocks reading
/// a pipe whose write end only this process holds. When this process dies in
/// any way (panic abort, SIGKILL from a test runner's timeout, `exit` with
/// servers leaked in statics), the pipe closes and the watchdog SIGKILLs the
/// group, so no server outlives its test process.
#[derive(Debug)]
pub(crate) struct GroupChild {
    child: Child,
    exited: Option<ExitStatus>,
    watchdog: Option<Child>,
}

impl GroupChild {
    /// Spawns `cmd` as the leader of a new process group, plus its watchdog.
    /// `cmd` should not inherit the test's stdout/stderr (a test runner may
    /// wait for those pipes to close).
    pub(crate) fn spawn(mut cmd: Command) -> Result<Self> {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
        let child = cmd
            .spawn()
            .with_context(|| format!("spawning {:?}", cmd.get_program()))?;
        let pgid = child.id();
        let watchdog = Command::new("/bin/sh")
            .args([
                "-c",
                // dash's kill takes no "--"; "-PGID" names the group.
                "read -r _; kill -KILL -\"$1\" 2>/dev/null",
                "nines-testkit-watchdog",
            ])
            .arg(pgid.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(i32::try_from(pgid).unwrap_or(0))
            .spawn();
        let mut me = Self {
            child,
            exited: None,
            watchdog: None,
        };
        match watchdog {
            Ok(w) => me.watchdog = Some(w),
            Err(e) => {
                me.kill_group_and_reap();
                return Err(e).context("spawning watchdog");
            }
        }
        Ok(me)
    }

    /// The process id (also the process group id).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(status)` once the process has exited (reaping it), else `None`.
    pub(crate) fn try_exited(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none()
            && let Ok(Some(status)) = self.child.try_wait()
        {
            self.exited = Some(status);
        }
        self.exited
    }

    /// Whether the process is still alive (not yet exited).
    pub(crate) fn is_running(&mut self) -> bool {
        self.try_exited().is_none()
    }

    /// Sends `sig` to the process itself, if it is still running.
    pub(crate) fn signal(&mut self, sig: Signal) -> Result<()> {
        if self.try_exited().is_some() {
            return Err(anyhow!("process {} has already exited", self.pid()));
        }
        signal_pid(self.pid(), sig)
    }

    /// SIGKILLs the whole process group (leader, helpers, watchdog) and reaps
    /// the leader and the watchdog (blocking, but SIGKILL makes it quick).
    /// Safe to call repeatedly.
    pub(crate) fn kill_group_and_reap(&mut self) {
        // While the watchdog lives the group exists, so the pgid cannot have
        // been reused by an unrelated process.
        let watchdog_alive = self
            .watchdog
            .as_mut()
            .is_some_and(|w| matches!(w.try_wait(), Ok(None)));
        if self.try_exited().is_none() || watchdog_alive {
            let _ = signal_group(self.pid(), Signal::Kill);
        }
        if self.try_exited().is_none() {
            let _ = signal_pid(self.pid(), Signal::Kill);
            if let Ok(status) = self.child.wait() {
                self.exited = Some(status);
            }
        }
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
    }

    /// After the leader exited on its own (clean stop): ends the watchdog
    /// and any helper left in the group.
    pub(crate) fn finish(&mut self) {
        self.kill_group_and_reap();
    }
}

impl Drop for GroupChild {
    fn drop(&mut self) {
        self.kill_group_and_reap();
    }
}

/// Polls `child` (locked through `lock`) until it exits or `timeout` passes.
pub(crate) async fn wait_exit<F>(timeout: Duration, mut poll: F) -> Result<ExitStatus>
where
    F: FnMut() -> Option<ExitStatus>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = poll() {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            return Err(anyhow!("process did not exit within {timeout:?}"));
        }
        tokio::time::sleep(POLL_INTERVAL / 2).await;
    }
}
