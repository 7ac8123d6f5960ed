//! SQL through the `mariadb` client on a node's host, as the unix-socket-authenticated
//! `root@localhost`: how a deploy creates the first accounts before any password
//! exists. The SQL goes on stdin, never in arguments (it holds passwords, and arguments
//! show in `ps`), and errors never echo it: the client's habit of printing the failing
//! query is turned off and the server's `near '…'` excerpt is cut out.

use std::time::{Duration, Instant};

use super::HostAccess;
use super::command::HostCommand;
use super::error::{HostError, STDERR_TAIL_BYTES, tail_text};
use super::fs::check_path;

/// How often [`wait_sql_ready`] tries again.
const READY_POLL_INTERVAL: Duration = Duration::from_millis(200);
/// The longest a single readiness probe may take.
const READY_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Run `sql` (one or more statements) through `mariadb --socket=<socket> --user=root
/// --batch --skip-column-names` as root, returning stdout: tab-separated rows, no
/// header. Stops at the first failing statement; the error carries the client's stderr
/// with any SQL excerpt removed.
pub async fn run_sql(
    h: &dyn HostAccess,
    socket: &str,
    sql: &str,
    timeout: Duration,
) -> Result<String, HostError> {
    let socket = check_path(h, socket)?;
    let cmd = HostCommand::new("mariadb")
        .args([
            "--no-defaults".to_owned(),
            format!("--socket={socket}"),
            "--user=root".to_owned(),
            "--batch".to_owned(),
            "--skip-column-names".to_owned(),
            "--skip-print-query-on-error".to_owned(),
            "--default-character-set=utf8mb4".to_owned(),
        ])
        .stdin(sql.as_bytes())
        .sudo(true);
    let out = h.run(&cmd, timeout).await?;
    if !out.success() {
        return Err(HostError::CommandFailed {
            host: out.host,
            program: format!("mariadb --socket={socket}"),
            status: out.status,
            stderr: redact_sql_excerpts(&tail_text(&out.stderr, STDERR_TAIL_BYTES)),
        });
    }
    Ok(out.stdout_text())
}

/// Poll `SELECT 1` on `socket` until it answers or `timeout` passes; the timeout error
/// carries the last failure.
pub async fn wait_sql_ready(
    h: &dyn HostAccess,
    socket: &str,
    timeout: Duration,
) -> Result<(), HostError> {
    let started = Instant::now();
    let mut last_error = String::from("no attempt finished");
    loop {
        let remaining = timeout.saturating_sub(started.elapsed());
        if remaining.is_zero() {
            return Err(HostError::Timeout {
                host: h.describe(),
                what: format!("waiting for SQL on {socket} (last error: {last_error})"),
                after: timeout,
            });
        }
        match run_sql(h, socket, "SELECT 1", remaining.min(READY_PROBE_TIMEOUT)).await {
            Ok(out) if out.trim() == "1" => return Ok(()),
            Ok(out) => last_error = format!("unexpected answer {:?}", out.trim()),
            // Not worth waiting out the timeout for a request that can never work.
            Err(e @ HostError::Io { .. }) if is_invalid_input(&e) => return Err(e),
            Err(e) => last_error = e.to_string(),
        }
        let remaining = timeout.saturating_sub(started.elapsed());
        tokio::time::sleep(READY_POLL_INTERVAL.min(remaining)).await;
    }
}

fn is_invalid_input(e: &HostError) -> bool {
    matches!(e, HostError::Io { source, .. } if source.kind() == std::io::ErrorKind::InvalidInput)
}

/// Cut the server's SQL excerpt out of client error text: `… near 'SECRET' at line 1`
/// becomes `… near '…' at line 1` (a syntax error quotes the statement from the failing
/// token on, which may hold a password).
pub fn redact_sql_excerpts(stderr: &str) -> String {
    const OPEN: &str = "near '";
    const CLOSE: &str = "' at line ";
    let mut out = String::with_capacity(stderr.len());
    let mut rest = stderr;
    while let Some(start) = rest.find(OPEN) {
        let after = start + OPEN.len();
        out.push_str(&rest[..after]);
        // The excerpt may itself contain `' at line `; the last one on the line ends it.
        let line_end = rest[after..].find('\n').map_or(rest.len(), |i| after + i);
        match rest[after..line_end].rfind(CLOSE) {
            Some(close) => {
                out.push('…');
                rest = &rest[after + close..];
            }
            None => {
                // No end marker on this line: drop the rest of the line.
                out.push('…');
                rest = &rest[line_end..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_syntax_error_excerpts() {
        let e = "ERROR 1064 (42000) at line 1: You have an error in your SQL syntax; check the manual that corresponds to your MariaDB server version for the right syntax to use near 'IDENTIFIED BY 's3cret' at line 2' at line 1";
        let r = redact_sql_excerpts(e);
        assert!(!r.contains("s3cret"), "{r}");
        assert!(r.ends_with("to use near '…' at line 1"), "{r}");
        let two = "a near 'x1' at line 1\nb near 'x2' at line 3\n";
        assert_eq!(
            redact_sql_excerpts(two),
            "a near '…' at line 1\nb near '…' at line 3\n"
        );
        assert_eq!(
            redact_sql_excerpts("near 'unterminated secret\nnext"),
            "near '…\nnext"
        );
        assert_eq!(
            redact_sql_excerpts("x near 'unterminated secret\nnext"),
            "x near '…\nnext"
        );
        let plain =
            "ERROR 2002 (HY000): Can't connect to local server through socket '/x.sock' (2)";
        assert_eq!(redact_sql_excerpts(plain), plain);
    }
}
