//! The store's part of people: users with their role and password hash, their API
//! tokens, browser sessions, and the audit log, kept apart from the main [`crate::Store`]
//! trait as [`UserStore`], which every store also implements.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nines_model::auth::UserRole;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::sqlite::{SqliteStore, to_time};
use crate::{Result, StoreError};

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: i64,
    pub name: String,
    pub role: UserRole,
    /// argon2id, PHC string form.
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
}

/// An API token as stored (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub id: i64,
    /// The label.
    pub name: String,
    /// The user it belongs to; None for the bootstrap admin token.
    pub user: Option<String>,
    /// The role it acts with: its user's now, or the bootstrap token's own.
    pub role: UserRole,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A browser session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub user: String,
    pub role: UserRole,
    pub csrf: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub who: String,
    pub action: String,
    pub target: String,
    pub from: String,
    pub outcome: String,
    pub via: String,
}

/// A line for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAudit {
    pub who: String,
    pub action: String,
    pub target: String,
    pub from: String,
    pub outcome: String,
    pub via: String,
}

#[async_trait]
pub trait UserStore: Send + Sync {
    /// A new user; a name in use is a conflict.
    async fn add_user(&self, name: &str, role: UserRole, password_hash: &str)
    -> Result<UserRecord>;
    async fn users(&self) -> Result<Vec<UserRecord>>;
    async fn user(&self, name: &str) -> Result<Option<UserRecord>>;
    /// Deletes a user with their tokens and sessions; false when there was none.
    async fn delete_user(&self, name: &str) -> Result<bool>;
    async fn set_password(&self, name: &str, password_hash: &str) -> Result<bool>;
    /// A token for a user; a label the user has already is a conflict.
    async fn add_user_token(&self, user: &str, label: &str, token_hash: &str) -> Result<TokenInfo>;
    /// The token with this hash, with the role it acts with now.
    async fn token_by_hash(&self, token_hash: &str) -> Result<Option<TokenInfo>>;
    async fn tokens(&self, user: Option<&str>) -> Result<Vec<TokenInfo>>;
    async fn delete_token(&self, id: i64) -> Result<bool>;
    async fn touch_token(&self, id: i64, at: DateTime<Utc>) -> Result<()>;
    async fn add_session(
        &self,
        id_hash: &str,
        user: &str,
        csrf: &str,
        expires_at: DateTime<Utc>,
        from: &str,
    ) -> Result<()>;
    /// The live session with this hash (its user still existing), seen now.
    async fn session(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
        idle_secs: i64,
    ) -> Result<Option<SessionRecord>>;
    async fn delete_session(&self, id_hash: &str) -> Result<()>;
    async fn add_audit(&self, a: &NewAudit) -> Result<()>;
    /// Newest first.
    async fn audit(&self, since: DateTime<Utc>, limit: i64) -> Result<Vec<AuditRecord>>;
}

fn role(r: &SqliteRow, col: &str) -> Result<UserRole> {
    r.try_get::<String, _>(col)?
        .parse()
        .map_err(StoreError::Corrupt)
}

fn user_from_row(r: &SqliteRow) -> Result<UserRecord> {
    Ok(UserRecord {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        role: role(r, "role")?,
        password_hash: r.try_get("password_hash")?,
        created_at: to_time(r.try_get("created_at")?),
    })
}

fn token_from_row(r: &SqliteRow) -> Result<TokenInfo> {
    Ok(TokenInfo {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        user: r.try_get("user_name")?,
        role: role(r, "eff_role")?,
        created_at: to_time(r.try_get("created_at")?),
        last_used_at: r.try_get::<Option<i64>, _>("last_used_at")?.map(to_time),
    })
}

/// A token query: its columns with the role it acts with, then `$tail`.
macro_rules! token_select {
    ($tail:literal) => {
        concat!(
            "SELECT t.id, t.name, t.user_name, t.created_at, t.last_used_at, ",
            "COALESCE(u.role, t.role) AS eff_role FROM api_tokens t ",
            "LEFT JOIN users u ON u.name = t.user_name ",
            $tail
        )
    };
}

fn unique(e: sqlx::Error, what: String) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what),
        _ => StoreError::Db(e),
    }
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn add_user(
        &self,
        name: &str,
        role: UserRole,
        password_hash: &str,
    ) -> Result<UserRecord> {
        let row = sqlx::query(
            "INSERT INTO users (name, role, password_hash, created_at) VALUES (?, ?, ?, ?) RETURNING *",
        )
        .bind(name)
        .bind(role.as_str())
        .bind(password_hash)
        .bind(Utc::now().timestamp_millis())
        .fetch_one(self.pool())
        .await
        .map_err(|e| unique(e, format!("a user `{name}` exists already")))?;
        user_from_row(&row)
    }

    async fn users(&self) -> Result<Vec<UserRecord>> {
        sqlx::query("SELECT * FROM users ORDER BY name")
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(user_from_row)
            .collect()
    }

    async fn user(&self, name: &str) -> Result<Option<UserRecord>> {
        sqlx::query("SELECT * FROM users WHERE name = ?")
            .bind(name)
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn delete_user(&self, name: &str) -> Result<bool> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM api_tokens WHERE user_name = ?")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM web_sessions WHERE user_name = ?")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let n = sqlx::query("DELETE FROM users WHERE name = ?")
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }

    async fn set_password(&self, name: &str, password_hash: &str) -> Result<bool> {
        let mut tx = self.pool().begin().await?;
        let n = sqlx::query("UPDATE users SET password_hash = ? WHERE name = ?")
            .bind(password_hash)
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        // A new password ends every session of the user.
        sqlx::query("DELETE FROM web_sessions WHERE user_name = ?")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(n > 0)
    }

    async fn add_user_token(&self, user: &str, label: &str, token_hash: &str) -> Result<TokenInfo> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO api_tokens (name, token_hash, role, created_at, user_name) \
             SELECT ?, ?, role, ?, name FROM users WHERE name = ? RETURNING id",
        )
        .bind(label)
        .bind(token_hash)
        .bind(Utc::now().timestamp_millis())
        .bind(user)
        .fetch_optional(self.pool())
        .await
        .map_err(|e| {
            unique(
                e,
                format!("user `{user}` has a token named `{label}` already"),
            )
        })?
        .ok_or_else(|| StoreError::NotFound(format!("user `{user}`")))?;
        sqlx::query(token_select!("WHERE t.id = ?"))
            .bind(id)
            .fetch_one(self.pool())
            .await
            .map_err(StoreError::Db)
            .and_then(|r| token_from_row(&r))
    }

    async fn token_by_hash(&self, token_hash: &str) -> Result<Option<TokenInfo>> {
        sqlx::query(token_select!("WHERE t.token_hash = ?"))
            .bind(token_hash)
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(token_from_row)
            .transpose()
    }

    async fn tokens(&self, user: Option<&str>) -> Result<Vec<TokenInfo>> {
        sqlx::query(token_select!(
            "WHERE (? IS NULL OR t.user_name = ?) ORDER BY t.id"
        ))
        .bind(user)
        .bind(user)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(token_from_row)
        .collect()
    }

    async fn delete_token(&self, id: i64) -> Result<bool> {
        Ok(sqlx::query("DELETE FROM api_tokens WHERE id = ?")
            .bind(id)
            .execute(self.pool())
            .await?
            .rows_affected()
            > 0)
    }

    async fn touch_token(&self, id: i64, at: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE api_tokens SET last_used_at = ? WHERE id = ?")
            .bind(at.timestamp_millis())
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn add_session(
        &self,
        id_hash: &str,
        user: &str,
        csrf: &str,
        expires_at: DateTime<Utc>,
        from: &str,
    ) -> Result<()> {
        let now = Utc::now().timestamp_millis();
        // Sessions that ended are removed on the way.
        sqlx::query("DELETE FROM web_sessions WHERE expires_at < ?")
            .bind(now)
            .execute(self.pool())
            .await?;
        sqlx::query(
            "INSERT INTO web_sessions (id_hash, user_name, csrf, created_at, last_seen_at, expires_at, from_addr) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id_hash)
        .bind(user)
        .bind(csrf)
        .bind(now)
        .bind(now)
        .bind(expires_at.timestamp_millis())
        .bind(from)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn session(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
        idle_secs: i64,
    ) -> Result<Option<SessionRecord>> {
        let now_ms = now.timestamp_millis();
        let row = sqlx::query(
            "SELECT s.*, u.role FROM web_sessions s JOIN users u ON u.name = s.user_name \
             WHERE s.id_hash = ? AND s.expires_at > ? AND s.last_seen_at > ?",
        )
        .bind(id_hash)
        .bind(now_ms)
        .bind(now_ms - idle_secs * 1000)
        .fetch_optional(self.pool())
        .await?;
        let Some(r) = row else {
            return Ok(None);
        };
        sqlx::query("UPDATE web_sessions SET last_seen_at = ? WHERE id_hash = ?")
            .bind(now_ms)
            .bind(id_hash)
            .execute(self.pool())
            .await?;
        Ok(Some(SessionRecord {
            user: r.try_get("user_name")?,
            role: role(&r, "role")?,
            csrf: r.try_get("csrf")?,
            created_at: to_time(r.try_get("created_at")?),
            last_seen_at: now,
            expires_at: to_time(r.try_get("expires_at")?),
        }))
    }

    async fn delete_session(&self, id_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM web_sessions WHERE id_hash = ?")
            .bind(id_hash)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn add_audit(&self, a: &NewAudit) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit (at, who, action, target, from_addr, outcome, via) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(Utc::now().timestamp_millis())
        .bind(&a.who)
        .bind(&a.action)
        .bind(&a.target)
        .bind(&a.from)
        .bind(&a.outcome)
        .bind(&a.via)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn audit(&self, since: DateTime<Utc>, limit: i64) -> Result<Vec<AuditRecord>> {
        sqlx::query("SELECT * FROM audit WHERE at >= ? ORDER BY id DESC LIMIT ?")
            .bind(since.timestamp_millis())
            .bind(limit)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| {
                Ok(AuditRecord {
                    id: r.try_get("id")?,
                    at: to_time(r.try_get("at")?),
                    who: r.try_get("who")?,
                    action: r.try_get("action")?,
                    target: r.try_get("target")?,
                    from: r.try_get("from_addr")?,
                    outcome: r.try_get("outcome")?,
                    via: r.try_get("via")?,
                })
            })
            .collect()
    }
}
