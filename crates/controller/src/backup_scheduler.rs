//! Fires backup schedules: every second it reads the schedules, asks
//! `nines_model::backup::schedule` whether each is due, and queues a backup job (with the
//! schedule's retention) for those that are, storing their next run first. A run missed
//! while the controller was down is made once at start (its next run is in the past).
//! The job lane for backups keeps one backup of a cluster at a time; a schedule whose
//! previous backup still runs skips this run and says so.

use nines_model::event::EventKind;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use nines_model::backup::schedule::{Schedule, ScheduleAction, schedule_action};
use nines_model::job::{JobSpec, JobState};
use nines_store::{JobFilter, Store, StoreError};
use tokio_util::sync::CancellationToken;

use crate::jobs::JobRunner;

/// Who queued a scheduled backup, in the job's record.
pub const REQUESTER: &str = "scheduler";

/// Runs until `shutdown`.
pub async fn run(store: Arc<dyn Store>, jobs: Arc<JobRunner>, shutdown: CancellationToken) {
    loop {
        if let Err(e) = tick(&store, &jobs, Utc::now()).await {
            tracing::warn!(error = %e, "backup scheduler");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

async fn tick(
    store: &Arc<dyn Store>,
    jobs: &Arc<JobRunner>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    for s in store.schedules().await? {
        let schedule = match Schedule::parse(&s.cron, &s.tz) {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(schedule = s.id, error = %e, "a stored schedule no longer parses");
                continue;
            }
        };
        let ScheduleAction::Run { next } = schedule_action(&schedule, s.next_run_at, now) else {
            continue;
        };
        // The next run is stored before the job is queued: a crash in between loses one
        // run rather than taking two.
        let next = next.unwrap_or(now + chrono::Duration::days(36_500));
        store.schedule_ran(s.id, now, next).await?;
        let busy = store
            .list_jobs(&JobFilter {
                cluster: Some(s.cluster.clone()),
                state: None,
                limit: Some(50),
            })
            .await?
            .into_iter()
            .any(|j| {
                matches!(j.spec, JobSpec::CreateBackup { .. })
                    && matches!(j.state, JobState::Queued | JobState::Running)
            });
        let late = (now - s.next_run_at).num_seconds();
        if busy {
            let msg = format!(
                "scheduled backup of `{}` skipped: the previous backup is still running (next at {})",
                s.cluster,
                next.format("%Y-%m-%d %H:%M:%S UTC")
            );
            jobs.alarms()
                .raise(nines_model::alarm::Condition::new(
                    &s.cluster,
                    None,
                    nines_model::alarm::AlarmKind::BackupFailed,
                    format!(
                        "{msg}. A backup that runs longer than its schedule's period leaves gaps: space the schedule out or find what slows the backup (the alarm clears when a backup completes)"
                    ),
                ))
                .await?;
            continue;
        }
        let spec = JobSpec::CreateBackup {
            cluster: s.cluster.clone(),
            method: s.method,
            node: None,
            repo: s.repo.clone(),
            retention_secs: s.retention_secs.and_then(|r| u64::try_from(r).ok()),
            // A scheduled backup is proven by a restore onto a throwaway server.
            verify_restore: true,
        };
        let job = jobs.submit(&spec, REQUESTER).await?;
        let msg = format!(
            "scheduled {} backup of `{}` queued (job {}, schedule {} `{}` {}){}",
            s.method,
            s.cluster,
            job.id,
            s.id,
            s.cron,
            s.tz,
            if late > 60 {
                format!(", {late} s late: the controller was not running at its time")
            } else {
                String::new()
            }
        );
        tracing::info!("{msg}");
        store
            .add_event(&s.cluster, None, EventKind::BackupScheduled, &msg)
            .await?;
    }
    Ok(())
}
