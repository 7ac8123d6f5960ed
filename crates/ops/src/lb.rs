//! HAProxy on a load balancer host: its files, starting and reloading it, and changing
//! its backends through the runtime API (the stats socket) without a reload.
//!
//! nines writes the configuration (`nines_model::lb::render`) into the load balancer's
//! own directory, checks it with `haproxy -c`, and runs HAProxy as a daemon with a pid
//! file. Backend states change at once through `set server … state …`; a read-write
//! server that stops being the writer has its sessions shut down, so that no client keeps
//! writing to a demoted primary.

use std::sync::Arc;
use std::time::Duration;

use nines_access::host::{HostAccess, HostCommand};
use nines_model::lb::{Backend, BackendState, Pool, backend_name, server_name};

use crate::OpError;

/// How long one HAProxy command may take.
const SHORT: Duration = Duration::from_secs(30);

/// One HAProxy instance on a host.
#[derive(Clone)]
pub struct Haproxy {
    pub host: Arc<dyn HostAccess>,
    /// The load balancer's directory: configuration, socket, pid file.
    pub dir: String,
}

impl std::fmt::Debug for Haproxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Haproxy({} on {})", self.dir, self.host.describe())
    }
}

impl Haproxy {
    pub fn new(host: Arc<dyn HostAccess>, dir: impl Into<String>) -> Self {
        Self {
            host,
            dir: dir.into(),
        }
    }

    pub fn config_file(&self) -> String {
        format!("{}/haproxy.cfg", self.dir)
    }

    pub fn socket(&self) -> String {
        format!("{}/haproxy.sock", self.dir)
    }

    pub fn pid_file(&self) -> String {
        format!("{}/haproxy.pid", self.dir)
    }

    async fn run(&self, cmd: HostCommand) -> Result<String, OpError> {
        let out = self
            .host
            .run(&cmd.sudo(true), SHORT)
            .await
            .map_err(|e| OpError::Invalid(e.to_string()))?;
        if out.success() {
            Ok(out.stdout_text())
        } else {
            Err(OpError::Invalid(format!(
                "{}: `{}` failed: {}",
                self.host.describe(),
                out.program,
                crate::node::failure_summary(&out.stderr_text(), &out.stdout_text())
            )))
        }
    }

    /// Writes the configuration (to a temporary file, checked with `haproxy -c`, then
    /// moved into place): a file HAProxy refuses never replaces a good one.
    pub async fn write_config(&self, text: &str) -> Result<(), OpError> {
        self.run(
            HostCommand::shell(
                "set -e; mkdir -p \"$1\"; chmod 700 \"$1\"; t=\"$1/haproxy.cfg.new\"; cat > \"$t\"; \
                 if ! out=$(haproxy -c -q -f \"$t\" 2>&1); then echo \"$out\" >&2; rm -f \"$t\"; exit 1; fi; \
                 mv \"$t\" \"$1/haproxy.cfg\"",
            )
            .arg(&self.dir)
            .stdin(text.as_bytes().to_vec()),
        )
        .await
        .map(|_| ())
    }

    /// Whether HAProxy runs (its pid file names a live process).
    pub async fn is_running(&self) -> Result<bool, OpError> {
        let out = self
            .run(
                HostCommand::shell(
                    "p=$(cat \"$1\" 2>/dev/null | head -n1); \
                     if [ -n \"$p\" ] && kill -0 \"$p\" 2>/dev/null; then echo yes; else echo no; fi",
                )
                .arg(self.pid_file()),
            )
            .await?;
        Ok(out.trim() == "yes")
    }

    /// Starts HAProxy, or reloads it (`-sf`: the old process finishes its sessions) when
    /// it runs; waits until the runtime API answers.
    pub async fn start_or_reload(&self) -> Result<(), OpError> {
        self.run(
            HostCommand::shell(
                "set -e; old=$(cat \"$2\" 2>/dev/null | head -n1 || true); \
                 if [ -n \"$old\" ] && kill -0 \"$old\" 2>/dev/null; then \
                   haproxy -f \"$1\" -D -p \"$2\" -sf \"$old\"; \
                 else haproxy -f \"$1\" -D -p \"$2\"; fi",
            )
            .arg(self.config_file())
            .arg(self.pid_file()),
        )
        .await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            if self.command("show info").await.is_ok() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(OpError::Invalid(format!(
                    "{}: HAProxy started but its runtime API ({}) does not answer",
                    self.host.describe(),
                    self.socket()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops HAProxy (and its reloaded predecessors).
    pub async fn stop(&self) -> Result<(), OpError> {
        self.run(
            HostCommand::shell(
                "for p in $(cat \"$1\" 2>/dev/null); do kill \"$p\" 2>/dev/null || true; done; \
                 for _ in $(seq 1 50); do alive=0; for p in $(cat \"$1\" 2>/dev/null); do \
                 kill -0 \"$p\" 2>/dev/null && alive=1; done; [ $alive = 0 ] && break; sleep 0.1; done; \
                 rm -f \"$1\"",
            )
            .arg(self.pid_file()),
        )
        .await
        .map(|_| ())
    }

    /// Removes the load balancer's directory (HAProxy stopped first).
    pub async fn purge(&self) -> Result<(), OpError> {
        self.stop().await?;
        self.run(HostCommand::new("rm").arg("-rf").arg(&self.dir))
            .await
            .map(|_| ())
    }

    /// Sends one runtime API command; its answer.
    pub async fn command(&self, cmd: &str) -> Result<String, OpError> {
        let out = self
            .run(
                HostCommand::shell("socat -t 2 stdio \"UNIX-CONNECT:$1\"")
                    .arg(self.socket())
                    .stdin(format!("{cmd}\n").into_bytes()),
            )
            .await?;
        let answer = out.trim();
        // The runtime API answers errors in text, with success status.
        let lower = answer.to_ascii_lowercase();
        if lower.starts_with("unknown") || lower.contains("no such") || lower.starts_with("require")
        {
            return Err(OpError::Invalid(format!(
                "HAProxy refused `{cmd}`: {answer}"
            )));
        }
        Ok(answer.to_string())
    }

    /// The servers' states as HAProxy has them: (pool, server name, operational state:
    /// `UP`, `DOWN`, `MAINT`, `DRAIN`, … from `show stat`).
    pub async fn states(&self) -> Result<Vec<(Pool, String, String)>, OpError> {
        let csv = self.command("show stat").await?;
        let mut out = Vec::new();
        for line in csv.lines().filter(|l| !l.starts_with('#')) {
            let f: Vec<&str> = line.split(',').collect();
            let (Some(px), Some(sv), Some(status)) = (f.first(), f.get(1), f.get(17)) else {
                continue;
            };
            let pool = match *px {
                "nines_rw" => Pool::Rw,
                "nines_ro" => Pool::Ro,
                _ => continue,
            };
            if *sv == "BACKEND" || *sv == "FRONTEND" {
                continue;
            }
            // `UP 1/2`: up, its checks still counting after a change; the word is the state.
            let state = status.split_whitespace().next().unwrap_or("");
            out.push((pool, sv.to_string(), state.to_string()));
        }
        Ok(out)
    }

    /// Sets every backend server's state as decided; a read-write server that leaves the
    /// pool has its sessions shut down. `before`: the states last applied (for the
    /// shut-downs; everything is set either way, HAProxy's own restart may have reset it).
    pub async fn apply(&self, backends: &[Backend], before: &[Backend]) -> Result<(), OpError> {
        let mut cmds = Vec::new();
        for b in backends {
            let server = format!("{}/{}", backend_name(b.pool), server_name(&b.address));
            cmds.push(format!("set server {server} state {}", b.state.runtime()));
            let was_up = before
                .iter()
                .any(|x| x.address == b.address && x.pool == b.pool && x.state == BackendState::Up);
            if b.pool == Pool::Rw
                && was_up
                && b.state != BackendState::Up
                && b.state != BackendState::Down
            {
                cmds.push(format!("shutdown sessions server {server}"));
            }
        }
        // One connection for all of them: the runtime API takes `;`-separated commands.
        for chunk in cmds.chunks(50) {
            self.command(&chunk.join(";")).await?;
        }
        Ok(())
    }
}
