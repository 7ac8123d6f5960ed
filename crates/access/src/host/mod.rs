//! Host access: running commands and reading/writing files on the machines that run the
//! database servers, behind one small trait, [`HostAccess`], with two transports,
//! [`LocalHost`] (this machine) and [`SshHost`] (OpenSSH with a multiplexed master
//! connection and strict host key checking). On top of the trait sit
//! [`host_facts`] (what the machine is) and [`host_metrics`] (how busy it is), each
//! one round trip, parsed by pure functions. Every call takes a timeout.

mod command;
mod error;
mod facts;
pub mod fs;
mod local;
mod metrics;
pub mod packages;
mod parse;
pub mod ports;
pub mod service;
pub mod sql;
mod ssh;

use std::time::Duration;

pub use command::{
    CommandOutput, HostCommand, read_file_command, shell_join, shell_quote, write_file_command,
};
pub use error::{HostError, classify_ssh_failure};
pub use facts::{
    HostFacts, OsRelease, PackageManager, host_facts, parse_facts_output, parse_os_release,
};
pub use local::LocalHost;
pub use metrics::{
    CpuTimes, CpuUsage, HostMetrics, LoadAvg, cpu_usage, host_metrics, parse_loadavg,
    parse_metrics_output, parse_proc_stat_cpu,
};
pub use parse::{DiskUsage, MemInfo, parse_df, parse_meminfo};
pub use ssh::{MAX_CONCURRENT_COMMANDS, SshHost, SshTarget};

/// Running commands and reading/writing files on one host.
#[async_trait::async_trait]
pub trait HostAccess: Send + Sync {
    /// Human-readable name for logs and errors, e.g. `ssh root@127.0.0.11:2222` or `local`.
    fn describe(&self) -> String;

    /// Run a program with arguments (no shell unless the command is `sh -c`) under
    /// `timeout`. A non-zero exit is not an error here: see [`CommandOutput::check`].
    async fn run(&self, cmd: &HostCommand, timeout: Duration) -> Result<CommandOutput, HostError>;

    /// Like [`HostAccess::run`], for data too large to hold in memory (a backup stream):
    /// the program's stdout is copied to `stdout` as it comes (the returned output's
    /// `stdout` is then empty), and its stdin is read from `stdin` when given (instead of
    /// the command's own input). Both are closed when the program ends.
    async fn run_streaming(
        &self,
        cmd: &HostCommand,
        timeout: Duration,
        stdin: Option<&mut (dyn tokio::io::AsyncRead + Send + Unpin)>,
        stdout: Option<&mut (dyn tokio::io::AsyncWrite + Send + Unpin)>,
    ) -> Result<CommandOutput, HostError>;

    /// Read a (small) file whole, as the transport user.
    async fn read_file(&self, path: &str, timeout: Duration) -> Result<Vec<u8>, HostError>;

    /// Write a file atomically (temporary file next to it, then rename) with permission
    /// bits `mode` (e.g. `0o640`), as the transport user.
    async fn write_file(
        &self,
        path: &str,
        contents: &[u8],
        mode: u32,
        timeout: Duration,
    ) -> Result<(), HostError>;
}

/// The effective user id of this process, from `/proc/self/status` (no libc: unsafe is
/// forbidden in this workspace).
pub(crate) fn current_euid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_euid(&status)
}

fn parse_euid(status: &str) -> Option<u32> {
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    // Uid: real effective saved filesystem
    line.split_whitespace().nth(2)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_effective_uid() {
        let status = "Name:\tx\nUid:\t1000\t0\t1000\t1000\nGid:\t1\t1\t1\t1\n";
        assert_eq!(parse_euid(status), Some(0));
        assert_eq!(parse_euid("Name: x\n"), None);
    }

    #[test]
    fn current_euid_is_known_on_linux() {
        assert!(current_euid().is_some());
    }

    #[test]
    fn trait_is_object_safe() {
        let hosts: Vec<Box<dyn HostAccess>> = vec![Box::new(LocalHost::new())];
        assert_eq!(hosts[0].describe(), "local");
    }
}
