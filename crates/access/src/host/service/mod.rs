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

mod process;
mod systemd;

use process::*;
use systemd::*;
pub use systemd::{SystemdState, parse_systemctl_show, render_env, render_unit};

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
