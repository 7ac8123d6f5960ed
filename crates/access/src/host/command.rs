//! What to run on a host ([`HostCommand`]) and what came back ([`CommandOutput`]),
//! plus the POSIX shell quoting that turns a command into the single command line an
//! SSH server hands to the remote shell, and the commands behind file reads and atomic
//! file writes. Secrets belong in `stdin`, never in arguments or the environment:
//! those are visible in `ps` on the host and may end up in logs.

use std::fmt;

use super::error::{HostError, STDERR_TAIL_BYTES, tail_text};

/// A program with arguments to run on a host. No shell is involved unless the program
/// is one ([`HostCommand::shell`]).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct HostCommand {
    /// The program, looked up in the host's `PATH` unless absolute.
    pub program: String,
    /// Arguments, each passed as one word exactly as given.
    pub args: Vec<String>,
    /// Bytes fed to the program's stdin (closed after); None gives it an empty stdin.
    pub stdin: Option<Vec<u8>>,
    /// Extra environment variables (names must be `[A-Za-z_][A-Za-z0-9_]*`).
    pub env: Vec<(String, String)>,
    /// Run through `sudo -n` when the transport user is not root.
    pub sudo: bool,
}

impl HostCommand {
    /// A command running `program` with no arguments.
    pub fn new(program: impl Into<String>) -> Self {
        Self {
            program: program.into(),
            ..Self::default()
        }
    }

    /// `sh -c script sh`: further `.arg()`s become the script's `$1`, `$2`, ….
    pub fn shell(script: impl Into<String>) -> Self {
        Self::new("sh").arg("-c").arg(script).arg("sh")
    }

    /// Append one argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Append several arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Feed these bytes to the program's stdin.
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    /// Set an environment variable for the program.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Run with root privileges (`sudo -n`) when the transport user is not root.
    pub fn sudo(mut self, sudo: bool) -> Self {
        self.sudo = sudo;
        self
    }

    /// The full argument vector to execute: `[sudo -n] [env K=V…] program args…`.
    ///
    /// `env` is used only when there are variables and either `inline_env` is set
    /// (SSH, where the mux protocol carries no environment) or sudo is applied (sudo
    /// resets the environment).
    pub fn argv(&self, apply_sudo: bool, inline_env: bool) -> Vec<String> {
        let mut argv = Vec::with_capacity(self.args.len() + self.env.len() + 4);
        if apply_sudo {
            argv.push("sudo".to_owned());
            argv.push("-n".to_owned());
        }
        if !self.env.is_empty() && (inline_env || apply_sudo) {
            argv.push("env".to_owned());
            argv.extend(self.env.iter().map(|(k, v)| format!("{k}={v}")));
        }
        argv.push(self.program.clone());
        argv.extend(self.args.iter().cloned());
        argv
    }

    /// Check the command before running it: a program, valid variable names, no NUL bytes.
    pub fn validate(&self) -> Result<(), String> {
        if self.program.is_empty() {
            return Err("empty program name".to_owned());
        }
        for (name, _) in &self.env {
            if !valid_env_name(name) {
                return Err(format!("invalid environment variable name {name:?}"));
            }
        }
        let has_nul = std::iter::once(&self.program)
            .chain(&self.args)
            .chain(self.env.iter().flat_map(|(k, v)| [k, v]))
            .any(|s| s.contains('\0'));
        if has_nul {
            return Err("command contains a NUL byte".to_owned());
        }
        Ok(())
    }

    /// A short one-line summary for logs and errors (quoted, cut at 200 characters).
    pub fn summary(&self) -> String {
        let full = self.to_string();
        let one_line = full.replace('\n', "\\n");
        if one_line.chars().count() > 200 {
            let cut: String = one_line.chars().take(200).collect();
            format!("{cut}…")
        } else {
            one_line
        }
    }
}

/// Shows the command as a shell would read it; stdin only by its length.
impl fmt::Display for HostCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.sudo {
            f.write_str("[sudo] ")?;
        }
        for (k, v) in &self.env {
            write!(f, "{k}={} ", shell_quote(v))?;
        }
        f.write_str(&shell_quote(&self.program))?;
        for a in &self.args {
            write!(f, " {}", shell_quote(a))?;
        }
        Ok(())
    }
}

/// Debug without stdin contents (they may be a secret or a large file).
impl fmt::Debug for HostCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostCommand")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("stdin_len", &self.stdin.as_ref().map(Vec::len))
            .field("env", &self.env.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("sudo", &self.sudo)
            .finish()
    }
}

fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Quote one word for a POSIX shell: left bare when only safe characters, otherwise
/// single-quoted with each `'` written as `'\''`.
pub fn shell_quote(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_/,.+:@%".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Join an argument vector into one shell command line, each word quoted.
pub fn shell_join(argv: &[String]) -> String {
    argv.iter()
        .map(|w| shell_quote(w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The result of a command that ran to completion (whatever its exit status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    /// The host it ran on (`describe()`).
    pub host: String,
    /// The program that ran (not the `sudo`/`env` wrapper).
    pub program: String,
    /// Exit code; None when killed by a signal.
    pub status: Option<i32>,
    /// Everything the program wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything the program wrote to stderr.
    pub stderr: Vec<u8>,
}

impl CommandOutput {
    /// True when the program exited with status 0.
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }

    /// Ok(self) on exit status 0, otherwise [`HostError::CommandFailed`] with the stderr tail.
    pub fn check(self) -> Result<Self, HostError> {
        if self.success() {
            Ok(self)
        } else {
            Err(HostError::CommandFailed {
                host: self.host,
                program: self.program,
                status: self.status,
                stderr: tail_text(&self.stderr, STDERR_TAIL_BYTES),
            })
        }
    }

    /// stdout as (lossy) UTF-8.
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// stderr as (lossy) UTF-8.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// The command behind a remote file read: `cat -- path`.
pub fn read_file_command(path: &str) -> HostCommand {
    HostCommand::new("cat").arg("--").arg(path)
}

/// The script behind an atomic remote write: stdin goes to a temporary file next to
/// the target, which gets its mode and is renamed over the target; the temporary file
/// is removed if any step fails.
const WRITE_FILE_SCRIPT: &str = r#"set -e
tmp="$1.nines-tmp.$$"
trap 'rm -f -- "$tmp"' EXIT
umask 077
cat > "$tmp"
chmod "$2" "$tmp"
mv -f -- "$tmp" "$1"
trap - EXIT"#;

/// The command behind an atomic file write of `contents` with permission bits `mode`
/// (e.g. `0o640`): write to `<path>.nines-tmp.<pid>`, chmod, rename over `path`.
pub fn write_file_command(path: &str, contents: &[u8], mode: u32) -> HostCommand {
    HostCommand::shell(WRITE_FILE_SCRIPT)
        .arg(path)
        .arg(format!("{:o}", mode & 0o7777))
        .stdin(contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_leaves_safe_words_bare() {
        assert_eq!(shell_quote("abc-1.2/x:y@z"), "abc-1.2/x:y@z");
        // `=` is quoted so that a program word never reads as an assignment.
        assert_eq!(shell_quote("A=1"), "'A=1'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("$HOME;`x`"), "'$HOME;`x`'");
        assert_eq!(shell_quote("a\nb"), "'a\nb'");
    }

    #[test]
    fn quoted_line_roundtrips_through_a_real_shell() {
        let words = [
            "plain",
            "two words",
            "it's",
            "\"dq\"",
            "$HOME",
            "`id`",
            "a\\b",
            "",
            "!bang",
            "*",
            "new\nline",
        ];
        let argv: Vec<String> = std::iter::once("printf".to_owned())
            .chain(std::iter::once("%s\\0".to_owned()))
            .chain(words.iter().map(|w| (*w).to_owned()))
            .collect();
        let line = shell_join(&argv);
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&line)
            .output()
            .expect("run sh");
        assert!(out.status.success());
        let got: Vec<&[u8]> = out.stdout.split(|b| *b == 0).collect();
        let want: Vec<&[u8]> = words
            .iter()
            .map(|w| w.as_bytes())
            .chain([&b""[..]])
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn argv_wraps_with_sudo_and_env() {
        let c = HostCommand::new("mysql")
            .arg("-e")
            .arg("select 1")
            .env("A", "1");
        assert_eq!(c.argv(false, false), ["mysql", "-e", "select 1"]);
        assert_eq!(
            c.argv(false, true),
            ["env", "A=1", "mysql", "-e", "select 1"]
        );
        assert_eq!(
            c.argv(true, false),
            ["sudo", "-n", "env", "A=1", "mysql", "-e", "select 1"]
        );
        let c = HostCommand::new("id").sudo(true);
        assert_eq!(c.argv(true, true), ["sudo", "-n", "id"]);
    }

    #[test]
    fn validate_rejects_bad_commands() {
        assert!(HostCommand::new("echo").arg("x").validate().is_ok());
        assert!(HostCommand::new("").validate().is_err());
        assert!(HostCommand::new("echo").env("A B", "x").validate().is_err());
        assert!(HostCommand::new("echo").env("1A", "x").validate().is_err());
        assert!(HostCommand::new("echo").env("_A1", "x").validate().is_ok());
        assert!(HostCommand::new("echo").arg("a\0b").validate().is_err());
    }

    #[test]
    fn display_and_debug_hide_stdin() {
        let c = HostCommand::shell("echo $1")
            .arg("a b")
            .stdin(b"secret".to_vec());
        assert_eq!(c.to_string(), "sh -c 'echo $1' sh 'a b'");
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("secret"), "{dbg}");
        assert!(dbg.contains("stdin_len: Some(6)"), "{dbg}");
        let long = HostCommand::new("echo").arg("x".repeat(500));
        assert!(long.summary().chars().count() <= 201);
    }

    #[test]
    fn check_turns_nonzero_into_command_failed() {
        let out = CommandOutput {
            host: "h".into(),
            program: "p".into(),
            status: Some(3),
            stdout: vec![],
            stderr: b"bad thing\n".to_vec(),
        };
        match out.check() {
            Err(HostError::CommandFailed {
                host,
                program,
                status,
                stderr,
            }) => {
                assert_eq!(
                    (host.as_str(), program.as_str(), status, stderr.as_str()),
                    ("h", "p", Some(3), "bad thing")
                );
            }
            other => panic!("expected CommandFailed, got {other:?}"),
        }
        let ok = CommandOutput {
            host: "h".into(),
            program: "p".into(),
            status: Some(0),
            stdout: b"x".to_vec(),
            stderr: vec![],
        };
        assert_eq!(ok.check().expect("ok").stdout_text(), "x");
    }

    #[test]
    fn write_file_command_runs_atomically_in_a_real_shell() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("it's a file");
        let path_s = path.to_str().expect("utf8");
        let c = write_file_command(path_s, b"hello\n", 0o640);
        let mut child = std::process::Command::new(&c.program)
            .args(&c.args)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().expect("stdin");
            stdin
                .write_all(c.stdin.as_deref().unwrap_or_default())
                .expect("write");
        }
        assert!(child.wait().expect("wait").success());
        assert_eq!(std::fs::read(&path).expect("read"), b"hello\n");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o7777;
        assert_eq!(mode, 0o640);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("readdir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 1, "temporary file left behind: {names:?}");
    }
}
