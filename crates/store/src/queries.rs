//! The store's part of the query monitor: per-read deltas of each statement digest on
//! each node, and the digests' texts, kept apart from the main [`crate::Store`] trait as
//! [`QueryStore`], which every store also implements.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nines_model::query::{DigestDelta, TopQuery};
use sqlx::Row;

use crate::Result;
use crate::sqlite::{SqliteStore, to_time};

#[async_trait]
pub trait QueryStore: Send + Sync {
    /// Records one read's deltas of one node.
    async fn add_query_samples(
        &self,
        cluster: &str,
        node: &str,
        at: DateTime<Utc>,
        deltas: &[DigestDelta],
    ) -> Result<()>;
    /// The digests that took the most time since `since`, of one node or the whole
    /// cluster (summed over its nodes, `node` null).
    async fn top_queries(
        &self,
        cluster: &str,
        node: Option<&str>,
        since: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<TopQuery>>;
    /// Deletes samples older than `before`; how many.
    async fn prune_query_samples(&self, before: DateTime<Utc>) -> Result<u64>;
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[async_trait]
impl QueryStore for SqliteStore {
    async fn add_query_samples(
        &self,
        cluster: &str,
        node: &str,
        at: DateTime<Utc>,
        deltas: &[DigestDelta],
    ) -> Result<()> {
        if deltas.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool().begin().await?;
        for d in deltas {
            sqlx::query(
                "INSERT INTO query_samples (cluster, node, at, schema_name, digest, count, \
                 sum_timer_ps, max_timer_ps, rows_examined, rows_sent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(cluster)
            .bind(node)
            .bind(at.timestamp_millis())
            .bind(&d.schema)
            .bind(&d.digest)
            .bind(to_i64(d.count))
            .bind(to_i64(d.sum_timer_ps))
            .bind(to_i64(d.max_timer_ps))
            .bind(to_i64(d.rows_examined))
            .bind(to_i64(d.rows_sent))
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO query_digests (schema_name, digest, text) VALUES (?, ?, ?) \
                 ON CONFLICT (schema_name, digest) DO NOTHING",
            )
            .bind(&d.schema)
            .bind(&d.digest)
            .bind(&d.text)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn top_queries(
        &self,
        cluster: &str,
        node: Option<&str>,
        since: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<TopQuery>> {
        let rows = sqlx::query(
            "SELECT s.schema_name, s.digest, COALESCE(d.text, '') AS text, \
                    SUM(s.count) AS count, SUM(s.sum_timer_ps) AS total, MAX(s.max_timer_ps) AS max, \
                    SUM(s.rows_examined) AS examined, SUM(s.rows_sent) AS sent, \
                    MIN(s.at) AS first, MAX(s.at) AS last \
             FROM query_samples s LEFT JOIN query_digests d \
               ON d.schema_name = s.schema_name AND d.digest = s.digest \
             WHERE s.cluster = ? AND s.at >= ? AND (? IS NULL OR s.node = ?) \
             GROUP BY s.schema_name, s.digest ORDER BY total DESC LIMIT ?",
        )
        .bind(cluster)
        .bind(since.timestamp_millis())
        .bind(node)
        .bind(node)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let count = to_u64(r.try_get("count")?);
                let total_ps = r.try_get::<i64, _>("total")? as f64;
                let total_ms = total_ps / 1e9;
                Ok(TopQuery {
                    digest: r.try_get("digest")?,
                    digest_text: r.try_get("text")?,
                    schema: r.try_get("schema_name")?,
                    node: node.map(str::to_string),
                    count,
                    total_time_ms: total_ms,
                    avg_time_ms: if count > 0 {
                        total_ms / count as f64
                    } else {
                        0.0
                    },
                    max_time_ms: r.try_get::<i64, _>("max")? as f64 / 1e9,
                    rows_examined: to_u64(r.try_get("examined")?),
                    rows_sent: to_u64(r.try_get("sent")?),
                    first_seen: to_time(r.try_get("first")?),
                    last_seen: to_time(r.try_get("last")?),
                })
            })
            .collect()
    }

    async fn prune_query_samples(&self, before: DateTime<Utc>) -> Result<u64> {
        let r = sqlx::query("DELETE FROM query_samples WHERE at < ?")
            .bind(before.timestamp_millis())
            .execute(self.pool())
            .await?;
        Ok(r.rows_affected())
    }
}
