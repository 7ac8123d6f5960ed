//! One node on its host: its files, its service, and SQL through the local client — as
//! the socket-authenticated root on a node nines deployed, or with the registered
//! account over TCP on an imported node (backups only: nines knows no imported node's
//! service). Every operation on a node goes through here.

use std::sync::Arc;
use std::time::Duration;

use nines_access::host::{HostAccess, HostCommand, service, sql};
use nines_model::Endpoint;
use nines_model::deploy::{NodeSettings, ServiceKind};

use crate::OpError;

/// The start of a shell script whose standard input begins with a password line: the
/// MariaDB tools read it from `MYSQL_PWD` (only the process's own user and root can read
/// its environment).
pub const LOGIN_FROM_STDIN: &str = "IFS= read -r MYSQL_PWD; export MYSQL_PWD;";

/// How long a server may take to stop cleanly (a large buffer pool flushes first).
pub const STOP_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a started server may take to answer SQL (crash recovery can be long).
pub const READY_TIMEOUT: Duration = Duration::from_secs(300);
/// Timeout of one short command or SQL statement.
pub const SHORT: Duration = Duration::from_secs(30);

/// How nines's client logs in to a node's server.
#[derive(Clone)]
pub enum Login {
    /// As root over the node's socket (nodes nines deployed).
    Root,
    /// With an account over TCP to the node's address, from the node's own host (imported
    /// nodes). The password reaches the client on its standard input, never on a command
    /// line or in a file.
    Account { user: String, password: String },
}

/// A node with the transport to its host.
#[derive(Clone)]
pub struct NodeTarget {
    pub endpoint: Endpoint,
    pub settings: NodeSettings,
    pub host: Arc<dyn HostAccess>,
    pub login: Login,
}

impl std::fmt::Debug for NodeTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NodeTarget({})", self.endpoint)
    }
}

impl NodeTarget {
    pub fn new(endpoint: Endpoint, settings: NodeSettings, host: Arc<dyn HostAccess>) -> Self {
        Self {
            endpoint,
            settings,
            host,
            login: Login::Root,
        }
    }

    /// An imported node, for backups: nines logs in with the cluster's registered account
    /// and knows only its data directory (read from the server); its scratch space is
    /// `<datadir>.nines`, as on a deployed node. It has no service nines may start or stop.
    pub async fn imported(
        endpoint: Endpoint,
        host: Arc<dyn HostAccess>,
        user: String,
        password: String,
    ) -> Result<Self, OpError> {
        let mut t = Self {
            endpoint,
            settings: NodeSettings {
                layout: nines_model::deploy::NodeLayout {
                    datadir: String::new(),
                    node_dir: String::new(),
                    config_file: String::new(),
                    socket: String::new(),
                    pid_file: String::new(),
                    error_log: String::new(),
                    service: String::new(),
                },
                server_id: 0,
                service: ServiceKind::Process,
            },
            host,
            login: Login::Account { user, password },
        };
        let dir = t.sql("SELECT @@datadir").await?;
        let dir = dir.trim().trim_end_matches('/');
        if !dir.starts_with('/') || dir.len() < 2 {
            return Err(OpError::Invalid(format!(
                "{}: the server reports the data directory `{dir}`, which is not an absolute path",
                t.endpoint
            )));
        }
        t.settings.layout.datadir = dir.to_string();
        t.settings.layout.node_dir = format!("{dir}.nines");
        Ok(t)
    }

    /// Whether nines deployed this node (knows its files and service).
    pub fn is_deployed(&self) -> bool {
        matches!(self.login, Login::Root)
    }

    fn spec(&self) -> service::ServiceSpec {
        let l = &self.settings.layout;
        service::ServiceSpec {
            name: l.service.clone(),
            config_file: l.config_file.clone(),
            pid_file: l.pid_file.clone(),
            log_file: l.error_log.clone(),
            mariadbd: "/usr/sbin/mariadbd".to_string(),
        }
    }

    fn kind(&self) -> service::ServiceKind {
        match self.settings.service {
            ServiceKind::Systemd => service::ServiceKind::Systemd,
            ServiceKind::Process => service::ServiceKind::Process,
        }
    }

    /// Starts the server (with extra mariadbd arguments such as `--wsrep-new-cluster`).
    pub async fn start(&self, extra: &[&str]) -> Result<(), OpError> {
        service::start(
            self.host.as_ref(),
            self.kind(),
            &self.spec(),
            extra,
            READY_TIMEOUT,
        )
        .await
        .map(|_pid| ())
        .map_err(|e| OpError::Invalid(format!("{}: cannot start the server: {e}", self.endpoint)))
    }

    /// Stops the server cleanly; a no-op when it is not running.
    pub async fn stop(&self) -> Result<(), OpError> {
        if !self.is_running().await? {
            return Ok(());
        }
        service::stop(self.host.as_ref(), self.kind(), &self.spec(), STOP_TIMEOUT)
            .await
            .map_err(|e| {
                OpError::Invalid(format!("{}: cannot stop the server: {e}", self.endpoint))
            })
    }

    pub async fn is_running(&self) -> Result<bool, OpError> {
        service::status(self.host.as_ref(), self.kind(), &self.spec(), SHORT)
            .await
            .map(|s| s.running)
            .map_err(|e| {
                OpError::Invalid(format!(
                    "{}: cannot read the server's state: {e}",
                    self.endpoint
                ))
            })
    }

    /// Stops the server if needed and removes its service definition.
    pub async fn remove_service(&self) -> Result<(), OpError> {
        service::remove(self.host.as_ref(), self.kind(), &self.spec(), STOP_TIMEOUT)
            .await
            .map_err(|e| {
                OpError::Invalid(format!("{}: cannot remove the service: {e}", self.endpoint))
            })
    }

    /// Runs `mariadbd --wsrep-recover` on the stopped server; returns its log text.
    pub async fn wsrep_recover(&self) -> Result<String, OpError> {
        service::wsrep_recover(self.host.as_ref(), &self.spec(), Duration::from_secs(600))
            .await
            .map_err(|e| {
                OpError::Invalid(format!("{}: --wsrep-recover failed: {e}", self.endpoint))
            })
    }

    /// Runs SQL on the node's server (see [`Login`]); returns the client's output.
    pub async fn sql(&self, statements: &str) -> Result<String, OpError> {
        let r = match &self.login {
            Login::Root => {
                sql::run_sql(
                    self.host.as_ref(),
                    &self.settings.layout.socket,
                    statements,
                    SHORT,
                )
                .await
            }
            Login::Account { user, password } => {
                let mut input = Vec::with_capacity(password.len() + 1 + statements.len());
                input.extend_from_slice(password.as_bytes());
                input.push(b'\n');
                input.extend_from_slice(statements.as_bytes());
                let cmd = HostCommand::shell(format!(
                    "{LOGIN_FROM_STDIN} exec mariadb --no-defaults --host=\"$1\" --port=\"$2\" \
                     --user=\"$3\" --batch --skip-column-names --skip-print-query-on-error \
                     --default-character-set=utf8mb4"
                ))
                .arg(&self.endpoint.host)
                .arg(self.endpoint.port.to_string())
                .arg(user)
                .stdin(input);
                match self.host.run(&cmd, SHORT).await {
                    Ok(out) if out.success() => Ok(out.stdout_text()),
                    Ok(out) => Err(nines_access::host::HostError::CommandFailed {
                        stderr: failure_summary(&out.stderr_text(), ""),
                        host: out.host,
                        program: format!("mariadb --host={}", self.endpoint),
                        status: out.status,
                    }),
                    Err(e) => Err(e),
                }
            }
        };
        r.map_err(|e| OpError::Invalid(format!("{}: SQL failed: {e}", self.endpoint)))
    }

    /// Waits until the server answers SQL on its socket. A server that exits meanwhile
    /// (seen gone twice in a row between polls) ends the wait at once, with the tail of
    /// its error log, rather than at the timeout: a crash-looping server must not hold
    /// its cluster's jobs for minutes.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), OpError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let socket = &self.settings.layout.socket;
        let mut gone = 0;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let slice = left.min(Duration::from_secs(3));
            match sql::wait_sql_ready(self.host.as_ref(), socket, slice).await {
                Ok(()) => return Ok(()),
                Err(nines_access::host::HostError::Timeout { .. }) if !left.is_zero() => {}
                Err(e) => {
                    return Err(OpError::Invalid(format!(
                        "{}: server did not become ready: {e}",
                        self.endpoint
                    )));
                }
            }
            if self.is_running().await.unwrap_or(true) {
                gone = 0;
                continue;
            }
            gone += 1;
            if gone >= 2 {
                let log = self
                    .run(
                        HostCommand::new("tail")
                            .arg("-n")
                            .arg("8")
                            .arg(&self.settings.layout.error_log),
                        SHORT,
                    )
                    .await
                    .unwrap_or_default();
                return Err(OpError::Invalid(format!(
                    "{}: the server exited before it answered SQL; its error log ends: {}",
                    self.endpoint,
                    failure_summary("", &log)
                )));
            }
        }
    }

    /// Reads one status variable through the socket.
    pub async fn status_var(&self, name: &str) -> Result<String, OpError> {
        let out = self
            .sql(&format!("SHOW GLOBAL STATUS LIKE '{name}'"))
            .await?;
        Ok(out
            .lines()
            .next()
            .and_then(|l| l.split('\t').nth(1))
            .unwrap_or("")
            .trim()
            .to_string())
    }

    /// Polls until `wsrep_local_state_comment` is Synced, with a deadline; says in the job
    /// log what it waits for every [`crate::wait::REPORT_EVERY`], and stops when the job
    /// is cancelled.
    pub async fn wait_synced(
        &self,
        timeout: Duration,
        reporter: &dyn crate::Reporter,
    ) -> Result<(), OpError> {
        let started = tokio::time::Instant::now();
        let deadline = started + timeout;
        let mut next_report = started + crate::wait::REPORT_EVERY;
        loop {
            let last = match self.status_var("wsrep_local_state_comment").await {
                Ok(s) if s == "Synced" => return Ok(()),
                Ok(s) if s.is_empty() => "no wsrep state".to_string(),
                Ok(s) => s,
                Err(e) => e.to_string(),
            };
            if !self.is_running().await.unwrap_or(false) {
                return Err(OpError::Invalid(format!(
                    "{}: the server stopped while joining the cluster (last state: {last}); see {}",
                    self.endpoint, self.settings.layout.error_log
                )));
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(OpError::Invalid(format!(
                    "{}: not Synced after {} s (state: {last})",
                    self.endpoint,
                    timeout.as_secs()
                )));
            }
            if now >= next_report {
                next_report = now + crate::wait::REPORT_EVERY;
                reporter
                    .info(&format!(
                        "waiting for {} to be Synced: {last} ({} s of at most {} s)",
                        self.endpoint,
                        (now - started).as_secs(),
                        timeout.as_secs()
                    ))
                    .await;
            }
            tokio::select! {
                _ = reporter.cancellation().cancelled() => return Err(OpError::Cancelled),
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
        }
    }

    /// Runs a command on the node's host as root and checks its exit status.
    pub async fn run(&self, cmd: HostCommand, timeout: Duration) -> Result<String, OpError> {
        let out = self
            .host
            .run(&cmd.sudo(true), timeout)
            .await
            .map_err(|e| OpError::Invalid(e.to_string()))?;
        if out.success() {
            return Ok(out.stdout_text());
        }
        Err(OpError::Invalid(format!(
            "{}: `{}` exited with status {}: {}",
            self.endpoint,
            out.program,
            out.status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "signal".into()),
            failure_summary(&out.stderr_text(), &out.stdout_text())
        )))
    }
}

/// The lines of a failed command worth showing: those that say "error" (some tools, such
/// as mariadb-install-db, report on stdout amid boilerplate), else the last few lines.
pub fn failure_summary(stderr: &str, stdout: &str) -> String {
    let all: Vec<&str> = stderr
        .lines()
        .chain(stdout.lines())
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let errors: Vec<&str> = all
        .iter()
        .copied()
        .filter(|l| l.to_ascii_lowercase().contains("error"))
        .take(6)
        .collect();
    let picked = if errors.is_empty() {
        all[all.len().saturating_sub(6)..].to_vec()
    } else {
        errors
    };
    picked.join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_summary_prefers_error_lines() {
        let out = "Installing MariaDB system tables\n2026 0 [ERROR] unknown variable 'x=1'\n2026 0 [ERROR] Aborting\nThe latest information is at https://...\n";
        assert_eq!(
            failure_summary("", out),
            "2026 0 [ERROR] unknown variable 'x=1' | 2026 0 [ERROR] Aborting"
        );
        assert_eq!(failure_summary("a\nb\n", ""), "a | b");
    }
}
