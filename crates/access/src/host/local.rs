//! [`LocalHost`]: host access to the controller's own machine, for clusters whose nodes
//! run next to it (development, tests, single-machine setups). Commands run as child
//! processes in their own process group: the whole group is killed when they time out,
//! the child itself when the caller stops waiting; files are read and atomically
//! written (temporary file, fsync, rename) with tokio::fs.

use std::io::ErrorKind;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::command::{CommandOutput, HostCommand};
use super::error::HostError;
use super::{HostAccess, current_euid};

const NAME: &str = "local";

/// Host access to the machine this process runs on.
#[derive(Debug, Clone)]
pub struct LocalHost {
    is_root: bool,
}

impl Default for LocalHost {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalHost {
    /// Access to this machine, as the user this process runs as.
    pub fn new() -> Self {
        Self {
            is_root: current_euid() == Some(0),
        }
    }

    fn io_error(what: impl Into<String>, source: std::io::Error) -> HostError {
        HostError::Io {
            host: NAME.to_owned(),
            what: what.into(),
            source,
        }
    }

    fn timeout_error(what: impl Into<String>, after: Duration) -> HostError {
        HostError::Timeout {
            host: NAME.to_owned(),
            what: what.into(),
            after,
        }
    }

    /// A fresh temporary name next to `path`, for an atomic write.
    fn temp_name(path: &str) -> String {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        format!(
            "{path}.nines-tmp.{}.{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        )
    }
}

async fn write_then_rename(
    tmp: &str,
    path: &str,
    contents: &[u8],
    mode: u32,
) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)
        .await?;
    file.write_all(contents).await?;
    file.sync_all().await?;
    drop(file);
    // Set the mode explicitly: the one given at creation is filtered by the umask.
    tokio::fs::set_permissions(tmp, std::fs::Permissions::from_mode(mode)).await?;
    tokio::fs::rename(tmp, path).await?;
    if let Some(dir) = Path::new(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        // Make the rename durable; failure to sync a directory is not worth an error.
        if let Ok(d) = tokio::fs::File::open(dir).await {
            let _ = d.sync_all().await;
        }
    }
    Ok(())
}

/// Feeds a child's stdin from `source` (a stream) or `bytes` (the command's own input),
/// then closes it. A program that exits without reading all of it is not an error.
pub(crate) async fn feed_stdin<W: AsyncWrite + Unpin>(
    pipe: Option<W>,
    source: Option<&mut (dyn AsyncRead + Send + Unpin)>,
    bytes: Option<&[u8]>,
) -> std::io::Result<()> {
    let Some(mut pipe) = pipe else { return Ok(()) };
    let r = match (source, bytes) {
        (Some(src), _) => tokio::io::copy(src, &mut pipe).await.map(|_| ()),
        (None, Some(b)) => pipe.write_all(b).await,
        (None, None) => Ok(()),
    };
    match r {
        Err(e) if e.kind() != ErrorKind::BrokenPipe => return Err(e),
        _ => {}
    }
    // Closing the pipe is the program's end of input.
    match pipe.shutdown().await {
        Err(e) if e.kind() != ErrorKind::BrokenPipe => Err(e),
        _ => Ok(()),
    }
}

/// Copies a child's stdout into `sink` as it comes (returning nothing), or collects it.
pub(crate) async fn pump_stdout<R: AsyncRead + Unpin>(
    pipe: Option<R>,
    sink: Option<&mut (dyn AsyncWrite + Send + Unpin)>,
) -> std::io::Result<Vec<u8>> {
    match (pipe, sink) {
        (Some(mut out), Some(sink)) => {
            tokio::io::copy(&mut out, sink).await?;
            sink.flush().await?;
            Ok(Vec::new())
        }
        (pipe, None) => read_pipe(pipe).await,
        (None, Some(_)) => Ok(Vec::new()),
    }
}

/// Everything a pipe gives until its end.
pub(crate) async fn read_pipe<R: AsyncRead + Unpin>(pipe: Option<R>) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    if let Some(mut pipe) = pipe {
        pipe.read_to_end(&mut buf).await?;
    }
    Ok(buf)
}

/// Kills a command's process group when the command's run is dropped before it was waited
/// for (the job running it was cancelled): `kill_on_drop` reaches only the child, and a
/// pipeline such as `mariabackup | socat` would run on.
struct GroupGuard {
    pgid: Option<u32>,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            // Drop cannot await; kill(1) returns at once. Nothing more can be done here if
            // it fails, so it is logged.
            let killed = std::process::Command::new("kill")
                .args(["-s", "KILL", "--", &format!("-{pgid}")])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if let Err(e) = killed {
                tracing::warn!(pgid, error = %e, "cannot kill an abandoned command's processes");
            }
        }
    }
}

/// Kill a process group by id with the shell's `kill` builtin (this workspace forbids
/// unsafe code, so no libc).
async fn kill_process_group(pgid: u32) {
    let _ = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(r#"kill -s KILL -- "-$1""#)
        .arg("sh")
        .arg(pgid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
}

#[async_trait::async_trait]
impl HostAccess for LocalHost {
    fn describe(&self) -> String {
        NAME.to_owned()
    }

    async fn run(&self, cmd: &HostCommand, timeout: Duration) -> Result<CommandOutput, HostError> {
        self.run_streaming(cmd, timeout, None, None).await
    }

    async fn run_streaming(
        &self,
        cmd: &HostCommand,
        timeout: Duration,
        stdin: Option<&mut (dyn AsyncRead + Send + Unpin)>,
        stdout: Option<&mut (dyn AsyncWrite + Send + Unpin)>,
    ) -> Result<CommandOutput, HostError> {
        cmd.validate().map_err(|detail| {
            Self::io_error(
                format!("invalid command `{}`", cmd.summary()),
                std::io::Error::new(std::io::ErrorKind::InvalidInput, detail),
            )
        })?;
        let apply_sudo = cmd.sudo && !self.is_root;
        let argv = cmd.argv(apply_sudo, false);
        let (program, args) = argv.split_first().ok_or_else(|| {
            Self::io_error("empty command", std::io::ErrorKind::InvalidInput.into())
        })?;
        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            .stdin(if cmd.stdin.is_some() || stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        if !apply_sudo {
            command.envs(cmd.env.iter().map(|(k, v)| (k, v)));
        }
        let started = std::time::Instant::now();
        let mut child = match command.spawn() {
            Ok(child) => child,
            // Answer like a shell (and like SshHost) would: 127 not found, 126 not executable.
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::PermissionDenied) => {
                let (status, reason) = if e.kind() == ErrorKind::NotFound {
                    (127, "command not found")
                } else {
                    (126, "permission denied")
                };
                return Ok(CommandOutput {
                    host: NAME.to_owned(),
                    program: cmd.program.clone(),
                    status: Some(status),
                    stdout: Vec::new(),
                    stderr: format!("{program}: {reason}\n").into_bytes(),
                });
            }
            Err(e) => return Err(Self::io_error(format!("start `{}`", cmd.program), e)),
        };
        let pid = child.id();
        // Until the command is waited for, everything it started dies with it if this run
        // is abandoned (a cancelled job drops the future): not only the child itself.
        let mut group = GroupGuard { pgid: pid };
        let pipe_in = child.stdin.take();
        let pipe_out = child.stdout.take();
        let pipe_err = child.stderr.take();
        let feed = feed_stdin(pipe_in, stdin, cmd.stdin.as_deref());
        let pump = pump_stdout(pipe_out, stdout);
        let errs = read_pipe(pipe_err);
        let work = async {
            let (fed, out, err) = tokio::join!(feed, pump, errs);
            let status = child.wait().await;
            (fed, out.and_then(|o| err.map(|e| (o, e))), status)
        };
        let (fed, output, status) = match tokio::time::timeout(timeout, work).await {
            Ok(done) => {
                group.pgid = None;
                done
            }
            Err(_) => {
                // The child itself is killed on drop; also kill anything it started.
                if let Some(pid) = group.pgid.take() {
                    kill_process_group(pid).await;
                }
                return Err(Self::timeout_error(
                    format!("run `{}`", cmd.summary()),
                    timeout,
                ));
            }
        };
        let status = status.map_err(|e| Self::io_error(format!("run `{}`", cmd.program), e))?;
        let (out, err) = output
            .map_err(|e| Self::io_error(format!("read the output of `{}`", cmd.program), e))?;
        fed.map_err(|e| Self::io_error(format!("write stdin of `{}`", cmd.program), e))?;
        tracing::debug!(
            host = NAME,
            program = %cmd.program,
            status = ?status.code(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "command finished"
        );
        Ok(CommandOutput {
            host: NAME.to_owned(),
            program: cmd.program.clone(),
            status: status.code(),
            stdout: out,
            stderr: err,
        })
    }

    async fn read_file(&self, path: &str, timeout: Duration) -> Result<Vec<u8>, HostError> {
        match tokio::time::timeout(timeout, tokio::fs::read(path)).await {
            Ok(r) => r.map_err(|e| Self::io_error(format!("read {path}"), e)),
            Err(_) => Err(Self::timeout_error(format!("read {path}"), timeout)),
        }
    }

    async fn write_file(
        &self,
        path: &str,
        contents: &[u8],
        mode: u32,
        timeout: Duration,
    ) -> Result<(), HostError> {
        let tmp = Self::temp_name(path);
        let write = write_then_rename(&tmp, path, contents, mode & 0o7777);
        let result = match tokio::time::timeout(timeout, write).await {
            Ok(r) => r.map_err(|e| Self::io_error(format!("write {path}"), e)),
            Err(_) => Err(Self::timeout_error(format!("write {path}"), timeout)),
        };
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result
    }
}
