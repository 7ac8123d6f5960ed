//! The store's part of alarms: the alarms themselves (one active row per condition,
//! kept after it clears), silences, notification channels (their URLs sealed as secrets)
//! and the deliveries queued for them, kept apart from the main [`crate::Store`] trait as
//! [`AlarmStore`], which every store also implements.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nines_model::alarm::notify::{ChannelKind, Notice};
use nines_model::alarm::{AlarmKey, AlarmKind, Condition, Severity};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::sqlite::{SqliteStore, opt_time, parse, to_time};
use crate::{Result, StoreError};

/// An alarm as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmRecord {
    pub id: i64,
    pub key: AlarmKey,
    pub severity: Severity,
    pub title: String,
    pub message: String,
    pub raised_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub cleared_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub ack_note: Option<String>,
}

/// A silence as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SilenceRecord {
    pub id: i64,
    pub kind: AlarmKind,
    pub cluster: Option<String>,
    pub until: DateTime<Utc>,
    pub created_by: String,
    pub note: String,
    pub created_at: DateTime<Utc>,
}

/// A notification channel as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelRecord {
    pub id: i64,
    pub name: String,
    pub kind: ChannelKind,
    /// The secret holding the URL (webhook, Slack) or the recipients (e-mail).
    pub target_secret: i64,
    /// What lists show: the URL's scheme and host, or the recipients.
    pub shown_target: String,
    pub smtp: Option<String>,
    pub from_addr: Option<String>,
    /// The secret holding the webhook's signing key.
    pub hmac_secret: Option<i64>,
    pub min_severity: Severity,
    pub cluster: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A channel about to be added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChannel {
    pub name: String,
    pub kind: ChannelKind,
    pub target_secret: i64,
    pub shown_target: String,
    pub smtp: Option<String>,
    pub from_addr: Option<String>,
    pub hmac_secret: Option<i64>,
    pub min_severity: Severity,
    pub cluster: Option<String>,
}

pub use nines_model::alarm::notify::DeliveryState;

/// A notification queued for a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub id: i64,
    pub channel_id: i64,
    pub alarm_id: Option<i64>,
    pub notice: Notice,
    pub state: DeliveryState,
    pub attempts: u32,
    pub queued_at: DateTime<Utc>,
    pub next_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// How one attempt at a delivery went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Sent,
    /// Failed; try again at this time.
    Retry {
        error: String,
        at: DateTime<Utc>,
    },
    /// Failed for the last time.
    GaveUp {
        error: String,
    },
}

#[async_trait]
pub trait AlarmStore: Send + Sync {
    /// Every active alarm (loaded once at start).
    async fn active_alarms(&self) -> Result<Vec<AlarmRecord>>;
    /// Records a raised alarm; when the condition already has an active alarm (a race
    /// with another writer), that one is returned unchanged.
    async fn open_alarm(&self, c: &Condition, at: DateTime<Utc>) -> Result<AlarmRecord>;
    /// Updates an active alarm's severity, title and message.
    async fn update_alarm(&self, id: i64, c: &Condition, at: DateTime<Utc>) -> Result<()>;
    /// Clears an active alarm; None when it was not active.
    async fn close_alarm(&self, id: i64, at: DateTime<Utc>) -> Result<Option<AlarmRecord>>;
    async fn alarm(&self, id: i64) -> Result<Option<AlarmRecord>>;
    /// Alarms, newest first: active ones only unless `all`; of one cluster when named.
    async fn list_alarms(
        &self,
        cluster: Option<&str>,
        all: bool,
        limit: i64,
    ) -> Result<Vec<AlarmRecord>>;
    /// Acknowledges an alarm (again: the latest acknowledgement counts); NotFound when
    /// there is no such alarm.
    async fn ack_alarm(
        &self,
        id: i64,
        by: &str,
        note: &str,
        at: DateTime<Utc>,
    ) -> Result<AlarmRecord>;

    async fn add_silence(
        &self,
        kind: &AlarmKind,
        cluster: Option<&str>,
        until: DateTime<Utc>,
        by: &str,
        note: &str,
    ) -> Result<SilenceRecord>;
    /// Silences in force at `now` (all when None), newest first.
    async fn silences(&self, now: Option<DateTime<Utc>>) -> Result<Vec<SilenceRecord>>;
    /// Ends a silence; false when there was none.
    async fn delete_silence(&self, id: i64) -> Result<bool>;

    /// Adds a channel; a name already taken is a conflict.
    async fn add_channel(&self, c: &NewChannel) -> Result<ChannelRecord>;
    async fn channels(&self) -> Result<Vec<ChannelRecord>>;
    async fn channel(&self, name: &str) -> Result<Option<ChannelRecord>>;
    /// Removes a channel and its deliveries; the removed record (its secrets are the
    /// caller's to delete), None when there was none.
    async fn delete_channel(&self, name: &str) -> Result<Option<ChannelRecord>>;

    /// Queues a notice for a channel, due at once.
    async fn queue_delivery(&self, channel_id: i64, notice: &Notice) -> Result<i64>;
    /// Pending deliveries due at `now`, oldest first.
    async fn due_deliveries(&self, now: DateTime<Utc>) -> Result<Vec<DeliveryRecord>>;
    /// The earliest time a pending delivery is due, if any.
    async fn next_delivery_at(&self) -> Result<Option<DateTime<Utc>>>;
    /// Records an attempt at each of `ids`.
    async fn record_delivery_attempt(
        &self,
        ids: &[i64],
        a: &Attempt,
        at: DateTime<Utc>,
    ) -> Result<()>;
    /// A channel's deliveries, newest first.
    async fn deliveries(&self, channel_id: i64, limit: i64) -> Result<Vec<DeliveryRecord>>;
}

fn alarm_from_row(r: &SqliteRow) -> Result<AlarmRecord> {
    let node: String = r.try_get("node")?;
    Ok(AlarmRecord {
        id: r.try_get("id")?,
        key: AlarmKey {
            cluster: r.try_get("cluster")?,
            node: (!node.is_empty()).then_some(node),
            kind: parse("alarm kind", &r.try_get::<String, _>("kind")?)?,
        },
        severity: parse("alarm severity", &r.try_get::<String, _>("severity")?)?,
        title: r.try_get("title")?,
        message: r.try_get("message")?,
        raised_at: to_time(r.try_get("raised_at")?),
        updated_at: to_time(r.try_get("updated_at")?),
        cleared_at: opt_time(r.try_get("cleared_at")?),
        acknowledged_by: r.try_get("acknowledged_by")?,
        acknowledged_at: opt_time(r.try_get("acknowledged_at")?),
        ack_note: r.try_get("ack_note")?,
    })
}

fn silence_from_row(r: &SqliteRow) -> Result<SilenceRecord> {
    Ok(SilenceRecord {
        id: r.try_get("id")?,
        kind: parse("silence kind", &r.try_get::<String, _>("kind")?)?,
        cluster: r.try_get("cluster")?,
        until: to_time(r.try_get("until_at")?),
        created_by: r.try_get("created_by")?,
        note: r.try_get("note")?,
        created_at: to_time(r.try_get("created_at")?),
    })
}

fn channel_from_row(r: &SqliteRow) -> Result<ChannelRecord> {
    Ok(ChannelRecord {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        kind: parse("channel kind", &r.try_get::<String, _>("kind")?)?,
        target_secret: r.try_get("target_secret")?,
        shown_target: r.try_get("shown_target")?,
        smtp: r.try_get("smtp")?,
        from_addr: r.try_get("from_addr")?,
        hmac_secret: r.try_get("hmac_secret")?,
        min_severity: parse("channel severity", &r.try_get::<String, _>("min_severity")?)?,
        cluster: r.try_get("cluster")?,
        created_at: to_time(r.try_get("created_at")?),
    })
}

fn delivery_from_row(r: &SqliteRow) -> Result<DeliveryRecord> {
    let notice: String = r.try_get("notice")?;
    Ok(DeliveryRecord {
        id: r.try_get("id")?,
        channel_id: r.try_get("channel_id")?,
        alarm_id: r.try_get("alarm_id")?,
        notice: serde_json::from_str(&notice)
            .map_err(|e| StoreError::Corrupt(format!("delivery notice: {e}")))?,
        state: parse("delivery state", &r.try_get::<String, _>("state")?)?,
        attempts: u32::try_from(r.try_get::<i64, _>("attempts")?).unwrap_or(0),
        queued_at: to_time(r.try_get("queued_at")?),
        next_at: to_time(r.try_get("next_at")?),
        last_error: r.try_get("last_error")?,
        sent_at: opt_time(r.try_get("sent_at")?),
    })
}

#[async_trait]
impl AlarmStore for SqliteStore {
    async fn active_alarms(&self) -> Result<Vec<AlarmRecord>> {
        sqlx::query("SELECT * FROM alarms WHERE cleared_at IS NULL ORDER BY id")
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(alarm_from_row)
            .collect()
    }

    async fn open_alarm(&self, c: &Condition, at: DateTime<Utc>) -> Result<AlarmRecord> {
        let node = c.key.node.clone().unwrap_or_default();
        let kind = c.key.kind.as_string();
        let ms = at.timestamp_millis();
        let inserted = sqlx::query(
            "INSERT INTO alarms (cluster, node, kind, severity, title, message, raised_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (cluster, node, kind) WHERE cleared_at IS NULL DO NOTHING RETURNING *",
        )
        .bind(&c.key.cluster)
        .bind(&node)
        .bind(&kind)
        .bind(c.severity.as_str())
        .bind(&c.title)
        .bind(&c.message)
        .bind(ms)
        .bind(ms)
        .fetch_optional(self.pool())
        .await?;
        let row = match inserted {
            Some(r) => r,
            None => {
                sqlx::query(
                    "SELECT * FROM alarms WHERE cluster = ? AND node = ? AND kind = ? AND cleared_at IS NULL",
                )
                .bind(&c.key.cluster)
                .bind(&node)
                .bind(&kind)
                .fetch_one(self.pool())
                .await?
            }
        };
        alarm_from_row(&row)
    }

    async fn update_alarm(&self, id: i64, c: &Condition, at: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "UPDATE alarms SET severity = ?, title = ?, message = ?, updated_at = ? \
             WHERE id = ? AND cleared_at IS NULL",
        )
        .bind(c.severity.as_str())
        .bind(&c.title)
        .bind(&c.message)
        .bind(at.timestamp_millis())
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn close_alarm(&self, id: i64, at: DateTime<Utc>) -> Result<Option<AlarmRecord>> {
        sqlx::query(
            "UPDATE alarms SET cleared_at = ?, updated_at = ? WHERE id = ? AND cleared_at IS NULL \
             RETURNING *",
        )
        .bind(at.timestamp_millis())
        .bind(at.timestamp_millis())
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .as_ref()
        .map(alarm_from_row)
        .transpose()
    }

    async fn alarm(&self, id: i64) -> Result<Option<AlarmRecord>> {
        sqlx::query("SELECT * FROM alarms WHERE id = ?")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(alarm_from_row)
            .transpose()
    }

    async fn list_alarms(
        &self,
        cluster: Option<&str>,
        all: bool,
        limit: i64,
    ) -> Result<Vec<AlarmRecord>> {
        sqlx::query(
            "SELECT * FROM alarms WHERE (? IS NULL OR cluster = ?) AND (? OR cleared_at IS NULL) \
             ORDER BY id DESC LIMIT ?",
        )
        .bind(cluster)
        .bind(cluster)
        .bind(all)
        .bind(limit)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(alarm_from_row)
        .collect()
    }

    async fn ack_alarm(
        &self,
        id: i64,
        by: &str,
        note: &str,
        at: DateTime<Utc>,
    ) -> Result<AlarmRecord> {
        let row = sqlx::query(
            "UPDATE alarms SET acknowledged_by = ?, acknowledged_at = ?, ack_note = ? WHERE id = ? \
             RETURNING *",
        )
        .bind(by)
        .bind(at.timestamp_millis())
        .bind(note)
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("alarm {id}")))?;
        alarm_from_row(&row)
    }

    async fn add_silence(
        &self,
        kind: &AlarmKind,
        cluster: Option<&str>,
        until: DateTime<Utc>,
        by: &str,
        note: &str,
    ) -> Result<SilenceRecord> {
        let row = sqlx::query(
            "INSERT INTO alarm_silences (kind, cluster, until_at, created_by, note, created_at) \
             VALUES (?, ?, ?, ?, ?, ?) RETURNING *",
        )
        .bind(kind.as_string())
        .bind(cluster)
        .bind(until.timestamp_millis())
        .bind(by)
        .bind(note)
        .bind(Utc::now().timestamp_millis())
        .fetch_one(self.pool())
        .await?;
        silence_from_row(&row)
    }

    async fn silences(&self, now: Option<DateTime<Utc>>) -> Result<Vec<SilenceRecord>> {
        sqlx::query(
            "SELECT * FROM alarm_silences WHERE (? IS NULL OR until_at > ?) ORDER BY id DESC",
        )
        .bind(now.map(|t| t.timestamp_millis()))
        .bind(now.map(|t| t.timestamp_millis()))
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(silence_from_row)
        .collect()
    }

    async fn delete_silence(&self, id: i64) -> Result<bool> {
        let r = sqlx::query("DELETE FROM alarm_silences WHERE id = ?")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn add_channel(&self, c: &NewChannel) -> Result<ChannelRecord> {
        let row = sqlx::query(
            "INSERT INTO notify_channels (name, kind, target_secret, shown_target, smtp, from_addr, \
             hmac_secret, min_severity, cluster, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             RETURNING *",
        )
        .bind(&c.name)
        .bind(c.kind.as_str())
        .bind(c.target_secret)
        .bind(&c.shown_target)
        .bind(&c.smtp)
        .bind(&c.from_addr)
        .bind(c.hmac_secret)
        .bind(c.min_severity.as_str())
        .bind(&c.cluster)
        .bind(Utc::now().timestamp_millis())
        .fetch_one(self.pool())
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(
                format!("a notification channel named `{}` already exists", c.name),
            ),
            _ => StoreError::Db(e),
        })?;
        channel_from_row(&row)
    }

    async fn channels(&self) -> Result<Vec<ChannelRecord>> {
        sqlx::query("SELECT * FROM notify_channels ORDER BY name")
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(channel_from_row)
            .collect()
    }

    async fn channel(&self, name: &str) -> Result<Option<ChannelRecord>> {
        sqlx::query("SELECT * FROM notify_channels WHERE name = ?")
            .bind(name)
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(channel_from_row)
            .transpose()
    }

    async fn delete_channel(&self, name: &str) -> Result<Option<ChannelRecord>> {
        let mut tx = self.pool().begin().await?;
        let row = sqlx::query("DELETE FROM notify_channels WHERE name = ? RETURNING *")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let rec = channel_from_row(&row)?;
        sqlx::query("DELETE FROM notify_deliveries WHERE channel_id = ?")
            .bind(rec.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(rec))
    }

    async fn queue_delivery(&self, channel_id: i64, notice: &Notice) -> Result<i64> {
        let json = serde_json::to_string(notice)
            .map_err(|e| StoreError::Invalid(format!("notice: {e}")))?;
        let now = Utc::now().timestamp_millis();
        let row = sqlx::query(
            "INSERT INTO notify_deliveries (channel_id, alarm_id, notice, state, queued_at, next_at) \
             VALUES (?, ?, ?, 'pending', ?, ?) RETURNING id",
        )
        .bind(channel_id)
        .bind(notice.alarm_id)
        .bind(json)
        .bind(now)
        .bind(now)
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get("id")?)
    }

    async fn due_deliveries(&self, now: DateTime<Utc>) -> Result<Vec<DeliveryRecord>> {
        sqlx::query(
            "SELECT * FROM notify_deliveries WHERE state = 'pending' AND next_at <= ? ORDER BY id",
        )
        .bind(now.timestamp_millis())
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(delivery_from_row)
        .collect()
    }

    async fn next_delivery_at(&self) -> Result<Option<DateTime<Utc>>> {
        let row =
            sqlx::query("SELECT MIN(next_at) AS t FROM notify_deliveries WHERE state = 'pending'")
                .fetch_one(self.pool())
                .await?;
        Ok(opt_time(row.try_get("t")?))
    }

    async fn record_delivery_attempt(
        &self,
        ids: &[i64],
        a: &Attempt,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        for id in ids {
            let q = match a {
                Attempt::Sent => sqlx::query(
                    "UPDATE notify_deliveries SET state = 'sent', attempts = attempts + 1, \
                     sent_at = ?, last_error = NULL WHERE id = ?",
                )
                .bind(at.timestamp_millis()),
                Attempt::Retry { error, at: next } => sqlx::query(
                    "UPDATE notify_deliveries SET attempts = attempts + 1, last_error = ?, \
                     next_at = ? WHERE id = ?",
                )
                .bind(error)
                .bind(next.timestamp_millis()),
                Attempt::GaveUp { error } => sqlx::query(
                    "UPDATE notify_deliveries SET state = 'failed', attempts = attempts + 1, \
                     last_error = ? WHERE id = ?",
                )
                .bind(error),
            };
            q.bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn deliveries(&self, channel_id: i64, limit: i64) -> Result<Vec<DeliveryRecord>> {
        sqlx::query("SELECT * FROM notify_deliveries WHERE channel_id = ? ORDER BY id DESC LIMIT ?")
            .bind(channel_id)
            .bind(limit)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(delivery_from_row)
            .collect()
    }
}
