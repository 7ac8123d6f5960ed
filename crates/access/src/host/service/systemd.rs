//! The Systemd kind of [`super::ServiceKind`]: the unit file, its environment file for
//! one-off arguments, and `systemctl` calls. Untested on a real systemd (the machines here
//! have none): the unit text and the parsing of `systemctl show` are unit-tested.

use super::*;

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

pub(super) async fn systemd_state(
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
pub(super) const SYSTEMD_START_SCRIPT: &str = r#"set -eu
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

pub(super) async fn start_systemd(
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

pub(super) async fn stop_systemd(
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

pub(super) async fn journal_tail(
    h: &dyn HostAccess,
    spec: &ServiceSpec,
    deadline: &Deadline,
) -> String {
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
