//! Backups and restores on a node's host (restores: nodes nines deployed only): the commands that produce a backup
//! stream (mariabackup or mariadb-dump, as root over the node's socket) and consume one
//! (mbstream into a directory, or the client), the preparation of a physical copy, and
//! the exchange of a node's data directory for a restored one. The stream itself goes
//! through the caller (the controller's job), which stores or fetches it.

use std::time::Duration;

use nines_access::host::HostCommand;
use nines_model::backup::BackupMethod;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::node::{Login, NodeTarget, SHORT, failure_summary};
use crate::{OpError, Reporter};

/// How long one backup or restore stream may run.
pub const STREAM_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// What the server said about the backup it streamed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamFacts {
    /// The GTID position the backup is consistent at (may be empty).
    pub gtid_position: String,
    pub from_lsn: Option<u64>,
    pub to_lsn: Option<u64>,
    /// The binlog file and position the backup is consistent at.
    pub binlog: Option<(String, u64)>,
}

/// The shell script that streams a physical backup to stdout: mariabackup's own log
/// goes to a file (printed on failure), its checkpoints and info to stderr on success,
/// and its scratch directory is removed whatever happens.
const PHYSICAL: &str = r#"dir=$(mktemp -d --suffix=.nines-backup); trap 'rm -rf "$dir"' EXIT
mariabackup --defaults-file="$1" --socket="$2" --user=root --backup --stream=xbstream \
  --target-dir="$dir/t" --extra-lsndir="$dir/lsn" ${3:+--incremental-lsn="$3"} ${4:+--galera-info} 2>"$dir/log"
st=$?
if [ $st != 0 ]; then tail -40 "$dir/log" >&2; exit $st; fi
cat "$dir/lsn/xtrabackup_checkpoints" "$dir/lsn/xtrabackup_info" >&2
"#;

/// The shell script that streams a logical backup: every database in one transaction,
/// with the GTID position in the dump's header.
const LOGICAL: &str = r#"log=$(mktemp); trap 'rm -f "$log"' EXIT
mariadb-dump --defaults-file="$1" --socket="$2" --user=root --all-databases --single-transaction \
  --gtid --master-data=2 --routines --events --triggers --hex-blob --flush-privileges 2>"$log"
st=$?
if [ $st != 0 ]; then tail -40 "$log" >&2; exit $st; fi
"#;

/// [`PHYSICAL`] for an imported node: the registered account over TCP (its password on
/// the first line of standard input), everything else (data directory, InnoDB files) as
/// the server reports it (`--no-defaults`: the host's option files may describe another
/// server).
const PHYSICAL_ACCOUNT: &str = r#"IFS= read -r MYSQL_PWD; export MYSQL_PWD
dir=$(mktemp -d --suffix=.nines-backup); trap 'rm -rf "$dir"' EXIT
mariabackup --no-defaults --host="$1" --port="$2" --user="$3" --backup --stream=xbstream \
  --target-dir="$dir/t" --extra-lsndir="$dir/lsn" ${4:+--incremental-lsn="$4"} ${5:+--galera-info} 2>"$dir/log"
st=$?
if [ $st != 0 ]; then tail -40 "$dir/log" >&2; exit $st; fi
cat "$dir/lsn/xtrabackup_checkpoints" "$dir/lsn/xtrabackup_info" >&2
"#;

/// [`LOGICAL`] for an imported node (see [`PHYSICAL_ACCOUNT`]).
const LOGICAL_ACCOUNT: &str = r#"IFS= read -r MYSQL_PWD; export MYSQL_PWD
log=$(mktemp); trap 'rm -f "$log"' EXIT
mariadb-dump --no-defaults --host="$1" --port="$2" --user="$3" --all-databases --single-transaction \
  --gtid --master-data=2 --routines --events --triggers --hex-blob --flush-privileges 2>"$log"
st=$?
if [ $st != 0 ]; then tail -40 "$log" >&2; exit $st; fi
"#;

/// Streams a backup of `node` to `sink`. `incremental_lsn`: the LSN the parent ended at.
pub async fn stream_backup(
    node: &NodeTarget,
    method: BackupMethod,
    incremental_lsn: Option<u64>,
    galera: bool,
    sink: &mut (dyn AsyncWrite + Send + Unpin),
) -> Result<StreamFacts, OpError> {
    let l = &node.settings.layout;
    let lsn = incremental_lsn.map(|n| n.to_string()).unwrap_or_default();
    let galera = if galera { "1" } else { "" };
    let (cmd, password) = match (&node.login, method.is_physical()) {
        (Login::Root, true) => (
            HostCommand::shell(PHYSICAL)
                .arg(&l.config_file)
                .arg(&l.socket)
                .arg(lsn)
                .arg(galera),
            None,
        ),
        (Login::Root, false) => (
            HostCommand::shell(LOGICAL)
                .arg(&l.config_file)
                .arg(&l.socket),
            None,
        ),
        (Login::Account { user, password }, physical) => {
            let e = &node.endpoint;
            let cmd = if physical {
                HostCommand::shell(PHYSICAL_ACCOUNT)
            } else {
                HostCommand::shell(LOGICAL_ACCOUNT)
            }
            .arg(&e.host)
            .arg(e.port.to_string())
            .arg(user);
            let cmd = if physical {
                cmd.arg(lsn).arg(galera)
            } else {
                cmd
            };
            (cmd, Some(format!("{password}\n")))
        }
    };
    let mut stdin = password.as_ref().map(|p| p.as_bytes());
    let out = node
        .host
        .run_streaming(
            &cmd.sudo(true),
            STREAM_TIMEOUT,
            stdin
                .as_mut()
                .map(|b| b as &mut (dyn AsyncRead + Send + Unpin)),
            Some(sink),
        )
        .await
        .map_err(|e| OpError::Invalid(format!("{}: backup stream: {e}", node.endpoint)))?;
    if !out.success() {
        return Err(OpError::Invalid(format!(
            "{}: {} failed: {}",
            node.endpoint,
            if method.is_physical() {
                "mariabackup"
            } else {
                "mariadb-dump"
            },
            failure_summary(&out.stderr_text(), "")
        )));
    }
    if !method.is_physical() {
        return Ok(StreamFacts::default());
    }
    let mut facts = parse_checkpoints(&out.stderr_text());
    // Galera nodes report no "GTID of the last change" (gtid_current_pos is empty there):
    // the server translates the binlog position itself.
    if facts.gtid_position.is_empty()
        && let Some((file, pos)) = facts.binlog.clone()
    {
        let gtid = node
            .sql(&format!(
                "SELECT BINLOG_GTID_POS({}, {pos})",
                nines_access::server::replication::sql_str(&file)
            ))
            .await?;
        let gtid = gtid.trim();
        if gtid != "NULL" {
            facts.gtid_position = gtid.to_string();
        }
    }
    Ok(facts)
}

/// Reads mariabackup's `xtrabackup_checkpoints` and `xtrabackup_info` (as printed by
/// [`PHYSICAL`]): the LSNs, and the GTID of the last change in `binlog_pos`.
pub fn parse_checkpoints(text: &str) -> StreamFacts {
    let mut f = StreamFacts::default();
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        match k {
            "from_lsn" => f.from_lsn = v.parse().ok(),
            "to_lsn" => f.to_lsn = v.parse().ok(),
            "binlog_pos" => {
                if let Some(g) = v.split("GTID of the last change").nth(1) {
                    f.gtid_position = g.trim().trim_matches('\'').trim().to_string();
                }
                // filename 'binlog.000002', position '1139', …
                let quoted: Vec<&str> = v.split('\'').skip(1).step_by(2).collect();
                if let (Some(file), Some(pos)) = (quoted.first(), quoted.get(1))
                    && let Ok(pos) = pos.parse::<u64>()
                    && !file.is_empty()
                {
                    f.binlog = Some((file.to_string(), pos));
                }
            }
            _ => {}
        }
    }
    f
}

/// The GTID position in a mariadb-dump header (`-- SET GLOBAL gtid_slave_pos='…';`).
pub fn dump_gtid(head: &[u8]) -> String {
    let text = String::from_utf8_lossy(head);
    text.lines()
        .find_map(|l| {
            let rest = l.split("gtid_slave_pos='").nth(1)?;
            rest.split('\'').next().map(str::to_string)
        })
        .unwrap_or_default()
}

/// Unpacks an xbstream from `source` into `dir` on the node's host (created empty).
pub async fn unpack_into(
    node: &NodeTarget,
    dir: &str,
    source: &mut (dyn AsyncRead + Send + Unpin),
) -> Result<(), OpError> {
    node.run(
        HostCommand::shell("rm -rf \"$1\" && mkdir -p \"$1\"").arg(dir),
        SHORT,
    )
    .await?;
    let out = node
        .host
        .run_streaming(
            &HostCommand::new("mbstream")
                .arg("-x")
                .arg("-C")
                .arg(dir)
                .sudo(true),
            STREAM_TIMEOUT,
            Some(source),
            None,
        )
        .await
        .map_err(|e| OpError::Invalid(format!("{}: mbstream: {e}", node.endpoint)))?;
    if !out.success() {
        return Err(OpError::Invalid(format!(
            "{}: mbstream failed: {}",
            node.endpoint,
            failure_summary(&out.stderr_text(), &out.stdout_text())
        )));
    }
    Ok(())
}

/// `mariabackup --prepare` of the copy in `dir`, applying the incremental in
/// `incremental_dir` when given.
pub async fn prepare(
    node: &NodeTarget,
    dir: &str,
    incremental_dir: Option<&str>,
    reporter: &dyn Reporter,
) -> Result<(), OpError> {
    let mut cmd = HostCommand::new("mariabackup")
        .arg("--prepare")
        .arg(format!("--target-dir={dir}"));
    if let Some(inc) = incremental_dir {
        cmd = cmd.arg(format!("--incremental-dir={inc}"));
    }
    crate::wait::report_while(
        reporter,
        &format!("mariabackup --prepare on {}", node.endpoint),
        node.run(cmd, STREAM_TIMEOUT),
    )
    .await?;
    Ok(())
}

/// Feeds a SQL dump from `source` to the node's server.
pub async fn load_dump(
    node: &NodeTarget,
    source: &mut (dyn AsyncRead + Send + Unpin),
) -> Result<(), OpError> {
    load_dump_through(node, &node.settings.layout.socket, source).await
}

/// Feeds a SQL dump from `source` to the server listening on `socket` on the node's host.
async fn load_dump_through(
    node: &NodeTarget,
    socket: &str,
    source: &mut (dyn AsyncRead + Send + Unpin),
) -> Result<(), OpError> {
    let out = node
        .host
        .run_streaming(
            &HostCommand::new("mariadb")
                .arg(format!("--socket={socket}"))
                .arg("--user=root")
                .arg("--binary-mode")
                .sudo(true),
            STREAM_TIMEOUT,
            Some(source),
            None,
        )
        .await
        .map_err(|e| OpError::Invalid(format!("{}: loading the dump: {e}", node.endpoint)))?;
    if !out.success() {
        return Err(OpError::Invalid(format!(
            "{}: loading the dump through {socket} failed: {}",
            node.endpoint,
            failure_summary(&out.stderr_text(), &out.stdout_text())
        )));
    }
    Ok(())
}

/// Puts the prepared copy in `restored` in place of the (stopped) node's data
/// directory; the old one is kept as `<datadir>.pre-restore` until [`drop_old_datadir`]
/// or [`put_back_old_datadir`].
pub async fn swap_in_datadir(node: &NodeTarget, restored: &str) -> Result<(), OpError> {
    let d = &node.settings.layout.datadir;
    node.run(
        HostCommand::shell(
            "set -e; rm -rf \"$1.pre-restore\"; mv \"$1\" \"$1.pre-restore\"; mv \"$2\" \"$1\"; chown -R mysql:mysql \"$1\"",
        )
        .arg(d)
        .arg(restored),
        SHORT,
    )
    .await?;
    Ok(())
}

/// Removes the data directory a successful restore replaced.
pub async fn drop_old_datadir(node: &NodeTarget) -> Result<(), OpError> {
    let d = &node.settings.layout.datadir;
    node.run(
        HostCommand::shell("rm -rf \"$1.pre-restore\"").arg(d),
        Duration::from_secs(600),
    )
    .await?;
    Ok(())
}

/// Puts back the data directory a failed restore replaced.
pub async fn put_back_old_datadir(node: &NodeTarget) -> Result<(), OpError> {
    let d = &node.settings.layout.datadir;
    node.run(
        HostCommand::shell(
            "set -e; if [ -d \"$1.pre-restore\" ]; then rm -rf \"$1\"; mv \"$1.pre-restore\" \"$1\"; fi",
        )
        .arg(d),
        SHORT,
    )
    .await?;
    Ok(())
}

/// A server nines starts on a scratch data directory to prove a backup restores, and
/// removes afterwards: no network (socket only), no binary log, no replication.
#[derive(Debug, Clone)]
pub struct Throwaway {
    pub dir: String,
    pub socket: String,
}

/// Starts a throwaway server on `dir` (a prepared copy; or, with `initialise`, a new
/// empty data directory) and waits until it answers.
pub async fn start_throwaway(
    node: &NodeTarget,
    dir: &str,
    id: i64,
    initialise: bool,
) -> Result<Throwaway, OpError> {
    let socket = format!("/tmp/nines-verify-{id}.sock");
    node.run(
        HostCommand::shell(
            r#"set -e
if [ "$3" = 1 ]; then rm -rf "$1"; mkdir -p "$1"; mariadb-install-db --user=mysql --datadir="$1" --auth-root-authentication-method=socket >/dev/null 2>&1; fi
chown -R mysql:mysql "$1"
rm -f "$2"
setsid mariadbd --no-defaults --user=mysql --datadir="$1" --socket="$2" --pid-file="$1.pid"   --log-error="$1.err" --skip-networking --skip-log-bin --skip-slave-start   --innodb-buffer-pool-size=128M </dev/null >/dev/null 2>&1 &"#,
        )
        .arg(dir)
        .arg(&socket)
        .arg(if initialise { "1" } else { "0" }),
        Duration::from_secs(120),
    )
    .await?;
    let t = Throwaway {
        dir: dir.to_string(),
        socket,
    };
    if let Err(e) = nines_access::host::sql::wait_sql_ready(
        node.host.as_ref(),
        &t.socket,
        Duration::from_secs(300),
    )
    .await
    {
        let log = node
            .run(
                HostCommand::new("tail")
                    .arg("-n")
                    .arg("8")
                    .arg(format!("{dir}.err")),
                SHORT,
            )
            .await
            .unwrap_or_default();
        stop_throwaway(node, &t).await;
        return Err(OpError::Invalid(format!(
            "{}: the throwaway server on {dir} did not start: {e}; its log ends: {}",
            node.endpoint,
            failure_summary("", &log)
        )));
    }
    Ok(t)
}

/// Tables (outside the system schemas) and their rows, counted on a throwaway server.
pub async fn count_rows(node: &NodeTarget, t: &Throwaway) -> Result<(usize, u64), OpError> {
    let sql = |q: String| {
        let socket = t.socket.clone();
        async move {
            nines_access::host::sql::run_sql(
                node.host.as_ref(),
                &socket,
                &q,
                Duration::from_secs(600),
            )
            .await
            .map_err(|e| {
                OpError::Invalid(format!("{}: on the throwaway server: {e}", node.endpoint))
            })
        }
    };
    let tables = sql(
        "SELECT CONCAT('`', REPLACE(table_schema, '`', '``'), '`.`', REPLACE(table_name, '`', '``'), '`')          FROM information_schema.tables WHERE table_type = 'BASE TABLE' AND table_schema NOT IN          ('mysql', 'information_schema', 'performance_schema', 'sys') ORDER BY 1 LIMIT 1000"
            .to_string(),
    )
    .await?;
    let tables: Vec<&str> = tables.lines().filter(|l| !l.trim().is_empty()).collect();
    if tables.is_empty() {
        return Ok((0, 0));
    }
    let counts = sql(tables
        .iter()
        .map(|t| format!("SELECT COUNT(*) FROM {t};"))
        .collect::<String>())
    .await?;
    let rows = counts
        .lines()
        .filter_map(|l| l.trim().parse::<u64>().ok())
        .sum();
    Ok((tables.len(), rows))
}

/// Feeds a SQL dump to a throwaway server.
pub async fn load_dump_into(
    node: &NodeTarget,
    t: &Throwaway,
    source: &mut (dyn AsyncRead + Send + Unpin),
) -> Result<(), OpError> {
    load_dump_through(node, &t.socket, source).await
}

/// Stops a throwaway server and removes its files (best effort: it is scratch).
pub async fn stop_throwaway(node: &NodeTarget, t: &Throwaway) {
    let r = node
        .run(
            HostCommand::shell(
                r#"p=$(cat "$1.pid" 2>/dev/null); if [ -n "$p" ]; then kill "$p" 2>/dev/null;
for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done; kill -9 "$p" 2>/dev/null; fi
rm -rf "$1" "$1.pid" "$1.err" "$2"; true"#,
            )
            .arg(&t.dir)
            .arg(&t.socket),
            Duration::from_secs(60),
        )
        .await;
    if let Err(e) = r {
        tracing::warn!(node = %node.endpoint, error = %e, "cannot remove a throwaway server");
    }
}

/// A scratch directory for a restore on the node's host, beside its own files.
pub fn scratch_dir(node: &NodeTarget, purpose: &str) -> String {
    format!("{}/{purpose}", node.settings.layout.node_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_and_dump_headers_give_positions() {
        let text = "backup_type = full-backuped\nfrom_lsn = 0\nto_lsn = 47251\nlast_lsn = 47260\n\
uuid = 1\nbinlog_pos = filename 'binlog.000002', position '1139', GTID of the last change '0-1-7'\n";
        let f = parse_checkpoints(text);
        assert_eq!(f.from_lsn, Some(0));
        assert_eq!(f.to_lsn, Some(47251));
        assert_eq!(f.gtid_position, "0-1-7");
        assert_eq!(f.binlog, Some(("binlog.000002".to_string(), 1139)));
        // Galera: no GTID, but the position to translate.
        let g = parse_checkpoints(
            "binlog_pos = filename 'binlog.000002', position '379', GTID of the last change ''",
        );
        assert_eq!(g.gtid_position, "");
        assert_eq!(g.binlog, Some(("binlog.000002".to_string(), 379)));
        assert_eq!(parse_checkpoints("nothing").to_lsn, None);

        let head = b"-- MariaDB dump 10.19\n--\n-- CHANGE MASTER TO MASTER_LOG_FILE='binlog.000002', MASTER_LOG_POS=1139;\n\n-- SET GLOBAL gtid_slave_pos='0-1-7,1-2-3';\n";
        assert_eq!(dump_gtid(head), "0-1-7,1-2-3");
        assert_eq!(dump_gtid(b"no header"), "");
    }
}
