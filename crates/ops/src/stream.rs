//! Streaming a running server's data to another node: `mariabackup --backup
//! --stream=xbstream` on the source, piped through one TCP connection (socat) to a
//! receiver on the target's own address that unpacks it into the target's (emptied) data
//! directory with mbstream, then `mariabackup --prepare` there. Nothing touches the disk
//! of the source but mariabackup's own temporary files, and the copy goes host to host
//! (never through the controller).
//!
//! The replica provisioning of `node add` uses it; backups stream the same way to their
//! storage. Both ends are commands on the nodes' hosts (local or over SSH), so the same
//! code serves loopback test nodes and remote hosts.

use std::time::Duration;

use nines_access::host::HostCommand;

use crate::node::{NodeTarget, SHORT};
use crate::wait::report_while;
use crate::{OpError, Reporter};

/// How long one copy may take, end to end.
pub const COPY_TIMEOUT: Duration = Duration::from_secs(3600);

/// The port the receiver listens on, on the target's address (Galera's SST port: free on
/// a node that is not yet part of a Galera cluster).
pub const STREAM_PORT: u16 = 4444;

/// Copies `source`'s data into `target`'s data directory (emptied first: the caller has
/// proven it is the target's own) and prepares it. Returns the GTID position the copy
/// was taken at (MariaDB's binlog info), empty when the source has no binary log.
pub async fn copy_datadir(
    source: &NodeTarget,
    target: &NodeTarget,
    reporter: &dyn Reporter,
) -> Result<String, OpError> {
    let datadir = &target.settings.layout.datadir;
    let addr = &target.endpoint.host;
    target
        .run(
            HostCommand::shell("find \"$1\" -mindepth 1 -delete").arg(datadir),
            SHORT,
        )
        .await?;
    // Names this copy's mariabackup (its temporary directory's suffix), so that an
    // abandoned copy can be ended without touching any other.
    let token = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    );
    // Receiver first, on the new node's address; it exits when the stream ends.
    let receiver = target.run(
        HostCommand::shell(
            "cd \"$2\" && timeout 3600 socat -u \"TCP-LISTEN:$3,bind=$1,reuseaddr\" - | mbstream -x -C \"$2\"",
        )
        .arg(addr)
        .arg(datadir)
        .arg(STREAM_PORT.to_string()),
        COPY_TIMEOUT,
    );
    let sender = async {
        wait_listening(target).await?;
        source
            .run(
                HostCommand::new("bash").arg("-c").arg(
                    "log=$(mktemp); dir=$(mktemp -d --suffix=\".copy-$5\"); \
                     mariabackup --defaults-file=\"$1\" --socket=\"$3\" --backup --stream=xbstream --user=root --target-dir=\"$dir\" 2>\"$log\" \
                       | socat -u - \"TCP:$2:$4\"; st=(\"${PIPESTATUS[@]}\"); rmdir \"$dir\" 2>/dev/null; \
                     if [ \"${st[0]}\" != 0 ] || [ \"${st[1]}\" != 0 ]; then tail -20 \"$log\" >&2; rm -f \"$log\"; exit 1; fi; rm -f \"$log\"",
                )
                .arg("bash")
                .arg(&source.settings.layout.config_file)
                .arg(addr)
                .arg(&source.settings.layout.socket)
                .arg(STREAM_PORT.to_string())
                .arg(&token),
                COPY_TIMEOUT,
            )
            .await
            .map_err(|e| {
                OpError::Invalid(format!(
                    "{}: streaming the backup failed: {e}",
                    source.endpoint
                ))
            })
    };
    let sender = async {
        let r = sender.await;
        if r.is_err() {
            // The receiver waits for one connection: give it an empty one so it ends now
            // instead of at its timeout.
            let end = HostCommand::shell("socat -u /dev/null \"TCP:$1:$2\" 2>/dev/null || true")
                .arg(addr)
                .arg(STREAM_PORT.to_string());
            if let Err(e) = target.run(end, SHORT).await {
                reporter
                    .warn(&format!(
                        "{}: cannot end the receiver: {e}",
                        target.endpoint
                    ))
                    .await;
            }
        }
        r
    };
    let copied = report_while(
        reporter,
        &format!("the copy from {} to {}", source.endpoint, target.endpoint),
        async { Ok(tokio::join!(receiver, sender)) },
    )
    .await;
    let (received, sent) = match copied {
        Ok(both) => both,
        Err(e) => {
            // Cancelled (or the wait failed): both ends run on their hosts, possibly
            // over SSH where dropping the command does not stop it. End them there.
            end_copy(source, target, &token, reporter).await;
            return Err(e);
        }
    };
    sent?;
    received.map_err(|e| {
        OpError::Invalid(format!(
            "{}: receiving the backup failed: {e}",
            target.endpoint
        ))
    })?;
    reporter.progress("prepare backup", 60).await;
    report_while(
        reporter,
        &format!("mariabackup --prepare on {}", target.endpoint),
        target.run(
            HostCommand::new("mariabackup")
                .arg("--prepare")
                .arg(format!("--target-dir={datadir}")),
            COPY_TIMEOUT,
        ),
    )
    .await
    .map_err(|e| {
        OpError::Invalid(format!(
            "{}: preparing the backup failed: {e}",
            target.endpoint
        ))
    })?;
    target
        .run(
            HostCommand::new("chown")
                .arg("-R")
                .arg("mysql:mysql")
                .arg(datadir),
            SHORT,
        )
        .await?;
    let info = target
        .run(
            // MariaDB 11 renamed the file; 10.x writes xtrabackup_binlog_info.
            HostCommand::shell(
                "cat \"$1/mariadb_backup_binlog_info\" 2>/dev/null || cat \"$1/xtrabackup_binlog_info\"",
            )
            .arg(datadir),
            SHORT,
        )
        .await
        .map_err(|e| {
            OpError::Invalid(format!(
                "{}: the backup has no binlog position: {e}",
                target.endpoint
            ))
        })?;
    Ok(binlog_info_gtid(&info))
}

/// Ends an abandoned copy's processes on both hosts: the receiver's socat and mbstream,
/// the sender's mariabackup and socat.
async fn end_copy(source: &NodeTarget, target: &NodeTarget, token: &str, reporter: &dyn Reporter) {
    let addr = &target.endpoint.host;
    let port = STREAM_PORT.to_string();
    let ends: [(&NodeTarget, &str, String); 4] = [
        (target, "TCP-LISTEN:", format!("{port},bind={addr}")),
        (
            target,
            "mbstream -x -C ",
            target.settings.layout.datadir.clone(),
        ),
        (source, ".copy-", token.to_string()),
        (source, "TCP:", format!("{addr}:{port}")),
    ];
    for (node, head, tail) in ends {
        if let Err(e) = kill_matching(node, head, &tail).await {
            reporter
                .warn(&format!(
                    "{}: cannot end the abandoned copy's `{head}{tail}`: {e}",
                    node.endpoint
                ))
                .await;
        }
    }
}

/// Kills every process on the node's host whose command line contains `head` directly
/// followed by `tail`. They are given apart so that this command's own line (and its
/// wrappers': sudo, timeout, ssh) never contains the whole.
pub async fn kill_matching(node: &NodeTarget, head: &str, tail: &str) -> Result<(), OpError> {
    node.run(
        HostCommand::shell(
            "pat=\"$1$2\"; for d in /proc/[0-9]*; do \
               c=$(tr '\\0' ' ' < \"$d/cmdline\" 2>/dev/null) || continue; \
               case \"$c\" in *\"$pat\"*) kill -9 \"${d#/proc/}\" 2>/dev/null;; esac; \
             done; true",
        )
        .arg(head)
        .arg(tail),
        SHORT,
    )
    .await?;
    Ok(())
}

/// The GTID position in mariabackup's binlog info (`file position gtid`).
fn binlog_info_gtid(info: &str) -> String {
    info.split_whitespace()
        .nth(2)
        .unwrap_or("")
        .trim()
        .to_string()
}

/// Waits until the receiver listens (without connecting: it takes one connection).
async fn wait_listening(target: &NodeTarget) -> Result<(), OpError> {
    let addr = &target.endpoint.host;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let listening = nines_access::host::ports::listening(target.host.as_ref(), SHORT)
            .await
            .map(|l| nines_access::host::ports::port_taken(&l, addr, STREAM_PORT).is_some())
            .unwrap_or(false);
        if listening {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(OpError::Invalid(format!(
                "{}: the copy receiver did not start listening on {addr}:{STREAM_PORT}",
                target.endpoint
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_position_comes_from_the_binlog_info() {
        assert_eq!(
            binlog_info_gtid("mysql-bin.000003\t1234\t0-1-57\n"),
            "0-1-57"
        );
        assert_eq!(
            binlog_info_gtid("mysql-bin.000003 1234 0-1-5,1-2-9"),
            "0-1-5,1-2-9"
        );
        assert_eq!(binlog_info_gtid("mysql-bin.000003 1234"), "");
    }
}
