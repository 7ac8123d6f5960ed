//! Running one `mariadbd` instance on a host, either as a systemd unit (when the host
//! runs systemd) or as a plain background process with a pid file. Either way nines,
//! not the OS, decides restarts: the unit has `Restart=no`, and a process that dies
//! stays dead until nines starts it again.
//!
//! * [`ServiceKind::Process`]: `setsid mariadbd --defaults-file=CFG …` started as root
//!   (the config's `user=mysql` makes it drop privileges), detached from the SSH
//!   session, output appended to the error log. A process counts as the service only if
//!   its argv is exactly `<mariadbd> … --defaults-file=<config> …` and it is not a
//!   zombie, so a stale pid file whose pid was reused reads as not running. Tested for
//!   real (locally and over SSH).
//! * [`ServiceKind::Systemd`]: a unit `/etc/systemd/system/<name>.service`
//!   ([`render_unit`]) with `Type=notify` and an `EnvironmentFile` through which
//!   [`start`] passes one-off arguments (`--wsrep-new-cluster`) and clears them after.
//!   **Untested on a real systemd** (the machines here have none): the unit text is
//!   unit-tested, the systemctl calls are written to its documentation.
//!
//! [`start`] returns once the server is through its startup: the pid file names the
//! live process (Process) or the unit is `active`, i.e. mariadbd sent `READY=1`
//! (Systemd). mariadbd does both only after storage engine initialisation, so a
//! joining Galera node gets there after its state transfer: give it a timeout that
//! covers one. Readiness for clients and Galera sync are the caller's to check.
//! [`stop`] sends SIGTERM once and waits; it never escalates (that is [`kill`]).

use std::time::{Duration, Instant};

use super::command::{HostCommand, shell_quote};
use super::error::HostError;
use super::fs::invalid_input;
use super::parse::{require_end, section, split_sections};
use super::{HostAccess, HostFacts};

/// Where distribution packages put the server.
pub const DEFAULT_MARIADBD: &str = "/usr/sbin/mariadbd";
/// Where [`ServiceKind::Systemd`] writes unit files.
pub const UNIT_DIR: &str = "/etc/systemd/system";
/// Where [`ServiceKind::Systemd`] writes the environment files of its units.
pub const ENV_DIR: &str = "/etc/nines";

/// Pause between two looks at a starting or stopping server.
const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// The longest a single look may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// How many lines of the error log (and journal) a failed start reports.
const LOG_TAIL_LINES: usize = 40;

/// One mariadbd instance on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    /// Unit / instance name, e.g. `nines-mariadb-127.0.0.11-3306` (letters, digits, `._-@`).
    pub name: String,
    /// The server's option file (`--defaults-file`); it sets `user=`, `pid-file=`
    /// (= `pid_file`) and `log-error=` (= `log_file`).
    pub config_file: String,
    /// The pid file mariadbd writes (its `pid-file` option).
    pub pid_file: String,
    /// The error log (its `log-error` option); [`ServiceKind::Process`] also appends
    /// the server's stdout and stderr to it.
    pub log_file: String,
    /// The server binary, [`DEFAULT_MARIADBD`] unless the host has it elsewhere.
    pub mariadbd: String,
}

impl ServiceSpec {
    /// A spec running [`DEFAULT_MARIADBD`].
    pub fn new(
        name: impl Into<String>,
        config_file: impl Into<String>,
        pid_file: impl Into<String>,
        log_file: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            config_file: config_file.into(),
            pid_file: pid_file.into(),
            log_file: log_file.into(),
            mariadbd: DEFAULT_MARIADBD.to_owned(),
        }
    }

    /// `<name>.service`.
    pub fn unit_name(&self) -> String {
        format!("{}.service", self.name)
    }

    /// `/etc/systemd/system/<name>.service`.
    pub fn unit_path(&self) -> String {
        format!("{UNIT_DIR}/{}", self.unit_name())
    }

    /// `/etc/nines/<name>.env`.
    pub fn env_path(&self) -> String {
        format!("{ENV_DIR}/{}.env", self.name)
    }

    /// `<pid_file>.nines-launch`: the pid [`start`] launched (Process kind), so that the
    /// server counts as running before it writes its own pid file.
    pub fn launch_file(&self) -> String {
        format!("{}.nines-launch", self.pid_file)
    }

    /// Names and paths safe for unit files and scripts.
    pub fn validate(&self) -> Result<(), String> {
        let name_ok = !self.name.is_empty()
            && !self.name.starts_with(['-', '.'])
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
        if !name_ok {
            return Err(format!(
                "invalid service name {:?} (letters, digits and ._-@)",
                self.name
            ));
        }
        for (what, path) in [
            ("config file", &self.config_file),
            ("pid file", &self.pid_file),
            ("log file", &self.log_file),
            ("mariadbd", &self.mariadbd),
        ] {
            let ok = path.starts_with('/')
                && path.len() > 1
                && !path.ends_with('/')
                && path
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/._-+@:,=".contains(c));
            if !ok {
                return Err(format!(
                    "invalid {what} path {path:?} (absolute; letters, digits and /._-+@:,=)"
                ));
            }
        }
        Ok(())
    }
}

/// How an instance is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceKind {
    /// A systemd unit (untested on a real systemd; see the module docs).
    Systemd,
    /// A background process with a pid file, supervised by nines.
    Process,
}

impl ServiceKind {
    /// Systemd when the host runs it, otherwise a plain process.
    pub fn for_host(facts: &HostFacts) -> Self {
        if facts.systemd {
            Self::Systemd
        } else {
            Self::Process
        }
    }
}

/// Whether an instance runs, and as which process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceStatus {
    /// The server process exists (starting, serving or shutting down).
    pub running: bool,
    /// Its pid when running.
    pub pid: Option<u32>,
}

impl ServiceStatus {
    const STOPPED: Self = Self {
        running: false,
        pid: None,
    };

    fn running(pid: u32) -> Self {
        Self {
            running: true,
            pid: Some(pid),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Public operations.
// ---------------------------------------------------------------------------------------

/// Start the instance with `extra_args` (e.g. `--wsrep-new-cluster`; each one word
/// starting with `-`) and wait, up to `timeout`, until it is through startup (see the
/// module docs); returns its pid. Already running: returns its pid and does nothing
/// (`extra_args` are then not applied). A server that exits during startup gives an
/// error with the last lines of its error log.
pub async fn start(
    h: &dyn HostAccess,
    kind: ServiceKind,
    spec: &ServiceSpec,
    extra_args: &[&str],
    timeout: Duration,
) -> Result<u32, HostError> {
    check_spec(h, spec)?;
    check_extra_args(extra_args)
        .map_err(|detail| invalid_input(h, format!("start {}", spec.name), detail))?;
    let deadline = Deadline::new(timeout);
    match kind {
        ServiceKind::Process => start_process(h, spec, extra_args, &deadline).await,
        ServiceKind::Systemd => {
            let result = start_systemd(h, spec, extra_args, &deadline).await;
            if !extra_args.is_empty() {
                // One-off arguments must not apply to a later start by anyone else.
                let (path, empty) = (spec.env_path(), render_env(&[]));
                if let Err(e) = write_root_file(h, &path, &empty, PROBE_TIMEOUT).await {
                    tracing::warn!(service = %spec.name, error = %e, "could not clear extra arguments");
                    if result.is_ok() {
                        return Err(e);
                    }
                }
            }
            result
        }
    }
}

/// Stop the instance cleanly: SIGTERM (Process) or `systemctl stop` (Systemd), then
/// wait up to `timeout` for the process to be gone. Not running: Ok. Still running at
/// the deadline: [`HostError::Timeout`] naming the pid; nothing is escalated (see
/// [`kill`]).
pub async fn stop(
    h: &dyn HostAccess,
    kind: ServiceKind,
    spec: &ServiceSpec,
    timeout: Duration,
) -> Result<(), HostError> {
    check_spec(h, spec)?;
    let deadline = Deadline::new(timeout);
    match kind {
        ServiceKind::Process => signal_process(h, spec, "TERM", &deadline).await,
        ServiceKind::Systemd => stop_systemd(h, spec, false, &deadline).await,
    }
}

/// Kill the instance with SIGKILL (for a server that will not stop) and wait up to
/// `timeout` for it to be gone. InnoDB recovers at the next start; a Galera node may
/// need a full state transfer.
pub async fn kill(
    h: &dyn HostAccess,
    kind: ServiceKind,
    spec: &ServiceSpec,
    timeout: Duration,
) -> Result<(), HostError> {
    check_spec(h, spec)?;
    let deadline = Deadline::new(timeout);
    match kind {
        ServiceKind::Process => signal_process(h, spec, "KILL", &deadline).await,
        ServiceKind::Systemd => stop_systemd(h, spec, true, &deadline).await,
    }
}

/// Whether the instance runs, and its pid.
pub async fn status(
    h: &dyn HostAccess,
    kind: ServiceKind,
    spec: &ServiceSpec,
    timeout: Duration,
) -> Result<ServiceStatus, HostError> {
    check_spec(h, spec)?;
    match kind {
        ServiceKind::Process => process_status(h, spec, timeout).await,
        ServiceKind::Systemd => Ok(systemd_state(h, spec, timeout).await?.status()),
    }
}

/// Stop the instance if it runs (cleanly, as [`stop`]), then remove what [`start`]
/// created: the unit and environment files (Systemd) or the launch record (Process).
/// Config, data and logs are the caller's. Idempotent.
pub async fn remove(
    h: &dyn HostAccess,
    kind: ServiceKind,
    spec: &ServiceSpec,
    timeout: Duration,
) -> Result<(), HostError> {
    check_spec(h, spec)?;
    let deadline = Deadline::new(timeout);
    stop(h, kind, spec, deadline.remaining()).await?;
    let cmd = match kind {
        ServiceKind::Process => HostCommand::new("rm")
            .args(["-f", "--"])
            .arg(spec.launch_file()),
        ServiceKind::Systemd => HostCommand::shell(
            r#"rm -f -- "$1" "$2"
systemctl daemon-reload
systemctl reset-failed -- "$3" 2>/dev/null
exit 0"#,
        )
        .arg(spec.unit_path())
        .arg(spec.env_path())
        .arg(spec.unit_name()),
    };
    let t = deadline.probe_timeout().unwrap_or(Duration::from_secs(1));
    h.run(&cmd.sudo(true), t).await?.check()?;
    Ok(())
}

/// Run `mariadbd --defaults-file=CFG --wsrep-recover --log-error=<temporary file>` (a
/// one-shot: InnoDB recovery, then exit) and return the log text (followed by anything
/// the server printed outside it), for
/// [`crate::server::parse::parse_wsrep_recover`]. Refuses while the instance runs (the
/// server would wait on InnoDB's file lock). Note that the server binds its port and
/// leaves its socket file behind, which the next start replaces.
pub async fn wsrep_recover(
    h: &dyn HostAccess,
    spec: &ServiceSpec,
    timeout: Duration,
) -> Result<String, HostError> {
    check_spec(h, spec)?;
    let script = format!("{PROCESS_FUNCTIONS}{WSREP_RECOVER_SCRIPT}");
    let cmd = process_command(&script, spec);
    let out = h.run(&cmd, timeout).await?.check()?;
    let text = out.stdout_text();
    let sections = split_sections(&text);
    let unexpected = |detail: String| HostError::UnexpectedOutput {
        host: h.describe(),
        what: format!("mariadbd --wsrep-recover for {}", spec.name),
        detail,
    };
    require_end(&sections).map_err(unexpected)?;
    let status = section(&sections, "status")
        .and_then(|s| s.trim().parse::<i32>().ok())
        .ok_or_else(|| unexpected("no exit status".to_owned()))?;
    let log = section(&sections, "log").unwrap_or_default();
    let output = section(&sections, "output").unwrap_or_default();
    let mut all = log.to_owned();
    if !output.trim().is_empty() {
        all.push_str(output);
    }
    if status != 0 {
        return Err(HostError::CommandFailed {
            host: h.describe(),
            program: format!("{} --wsrep-recover", spec.mariadbd),
            status: Some(status),
            stderr: last_lines(&all, LOG_TAIL_LINES),
        });
    }
    Ok(all)
}

// ---------------------------------------------------------------------------------------
// Process kind.
// ---------------------------------------------------------------------------------------

/// Shell functions shared by the process scripts. `nines_alive PID` succeeds when PID is
/// a live (not zombie) process whose argv[0] is `$bin` and which has the argument
/// `--defaults-file=$cfg`; `nines_pid` prints the pid from the pid file, else from the
/// launch record, that is alive.
const PROCESS_FUNCTIONS: &str = r#"cfg=$1 pidf=$2 launch=$3 bin=$4 log=$5
shift 5
nines_alive() {
  case $1 in ''|*[!0-9]*) return 1;; esac
  st=$(sed -n 's/^.*) \(.\).*$/\1/p' "/proc/$1/stat" 2>/dev/null)
  case $st in ''|Z|X|x) return 1;; esac
  c=$(tr '\0' '\n' < "/proc/$1/cmdline" 2>/dev/null) || return 1
  [ "$(printf '%s\n' "$c" | head -n 1)" = "$bin" ] || return 1
  printf '%s\n' "$c" | grep -qxF -e "--defaults-file=$cfg"
}
nines_pid() {
  for f in "$pidf" "$launch"; do
    p=$(head -n 1 -- "$f" 2>/dev/null | tr -d ' \r\t')
    if nines_alive "$p"; then echo "$p"; return 0; fi
  done
  return 1
}
"#;

/// Prints `running PID` or `stopped`.
const STATUS_SCRIPT: &str = r#"if pid=$(nines_pid); then echo "running $pid"; else echo stopped; fi
"#;

/// Prints `running PID` (already running) or `started PID` (launched). The log gets the
/// ownership of its directory when created here, so the server can reopen it after
/// dropping privileges.
const START_SCRIPT: &str = r#"if pid=$(nines_pid); then echo "running $pid"; exit 0; fi
[ -x "$bin" ] || { echo "$bin is not an executable file" >&2; exit 127; }
[ -r "$cfg" ] || { echo "cannot read $cfg" >&2; exit 2; }
rm -f -- "$pidf" "$launch"
if [ ! -e "$log" ]; then
  : >> "$log" || exit 1
  chown --reference="$(dirname -- "$log")" -- "$log" 2>/dev/null
  chmod 660 -- "$log"
fi
cd /
setsid "$bin" "--defaults-file=$cfg" "$@" < /dev/null >> "$log" 2>&1 &
pid=$!
echo "$pid" > "$launch"
echo "started $pid"
"#;

/// `$1` after the common ones is the launched pid. Prints `running PID` once the pid
/// file names the live server, `starting PID` while only the launched process lives,
/// `exited` when it is gone.
const START_PROBE_SCRIPT: &str = r#"lpid=$1
p=$(head -n 1 -- "$pidf" 2>/dev/null | tr -d ' \r\t')
if nines_alive "$p"; then echo "running $p"
elif nines_alive "$lpid"; then echo "starting $lpid"
else
  # Launched but not yet exec'd into mariadbd (the background shell, then setsid): on a
  # busy host that takes a while, and is not an exit.
  st=$(sed -n 's/^.*) \(.\).*$/\1/p' "/proc/$lpid/stat" 2>/dev/null)
  c=$(tr '\0' ' ' < "/proc/$lpid/cmdline" 2>/dev/null | cut -d' ' -f1)
  case "$st:$c" in
    *[!:]:*setsid|*[!:]:*sh) echo "starting $lpid";;
    # The exec completed between the two looks.
    *) if nines_alive "$lpid"; then echo "starting $lpid"; else
      echo "nines: the launched mariadbd (pid $lpid) is gone (state '$st', command '$(tr '\0' ' ' < "/proc/$lpid/cmdline" 2>/dev/null)', expected config '$cfg', pid file '$p')" >> "$log"
      echo exited; fi;;
  esac
fi
"#;

/// `$1` after the common ones is the signal. Prints `signalled PID` or `stopped`
/// (then the launch record is removed).
const SIGNAL_SCRIPT: &str = r#"if pid=$(nines_pid); then
  kill -s "$1" "$pid" && echo "signalled $pid"
else
  rm -f -- "$launch"
  echo stopped
fi
"#;

/// Runs the one-shot recovery in a fresh directory the server user can write (it opens
/// its log after dropping privileges) and prints its exit status, log and output.
const WSREP_RECOVER_SCRIPT: &str = r#"if pid=$(nines_pid); then
  echo "mariadbd (pid $pid) is running with $cfg: stop it before --wsrep-recover" >&2
  exit 3
fi
d=$(mktemp -d /tmp/nines-wsrep-recover.XXXXXX) || exit 1
trap 'rm -rf -- "$d"' EXIT
chmod 733 "$d"
cd /
"$bin" "--defaults-file=$cfg" --wsrep-recover "--log-error=$d/recover.log" < /dev/null > "$d/out" 2>&1
rc=$?
echo '@@nines:status'
echo "$rc"
echo '@@nines:output'
cat -- "$d/out"
echo '@@nines:log'
cat -- "$d/recover.log" 2>/dev/null
echo '@@nines:end'
"#;

/// `sh -c <functions+script> sh CFG PIDFILE LAUNCH BIN LOG`, as root.
fn process_command(script: &str, spec: &ServiceSpec) -> HostCommand {
    HostCommand::shell(script)
        .arg(&spec.config_file)
        .arg(&spec.pid_file)
        .arg(spec.launch_file())
        .arg(&spec.mariadbd)
        .arg(&spec.log_file)
        .sudo(true)
}

/// What a process script printed: `running PID`, `started PID`, `starting PID`,
/// `signalled PID`, `stopped`, `exited`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProcessAnswer {
    Running(u32),
    Started(u32),
    Starting(u32),
    Signalled(u32),
    Stopped,
    Exited,
}

fn parse_process_answer(text: &str) -> Result<ProcessAnswer, String> {
    let line = text.lines().next().unwrap_or_default().trim();
    let (word, pid) = match line.split_once(' ') {
        Some((w, p)) => (
            w,
            Some(
                p.trim()
                    .parse::<u32>()
                    .map_err(|_| format!("bad pid in {line:?}"))?,
            ),
        ),
        None => (line, None),
    };
    match (word, pid) {
        ("running", Some(p)) => Ok(ProcessAnswer::Running(p)),
        ("started", Some(p)) => Ok(ProcessAnswer::Started(p)),
        ("starting", Some(p)) => Ok(ProcessAnswer::Starting(p)),
        ("signalled", Some(p)) => Ok(ProcessAnswer::Signalled(p)),
        ("stopped", None) => Ok(ProcessAnswer::Stopped),
        ("exited", None) => Ok(ProcessAnswer::Exited),
        _ => Err(format!("unrecognised answer {line:?}")),
    }
}

async fn run_process_script(
    h: &dyn HostAccess,
    spec: &ServiceSpec,
    script: &str,
    args: &[&str],
    timeout: Duration,
) -> Result<ProcessAnswer, HostError> {
    let script = format!("{PROCESS_FUNCTIONS}{script}");
    let cmd = process_command(&script, spec).args(args.iter().copied());
    let out = h.run(&cmd, timeout).await?.check()?;
    parse_process_answer(&out.stdout_text()).map_err(|detail| HostError::UnexpectedOutput {
        host: h.describe(),
        what: format!("the process check of {}", spec.name),
        detail,
    })
}

async fn process_status(
    h: &dyn HostAccess,
    spec: &ServiceSpec,
    timeout: Duration,
) -> Result<ServiceStatus, HostError> {
    match run_process_script(h, spec, STATUS_SCRIPT, &[], timeout).await? {
        ProcessAnswer::Running(pid) => Ok(ServiceStatus::running(pid)),
        _ => Ok(ServiceStatus::STOPPED),
    }
}

async fn start_process(
    h: &dyn HostAccess,
    spec: &ServiceSpec,
    extra_args: &[&str],
    deadline: &Deadline,
) -> Result<u32, HostError> {
    let t = deadline.probe_timeout().unwrap_or(PROBE_TIMEOUT);
    let launched = match run_process_script(h, spec, START_SCRIPT, extra_args, t).await? {
        ProcessAnswer::Running(pid) => return Ok(pid),
        ProcessAnswer::Started(pid) => pid,
        other => {
            return Err(HostError::UnexpectedOutput {
                host: h.describe(),
                what: format!("the start script of {}", spec.name),
                detail: format!("{other:?}"),
            });
        }
    };
    tracing::info!(host = %h.describe(), service = %spec.name, pid = launched, "mariadbd launched");
    let lpid = launched.to_string();
    loop {
        let Some(t) = deadline.probe_timeout() else {
            return Err(HostError::Timeout {
                host: h.describe(),
                what: format!(
                    "start {}: mariadbd (pid {launched}) runs but has not written {} yet \
                     (it does after storage engine start and, when joining Galera, state transfer); \
                     it was left running",
                    spec.name, spec.pid_file
                ),
                after: deadline.timeout,
            });
        };
        match run_process_script(h, spec, START_PROBE_SCRIPT, &[&lpid], t).await {
            Ok(ProcessAnswer::Running(pid)) => return Ok(pid),
            Ok(ProcessAnswer::Starting(_)) => {}
            Ok(ProcessAnswer::Exited) => {
                let tail = log_tail(h, &spec.log_file, deadline).await;
                return Err(failure(
                    h,
                    format!("start {}", spec.name),
                    format!(
                        "mariadbd (pid {launched}) exited during startup; last lines of {}:\n{tail}",
                        spec.log_file
                    ),
                ));
            }
            Ok(other) => {
                return Err(HostError::UnexpectedOutput {
                    host: h.describe(),
                    what: format!("the start probe of {}", spec.name),
                    detail: format!("{other:?}"),
                });
            }
            Err(HostError::Timeout { .. }) if deadline.expired() => continue,
            Err(e) => return Err(e),
        }
        deadline.pause(POLL_INTERVAL).await;
    }
}

/// Send `signal` (TERM or KILL) to the running server once, then wait until it is gone.
async fn signal_process(
    h: &dyn HostAccess,
    spec: &ServiceSpec,
    signal: &str,
    deadline: &Deadline,
) -> Result<(), HostError> {
    let t = deadline.probe_timeout().unwrap_or(PROBE_TIMEOUT);
    let pid = match run_process_script(h, spec, SIGNAL_SCRIPT, &[signal], t).await? {
        ProcessAnswer::Stopped => return Ok(()),
        ProcessAnswer::Signalled(pid) => pid,
        other => {
            return Err(HostError::UnexpectedOutput {
                host: h.describe(),
                what: format!("the stop script of {}", spec.name),
                detail: format!("{other:?}"),
            });
        }
    };
    tracing::info!(host = %h.describe(), service = %spec.name, pid, signal, "signalled mariadbd");
    let gone_script = r#"if nines_alive "$1"; then echo "running $1"; else rm -f -- "$launch"; echo stopped; fi
"#;
    let pid_arg = pid.to_string();
    loop {
        let Some(t) = deadline.probe_timeout() else {
            return Err(HostError::Timeout {
                host: h.describe(),
                what: format!(
                    "stop {}: mariadbd (pid {pid}) is still running after SIG{signal}",
                    spec.name
                ),
                after: deadline.timeout,
            });
        };
        match run_process_script(h, spec, gone_script, &[&pid_arg], t).await {
            Ok(ProcessAnswer::Stopped) => break,
            Ok(_) => {}
            Err(HostError::Timeout { .. }) if deadline.expired() => continue,
            Err(e) => return Err(e),
        }
        deadline.pause(POLL_INTERVAL).await;
    }
    if signal == "KILL" {
        // The server had no chance to remove its pid file.
        let cmd = HostCommand::new("rm")
            .args(["-f", "--"])
            .arg(&spec.pid_file)
            .sudo(true);
        let t = deadline.probe_timeout().unwrap_or(Duration::from_secs(1));
        h.run(&cmd, t).await?.check()?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Systemd kind (untested on a real systemd).
// ---------------------------------------------------------------------------------------

/// The unit file for `spec`. No `User=`: mariadbd starts as root (so it can raise its
/// limits) and drops to the `user=` of its config, as in the Process kind; `Restart=no`
/// because nines decides restarts; no SIGKILL on a slow stop (`SendSIGKILL=no`, as in
/// MariaDB's own unit). Not enabled at boot either: nines starts it.
pub fn render_unit(spec: &ServiceSpec) -> String {
    format!(
        "# Written by nines; changes are overwritten.\n\
         [Unit]\n\
         Description=MariaDB instance {name} (managed by nines)\n\
         After=network-online.target\n\
         Wants=network-online.target\n\
         \n\
         [Service]\n\
         Type=notify\n\
         EnvironmentFile=-{env}\n\
         ExecStart={bin} --defaults-file={cfg} $NINES_EXTRA_ARGS\n\
         Restart=no\n\
         KillMode=process\n\
         KillSignal=SIGTERM\n\
         SendSIGKILL=no\n\
         TimeoutStartSec=900\n\
         TimeoutStopSec=900\n\
         LimitNOFILE=32768\n\
         UMask=007\n\
         PrivateTmp=false\n",
        name = spec.name,
        env = spec.env_path(),
        bin = spec.mariadbd,
        cfg = spec.config_file,
    )
}

/// The environment file: `NINES_EXTRA_ARGS` holds the arguments for the next start
/// (`$NINES_EXTRA_ARGS` in `ExecStart` splits it at spaces).
pub fn render_env(extra_args: &[&str]) -> String {
    format!(
        "# Written by nines: one-off arguments for the next start, cleared after it.\n\
         NINES_EXTRA_ARGS=\"{}\"\n",
        extra_args.join(" ")
    )
}

/// What `systemctl show -p LoadState -p ActiveState -p SubState -p MainPID -p Result`
/// says about a unit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SystemdState {
    /// `loaded`, `not-found`, …
    pub load_state: String,
    /// `active`, `activating`, `deactivating`, `inactive`, `failed`, …
    pub active_state: String,
    /// `running`, `start`, `dead`, `failed`, …
    pub sub_state: String,
    /// The main process, None when there is none (`0`).
    pub main_pid: Option<u32>,
    /// `success`, `exit-code`, `signal`, `timeout`, …
    pub result: String,
}

impl SystemdState {
    /// Running: a main process in any state but stopped.
    pub fn status(&self) -> ServiceStatus {
        let live = matches!(
            self.active_state.as_str(),
            "active" | "activating" | "deactivating" | "reloading" | "refreshing"
        );
        match self.main_pid {
            Some(pid) if live => ServiceStatus::running(pid),
            _ => ServiceStatus::STOPPED,
        }
    }

    /// The unit failed (or stopped with a failure result).
    pub fn failed(&self) -> bool {
        self.active_state == "failed"
            || (self.active_state == "inactive"
                && !self.result.is_empty()
                && self.result != "success")
    }
}

/// Parse `systemctl show` `Key=Value` lines.
pub fn parse_systemctl_show(text: &str) -> Result<SystemdState, String> {
    let mut state = SystemdState::default();
    let mut seen_active = false;
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim().to_owned();
        match key.trim() {
            "LoadState" => state.load_state = value,
            "ActiveState" => {
                state.active_state = value;
                seen_active = true;
            }
            "SubState" => state.sub_state = value,
            "Result" => state.result = value,
            "MainPID" => {
                let pid: u32 = value
                    .parse()
                    .map_err(|_| format!("bad MainPID {value:?}"))?;
                state.main_pid = (pid != 0).then_some(pid);
            }
            _ => {}
        }
    }
    if !seen_active {
        return Err("no ActiveState".to_owned());
    }
    Ok(state)
}

async fn systemd_state(
    h: &dyn HostAccess,
    spec: &ServiceSpec,
    timeout: Duration,
) -> Result<SystemdState, HostError> {
    let cmd = HostCommand::new("systemctl")
        .args([
            "show",
            "-p",
            "LoadState",
            "-p",
            "ActiveState",
            "-p",
            "SubState",
        ])
        .args(["-p", "MainPID", "-p", "Result", "--"])
        .arg(spec.unit_name());
    let out = h.run(&cmd, timeout).await?.check()?;
    parse_systemctl_show(&out.stdout_text()).map_err(|detail| HostError::UnexpectedOutput {
        host: h.describe(),
        what: format!("systemctl show {}", spec.unit_name()),
        detail,
    })
}

/// Writes the unit (and reloads systemd) when it changed, writes the environment file,
/// clears a previous failure and queues the start.
const SYSTEMD_START_SCRIPT: &str = r#"set -eu
unit_path=$1 unit_text=$2 env_path=$3 env_text=$4 unit=$5
put() {
  tmp="$1.nines-tmp.$$"
  printf '%s' "$2" > "$tmp"
  chmod 644 "$tmp"
  mv -f -- "$tmp" "$1"
}
mkdir -p -- "$(dirname -- "$env_path")"
if ! printf '%s' "$unit_text" | cmp -s - "$unit_path"; then
  put "$unit_path" "$unit_text"
  systemctl daemon-reload
fi
put "$env_path" "$env_text"
systemctl reset-failed -- "$unit" 2>/dev/null || true
systemctl start --no-block -- "$unit"
"#;

async fn start_systemd(
    h: &dyn HostAccess,
    spec: &ServiceSpec,
    extra_args: &[&str],
    deadline: &Deadline,
) -> Result<u32, HostError> {
    let t = deadline.probe_timeout().unwrap_or(PROBE_TIMEOUT);
    if let Some(pid) = systemd_state(h, spec, t).await?.status().pid {
        return Ok(pid);
    }
    let cmd = HostCommand::shell(SYSTEMD_START_SCRIPT)
        .arg(spec.unit_path())
        .arg(render_unit(spec))
        .arg(spec.env_path())
        .arg(render_env(extra_args))
        .arg(spec.unit_name())
        .sudo(true);
    let t = deadline.probe_timeout().unwrap_or(PROBE_TIMEOUT);
    h.run(&cmd, t).await?.check()?;
    let mut seen_pid: Option<u32> = None;
    loop {
        let Some(t) = deadline.probe_timeout() else {
            let pid = seen_pid.map_or("no process yet".to_owned(), |p| format!("pid {p}"));
            return Err(HostError::Timeout {
                host: h.describe(),
                what: format!(
                    "start {}: not active yet ({pid}; mariadbd reports ready after storage engine \
                     start and, when joining Galera, state transfer); it was left starting",
                    spec.unit_name()
                ),
                after: deadline.timeout,
            });
        };
        let state = match systemd_state(h, spec, t).await {
            Ok(state) => state,
            Err(HostError::Timeout { .. }) if deadline.expired() => continue,
            Err(e) => return Err(e),
        };
        if let Some(pid) = state.main_pid {
            seen_pid = Some(pid);
        }
        if state.active_state == "active"
            && let Some(pid) = state.main_pid
        {
            return Ok(pid);
        }
        // Inactive after having had a process: it exited (Restart=no).
        let exited = state.active_state == "inactive" && seen_pid.is_some();
        if state.failed() || exited {
            let journal = journal_tail(h, spec, deadline).await;
            let log = log_tail(h, &spec.log_file, deadline).await;
            return Err(failure(
                h,
                format!("start {}", spec.unit_name()),
                format!(
                    "the unit is {}/{} (result {}); journal:\n{journal}\nlast lines of {}:\n{log}",
                    state.active_state, state.sub_state, state.result, spec.log_file
                ),
            ));
        }
        deadline.pause(POLL_INTERVAL).await;
    }
}

async fn stop_systemd(
    h: &dyn HostAccess,
    spec: &ServiceSpec,
    kill: bool,
    deadline: &Deadline,
) -> Result<(), HostError> {
    let t = deadline.probe_timeout().unwrap_or(PROBE_TIMEOUT);
    let Some(pid) = systemd_state(h, spec, t).await?.status().pid else {
        return Ok(());
    };
    let cmd = if kill {
        HostCommand::new("systemctl").args(["kill", "-s", "KILL", "--"])
    } else {
        HostCommand::new("systemctl").args(["stop", "--no-block", "--"])
    }
    .arg(spec.unit_name())
    .sudo(true);
    let t = deadline.probe_timeout().unwrap_or(PROBE_TIMEOUT);
    h.run(&cmd, t).await?.check()?;
    let signal = if kill { "SIGKILL" } else { "SIGTERM" };
    loop {
        let Some(t) = deadline.probe_timeout() else {
            return Err(HostError::Timeout {
                host: h.describe(),
                what: format!(
                    "stop {}: mariadbd (pid {pid}) is still running after {signal}",
                    spec.unit_name()
                ),
                after: deadline.timeout,
            });
        };
        match systemd_state(h, spec, t).await {
            Ok(state) if !state.status().running => return Ok(()),
            Ok(_) => {}
            Err(HostError::Timeout { .. }) if deadline.expired() => continue,
            Err(e) => return Err(e),
        }
        deadline.pause(POLL_INTERVAL).await;
    }
}

async fn journal_tail(h: &dyn HostAccess, spec: &ServiceSpec, deadline: &Deadline) -> String {
    let cmd = HostCommand::new("journalctl")
        .args(["--no-pager", "-o", "cat", "-n"])
        .arg(LOG_TAIL_LINES.to_string())
        .arg("-u")
        .arg(spec.unit_name())
        .sudo(true);
    let t = deadline.probe_timeout().unwrap_or(Duration::from_secs(2));
    match h.run(&cmd, t).await.and_then(|o| o.check()) {
        Ok(out) => out.stdout_text().trim_end().to_owned(),
        Err(e) => format!("(journal unavailable: {e})"),
    }
}

// ---------------------------------------------------------------------------------------
// Shared helpers.
// ---------------------------------------------------------------------------------------

/// The last lines of a log on the host, or a note saying why there are none. Gets a
/// couple of seconds even when the deadline has passed: it explains a failure.
async fn log_tail(h: &dyn HostAccess, path: &str, deadline: &Deadline) -> String {
    let cmd = HostCommand::new("tail")
        .arg("-n")
        .arg(LOG_TAIL_LINES.to_string())
        .arg("--")
        .arg(path)
        .sudo(true);
    let t = deadline.probe_timeout().unwrap_or(Duration::from_secs(2));
    match h.run(&cmd, t).await.and_then(|o| o.check()) {
        Ok(out) => out.stdout_text().trim_end().to_owned(),
        Err(e) => format!("(cannot read the log: {e})"),
    }
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A failure explained in words (an `Other` I/O error): "`host`: `what`: `detail`".
fn failure(h: &dyn HostAccess, what: String, detail: String) -> HostError {
    HostError::Io {
        host: h.describe(),
        what,
        source: std::io::Error::other(detail),
    }
}

fn check_spec(h: &dyn HostAccess, spec: &ServiceSpec) -> Result<(), HostError> {
    spec.validate()
        .map_err(|detail| invalid_input(h, format!("service {:?}", spec.name), detail))
}

/// Each argument one word starting with `-`, free of whitespace, quotes, `\`, `$` and
/// `%` (they end up in a systemd environment file and `ExecStart`).
fn check_extra_args(args: &[&str]) -> Result<(), String> {
    for a in args {
        let ok = a.starts_with('-')
            && a.len() > 1
            && !a
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "'\"\\$%`".contains(c));
        if !ok {
            return Err(format!(
                "invalid extra argument {} (one word starting with -, no quotes, $, % or \\)",
                shell_quote(a)
            ));
        }
    }
    Ok(())
}

/// Write a small root-owned file (mode 644) through the shell, as root.
async fn write_root_file(
    h: &dyn HostAccess,
    path: &str,
    contents: &str,
    timeout: Duration,
) -> Result<(), HostError> {
    let cmd = super::command::write_file_command(path, contents.as_bytes(), 0o644).sudo(true);
    h.run(&cmd, timeout).await?.check()?;
    Ok(())
}

/// A deadline for an operation made of several round trips.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    started: Instant,
    pub(crate) timeout: Duration,
}

impl Deadline {
    pub(crate) fn new(timeout: Duration) -> Self {
        Self {
            started: Instant::now(),
            timeout,
        }
    }

    pub(crate) fn remaining(&self) -> Duration {
        self.timeout.saturating_sub(self.started.elapsed())
    }

    pub(crate) fn expired(&self) -> bool {
        self.remaining().is_zero()
    }

    /// The timeout for the next round trip (at most [`PROBE_TIMEOUT`]); None once expired.
    pub(crate) fn probe_timeout(&self) -> Option<Duration> {
        let r = self.remaining();
        (!r.is_zero()).then(|| r.min(PROBE_TIMEOUT))
    }

    /// Sleep `interval`, or until the deadline if that is sooner.
    pub(crate) async fn pause(&self, interval: Duration) {
        tokio::time::sleep(interval.min(self.remaining())).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ServiceSpec {
        ServiceSpec::new(
            "nines-mariadb-127.0.0.11-3306",
            "/srv/nines/127.0.0.11/my.cnf",
            "/srv/nines/127.0.0.11/mysqld.pid",
            "/srv/nines/127.0.0.11/error.log",
        )
    }

    #[test]
    fn spec_paths_and_validation() {
        let s = spec();
        assert!(s.validate().is_ok());
        assert_eq!(s.mariadbd, "/usr/sbin/mariadbd");
        assert_eq!(s.unit_name(), "nines-mariadb-127.0.0.11-3306.service");
        assert_eq!(
            s.unit_path(),
            "/etc/systemd/system/nines-mariadb-127.0.0.11-3306.service"
        );
        assert_eq!(s.env_path(), "/etc/nines/nines-mariadb-127.0.0.11-3306.env");
        assert_eq!(
            s.launch_file(),
            "/srv/nines/127.0.0.11/mysqld.pid.nines-launch"
        );
        let bad_names = ["", "-x", ".x", "a b", "a/b", "a;b"];
        for name in bad_names {
            let s = ServiceSpec {
                name: name.into(),
                ..spec()
            };
            assert!(s.validate().is_err(), "{name:?}");
        }
        let bad_paths = [
            "relative/my.cnf",
            "/a b/my.cnf",
            "/x/$y",
            "/x/%n",
            "/",
            "/x/",
            "/x\n",
        ];
        for path in bad_paths {
            let s = ServiceSpec {
                config_file: path.into(),
                ..spec()
            };
            assert!(s.validate().is_err(), "{path:?}");
        }
    }

    #[test]
    fn renders_the_unit() {
        let unit = render_unit(&spec());
        let lines: Vec<&str> = unit.lines().collect();
        for want in [
            "[Service]",
            "Type=notify",
            "EnvironmentFile=-/etc/nines/nines-mariadb-127.0.0.11-3306.env",
            "ExecStart=/usr/sbin/mariadbd --defaults-file=/srv/nines/127.0.0.11/my.cnf $NINES_EXTRA_ARGS",
            "Restart=no",
            "LimitNOFILE=32768",
            "TimeoutStopSec=900",
            "SendSIGKILL=no",
        ] {
            assert!(lines.contains(&want), "missing {want:?} in\n{unit}");
        }
        assert!(!unit.contains("User="), "{unit}");
        assert!(
            !unit.contains("[Install]"),
            "never enabled at boot:\n{unit}"
        );
        assert_eq!(unit.matches("[Service]").count(), 1);
    }

    #[test]
    fn renders_the_env_file() {
        let env = render_env(&["--wsrep-new-cluster", "--wsrep-recover"]);
        assert!(
            env.lines()
                .any(|l| l == "NINES_EXTRA_ARGS=\"--wsrep-new-cluster --wsrep-recover\""),
            "{env}"
        );
        assert!(
            render_env(&[])
                .lines()
                .any(|l| l == "NINES_EXTRA_ARGS=\"\"")
        );
    }

    #[test]
    fn extra_args_are_single_safe_words() {
        assert!(
            check_extra_args(&["--wsrep-new-cluster", "--wsrep_start_position=abc:12"]).is_ok()
        );
        assert!(check_extra_args(&[]).is_ok());
        for bad in [
            "",
            "-",
            "x",
            "--a b",
            "--a=$HOME",
            "--a=\"x\"",
            "--a\n",
            "--a=%n",
            "--a=\\",
        ] {
            assert!(check_extra_args(&[bad]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parses_process_answers() {
        assert_eq!(
            parse_process_answer("running 12\n"),
            Ok(ProcessAnswer::Running(12))
        );
        assert_eq!(
            parse_process_answer("started 7"),
            Ok(ProcessAnswer::Started(7))
        );
        assert_eq!(
            parse_process_answer("starting 7"),
            Ok(ProcessAnswer::Starting(7))
        );
        assert_eq!(
            parse_process_answer("signalled 7"),
            Ok(ProcessAnswer::Signalled(7))
        );
        assert_eq!(
            parse_process_answer("stopped\n"),
            Ok(ProcessAnswer::Stopped)
        );
        assert_eq!(parse_process_answer("exited"), Ok(ProcessAnswer::Exited));
        for bad in ["", "running", "running x", "stopped 3", "what 1"] {
            assert!(parse_process_answer(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parses_systemctl_show() {
        let active = "LoadState=loaded\nActiveState=active\nSubState=running\nMainPID=4242\nResult=success\n";
        let s = parse_systemctl_show(active).expect("parse");
        assert_eq!(s.status(), ServiceStatus::running(4242));
        assert!(!s.failed());
        let starting = active
            .replace("=active", "=activating")
            .replace("=running", "=start");
        assert_eq!(
            parse_systemctl_show(&starting).expect("parse").status(),
            ServiceStatus::running(4242)
        );
        let not_found =
            "LoadState=not-found\nActiveState=inactive\nSubState=dead\nMainPID=0\nResult=success\n";
        let s = parse_systemctl_show(not_found).expect("parse");
        assert_eq!(s.status(), ServiceStatus::STOPPED);
        assert!(!s.failed());
        let failed =
            "LoadState=loaded\nActiveState=failed\nSubState=failed\nMainPID=0\nResult=exit-code\n";
        let s = parse_systemctl_show(failed).expect("parse");
        assert!(s.failed());
        assert!(!s.status().running);
        let exited = not_found.replace("Result=success", "Result=signal");
        assert!(parse_systemctl_show(&exited).expect("parse").failed());
        assert!(parse_systemctl_show("").is_err());
        assert!(parse_systemctl_show("ActiveState=active\nMainPID=x\n").is_err());
    }

    #[test]
    fn process_scripts_are_valid_shell() {
        for script in [
            STATUS_SCRIPT,
            START_SCRIPT,
            START_PROBE_SCRIPT,
            SIGNAL_SCRIPT,
            WSREP_RECOVER_SCRIPT,
            SYSTEMD_START_SCRIPT,
        ] {
            let full = format!("{PROCESS_FUNCTIONS}{script}");
            let out = std::process::Command::new("sh")
                .args(["-n", "-c", &full])
                .output()
                .expect("run sh");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    #[test]
    fn nines_alive_checks_argv_config_and_zombies() {
        use std::os::unix::process::CommandExt;
        let script =
            format!("{PROCESS_FUNCTIONS}if nines_alive \"$1\"; then echo yes; else echo no; fi\n");
        let run = |cfg: &str, bin: &str, pid: &str| {
            let out = std::process::Command::new("sh")
                .args([
                    "-c",
                    &script,
                    "sh",
                    cfg,
                    "/x/pid",
                    "/x/launch",
                    bin,
                    "/x/log",
                    pid,
                ])
                .output()
                .expect("run sh");
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        };
        // A process whose argv is `/x/fake-mariadbd -c … --defaults-file=/x/my.cnf`
        // (`; :` keeps sh from exec'ing sleep in its place).
        let mut child = std::process::Command::new("sh")
            .arg0("/x/fake-mariadbd")
            .args(["-c", "sleep 30; :", "sh", "--defaults-file=/x/my.cnf"])
            // Its sleep outlives the kill below: it must not hold the test's output open.
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        let pid = child.id().to_string();
        assert_eq!(run("/x/my.cnf", "/x/fake-mariadbd", &pid), "yes");
        assert_eq!(
            run("/x/my.cnf", "/usr/sbin/mariadbd", &pid),
            "no",
            "argv[0] differs"
        );
        assert_eq!(
            run("/x/other.cnf", "/x/fake-mariadbd", &pid),
            "no",
            "config differs"
        );
        assert_eq!(
            run("/x/my", "/x/fake-mariadbd", &pid),
            "no",
            "prefix of the config"
        );
        assert_eq!(run("/x/my.cnf", "/x/fake-mariadbd", "not-a-pid"), "no");
        assert_eq!(run("/x/my.cnf", "/x/fake-mariadbd", ""), "no");
        child.kill().expect("kill");
        // Killed but not yet reaped: a zombie is not alive.
        let zombie = (0..100).any(|_| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let zombie = stat
                .rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z'));
            if !zombie {
                std::thread::sleep(Duration::from_millis(10));
            }
            zombie
        });
        assert!(zombie, "child {pid} never became a zombie");
        assert_eq!(run("/x/my.cnf", "/x/fake-mariadbd", &pid), "no");
        child.wait().expect("wait");
        assert_eq!(run("/x/my.cnf", "/x/fake-mariadbd", &pid), "no");
    }

    #[tokio::test]
    async fn deadline_counts_down() {
        let d = Deadline::new(Duration::from_millis(50));
        assert!(
            d.probe_timeout()
                .is_some_and(|t| t <= Duration::from_millis(50))
        );
        d.pause(Duration::from_secs(5)).await;
        assert!(d.expired());
        assert_eq!(d.probe_timeout(), None);
        let long = Deadline::new(Duration::from_secs(3600));
        assert_eq!(long.probe_timeout(), Some(PROBE_TIMEOUT));
    }
}
