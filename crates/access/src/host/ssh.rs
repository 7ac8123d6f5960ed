//! [`SshHost`]: host access over OpenSSH, through the `openssh` crate's native
//! multiplexing. Each `SshHost` keeps one master connection (`ssh -M`), opened on first
//! use and opened again when it is found dead; every command is a new session on that
//! connection, at most [`MAX_CONCURRENT_COMMANDS`] at a time (sshd's `MaxSessions` is 10
//! by default). Host keys are checked strictly: an unknown or changed key is an error,
//! never silently accepted. Every remote program runs under coreutils `timeout`, set a
//! second past the caller's deadline, so one that times out here is killed there too
//! (closing its session alone would not stop it).

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use openssh::{Child, KnownHosts, Session, SessionBuilder, Stdio};
use tokio::io::AsyncRead;
use tokio::sync::{Mutex, Semaphore};

use super::command::{
    CommandOutput, HostCommand, read_file_command, shell_join, write_file_command,
};
use super::error::{HostError, classify_ssh_failure};
use super::local::{feed_stdin, pump_stdout, read_pipe};
use super::{HostAccess, current_euid};

/// How many commands one `SshHost` runs at once (sshd's `MaxSessions` defaults to 10).
pub const MAX_CONCURRENT_COMMANDS: usize = 8;

/// Keep-alive probe interval of the master connection; three missed probes end it.
const SERVER_ALIVE_INTERVAL: Duration = Duration::from_secs(15);

/// How much longer than the caller's timeout a remote program may run before the
/// remote `timeout` kills it.
const REMOTE_TIMEOUT_GRACE: Duration = Duration::from_secs(1);

/// An idle master connection exits after this long, so none outlives a crashed controller
/// by much; the next command simply opens a new one.
const CONTROL_PERSIST_IDLE_SECS: std::num::NonZeroUsize = match std::num::NonZeroUsize::new(600) {
    Some(secs) => secs,
    None => unreachable!(),
};

/// Where to connect and how to authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    /// Host name or IP address (no `user@`, no port).
    pub host: String,
    /// TCP port of sshd.
    pub port: u16,
    /// Login user; commands with `sudo` get `sudo -n` unless this is `root`.
    pub user: String,
    /// Private key to use (and only that one); None uses ssh's defaults and agent.
    pub key_path: Option<PathBuf>,
    /// An ssh_config file used instead of `~/.ssh/config` (`ssh -F`).
    pub config_file: Option<PathBuf>,
    /// The known_hosts file to check the host key against (`UserKnownHostsFile`).
    pub known_hosts_file: Option<PathBuf>,
    /// How long to wait for the TCP connect and SSH handshake (whole seconds, at least 1).
    pub connect_timeout: Duration,
}

impl SshTarget {
    /// A target on port 22 with ssh's default keys and a 10 s connect timeout.
    pub fn new(host: impl Into<String>, user: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            port: 22,
            user: user.into(),
            key_path: None,
            config_file: None,
            known_hosts_file: None,
            connect_timeout: Duration::from_secs(10),
        }
    }

    /// The name used in logs and errors, e.g. `ssh root@127.0.0.11:2222`.
    pub fn describe(&self) -> String {
        if self.host.contains(':') {
            format!("ssh {}@[{}]:{}", self.user, self.host, self.port)
        } else {
            format!("ssh {}@{}:{}", self.user, self.host, self.port)
        }
    }

    /// Reject host names ssh would read as something else (an option, a user, a URI).
    fn validate(&self) -> Result<(), String> {
        let h = &self.host;
        if h.is_empty()
            || h.starts_with('-')
            || h.contains('@')
            || h.contains("://")
            || h.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(format!("invalid ssh host name {h:?}"));
        }
        if self.user.is_empty() || self.user.starts_with('-') {
            return Err(format!("invalid ssh user name {:?}", self.user));
        }
        Ok(())
    }
}

/// Host access over SSH with one multiplexed master connection.
#[derive(Debug)]
pub struct SshHost {
    target: SshTarget,
    name: String,
    master: Mutex<Option<Arc<Session>>>,
    permits: Semaphore,
}

impl SshHost {
    /// Host access to `target`; nothing connects until the first call.
    pub fn new(target: SshTarget) -> Self {
        Self {
            name: target.describe(),
            target,
            master: Mutex::new(None),
            permits: Semaphore::new(MAX_CONCURRENT_COMMANDS),
        }
    }

    /// Where this host connects to.
    pub fn target(&self) -> &SshTarget {
        &self.target
    }

    /// The control socket of the current master connection, if one is open (diagnostics).
    pub async fn control_socket(&self) -> Option<PathBuf> {
        self.master
            .lock()
            .await
            .as_ref()
            .map(|s| s.control_socket().to_path_buf())
    }

    /// Refuse further commands (they fail with `Cancelled`) and close the master connection.
    pub async fn shutdown(&self) {
        self.permits.close();
        let master = self.master.lock().await.take();
        if let Some(session) = master.and_then(|s| Arc::try_unwrap(s).ok())
            && let Err(e) = session.close().await
        {
            tracing::debug!(host = %self.name, error = %e, "closing ssh master failed");
        }
        // A session still shared by a running command closes when that command drops it.
    }

    fn needs_sudo(&self) -> bool {
        self.target.user != "root"
    }

    fn transport(&self, detail: impl Into<String>) -> HostError {
        HostError::Transport {
            host: self.name.clone(),
            detail: detail.into(),
        }
    }

    fn io_error(&self, what: impl Into<String>, source: std::io::Error) -> HostError {
        HostError::Io {
            host: self.name.clone(),
            what: what.into(),
            source,
        }
    }

    /// The current master connection, opened if there is none.
    async fn session(&self) -> Result<Arc<Session>, HostError> {
        let mut master = self.master.lock().await;
        if let Some(session) = master.as_ref() {
            return Ok(Arc::clone(session));
        }
        let session = Arc::new(self.connect().await?);
        *master = Some(Arc::clone(&session));
        Ok(session)
    }

    /// Drop `dead` as the master connection (unless another task already replaced it).
    async fn forget(&self, dead: &Arc<Session>) {
        let mut master = self.master.lock().await;
        if master.as_ref().is_some_and(|s| Arc::ptr_eq(s, dead)) {
            *master = None;
        }
    }

    async fn connect(&self) -> Result<Session, HostError> {
        let t = &self.target;
        t.validate().map_err(|detail| {
            self.io_error(
                "connect",
                std::io::Error::new(std::io::ErrorKind::InvalidInput, detail),
            )
        })?;
        let dir = control_dir().map_err(|e| self.io_error("prepare ssh control directory", e))?;
        let mut b = SessionBuilder::default();
        b.known_hosts_check(KnownHosts::Strict)
            .user(t.user.clone())
            .port(t.port)
            .connect_timeout(t.connect_timeout.max(Duration::from_secs(1)))
            .server_alive_interval(SERVER_ALIVE_INTERVAL)
            .control_directory(&dir)
            .control_persist(openssh::ControlPersist::IdleFor(CONTROL_PERSIST_IDLE_SECS));
        if let Some(key) = &t.key_path {
            b.keyfile(key);
        }
        if let Some(config) = &t.config_file {
            b.config_file(config);
        }
        if let Some(known_hosts) = &t.known_hosts_file {
            b.user_known_hosts_file(known_hosts);
        }
        let started = std::time::Instant::now();
        match b.connect_mux(&t.host).await {
            Ok(session) => {
                tracing::info!(
                    host = %self.name,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "ssh master connection opened"
                );
                Ok(session)
            }
            Err(e) => {
                let err = self.map_connect_error(e);
                tracing::warn!(host = %self.name, error = %err, "ssh connect failed");
                Err(err)
            }
        }
    }

    fn map_connect_error(&self, e: openssh::Error) -> HostError {
        match e {
            // An OS error means ssh could not be started or its log read; otherwise the
            // text is what ssh printed.
            openssh::Error::Connect(io) if io.raw_os_error().is_some() => {
                self.io_error("start ssh", io)
            }
            openssh::Error::Connect(io) => classify_ssh_failure(&self.name, &io.to_string()),
            openssh::Error::Master(io) => self.io_error("create ssh control directory", io),
            other => self.transport(error_chain(&other)),
        }
    }

    async fn run_inner(
        &self,
        cmd: &HostCommand,
        timeout: Duration,
        stdin: Option<&mut (dyn AsyncRead + Send + Unpin)>,
        stdout: Option<&mut (dyn tokio::io::AsyncWrite + Send + Unpin)>,
    ) -> Result<CommandOutput, HostError> {
        cmd.validate().map_err(|detail| {
            self.io_error(
                format!("invalid command `{}`", cmd.summary()),
                std::io::Error::new(std::io::ErrorKind::InvalidInput, detail),
            )
        })?;
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| HostError::Cancelled {
                host: self.name.clone(),
            })?;
        let line = shell_join(&remote_argv(cmd, cmd.sudo && self.needs_sudo(), timeout));
        let mut reconnected = false;
        loop {
            let session = self.session().await?;
            let mut command = Session::to_raw_command(Arc::clone(&session), &line);
            command
                .stdin(if cmd.stdin.is_some() || stdin.is_some() {
                    Stdio::piped()
                } else {
                    Stdio::null()
                })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            match command.spawn().await {
                Ok(child) => return self.collect(child, cmd, &session, stdin, stdout).await,
                Err(e) => {
                    if !reconnected && session.check().await.is_err() {
                        // The master died (network loss, idle exit, killed): the command
                        // never started, so it is safe to open a new master and retry.
                        tracing::info!(host = %self.name, error = %e, "ssh master is gone; reconnecting");
                        self.forget(&session).await;
                        reconnected = true;
                        continue;
                    }
                    return Err(self.transport(format!(
                        "could not start `{}`: {}",
                        cmd.program,
                        error_chain(&e)
                    )));
                }
            }
        }
    }

    async fn collect(
        &self,
        mut child: Child<Arc<Session>>,
        cmd: &HostCommand,
        session: &Arc<Session>,
        source: Option<&mut (dyn AsyncRead + Send + Unpin)>,
        sink: Option<&mut (dyn tokio::io::AsyncWrite + Send + Unpin)>,
    ) -> Result<CommandOutput, HostError> {
        let stdin = child.stdin().take();
        let stdout = child.stdout().take();
        let stderr = child.stderr().take();
        // Closing the pipe (EOF) ends the remote program's input.
        let feed = feed_stdin(stdin, source, cmd.stdin.as_deref());
        let (fed, out, err) = tokio::join!(feed, pump_stdout(stdout, sink), read_pipe(stderr));
        let status = match child.wait().await {
            Ok(status) => status.code(),
            // The native mux reports exit status 127 as an error; keep it a status, so
            // the caller sees the stderr ("command not found") through `check()`.
            Err(openssh::Error::Remote(e)) if e.kind() == std::io::ErrorKind::NotFound => Some(127),
            // No exit status: killed by a signal, or the connection went away.
            Err(openssh::Error::RemoteProcessTerminated) => {
                if session.check().await.is_err() {
                    self.forget(session).await;
                    return Err(
                        self.transport(format!("connection lost while running `{}`", cmd.program))
                    );
                }
                None
            }
            Err(e) => {
                return Err(self.transport(format!(
                    "waiting for `{}`: {}",
                    cmd.program,
                    error_chain(&e)
                )));
            }
        };
        fed.map_err(|e| self.io_error(format!("write stdin of `{}`", cmd.program), e))?;
        let stdout =
            out.map_err(|e| self.io_error(format!("read stdout of `{}`", cmd.program), e))?;
        let stderr =
            err.map_err(|e| self.io_error(format!("read stderr of `{}`", cmd.program), e))?;
        Ok(CommandOutput {
            host: self.name.clone(),
            program: cmd.program.clone(),
            status,
            stdout,
            stderr,
        })
    }

    /// Turn a failed file command into an `Io` error when its stderr says why in
    /// errno words (missing file, no permission); otherwise `CommandFailed`.
    fn file_error(&self, what: String, out: CommandOutput) -> HostError {
        let stderr = out.stderr_text();
        // dash (Debian's sh) says "Directory nonexistent" for a missing parent directory.
        let kind = if stderr.contains("No such file or directory")
            || stderr.contains("Directory nonexistent")
        {
            Some(std::io::ErrorKind::NotFound)
        } else if stderr.contains("Permission denied") {
            Some(std::io::ErrorKind::PermissionDenied)
        } else {
            None
        };
        match (kind, out.check()) {
            (Some(kind), _) => {
                self.io_error(what, std::io::Error::new(kind, stderr.trim().to_owned()))
            }
            (None, Err(e)) => e,
            (None, Ok(_)) => self.transport(format!("{what}: unexpected success")),
        }
    }
}

/// The argument vector run on the host: `[sudo -n] timeout -k 5 <limit> [env K=V…]
/// program args…`. coreutils `timeout` kills the program's whole process group a second
/// after our own deadline: closing an SSH session does not stop a remote process that
/// neither reads nor writes, and its session would keep the master connection alive.
pub(crate) fn remote_argv(cmd: &HostCommand, apply_sudo: bool, timeout: Duration) -> Vec<String> {
    let mut argv = Vec::with_capacity(cmd.args.len() + cmd.env.len() + 8);
    if apply_sudo {
        argv.extend(["sudo".to_owned(), "-n".to_owned()]);
    }
    let limit = timeout.saturating_add(REMOTE_TIMEOUT_GRACE);
    argv.extend([
        "timeout".to_owned(),
        "-k".to_owned(),
        "5".to_owned(),
        format!("{}.{:03}", limit.as_secs(), limit.subsec_millis()),
    ]);
    argv.extend(cmd.argv(false, true));
    argv
}

/// An error and its sources, joined with `: `.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// `/tmp/nines-ssh-<uid>`, mode 0700 and owned by us: short, because a Unix socket path
/// is limited to 108 bytes and ssh appends a random suffix to the socket name.
fn control_dir() -> std::io::Result<PathBuf> {
    let uid = current_euid();
    let dir = PathBuf::from(match uid {
        Some(uid) => format!("/tmp/nines-ssh-{uid}"),
        None => "/tmp/nines-ssh".to_owned(),
    });
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    check_private_dir(&dir, uid)?;
    Ok(dir)
}

fn check_private_dir(dir: &Path, uid: Option<u32>) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(dir)?;
    if !meta.is_dir() || uid.is_some_and(|uid| meta.uid() != uid) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("{} is not a directory owned by us", dir.display()),
        ));
    }
    if meta.permissions().mode() & 0o777 != 0o700 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl HostAccess for SshHost {
    fn describe(&self) -> String {
        self.name.clone()
    }

    async fn run(&self, cmd: &HostCommand, timeout: Duration) -> Result<CommandOutput, HostError> {
        self.run_streaming(cmd, timeout, None, None).await
    }

    async fn run_streaming(
        &self,
        cmd: &HostCommand,
        timeout: Duration,
        stdin: Option<&mut (dyn AsyncRead + Send + Unpin)>,
        stdout: Option<&mut (dyn tokio::io::AsyncWrite + Send + Unpin)>,
    ) -> Result<CommandOutput, HostError> {
        let started = std::time::Instant::now();
        let inner = self.run_inner(cmd, timeout, stdin, stdout);
        let result = match tokio::time::timeout(timeout, inner).await {
            Ok(result) => result,
            Err(_) => Err(HostError::Timeout {
                host: self.name.clone(),
                what: format!("run `{}`", cmd.summary()),
                after: timeout,
            }),
        };
        tracing::debug!(
            host = %self.name,
            program = %cmd.program,
            status = ?result.as_ref().map(|o| o.status),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "command finished"
        );
        result
    }

    async fn read_file(&self, path: &str, timeout: Duration) -> Result<Vec<u8>, HostError> {
        let out = self.run(&read_file_command(path), timeout).await?;
        if out.success() {
            Ok(out.stdout)
        } else {
            Err(self.file_error(format!("read {path}"), out))
        }
    }

    async fn write_file(
        &self,
        path: &str,
        contents: &[u8],
        mode: u32,
        timeout: Duration,
    ) -> Result<(), HostError> {
        let out = self
            .run(&write_file_command(path, contents, mode), timeout)
            .await?;
        if out.success() {
            Ok(())
        } else {
            Err(self.file_error(format!("write {path}"), out))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_argv_wraps_sudo_timeout_and_env() {
        let cmd = HostCommand::new("mysql").arg("-e").arg("x").env("A", "1");
        assert_eq!(
            remote_argv(&cmd, true, Duration::from_millis(2500)),
            [
                "sudo", "-n", "timeout", "-k", "5", "3.500", "env", "A=1", "mysql", "-e", "x"
            ]
        );
        assert_eq!(
            remote_argv(&HostCommand::new("id"), false, Duration::from_secs(10)),
            ["timeout", "-k", "5", "11.000", "id"]
        );
    }

    #[test]
    fn describe_brackets_ipv6() {
        let mut t = SshTarget::new("127.0.0.11", "root");
        t.port = 2222;
        assert_eq!(t.describe(), "ssh root@127.0.0.11:2222");
        assert_eq!(SshTarget::new("::1", "u").describe(), "ssh u@[::1]:22");
    }

    #[test]
    fn validate_rejects_option_like_hosts() {
        for bad in ["", "-oProxyCommand=x", "a@b", "ssh://h", "a b", "a\nb"] {
            assert!(SshTarget::new(bad, "root").validate().is_err(), "{bad:?}");
        }
        assert!(SshTarget::new("db1.example.com", "-x").validate().is_err());
        assert!(SshTarget::new("db1.example.com", "root").validate().is_ok());
        assert!(SshTarget::new("fe80::1", "root").validate().is_ok());
    }

    #[test]
    fn control_dir_is_short_and_private() {
        let dir = control_dir().expect("control dir");
        // Room for openssh's `/.ssh-connectionXXXXXX/master` plus ssh's temporary suffix.
        assert!(dir.as_os_str().len() < 40, "{}", dir.display());
        let meta = std::fs::metadata(&dir).expect("meta");
        assert_eq!(meta.permissions().mode() & 0o777, 0o700);
    }

    #[test]
    fn check_private_dir_rejects_a_file() {
        let f = tempfile::NamedTempFile::new().expect("tmp");
        assert!(check_private_dir(f.path(), current_euid()).is_err());
    }
}
