//! HAProxy on a load balancer host: its files, starting and reloading it, and changing
//! its backends through the runtime API (the stats socket) without a reload.
//!
//! nines writes the configuration (`nines_model::lb::render`) into the load balancer's
//! own directory, checks it with `haproxy -c`, and runs HAProxy as a daemon with a pid
//! file. Backend states change at once through `set server … state …`; a read-write
//! server that stops being the writer has its sessions shut down, so that no client keeps
//! writing to a demoted primary.
//!
//! Keepalived ([`Keepalived`]) runs beside HAProxy when the load balancer shares a virtual
//! IP with peers: its own configuration, pid files and reloads (SIGHUP) in the same
//! directory. [`Haproxy::look`] reads in one round trip what the controller's watcher
//! needs: whether HAProxy runs, whether the host holds the VIP, and every server's state,
//! sessions and check failures.

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

/// One backend server as HAProxy reports it (`show stat`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerStat {
    pub pool: Pool,
    /// HAProxy's server name ([`server_name`] of the node's address).
    pub server: String,
    /// The operational state word: `UP`, `DOWN`, `MAINT`, `DRAIN`, `NOLB`, …
    pub status: String,
    /// Sessions now.
    pub sessions: u64,
    /// Sessions since HAProxy started.
    pub sessions_total: u64,
    /// How many times its checks took it from up to down.
    pub check_downs: u64,
}

/// What one look at a load balancer's host found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbStatus {
    pub haproxy_running: bool,
    /// Whether the host holds the VIP (None: no VIP asked about).
    pub holds_vip: Option<bool>,
    pub keepalived_running: Option<bool>,
    /// Empty when HAProxy does not run.
    pub servers: Vec<ServerStat>,
}

/// Parses `show stat` CSV into the nines pools' servers.
pub fn parse_stat(csv: &str) -> Vec<ServerStat> {
    let num = |f: &[&str], i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    csv.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            let pool = match *f.first()? {
                "nines_rw" => Pool::Rw,
                "nines_ro" => Pool::Ro,
                _ => return None,
            };
            let server = *f.get(1)?;
            if server == "BACKEND" || server == "FRONTEND" {
                return None;
            }
            Some(ServerStat {
                pool,
                server: server.to_string(),
                status: f
                    .get(17)?
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_string(),
                sessions: num(&f, 4),
                sessions_total: num(&f, 7),
                check_downs: num(&f, 22),
            })
        })
        .collect()
}

impl Haproxy {
    /// One look (one command on the host): HAProxy alive, the VIP held, Keepalived alive,
    /// the servers' stats.
    pub async fn look(&self, vip: Option<&str>) -> Result<LbStatus, OpError> {
        let out = self
            .run(
                HostCommand::shell(
                    "alive() { p=$(head -n1 \"$1\" 2>/dev/null); [ -n \"$p\" ] && kill -0 \"$p\" 2>/dev/null; }; \
                     if alive \"$1\"; then echo haproxy=yes; else echo haproxy=no; fi; \
                     if [ -n \"$3\" ]; then \
                       if ip -o addr show | grep -qF \" $3/\"; then echo vip=yes; else echo vip=no; fi; \
                       if alive \"$4\"; then echo keepalived=yes; else echo keepalived=no; fi; \
                     fi; \
                     if alive \"$1\"; then echo 'show stat' | socat -t 2 stdio \"UNIX-CONNECT:$2\" || true; fi",
                )
                .arg(self.pid_file())
                .arg(self.socket())
                .arg(vip.unwrap_or(""))
                .arg(Keepalived::new(self.host.clone(), self.dir.clone()).pid_file()),
            )
            .await?;
        let flag = |name: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v == "yes")
        };
        let haproxy_running = flag("haproxy=").unwrap_or(false);
        Ok(LbStatus {
            haproxy_running,
            holds_vip: flag("vip="),
            keepalived_running: flag("keepalived="),
            servers: if haproxy_running {
                parse_stat(&out)
            } else {
                Vec::new()
            },
        })
    }
}

/// Keepalived beside a load balancer's HAProxy, in the same directory.
#[derive(Clone)]
pub struct Keepalived {
    pub host: Arc<dyn HostAccess>,
    pub dir: String,
}

impl std::fmt::Debug for Keepalived {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keepalived({} on {})", self.dir, self.host.describe())
    }
}

impl Keepalived {
    pub fn new(host: Arc<dyn HostAccess>, dir: impl Into<String>) -> Self {
        Self {
            host,
            dir: dir.into(),
        }
    }

    pub fn config_file(&self) -> String {
        format!("{}/keepalived.conf", self.dir)
    }

    /// The parent process's pid file.
    pub fn pid_file(&self) -> String {
        format!("{}/keepalived.pid", self.dir)
    }

    fn vrrp_pid_file(&self) -> String {
        format!("{}/keepalived-vrrp.pid", self.dir)
    }

    fn haproxy(&self) -> Haproxy {
        Haproxy::new(self.host.clone(), self.dir.clone())
    }

    /// Writes the configuration after `keepalived -t` accepted it.
    pub async fn write_config(&self, text: &str) -> Result<(), OpError> {
        self.haproxy()
            .run(
                HostCommand::shell(
                    "set -e; mkdir -p \"$1\"; chmod 700 \"$1\"; t=\"$1/keepalived.conf.new\"; cat > \"$t\"; \
                     if ! out=$(keepalived -t -f \"$t\" 2>&1); then echo \"$out\" >&2; rm -f \"$t\"; exit 1; fi; \
                     mv \"$t\" \"$1/keepalived.conf\"",
                )
                .arg(&self.dir)
                .stdin(text.as_bytes().to_vec()),
            )
            .await
            .map(|_| ())
    }

    /// Starts Keepalived (VRRP only), or makes a running one read its configuration again.
    pub async fn start_or_reload(&self) -> Result<(), OpError> {
        self.haproxy()
            .run(
                HostCommand::shell(
                    "p=$(head -n1 \"$2\" 2>/dev/null); \
                     if [ -n \"$p\" ] && kill -0 \"$p\" 2>/dev/null; then kill -HUP \"$p\"; \
                     else keepalived --vrrp -f \"$1\" -p \"$2\" -r \"$3\"; fi",
                )
                .arg(self.config_file())
                .arg(self.pid_file())
                .arg(self.vrrp_pid_file()),
            )
            .await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            if self.is_running().await? {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(OpError::Invalid(format!(
                    "{}: keepalived did not start (see its messages in the system log)",
                    self.host.describe()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn is_running(&self) -> Result<bool, OpError> {
        let out = self
            .haproxy()
            .run(
                HostCommand::shell(
                    "p=$(head -n1 \"$1\" 2>/dev/null); \
                     if [ -n \"$p\" ] && kill -0 \"$p\" 2>/dev/null; then echo yes; else echo no; fi",
                )
                .arg(self.pid_file()),
            )
            .await?;
        Ok(out.trim() == "yes")
    }

    /// Stops Keepalived (it gives the VIP up on the way: a peer takes it at once).
    pub async fn stop(&self) -> Result<(), OpError> {
        self.haproxy()
            .run(
                HostCommand::shell(
                    "p=$(head -n1 \"$1\" 2>/dev/null); [ -z \"$p\" ] && exit 0; kill \"$p\" 2>/dev/null || true; \
                     for _ in $(seq 1 50); do kill -0 \"$p\" 2>/dev/null || break; sleep 0.1; done; rm -f \"$1\"",
                )
                .arg(self.pid_file()),
            )
            .await
            .map(|_| ())
    }
}

/// The interface that carries `address` on the host, and that address's prefix length.
pub async fn interface_of(host: &dyn HostAccess, address: &str) -> Result<(String, u8), OpError> {
    let out = host
        .run(
            &HostCommand::new("ip").args(["-o", "-4", "addr", "show"]),
            SHORT,
        )
        .await
        .map_err(|e| OpError::Invalid(e.to_string()))?;
    if !out.success() {
        return Err(OpError::Invalid(format!(
            "{}: `ip addr show` failed: {}",
            host.describe(),
            out.stderr_text().trim()
        )));
    }
    parse_interface(&out.stdout_text(), address).ok_or_else(|| {
        OpError::Invalid(format!(
            "{}: no interface carries {address} (a virtual IP needs the load balancer's \
             address on a real interface)",
            host.describe()
        ))
    })
}

/// From `ip -o -4 addr show`: the interface with `address`, and its prefix.
pub fn parse_interface(text: &str, address: &str) -> Option<(String, u8)> {
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let iface = f.get(1)?;
        let at = f.iter().position(|w| *w == "inet")?;
        let (addr, prefix) = f.get(at + 1)?.split_once('/')?;
        if addr != address {
            return None;
        }
        Some(((*iface).to_string(), prefix.parse().ok()?))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn interfaces_are_found_by_address() {
        let text = "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever\n\
                    2: eth0    inet 10.231.0.1/24 scope global eth0\\       valid_lft forever\n\
                    2: eth0    inet 10.231.0.100/24 scope global secondary eth0\\ x\n";
        assert_eq!(
            parse_interface(text, "10.231.0.1"),
            Some(("eth0".into(), 24))
        );
        assert_eq!(parse_interface(text, "127.0.0.1"), Some(("lo".into(), 8)));
        assert_eq!(parse_interface(text, "10.231.0.2"), None);
        assert_eq!(parse_interface(text, "10.231.0"), None);
    }

    #[test]
    fn stat_lines_become_servers() {
        let csv = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg\n\
                   nines_rw_in,FRONTEND,,,1,2,8192,5,0,0,0,0,0,,,,,OPEN,,,,,,\n\
                   nines_rw,127_0_0_1_3306,0,0,2,3,,17,0,0,,0,,0,0,0,0,UP,1,1,0,4,3,100\n\
                   nines_ro,127_0_0_2_3306,0,0,0,1,,9,0,0,,0,,0,0,0,0,DOWN 1/2,1,1,0,1,1,5\n\
                   nines_rw,BACKEND,0,0,2,3,,17,0,0,0,0,,0,0,0,0,UP,1,1,0,,0,100\n";
        let s = parse_stat(csv);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].pool, Pool::Rw);
        assert_eq!(s[0].server, "127_0_0_1_3306");
        assert_eq!(
            (s[0].sessions, s[0].sessions_total, s[0].check_downs),
            (2, 17, 3)
        );
        assert_eq!(s[1].status, "DOWN");
        assert_eq!(s[1].pool, Pool::Ro);
    }
}
