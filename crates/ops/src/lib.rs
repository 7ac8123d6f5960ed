//! Operations on clusters, each a sequence of steps over server and host access that
//! reports to a job log through a [`Reporter`]. One file per operation.
//!
//! Operations know nothing of the store or the HTTP API: the controller's job runner
//! gives them a reporter and acts on their results.

pub mod backup;
pub mod deploy;
pub mod discover;
pub mod galera;
pub mod lb;
pub mod lifecycle;
pub mod node;
pub mod preflight;
pub mod replication;
pub mod stream;
pub mod wait;

use async_trait::async_trait;
use nines_model::job::LogLevel;
use tokio_util::sync::CancellationToken;

/// Where an operation reports what it does: the job's log, progress and cancellation.
#[async_trait]
pub trait Reporter: Send + Sync {
    async fn log(&self, level: LogLevel, message: &str);
    async fn progress(&self, phase: &str, percent: u8);
    /// Cancelled when the user cancels the job or the controller shuts down.
    fn cancellation(&self) -> &CancellationToken;

    async fn info(&self, message: &str) {
        self.log(LogLevel::Info, message).await;
    }
    async fn warn(&self, message: &str) {
        self.log(LogLevel::Warn, message).await;
    }
}

/// A fail point for the crash-safety tests: when the environment variable
/// `NINES_CRASH_POINT` names `point`, the process aborts right there, as a controller
/// killed at that moment would. Nothing sets it outside those tests.
pub fn crash_point(point: &str) {
    if std::env::var("NINES_CRASH_POINT").is_ok_and(|p| p == point) {
        tracing::error!(point, "NINES_CRASH_POINT reached: aborting");
        std::process::abort();
    }
}

/// A hold point for the concurrency tests: when `NINES_PAUSE_POINT` names `point`, the
/// step waits here until the file named by `NINES_PAUSE_RELEASE` exists (at most ten
/// minutes), so a test can hold a long step open exactly while it does something else.
/// Nothing sets it outside those tests.
pub async fn pause_point(point: &str) {
    if !std::env::var("NINES_PAUSE_POINT").is_ok_and(|p| p == point) {
        return;
    }
    let Ok(release) = std::env::var("NINES_PAUSE_RELEASE") else {
        return;
    };
    tracing::warn!(point, release = %release, "NINES_PAUSE_POINT reached: holding");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(600);
    while !std::path::Path::new(&release).exists() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// An operation's failure, in words for the job log.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error("cancelled")]
    Cancelled,
    #[error("{0}")]
    Server(#[from] nines_access::server::ServerError),
    /// The operation found the world not as it must be; the message says what and where.
    #[error("{0}")]
    Invalid(String),
}
