//! The store's part of backups: repositories (their keys and credentials sealed as
//! secrets) and the record of every backup, kept apart from the main [`crate::Store`]
//! trait as [`BackupStore`], which every store also implements.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nines_model::backup::{BackupMethod, BackupState};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::sqlite::{SqliteStore, now_ms, opt_time, parse, to_time};
use crate::{Result, StoreError};

/// Where a repository is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoLocation {
    /// A directory on the controller.
    Directory { path: String },
    /// An S3-compatible bucket; the keys are secret ids.
    S3 {
        endpoint: String,
        bucket: String,
        region: String,
        access_key_secret: i64,
        secret_key_secret: i64,
    },
}

/// A backup repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoRecord {
    pub id: i64,
    pub name: String,
    pub location: RepoLocation,
    /// The secret holding the repository key (hex).
    pub key_secret: i64,
    pub created_at: DateTime<Utc>,
}

/// A backup as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupRecord {
    pub id: i64,
    pub cluster: String,
    pub repo: String,
    pub method: BackupMethod,
    pub state: BackupState,
    pub node: String,
    pub parent_id: Option<i64>,
    pub job_id: Option<i64>,
    /// The binlog archive epoch it was taken in.
    pub epoch: i64,
    /// Bytes of the backup stream (before compression).
    pub size_bytes: i64,
    /// Bytes stored in the repository.
    pub stored_bytes: i64,
    pub gtid_position: Option<String>,
    pub to_lsn: Option<i64>,
    /// None until verified; then whether it restored.
    pub verified: Option<bool>,
    pub verified_at: Option<DateTime<Utc>>,
    pub verify_note: Option<String>,
    pub error: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A backup about to be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBackup {
    pub cluster: String,
    pub repo: String,
    pub method: BackupMethod,
    pub node: String,
    pub parent_id: Option<i64>,
    pub job_id: Option<i64>,
    pub epoch: i64,
}

/// How a backup ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupOutcome {
    Completed {
        size_bytes: u64,
        stored_bytes: u64,
        gtid_position: String,
        to_lsn: Option<u64>,
    },
    Failed {
        error: String,
    },
}

/// A backup schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleRecord {
    pub id: i64,
    pub cluster: String,
    pub cron: String,
    pub tz: String,
    pub method: BackupMethod,
    pub repo: String,
    /// The restorable window kept after each backup it takes, in seconds.
    pub retention_secs: Option<i64>,
    pub next_run_at: DateTime<Utc>,
    pub last_run_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A schedule to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSchedule {
    pub cluster: String,
    pub cron: String,
    pub tz: String,
    pub method: BackupMethod,
    pub repo: String,
    pub retention_secs: Option<i64>,
    pub next_run_at: DateTime<Utc>,
}

/// A run of whole binlog events archived from one file of one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentRecord {
    pub id: i64,
    pub cluster: String,
    pub repo: String,
    /// The archive epoch (a restore starts a new one).
    pub epoch: i64,
    /// `host:port` of the server the file is from.
    pub server: String,
    pub file: String,
    pub offset: i64,
    pub length: i64,
    pub first_gtid: Option<String>,
    pub last_gtid: Option<String>,
    pub first_time: Option<DateTime<Utc>>,
    pub last_time: Option<DateTime<Utc>>,
}

/// How far a cluster's binlog archive has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveState {
    pub cluster: String,
    pub repo: String,
    /// The current epoch: bumped by every restore onto the cluster.
    pub epoch: i64,
    /// The server archived from last.
    pub server: Option<String>,
    /// When a pass last found everything the source had written archived.
    pub caught_up_at: Option<DateTime<Utc>>,
    /// Why the last pass failed, if it did.
    pub error: Option<String>,
}

/// Backups in the store.
#[async_trait]
pub trait BackupStore: Send + Sync {
    /// Adds a repository; a name already taken is a conflict.
    async fn add_repo(
        &self,
        name: &str,
        location: &RepoLocation,
        key_secret: i64,
    ) -> Result<RepoRecord>;
    async fn repos(&self) -> Result<Vec<RepoRecord>>;
    async fn repo(&self, name: &str) -> Result<Option<RepoRecord>>;
    /// Records a backup as running.
    async fn begin_backup(&self, b: &NewBackup) -> Result<BackupRecord>;
    /// Records how a running backup ended (no-op when it is not running).
    async fn finish_backup(&self, id: i64, outcome: &BackupOutcome) -> Result<()>;
    /// Records a verification's result.
    async fn set_backup_verified(&self, id: i64, ok: bool, note: &str) -> Result<()>;
    async fn backup(&self, id: i64) -> Result<Option<BackupRecord>>;
    /// Backups, newest first; of one cluster when named.
    async fn backups(&self, cluster: Option<&str>) -> Result<Vec<BackupRecord>>;
    /// When each cluster's newest completed backup finished (clusters with none are not
    /// named): one grouped read for the overview, not every backup of every cluster.
    async fn last_backups(&self) -> Result<Vec<(String, DateTime<Utc>)>>;
    /// Marks backups a previous controller left running as failed; returns how many.
    async fn fail_running_backups(&self, reason: &str) -> Result<u64>;
    /// Forgets a backup whose files retention removed.
    async fn delete_backup_record(&self, id: i64) -> Result<()>;
    async fn add_schedule(&self, s: &NewSchedule) -> Result<ScheduleRecord>;
    async fn schedules(&self) -> Result<Vec<ScheduleRecord>>;
    /// Deletes a schedule; false when there was none.
    async fn delete_schedule(&self, id: i64) -> Result<bool>;
    /// Records an archived segment (a repeat of the same file and offset is a no-op).
    async fn add_segment(&self, s: &SegmentRecord) -> Result<()>;
    /// A cluster's segments in one repository, in the order they were archived.
    async fn segments(&self, cluster: &str, repo: &str) -> Result<Vec<SegmentRecord>>;
    /// Forgets archived segments (their objects were deleted).
    async fn delete_segments(&self, ids: &[i64]) -> Result<()>;
    async fn archive_state(&self, cluster: &str) -> Result<Option<ArchiveState>>;
    /// Records an archiver pass (repository, server, caught-up time, error); the epoch is
    /// left as it is (only [`BackupStore::new_archive_epoch`] moves it).
    async fn set_archive_state(&self, a: &ArchiveState) -> Result<()>;
    /// Starts a new epoch of the cluster's archive (a restore changes its history);
    /// returns it.
    async fn new_archive_epoch(&self, cluster: &str, repo: &str) -> Result<i64>;
    /// Records that a schedule ran at `ran` and when it runs next.
    async fn schedule_ran(&self, id: i64, ran: DateTime<Utc>, next: DateTime<Utc>) -> Result<()>;
}

fn segment_from_row(row: &SqliteRow) -> Result<SegmentRecord> {
    Ok(SegmentRecord {
        id: row.try_get("id")?,
        cluster: row.try_get("cluster_name")?,
        repo: row.try_get("repo")?,
        epoch: row.try_get("epoch")?,
        server: row.try_get("server")?,
        file: row.try_get("file")?,
        offset: row.try_get("file_offset")?,
        length: row.try_get("length")?,
        first_gtid: row.try_get("first_gtid")?,
        last_gtid: row.try_get("last_gtid")?,
        first_time: opt_time(row.try_get("first_time")?),
        last_time: opt_time(row.try_get("last_time")?),
    })
}

fn schedule_from_row(row: &SqliteRow) -> Result<ScheduleRecord> {
    Ok(ScheduleRecord {
        id: row.try_get("id")?,
        cluster: row.try_get("cluster_name")?,
        cron: row.try_get("cron")?,
        tz: row.try_get("tz")?,
        method: parse::<BackupMethod>("backup method", &row.try_get::<String, _>("method")?)?,
        repo: row.try_get("repo")?,
        retention_secs: row.try_get("retention_secs")?,
        next_run_at: to_time(row.try_get("next_run_at")?),
        last_run_at: opt_time(row.try_get("last_run_at")?),
        created_at: to_time(row.try_get("created_at")?),
    })
}

fn repo_from_row(row: &SqliteRow) -> Result<RepoRecord> {
    let kind: String = row.try_get("kind")?;
    let name: String = row.try_get("name")?;
    let missing = |what: &str| StoreError::Corrupt(format!("repository `{name}` has no {what}"));
    let location = match kind.as_str() {
        "directory" => RepoLocation::Directory {
            path: row
                .try_get::<Option<String>, _>("path")?
                .ok_or_else(|| missing("path"))?,
        },
        "s3" => RepoLocation::S3 {
            endpoint: row
                .try_get::<Option<String>, _>("s3_endpoint")?
                .ok_or_else(|| missing("endpoint"))?,
            bucket: row
                .try_get::<Option<String>, _>("s3_bucket")?
                .ok_or_else(|| missing("bucket"))?,
            region: row
                .try_get::<Option<String>, _>("s3_region")?
                .unwrap_or_default(),
            access_key_secret: row
                .try_get::<Option<i64>, _>("s3_access_key_secret")?
                .ok_or_else(|| missing("access key"))?,
            secret_key_secret: row
                .try_get::<Option<i64>, _>("s3_secret_key_secret")?
                .ok_or_else(|| missing("secret key"))?,
        },
        other => return Err(StoreError::Corrupt(format!("repository kind `{other}`"))),
    };
    Ok(RepoRecord {
        id: row.try_get("id")?,
        name,
        location,
        key_secret: row.try_get("key_secret")?,
        created_at: to_time(row.try_get("created_at")?),
    })
}

fn backup_from_row(row: &SqliteRow) -> Result<BackupRecord> {
    Ok(BackupRecord {
        id: row.try_get("id")?,
        cluster: row.try_get("cluster_name")?,
        repo: row.try_get("repo")?,
        method: parse::<BackupMethod>("backup method", &row.try_get::<String, _>("method")?)?,
        state: parse::<BackupState>("backup state", &row.try_get::<String, _>("state")?)?,
        node: row.try_get("node")?,
        parent_id: row.try_get("parent_id")?,
        job_id: row.try_get("job_id")?,
        epoch: row.try_get("epoch")?,
        size_bytes: row.try_get("size_bytes")?,
        stored_bytes: row.try_get("stored_bytes")?,
        gtid_position: row.try_get("gtid_position")?,
        to_lsn: row.try_get("to_lsn")?,
        verified: row.try_get::<Option<i64>, _>("verified")?.map(|v| v != 0),
        verified_at: opt_time(row.try_get("verified_at")?),
        verify_note: row.try_get("verify_note")?,
        error: row.try_get("error")?,
        started_at: to_time(row.try_get("started_at")?),
        finished_at: opt_time(row.try_get("finished_at")?),
    })
}

fn clamp_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[async_trait]
impl BackupStore for SqliteStore {
    async fn add_repo(
        &self,
        name: &str,
        location: &RepoLocation,
        key_secret: i64,
    ) -> Result<RepoRecord> {
        let q = sqlx::query(
            "INSERT INTO backup_repos (name, kind, path, s3_endpoint, s3_bucket, s3_region, \
             s3_access_key_secret, s3_secret_key_secret, key_secret, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
        )
        .bind(name);
        let q = match location {
            RepoLocation::Directory { path } => q
                .bind("directory")
                .bind(path)
                .bind(None::<String>)
                .bind(None::<String>)
                .bind(None::<String>)
                .bind(None::<i64>)
                .bind(None::<i64>),
            RepoLocation::S3 {
                endpoint,
                bucket,
                region,
                access_key_secret,
                secret_key_secret,
            } => q
                .bind("s3")
                .bind(None::<String>)
                .bind(endpoint)
                .bind(bucket)
                .bind(region)
                .bind(access_key_secret)
                .bind(secret_key_secret),
        };
        let row = q
            .bind(key_secret)
            .bind(now_ms())
            .fetch_one(self.pool())
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(db) if db.is_unique_violation() => {
                    StoreError::Conflict(format!("a repository named `{name}` already exists"))
                }
                _ => StoreError::Db(e),
            })?;
        repo_from_row(&row)
    }

    async fn repos(&self) -> Result<Vec<RepoRecord>> {
        sqlx::query("SELECT * FROM backup_repos ORDER BY name")
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(repo_from_row)
            .collect()
    }

    async fn repo(&self, name: &str) -> Result<Option<RepoRecord>> {
        sqlx::query("SELECT * FROM backup_repos WHERE name = ?")
            .bind(name)
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(repo_from_row)
            .transpose()
    }

    async fn begin_backup(&self, b: &NewBackup) -> Result<BackupRecord> {
        let row = sqlx::query(
            "INSERT INTO backups (cluster_name, repo, method, state, node, parent_id, job_id, epoch, started_at) \
             VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?) RETURNING *",
        )
        .bind(&b.cluster)
        .bind(&b.repo)
        .bind(b.method.as_str())
        .bind(&b.node)
        .bind(b.parent_id)
        .bind(b.job_id)
        .bind(b.epoch)
        .bind(now_ms())
        .fetch_one(self.pool())
        .await?;
        backup_from_row(&row)
    }

    async fn finish_backup(&self, id: i64, outcome: &BackupOutcome) -> Result<()> {
        match outcome {
            BackupOutcome::Completed {
                size_bytes,
                stored_bytes,
                gtid_position,
                to_lsn,
            } => {
                sqlx::query(
                    "UPDATE backups SET state = 'completed', size_bytes = ?, stored_bytes = ?, \
                     gtid_position = ?, to_lsn = ?, finished_at = ? WHERE id = ? AND state = 'running'",
                )
                .bind(clamp_i64(*size_bytes))
                .bind(clamp_i64(*stored_bytes))
                .bind(gtid_position)
                .bind(to_lsn.map(clamp_i64))
                .bind(now_ms())
                .bind(id)
                .execute(self.pool())
                .await?;
            }
            BackupOutcome::Failed { error } => {
                sqlx::query(
                    "UPDATE backups SET state = 'failed', error = ?, finished_at = ? \
                     WHERE id = ? AND state = 'running'",
                )
                .bind(error)
                .bind(now_ms())
                .bind(id)
                .execute(self.pool())
                .await?;
            }
        }
        Ok(())
    }

    async fn set_backup_verified(&self, id: i64, ok: bool, note: &str) -> Result<()> {
        sqlx::query(
            "UPDATE backups SET verified = ?, verified_at = ?, verify_note = ? WHERE id = ?",
        )
        .bind(i64::from(ok))
        .bind(now_ms())
        .bind(note)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn backup(&self, id: i64) -> Result<Option<BackupRecord>> {
        sqlx::query("SELECT * FROM backups WHERE id = ?")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(backup_from_row)
            .transpose()
    }

    async fn backups(&self, cluster: Option<&str>) -> Result<Vec<BackupRecord>> {
        sqlx::query(
            "SELECT * FROM backups WHERE (?1 IS NULL OR cluster_name = ?1) ORDER BY id DESC",
        )
        .bind(cluster)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(backup_from_row)
        .collect()
    }

    async fn last_backups(&self) -> Result<Vec<(String, DateTime<Utc>)>> {
        let rows = sqlx::query(
            "SELECT cluster_name, MAX(finished_at) AS finished FROM backups \
             WHERE state = 'completed' AND finished_at IS NOT NULL GROUP BY cluster_name",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("cluster_name")?, to_time(r.try_get("finished")?))))
            .collect()
    }

    async fn delete_backup_record(&self, id: i64) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        // Its incrementals were deleted first; a stray reference is cut rather than kept.
        sqlx::query("UPDATE backups SET parent_id = NULL WHERE parent_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM backups WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn add_schedule(&self, n: &NewSchedule) -> Result<ScheduleRecord> {
        let row = sqlx::query(
            "INSERT INTO backup_schedules (cluster_name, cron, tz, method, repo, retention_secs, \
             next_run_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
        )
        .bind(&n.cluster)
        .bind(&n.cron)
        .bind(&n.tz)
        .bind(n.method.as_str())
        .bind(&n.repo)
        .bind(n.retention_secs)
        .bind(n.next_run_at.timestamp_millis())
        .bind(now_ms())
        .fetch_one(self.pool())
        .await?;
        schedule_from_row(&row)
    }

    async fn schedules(&self) -> Result<Vec<ScheduleRecord>> {
        sqlx::query("SELECT * FROM backup_schedules ORDER BY id")
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(schedule_from_row)
            .collect()
    }

    async fn delete_schedule(&self, id: i64) -> Result<bool> {
        let r = sqlx::query("DELETE FROM backup_schedules WHERE id = ?")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn add_segment(&self, g: &SegmentRecord) -> Result<()> {
        sqlx::query(
            "INSERT OR IGNORE INTO binlog_segments (cluster_name, repo, epoch, server, file, \
             file_offset, length, first_gtid, last_gtid, first_time, last_time, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&g.cluster)
        .bind(&g.repo)
        .bind(g.epoch)
        .bind(&g.server)
        .bind(&g.file)
        .bind(g.offset)
        .bind(g.length)
        .bind(&g.first_gtid)
        .bind(&g.last_gtid)
        .bind(g.first_time.map(|t| t.timestamp_millis()))
        .bind(g.last_time.map(|t| t.timestamp_millis()))
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn segments(&self, cluster: &str, repo: &str) -> Result<Vec<SegmentRecord>> {
        sqlx::query("SELECT * FROM binlog_segments WHERE cluster_name = ? AND repo = ? ORDER BY id")
            .bind(cluster)
            .bind(repo)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(segment_from_row)
            .collect()
    }

    async fn delete_segments(&self, ids: &[i64]) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        for id in ids {
            sqlx::query("DELETE FROM binlog_segments WHERE id = ?")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn archive_state(&self, cluster: &str) -> Result<Option<ArchiveState>> {
        let row = sqlx::query("SELECT * FROM binlog_archive WHERE cluster_name = ?")
            .bind(cluster)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| {
            Ok(ArchiveState {
                cluster: r.try_get("cluster_name")?,
                repo: r.try_get("repo")?,
                epoch: r.try_get("epoch")?,
                server: r.try_get("server")?,
                caught_up_at: opt_time(r.try_get("caught_up_at")?),
                error: r.try_get("error")?,
            })
        })
        .transpose()
    }

    async fn set_archive_state(&self, a: &ArchiveState) -> Result<()> {
        sqlx::query(
            "INSERT INTO binlog_archive (cluster_name, repo, epoch, server, caught_up_at, error) \
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (cluster_name) DO UPDATE SET repo = excluded.repo, \
             server = excluded.server, caught_up_at = excluded.caught_up_at, error = excluded.error",
        )
        .bind(&a.cluster)
        .bind(&a.repo)
        .bind(a.epoch)
        .bind(&a.server)
        .bind(a.caught_up_at.map(|t| t.timestamp_millis()))
        .bind(&a.error)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn new_archive_epoch(&self, cluster: &str, repo: &str) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO binlog_archive (cluster_name, repo, epoch) VALUES (?, ?, 1) \
             ON CONFLICT (cluster_name) DO UPDATE SET epoch = epoch + 1, server = NULL, \
             caught_up_at = NULL, error = NULL RETURNING epoch",
        )
        .bind(cluster)
        .bind(repo)
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get("epoch")?)
    }

    async fn schedule_ran(&self, id: i64, ran: DateTime<Utc>, next: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE backup_schedules SET last_run_at = ?, next_run_at = ? WHERE id = ?")
            .bind(ran.timestamp_millis())
            .bind(next.timestamp_millis())
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn fail_running_backups(&self, reason: &str) -> Result<u64> {
        let r = sqlx::query(
            "UPDATE backups SET state = 'failed', error = ?, finished_at = ? WHERE state = 'running'",
        )
        .bind(reason)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected())
    }
}
