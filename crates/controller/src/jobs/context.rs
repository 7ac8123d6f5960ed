//! A running job's handle on its own record: log lines, progress, cancellation.

use std::sync::Arc;

use async_trait::async_trait;
use nines_model::job::{LogLevel, Progress};
use nines_ops::Reporter;
use nines_store::Store;
use tokio_util::sync::CancellationToken;

/// Given to operations as their [`Reporter`]; writes to the job's durable log.
pub struct JobContext {
    pub id: i64,
    store: Arc<dyn Store>,
    cancel: CancellationToken,
}

impl JobContext {
    pub fn new(id: i64, store: Arc<dyn Store>, cancel: CancellationToken) -> Self {
        Self { id, store, cancel }
    }
}

#[async_trait]
impl Reporter for JobContext {
    async fn log(&self, level: LogLevel, message: &str) {
        tracing::info!(job = self.id, level = level.as_str(), "{message}");
        if let Err(e) = self.store.append_job_log(self.id, level, message).await {
            tracing::error!(job = self.id, error = %e, "cannot write job log");
        }
    }

    async fn progress(&self, phase: &str, percent: u8) {
        let p = Progress {
            phase: phase.to_string(),
            percent,
        };
        if let Err(e) = self.store.set_job_progress(self.id, &p).await {
            tracing::error!(job = self.id, error = %e, "cannot write job progress");
        }
    }

    fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }
}
