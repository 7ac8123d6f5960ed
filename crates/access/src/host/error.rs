//! The one error type of host access, [`HostError`], with variants a caller can act on
//! (retry later, fix the known_hosts file, fix the key, raise a timeout, read stderr),
//! and the pure classifier that turns the text ssh prints on a failed connect into one
//! of them. Every message starts with the host's name.

use std::time::Duration;

/// How many bytes of a failed command's stderr an error keeps (the tail, where the
/// reason usually is).
pub const STDERR_TAIL_BYTES: usize = 2000;

/// A failure of host access. Every variant names the host (as `describe()` gives it).
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The host could not be reached: connection refused, no route, DNS failure,
    /// connect timeout, connection closed before authentication.
    #[error("{host}: unreachable: {detail}")]
    Unreachable { host: String, detail: String },
    /// Strict host key checking failed: the host's key is unknown or has changed.
    #[error("{host}: host key verification failed: {detail}")]
    HostKey { host: String, detail: String },
    /// The server refused our credentials (e.g. `Permission denied (publickey)`).
    #[error("{host}: authentication failed: {detail}")]
    Auth { host: String, detail: String },
    /// The operation did not finish within its timeout (it was abandoned).
    #[error("{host}: timed out after {after:?}: {what}")]
    Timeout {
        host: String,
        what: String,
        after: Duration,
    },
    /// The command ran and exited non-zero (or was killed by a signal: `status` None).
    #[error("{host}: `{program}` {}: {}", status_text(*.status), stderr_text(.stderr))]
    CommandFailed {
        host: String,
        program: String,
        status: Option<i32>,
        stderr: String,
    },
    /// A local or remote I/O failure; `source.kind()` is `NotFound` for a missing file.
    #[error("{host}: {what}: {source}")]
    Io {
        host: String,
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The SSH transport failed after connecting (master connection lost, mux error).
    #[error("{host}: ssh transport error: {detail}")]
    Transport { host: String, detail: String },
    /// A command succeeded but printed something we could not parse.
    #[error("{host}: unexpected output from {what}: {detail}")]
    UnexpectedOutput {
        host: String,
        what: String,
        detail: String,
    },
    /// The host handle was shut down; no more commands are accepted.
    #[error("{host}: cancelled (host access was shut down)")]
    Cancelled { host: String },
}

fn status_text(status: Option<i32>) -> String {
    match status {
        Some(code) => format!("exited with status {code}"),
        None => "was killed by a signal".to_owned(),
    }
}

fn stderr_text(stderr: &str) -> &str {
    if stderr.is_empty() {
        "(no stderr)"
    } else {
        stderr
    }
}

impl HostError {
    /// The host the error is about.
    pub fn host(&self) -> &str {
        match self {
            Self::Unreachable { host, .. }
            | Self::HostKey { host, .. }
            | Self::Auth { host, .. }
            | Self::Timeout { host, .. }
            | Self::CommandFailed { host, .. }
            | Self::Io { host, .. }
            | Self::Transport { host, .. }
            | Self::UnexpectedOutput { host, .. }
            | Self::Cancelled { host } => host,
        }
    }

    /// True for an I/O error of kind `NotFound` (e.g. reading a file that does not exist).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }

    /// True when the host could not be talked to at all (unreachable, transport lost,
    /// timed out): worth retrying later, unlike key or credential problems.
    pub fn is_connectivity(&self) -> bool {
        matches!(
            self,
            Self::Unreachable { .. } | Self::Transport { .. } | Self::Timeout { .. }
        )
    }
}

/// The last `max` bytes of `bytes` as trimmed, lossy UTF-8, prefixed with `…` when cut.
pub fn tail_text(bytes: &[u8], max: usize) -> String {
    let start = bytes.len().saturating_sub(max);
    let text = String::from_utf8_lossy(&bytes[start..]);
    let text = text.trim();
    if start > 0 {
        format!("…{text}")
    } else {
        text.to_owned()
    }
}

/// Classify what ssh printed when its connection attempt failed into a [`HostError`].
///
/// ssh reports everything as text on stderr; these heuristics match OpenSSH's messages.
pub fn classify_ssh_failure(host: &str, text: &str) -> HostError {
    let detail = last_meaningful_line(text);
    let host = host.to_owned();
    let has = |needle: &str| text.contains(needle);
    if has("Host key verification failed")
        || has("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || (has("host key is known for") && has("strict checking"))
    {
        HostError::HostKey { host, detail }
    } else if has("Permission denied (")
        || has("Too many authentication failures")
        || has("No more authentication methods")
    {
        HostError::Auth { host, detail }
    } else if has("Connection refused")
        || has("No route to host")
        || has("Could not resolve hostname")
        || has("Name or service not known")
        || has("Network is unreachable")
        || has("Connection timed out")
        || has("Operation timed out")
        || has("Connection closed by")
        || has("Connection reset")
        || has("kex_exchange_identification")
    {
        HostError::Unreachable { host, detail }
    } else {
        HostError::Transport { host, detail }
    }
}

/// ssh prints warnings first and the reason last; keep the reason (or the whole text
/// when it is short), with any `ssh: ` prefix removed.
fn last_meaningful_line(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Warning: Permanently added"))
        .collect();
    let joined = lines.join("; ");
    let joined = joined.strip_prefix("ssh: ").unwrap_or(&joined).to_owned();
    if joined.is_empty() {
        "ssh failed without a message".to_owned()
    } else if joined.len() > STDERR_TAIL_BYTES {
        tail_text(joined.as_bytes(), STDERR_TAIL_BYTES)
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(e: &HostError) -> &'static str {
        match e {
            HostError::Unreachable { .. } => "unreachable",
            HostError::HostKey { .. } => "hostkey",
            HostError::Auth { .. } => "auth",
            HostError::Transport { .. } => "transport",
            _ => "other",
        }
    }

    #[test]
    fn classifies_openssh_messages() {
        let cases = [
            (
                "No ED25519 host key is known for [127.0.0.200]:2300 and you have requested strict checking.\nHost key verification failed.\n",
                "hostkey",
            ),
            (
                "@@@@@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n...\nHost key verification failed.",
                "hostkey",
            ),
            ("root@127.0.0.200: Permission denied (publickey).", "auth"),
            (
                "Warning: Permanently added 'x' (ED25519) to the list of known hosts.\r\nu@x: Permission denied (publickey,password).",
                "auth",
            ),
            (
                "ssh: connect to host 127.0.0.200 port 2301: Connection refused",
                "unreachable",
            ),
            (
                "ssh: Could not resolve hostname nonexistent.invalid: Name or service not known",
                "unreachable",
            ),
            (
                "ssh: connect to host 10.1.1.1 port 22: Connection timed out",
                "unreachable",
            ),
            (
                "ssh: connect to host 10.1.1.1 port 22: No route to host",
                "unreachable",
            ),
            (
                "kex_exchange_identification: read: Connection reset by peer",
                "unreachable",
            ),
            ("something entirely new", "transport"),
            ("", "transport"),
        ];
        for (text, want) in cases {
            let e = classify_ssh_failure("ssh root@h:22", text);
            assert_eq!(kind(&e), want, "{text:?} -> {e}");
            assert!(e.to_string().starts_with("ssh root@h:22: "), "{e}");
        }
    }

    #[test]
    fn detail_keeps_the_reason_without_prefix() {
        let e = classify_ssh_failure(
            "h",
            "ssh: connect to host 127.0.0.200 port 2301: Connection refused\n",
        );
        assert_eq!(
            e.to_string(),
            "h: unreachable: connect to host 127.0.0.200 port 2301: Connection refused"
        );
    }

    #[test]
    fn command_failed_display_names_host_program_status_and_stderr() {
        let e = HostError::CommandFailed {
            host: "local".into(),
            program: "false".into(),
            status: Some(1),
            stderr: "boom".into(),
        };
        assert_eq!(e.to_string(), "local: `false` exited with status 1: boom");
        let e = HostError::CommandFailed {
            host: "local".into(),
            program: "x".into(),
            status: None,
            stderr: String::new(),
        };
        assert_eq!(
            e.to_string(),
            "local: `x` was killed by a signal: (no stderr)"
        );
        assert_eq!(e.host(), "local");
    }

    #[test]
    fn tail_text_cuts_from_the_front() {
        assert_eq!(tail_text(b"  hello \n", 100), "hello");
        assert_eq!(tail_text(b"abcdef", 3), "…def");
        assert_eq!(tail_text(b"", 3), "");
    }

    #[test]
    fn not_found_and_connectivity_predicates() {
        let e = HostError::Io {
            host: "h".into(),
            what: "read /x".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert!(e.is_not_found());
        assert!(!e.is_connectivity());
        let e = HostError::Unreachable {
            host: "h".into(),
            detail: "x".into(),
        };
        assert!(e.is_connectivity());
        assert!(!e.is_not_found());
    }
}
