//! The store's part of advisors: each rule's latest results per cluster, the history of
//! each rule's verdict, and user rules, kept apart from the main [`crate::Store`] trait as
//! [`AdvisorStore`], which every store also implements.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nines_model::advisor::user::UserRule;
use nines_model::advisor::{RuleResult, Status};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::sqlite::{SqliteStore, parse, to_time};
use crate::{Result, StoreError};

/// A rule's result as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdviceRecord {
    pub cluster: String,
    pub result: RuleResult,
    pub checked_at: DateTime<Utc>,
}

/// A change of a rule's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdviceChange {
    pub cluster: String,
    pub rule: String,
    /// The rule's worst verdict from then on.
    pub status: Status,
    pub message: String,
    pub at: DateTime<Utc>,
}

#[async_trait]
pub trait AdvisorStore: Send + Sync {
    /// Replaces one rule's results on a cluster with this run's, and records a history
    /// row when the rule's worst verdict changed.
    async fn set_rule_results(
        &self,
        cluster: &str,
        rule: &str,
        results: &[RuleResult],
        at: DateTime<Utc>,
    ) -> Result<()> {
        self.set_results(cluster, &[(rule.to_string(), results.to_vec())], at)
            .await
    }
    /// [`AdvisorStore::set_rule_results`] for several rules, in one transaction.
    async fn set_results(
        &self,
        cluster: &str,
        rules: &[(String, Vec<RuleResult>)],
        at: DateTime<Utc>,
    ) -> Result<()>;
    /// A cluster's latest results, by rule then node.
    async fn advice(&self, cluster: &str) -> Result<Vec<AdviceRecord>>;
    /// A cluster's verdict changes since `since`, newest first.
    async fn advice_history(
        &self,
        cluster: &str,
        since: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<AdviceChange>>;
    /// Forgets a rule's results on a cluster (a user rule was deleted).
    async fn drop_rule_results(&self, cluster: &str, rule: &str) -> Result<()>;
    /// Forgets everything advisors kept about a cluster (it was deleted).
    async fn drop_cluster_advice(&self, cluster: &str) -> Result<()>;

    /// Adds a user rule; a name taken on the cluster is a conflict.
    async fn add_user_rule(&self, cluster: &str, rule: &UserRule) -> Result<()>;
    /// User rules, of one cluster or all: (cluster, rule).
    async fn user_rules(&self, cluster: Option<&str>) -> Result<Vec<(String, UserRule)>>;
    async fn delete_user_rule(&self, cluster: &str, name: &str) -> Result<bool>;
}

fn advice_from_row(r: &SqliteRow) -> Result<AdviceRecord> {
    let node: String = r.try_get("node")?;
    Ok(AdviceRecord {
        cluster: r.try_get("cluster")?,
        result: RuleResult {
            rule: r.try_get("rule")?,
            node: (!node.is_empty()).then_some(node),
            status: parse("advisor status", &r.try_get::<String, _>("status")?)?,
            message: r.try_get("message")?,
            advice: r.try_get("advice")?,
        },
        checked_at: to_time(r.try_get("checked_at")?),
    })
}

/// A rule's worst verdict and what it says.
fn summary(results: &[(Status, String)]) -> Option<(Status, String)> {
    let worst = results.iter().map(|(s, _)| *s).max()?;
    let msgs: Vec<&str> = results
        .iter()
        .filter(|(s, _)| *s == worst)
        .map(|(_, m)| m.as_str())
        .collect();
    Some((worst, msgs.join(" ")))
}

#[async_trait]
impl AdvisorStore for SqliteStore {
    async fn set_results(
        &self,
        cluster: &str,
        rules: &[(String, Vec<RuleResult>)],
        at: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        for (rule, results) in rules {
            let old: Vec<(Status, String)> = sqlx::query(
                "SELECT status, message FROM advisor_results WHERE cluster = ? AND rule = ?",
            )
            .bind(cluster)
            .bind(rule)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| {
                Ok((
                    parse::<Status>("advisor status", &r.try_get::<String, _>("status")?)?,
                    r.try_get::<String, _>("message")?,
                ))
            })
            .collect::<Result<_>>()?;
            sqlx::query("DELETE FROM advisor_results WHERE cluster = ? AND rule = ?")
                .bind(cluster)
                .bind(rule)
                .execute(&mut *tx)
                .await?;
            for r in results {
                sqlx::query(
                "INSERT INTO advisor_results (cluster, rule, node, status, message, advice, checked_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (cluster, rule, node) DO UPDATE SET status = excluded.status, \
                 message = excluded.message, advice = excluded.advice, checked_at = excluded.checked_at",
            )
            .bind(cluster)
            .bind(rule)
            .bind(r.node.clone().unwrap_or_default())
            .bind(r.status.as_str())
            .bind(&r.message)
            .bind(&r.advice)
            .bind(at.timestamp_millis())
            .execute(&mut *tx)
            .await?;
            }
            let new: Vec<(Status, String)> = results
                .iter()
                .map(|r| (r.status, r.message.clone()))
                .collect();
            let before = summary(&old).map(|(s, _)| s);
            if let Some((status, message)) = summary(&new)
                && before != Some(status)
            {
                sqlx::query(
                "INSERT INTO advisor_history (cluster, rule, status, message, at) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(cluster)
            .bind(rule)
            .bind(status.as_str())
            .bind(message)
            .bind(at.timestamp_millis())
            .execute(&mut *tx)
            .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn advice(&self, cluster: &str) -> Result<Vec<AdviceRecord>> {
        sqlx::query("SELECT * FROM advisor_results WHERE cluster = ? ORDER BY rule, node")
            .bind(cluster)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(advice_from_row)
            .collect()
    }

    async fn advice_history(
        &self,
        cluster: &str,
        since: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<AdviceChange>> {
        sqlx::query(
            "SELECT * FROM advisor_history WHERE cluster = ? AND at >= ? ORDER BY at DESC, id DESC LIMIT ?",
        )
        .bind(cluster)
        .bind(since.timestamp_millis())
        .bind(limit)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|r| {
            Ok(AdviceChange {
                cluster: r.try_get("cluster")?,
                rule: r.try_get("rule")?,
                status: parse("advisor status", &r.try_get::<String, _>("status")?)?,
                message: r.try_get("message")?,
                at: to_time(r.try_get("at")?),
            })
        })
        .collect()
    }

    async fn drop_rule_results(&self, cluster: &str, rule: &str) -> Result<()> {
        sqlx::query("DELETE FROM advisor_results WHERE cluster = ? AND rule = ?")
            .bind(cluster)
            .bind(rule)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn drop_cluster_advice(&self, cluster: &str) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        for q in [
            "DELETE FROM advisor_results WHERE cluster = ?",
            "DELETE FROM advisor_history WHERE cluster = ?",
            "DELETE FROM advisor_user_rules WHERE cluster = ?",
        ] {
            sqlx::query(q).bind(cluster).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn add_user_rule(&self, cluster: &str, rule: &UserRule) -> Result<()> {
        let spec =
            serde_json::to_string(rule).map_err(|e| StoreError::Invalid(format!("rule: {e}")))?;
        sqlx::query(
            "INSERT INTO advisor_user_rules (cluster, name, spec, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(cluster)
        .bind(&rule.name)
        .bind(spec)
        .bind(Utc::now().timestamp_millis())
        .execute(self.pool())
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(format!(
                "cluster `{cluster}` already has an advisor rule named `{}`",
                rule.name
            )),
            _ => StoreError::Db(e),
        })?;
        Ok(())
    }

    async fn user_rules(&self, cluster: Option<&str>) -> Result<Vec<(String, UserRule)>> {
        sqlx::query(
            "SELECT cluster, spec FROM advisor_user_rules WHERE (? IS NULL OR cluster = ?) ORDER BY cluster, name",
        )
        .bind(cluster)
        .bind(cluster)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|r| {
            let spec: String = r.try_get("spec")?;
            let rule: UserRule = serde_json::from_str(&spec)
                .map_err(|e| StoreError::Corrupt(format!("advisor rule: {e}")))?;
            Ok((r.try_get("cluster")?, rule))
        })
        .collect()
    }

    async fn delete_user_rule(&self, cluster: &str, name: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM advisor_user_rules WHERE cluster = ? AND name = ?")
            .bind(cluster)
            .bind(name)
            .execute(self.pool())
            .await?;
        Ok(r.rows_affected() > 0)
    }
}
