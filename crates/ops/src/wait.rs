//! Waiting that a person can follow: a step that may take long (a server start that
//! includes a state transfer, `--wsrep-recover`, a join) says in the job log what it waits
//! for at least every [`REPORT_EVERY`], and gives up as soon as the job is cancelled.

use std::future::Future;
use std::time::Duration;

use crate::{OpError, Reporter};

/// How often a waiting step writes a line to the job log.
pub const REPORT_EVERY: Duration = Duration::from_secs(10);

/// Runs `step`, logging "waiting for {what}" every [`REPORT_EVERY`] while it runs;
/// returns [`OpError::Cancelled`] (dropping the step) when the job is cancelled.
pub async fn report_while<T>(
    reporter: &dyn Reporter,
    what: &str,
    step: impl Future<Output = Result<T, OpError>>,
) -> Result<T, OpError> {
    let started = tokio::time::Instant::now();
    let mut tick = tokio::time::interval_at(started + REPORT_EVERY, REPORT_EVERY);
    tokio::pin!(step);
    loop {
        tokio::select! {
            r = &mut step => return r,
            _ = reporter.cancellation().cancelled() => return Err(OpError::Cancelled),
            _ = tick.tick() => {
                reporter
                    .info(&format!(
                        "waiting for {what} ({} s so far)",
                        started.elapsed().as_secs()
                    ))
                    .await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use nines_model::job::LogLevel;
    use std::sync::Mutex;
    use tokio_util::sync::CancellationToken;

    #[derive(Default)]
    struct Log {
        lines: Mutex<Vec<String>>,
        cancel: CancellationToken,
    }

    #[async_trait]
    impl Reporter for Log {
        async fn log(&self, _level: LogLevel, message: &str) {
            self.lines.lock().unwrap().push(message.to_string());
        }
        async fn progress(&self, _phase: &str, _percent: u8) {}
        fn cancellation(&self) -> &CancellationToken {
            &self.cancel
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_step_says_what_it_waits_for_every_ten_seconds() {
        let log = Log::default();
        let r = report_while(&log, "node X to be Synced", async {
            tokio::time::sleep(Duration::from_secs(35)).await;
            Ok::<_, OpError>(7)
        })
        .await;
        assert_eq!(r.unwrap(), 7);
        let lines = log.lines.lock().unwrap().clone();
        assert_eq!(
            lines,
            vec![
                "waiting for node X to be Synced (10 s so far)",
                "waiting for node X to be Synced (20 s so far)",
                "waiting for node X to be Synced (30 s so far)",
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn cancellation_ends_the_wait() {
        let log = Log::default();
        log.cancel.cancel();
        let r = report_while(
            &log,
            "forever",
            std::future::pending::<Result<(), OpError>>(),
        )
        .await;
        assert!(matches!(r, Err(OpError::Cancelled)));
    }
}
