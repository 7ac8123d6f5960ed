//! The Process kind of [`super::ServiceKind`]: `setsid mariadbd --defaults-file=CFG …`
//! started as root, detached, with a pid file; shell functions that find the live process
//! by its exact argv, so a reused pid never reads as the service.

use super::*;

/// Shell functions shared by the process scripts. `nines_alive PID` succeeds when PID is
/// a live (not zombie) process whose argv[0] is `$bin` and which has the argument
/// `--defaults-file=$cfg`; `nines_pid` prints the pid from the pid file, else from the
/// launch record, that is alive.
pub(super) const PROCESS_FUNCTIONS: &str = r#"cfg=$1 pidf=$2 launch=$3 bin=$4 log=$5
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
pub(super) const STATUS_SCRIPT: &str = r#"if pid=$(nines_pid); then echo "running $pid"; else echo stopped; fi
"#;

/// Prints `running PID` (already running) or `started PID` (launched). The log gets the
/// ownership of its directory when created here, so the server can reopen it after
/// dropping privileges.
pub(super) const START_SCRIPT: &str = r#"if pid=$(nines_pid); then echo "running $pid"; exit 0; fi
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
pub(super) const START_PROBE_SCRIPT: &str = r#"lpid=$1
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
pub(super) const SIGNAL_SCRIPT: &str = r#"if pid=$(nines_pid); then
  kill -s "$1" "$pid" && echo "signalled $pid"
else
  rm -f -- "$launch"
  echo stopped
fi
"#;

/// Runs the one-shot recovery in a fresh directory the server user can write (it opens
/// its log after dropping privileges) and prints its exit status, log and output.
pub(super) const WSREP_RECOVER_SCRIPT: &str = r#"if pid=$(nines_pid); then
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
pub(super) fn process_command(script: &str, spec: &ServiceSpec) -> HostCommand {
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
pub(super) enum ProcessAnswer {
    Running(u32),
    Started(u32),
    Starting(u32),
    Signalled(u32),
    Stopped,
    Exited,
}

pub(super) fn parse_process_answer(text: &str) -> Result<ProcessAnswer, String> {
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

pub(super) async fn run_process_script(
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

pub(super) async fn process_status(
    h: &dyn HostAccess,
    spec: &ServiceSpec,
    timeout: Duration,
) -> Result<ServiceStatus, HostError> {
    match run_process_script(h, spec, STATUS_SCRIPT, &[], timeout).await? {
        ProcessAnswer::Running(pid) => Ok(ServiceStatus::running(pid)),
        _ => Ok(ServiceStatus::STOPPED),
    }
}

pub(super) async fn start_process(
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
pub(super) async fn signal_process(
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
