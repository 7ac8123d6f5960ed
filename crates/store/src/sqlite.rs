//! The embedded SQLite implementation of [`Store`]: one file, `<data-dir>/nines.db`, in WAL
//! mode with a busy timeout, foreign keys on, and multi-statement writes in
//! `BEGIN IMMEDIATE` transactions so that concurrent writers wait instead of failing.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nines_model::event::EventKind;
use nines_model::ha::PromotionKind;
use nines_model::ha::fence::Fence;
use nines_model::job::{FailureKind, JobSpec, JobState, LogLevel, Progress};
use nines_model::{ClusterState, ClusterType, DeployState, Desired, Endpoint, NodeState, Role};
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};

use crate::{
    AccountRecord, ClusterRecord, EventRecord, FailoverRecord, HaAttempt, JobFilter, JobLogRecord,
    JobRecord, MaintenanceRecord, NewCluster, NewFailover, NewNode, NewPromotionIntent, NodeRecord,
    PromotionIntent, PromotionRecord, RaisedAlarm, Result, Rollup, Secret, SecretBox, Store,
    StoreError, TokenRecord,
};

/// Inserts a failovers row in `tx`, checking its cluster and job.
async fn insert_failover(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    f: &NewFailover,
) -> Result<i64> {
    if sqlx::query("SELECT 1 FROM clusters WHERE id = ?")
        .bind(f.cluster_id)
        .fetch_optional(&mut **tx)
        .await?
        .is_none()
    {
        return Err(StoreError::NotFound(format!("cluster {}", f.cluster_id)));
    }
    if let Some(job) = f.job_id
        && sqlx::query("SELECT 1 FROM jobs WHERE id = ?")
            .bind(job)
            .fetch_optional(&mut **tx)
            .await?
            .is_none()
    {
        return Err(StoreError::NotFound(format!("job {job}")));
    }
    let row = sqlx::query(
        "INSERT INTO failovers (cluster_id, at, kind, automatic, old_primary, new_primary, \
         promoted_at, job_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(f.cluster_id)
    .bind(f.at.timestamp_millis())
    .bind(f.kind.as_str())
    .bind(i64::from(f.automatic))
    .bind(f.old_primary.to_string())
    .bind(f.new_primary.to_string())
    .bind(&f.promoted_at)
    .bind(f.job_id)
    .fetch_one(&mut **tx)
    .await?;
    Ok(row.try_get("id")?)
}

fn maintenance_from_row(r: &SqliteRow) -> Result<MaintenanceRecord> {
    Ok(MaintenanceRecord {
        node: r.try_get("node")?,
        reason: r.try_get("reason")?,
        set_by: r.try_get("set_by")?,
        since: to_time(r.try_get("since")?),
        until: opt_time(r.try_get("until")?),
    })
}

fn json_opt<T: serde::de::DeserializeOwned>(what: &str, s: Option<String>) -> Result<Option<T>> {
    s.map(|s| serde_json::from_str(&s).map_err(|e| StoreError::Corrupt(format!("{what}: {e}"))))
        .transpose()
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The SQLite store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    secrets: SecretBox,
}

pub(crate) fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

pub(crate) fn to_time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

pub(crate) fn opt_time(ms: Option<i64>) -> Option<DateTime<Utc>> {
    ms.map(to_time)
}

pub(crate) fn parse<T: FromStr<Err = String>>(what: &str, s: &str) -> Result<T> {
    s.parse::<T>()
        .map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// Reads back an address stored as `host:port` (`[v6]:port`), as [`Endpoint`] displays it.
fn endpoint(what: &str, s: &str) -> Result<Endpoint> {
    s.parse::<Endpoint>()
        .map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// NotFound naming `what` when an update touched no row.
fn found(done: &sqlx::sqlite::SqliteQueryResult, what: impl FnOnce() -> String) -> Result<()> {
    if done.rows_affected() == 0 {
        Err(StoreError::NotFound(what()))
    } else {
        Ok(())
    }
}

/// The controller's data directory, created (or narrowed) to mode 0700: it holds the
/// store, the secret key and the admin token, none of them for other users.
fn private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let io = |source| StoreError::Io {
        path: dir.display().to_string(),
        source,
    };
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io)?;
    }
    restrict(dir, 0o700)
}

/// Creates `path` empty with mode 0600 when missing, and narrows it to 0600 otherwise.
fn private_file(path: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if !path.exists() {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|source| StoreError::Io {
                path: path.display().to_string(),
                source,
            })?;
    }
    restrict(path, 0o600)
}

fn restrict(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|source| {
        StoreError::Io {
            path: path.display().to_string(),
            source,
        }
    })
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

impl SqliteStore {
    /// Opens (creating when needed) the store in `data_dir` and brings its schema up to date.
    pub async fn open(data_dir: &Path) -> Result<Self> {
        private_dir(data_dir)?;
        let secrets = SecretBox::load_or_create(&data_dir.join("secret.key"))?;
        // SQLite creates its -wal and -shm files with the database file's mode.
        let db = data_dir.join("nines.db");
        private_file(&db)?;
        let opts = SqliteConnectOptions::new()
            .filename(data_dir.join("nines.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        for extra in ["nines.db-wal", "nines.db-shm"] {
            let p = data_dir.join(extra);
            if p.exists() {
                restrict(&p, 0o600)?;
            }
        }
        Ok(Self { pool, secrets })
    }

    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes the pool, waiting for open connections.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    fn cluster_from_row(row: &SqliteRow) -> Result<ClusterRecord> {
        let host_access: String = row.try_get("host_access")?;
        let state: Option<String> = row.try_get("state")?;
        let name: String = row.try_get("name")?;
        let ha_policy = json_opt(
            &format!("HA policy of cluster `{name}`"),
            row.try_get("ha_policy")?,
        )?;
        Ok(ClusterRecord {
            id: row.try_get("id")?,
            name,
            cluster_type: parse::<ClusterType>(
                "cluster type",
                &row.try_get::<String, _>("cluster_type")?,
            )?,
            host_access: serde_json::from_str(&host_access)
                .map_err(|e| StoreError::Corrupt(format!("host access: {e}")))?,
            db_user: row.try_get("db_user")?,
            db_password_secret: row.try_get("db_password_secret")?,
            state: state
                .as_deref()
                .map(|s| parse::<ClusterState>("cluster state", s))
                .transpose()?,
            state_reason: row.try_get("state_reason")?,
            created_at: to_time(row.try_get("created_at")?),
            settings: json_opt("cluster settings", row.try_get("settings")?)?,
            deploy_state: row
                .try_get::<Option<String>, _>("deploy_state")?
                .as_deref()
                .map(|s| parse::<DeployState>("deploy state", s))
                .transpose()?,
            auto_recovery: row.try_get::<i64, _>("auto_recovery")? != 0,
            primary: row
                .try_get::<Option<String>, _>("primary_node")?
                .as_deref()
                .map(|s| endpoint("cluster primary", s))
                .transpose()?,
            ha_policy,
        })
    }

    fn node_from_row(row: &SqliteRow) -> Result<NodeRecord> {
        let state: Option<String> = row.try_get("state")?;
        let port: i64 = row.try_get("port")?;
        Ok(NodeRecord {
            id: row.try_get("id")?,
            cluster_id: row.try_get("cluster_id")?,
            endpoint: Endpoint::new(
                row.try_get::<String, _>("host")?,
                u16::try_from(port).map_err(|_| StoreError::Corrupt(format!("port {port}")))?,
            ),
            role: parse::<Role>("role", &row.try_get::<String, _>("role")?)?,
            state: state
                .as_deref()
                .map(|s| parse::<NodeState>("node state", s))
                .transpose()?,
            created_at: to_time(row.try_get("created_at")?),
            settings: json_opt("node settings", row.try_get("settings")?)?,
            desired: parse::<Desired>("desired state", &row.try_get::<String, _>("desired")?)?,
            fenced: row
                .try_get::<Option<String>, _>("fenced")?
                .as_deref()
                .map(Fence::from_stored),
        })
    }

    async fn insert_node(
        tx: &mut sqlx::SqliteConnection,
        cluster_id: i64,
        node: &NewNode,
    ) -> Result<NodeRecord> {
        let ep = &node.endpoint;
        let owner = sqlx::query(
            "SELECT c.name FROM nodes n JOIN clusters c ON c.id = n.cluster_id \
             WHERE n.host = ? AND n.port = ?",
        )
        .bind(&ep.host)
        .bind(i64::from(ep.port))
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = owner {
            let name: String = row.try_get("name")?;
            return Err(StoreError::Conflict(format!(
                "node {ep} is already managed by nines in cluster `{name}`"
            )));
        }
        let settings = node.settings.as_ref().map(to_json).transpose()?;
        let row = sqlx::query(
            "INSERT INTO nodes (cluster_id, host, port, role, settings, created_at) \
             VALUES (?, ?, ?, ?, ?, ?) RETURNING *",
        )
        .bind(cluster_id)
        .bind(&ep.host)
        .bind(i64::from(ep.port))
        .bind(node.role.as_str())
        .bind(settings)
        .bind(now_ms())
        .fetch_one(&mut *tx)
        .await?;
        Self::node_from_row(&row)
    }

    fn failover_from_row(row: &SqliteRow) -> Result<FailoverRecord> {
        Ok(FailoverRecord {
            id: row.try_get("id")?,
            cluster_id: row.try_get("cluster_id")?,
            at: to_time(row.try_get("at")?),
            kind: parse::<PromotionKind>("failover kind", &row.try_get::<String, _>("kind")?)?,
            automatic: row.try_get::<i64, _>("automatic")? != 0,
            old_primary: endpoint("old primary", &row.try_get::<String, _>("old_primary")?)?,
            new_primary: endpoint("new primary", &row.try_get::<String, _>("new_primary")?)?,
            promoted_at: row.try_get("promoted_at")?,
            job_id: row.try_get("job_id")?,
            acknowledged: row.try_get::<i64, _>("acknowledged")? != 0,
        })
    }

    fn job_from_row(row: &SqliteRow) -> Result<JobRecord> {
        let spec: String = row.try_get("spec")?;
        let percent: i64 = row.try_get("percent")?;
        Ok(JobRecord {
            id: row.try_get("id")?,
            kind: row.try_get("kind")?,
            cluster_name: row.try_get("cluster_name")?,
            spec: serde_json::from_str::<JobSpec>(&spec)
                .map_err(|e| StoreError::Corrupt(format!("job spec: {e}")))?,
            state: parse::<JobState>("job state", &row.try_get::<String, _>("state")?)?,
            requested_by: row.try_get("requested_by")?,
            progress: Progress {
                phase: row.try_get("phase")?,
                percent: percent.clamp(0, 100) as u8,
            },
            error: row.try_get("error")?,
            failure: row
                .try_get::<Option<String>, _>("failure")?
                .map(|f| parse::<FailureKind>("job failure", &f))
                .transpose()?,
            cancel_requested: row.try_get::<i64, _>("cancel_requested")? != 0,
            created_at: to_time(row.try_get("created_at")?),
            started_at: opt_time(row.try_get("started_at")?),
            finished_at: opt_time(row.try_get("finished_at")?),
        })
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn put_secret(&self, plaintext: &str) -> Result<i64> {
        let sealed = self.secrets.seal(plaintext)?;
        let row =
            sqlx::query("INSERT INTO secrets (sealed, created_at) VALUES (?, ?) RETURNING id")
                .bind(sealed)
                .bind(now_ms())
                .fetch_one(&self.pool)
                .await?;
        Ok(row.try_get("id")?)
    }

    async fn get_secret(&self, id: i64) -> Result<Secret> {
        let row = sqlx::query("SELECT sealed FROM secrets WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("secret {id}")))?;
        let sealed: Vec<u8> = row.try_get("sealed")?;
        self.secrets.open(&sealed)
    }

    async fn delete_secret(&self, id: i64) -> Result<()> {
        sqlx::query("DELETE FROM secrets WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn create_cluster(&self, new: NewCluster) -> Result<ClusterRecord> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let exists = sqlx::query("SELECT 1 FROM clusters WHERE name = ?")
            .bind(&new.name)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_some() {
            return Err(StoreError::Conflict(format!(
                "a cluster named `{}` already exists",
                new.name
            )));
        }
        if let Some(p) = &new.primary
            && !new.nodes.iter().any(|n| &n.endpoint == p)
        {
            return Err(StoreError::Invalid(format!(
                "primary {p} is not one of the nodes of cluster `{}`",
                new.name
            )));
        }
        let host_access = to_json(&new.host_access)?;
        let settings = new.settings.as_ref().map(to_json).transpose()?;
        let row = sqlx::query(
            "INSERT INTO clusters (name, cluster_type, host_access, db_user, db_password_secret, \
             settings, deploy_state, primary_node, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
        )
        .bind(&new.name)
        .bind(new.cluster_type.as_str())
        .bind(&host_access)
        .bind(&new.db_user)
        .bind(new.db_password_secret)
        .bind(settings)
        .bind(new.deploy_state.map(DeployState::as_str))
        .bind(new.primary.as_ref().map(ToString::to_string))
        .bind(now_ms())
        .fetch_one(&mut *tx)
        .await?;
        let cluster = Self::cluster_from_row(&row)?;
        let mut seen = std::collections::BTreeSet::new();
        for node in &new.nodes {
            if !seen.insert(node.endpoint.clone()) {
                return Err(StoreError::Conflict(format!(
                    "node {} is listed twice",
                    node.endpoint
                )));
            }
            Self::insert_node(&mut tx, cluster.id, node).await?;
        }
        tx.commit().await?;
        Ok(cluster)
    }

    async fn list_clusters(&self) -> Result<Vec<ClusterRecord>> {
        sqlx::query("SELECT * FROM clusters ORDER BY name")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(Self::cluster_from_row)
            .collect()
    }

    async fn get_cluster(&self, name: &str) -> Result<Option<ClusterRecord>> {
        sqlx::query("SELECT * FROM clusters WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(Self::cluster_from_row)
            .transpose()
    }

    async fn list_nodes(&self, cluster_id: Option<i64>) -> Result<Vec<NodeRecord>> {
        let rows = match cluster_id {
            Some(id) => {
                sqlx::query("SELECT * FROM nodes WHERE cluster_id = ? ORDER BY host, port")
                    .bind(id)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query("SELECT * FROM nodes ORDER BY cluster_id, host, port")
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(Self::node_from_row).collect()
    }

    async fn cluster_of_node(&self, endpoint: &Endpoint) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT c.name FROM nodes n JOIN clusters c ON c.id = n.cluster_id \
             WHERE n.host = ? AND n.port = ?",
        )
        .bind(&endpoint.host)
        .bind(i64::from(endpoint.port))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get("name")).transpose()?)
    }

    async fn set_cluster_state(&self, id: i64, state: ClusterState, reason: &str) -> Result<()> {
        sqlx::query("UPDATE clusters SET state = ?, state_reason = ? WHERE id = ?")
            .bind(state.as_str())
            .bind(reason)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn set_node_state(&self, id: i64, role: Role, state: NodeState) -> Result<()> {
        sqlx::query("UPDATE nodes SET role = ?, state = ? WHERE id = ?")
            .bind(role.as_str())
            .bind(state.as_str())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn set_node_role(&self, node_id: i64, role: Role) -> Result<()> {
        let done = sqlx::query("UPDATE nodes SET role = ? WHERE id = ?")
            .bind(role.as_str())
            .bind(node_id)
            .execute(&self.pool)
            .await?;
        found(&done, || format!("node {node_id}"))
    }

    async fn set_cluster_primary(&self, cluster_id: i64, primary: Option<&Endpoint>) -> Result<()> {
        let done = sqlx::query("UPDATE clusters SET primary_node = ? WHERE id = ?")
            .bind(primary.map(ToString::to_string))
            .bind(cluster_id)
            .execute(&self.pool)
            .await?;
        found(&done, || format!("cluster {cluster_id}"))
    }

    async fn set_node_fenced(&self, node_id: i64, fence: Option<&Fence>) -> Result<()> {
        let done = sqlx::query("UPDATE nodes SET fenced = ? WHERE id = ?")
            .bind(fence.map(ToString::to_string))
            .bind(node_id)
            .execute(&self.pool)
            .await?;
        found(&done, || format!("node {node_id}"))
    }

    async fn set_deploy_state(&self, cluster_id: i64, state: DeployState) -> Result<()> {
        sqlx::query("UPDATE clusters SET deploy_state = ? WHERE id = ?")
            .bind(state.as_str())
            .bind(cluster_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn set_auto_recovery(&self, cluster_id: i64, enabled: bool) -> Result<()> {
        sqlx::query("UPDATE clusters SET auto_recovery = ? WHERE id = ?")
            .bind(i64::from(enabled))
            .bind(cluster_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn set_ha_policy(
        &self,
        cluster_id: i64,
        policy: Option<&nines_model::ha::HaPolicy>,
    ) -> Result<()> {
        let json = policy.map(to_json).transpose()?;
        let done = sqlx::query("UPDATE clusters SET ha_policy = ? WHERE id = ?")
            .bind(json)
            .bind(cluster_id)
            .execute(&self.pool)
            .await?;
        found(&done, || format!("cluster {cluster_id}"))
    }

    async fn add_node(&self, cluster_id: i64, node: NewNode) -> Result<NodeRecord> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let rec = Self::insert_node(&mut tx, cluster_id, &node).await?;
        tx.commit().await?;
        Ok(rec)
    }

    async fn remove_node(&self, node_id: i64) -> Result<()> {
        sqlx::query("DELETE FROM nodes WHERE id = ?")
            .bind(node_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn set_node_desired(&self, node_id: i64, desired: Desired) -> Result<()> {
        sqlx::query("UPDATE nodes SET desired = ? WHERE id = ?")
            .bind(desired.as_str())
            .bind(node_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete_cluster(&self, cluster_id: i64) -> Result<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut secrets: Vec<i64> =
            sqlx::query("SELECT secret_id FROM cluster_accounts WHERE cluster_id = ?")
                .bind(cluster_id)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| r.try_get("secret_id"))
                .collect::<Result<_, _>>()?;
        if let Some(r) = sqlx::query("SELECT db_password_secret FROM clusters WHERE id = ?")
            .bind(cluster_id)
            .fetch_optional(&mut *tx)
            .await?
        {
            secrets.push(r.try_get("db_password_secret")?);
        }
        sqlx::query("DELETE FROM clusters WHERE id = ?")
            .bind(cluster_id)
            .execute(&mut *tx)
            .await?;
        secrets.sort_unstable();
        secrets.dedup();
        for s in secrets {
            sqlx::query("DELETE FROM secrets WHERE id = ?")
                .bind(s)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn put_account(
        &self,
        cluster_id: i64,
        purpose: &str,
        user: &str,
        secret_id: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT OR REPLACE INTO cluster_accounts (cluster_id, purpose, user_name, secret_id) \
             VALUES (?, ?, ?, ?)",
        )
        .bind(cluster_id)
        .bind(purpose)
        .bind(user)
        .bind(secret_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn accounts(&self, cluster_id: i64) -> Result<Vec<AccountRecord>> {
        let rows = sqlx::query(
            "SELECT purpose, user_name, secret_id FROM cluster_accounts WHERE cluster_id = ? ORDER BY purpose",
        )
        .bind(cluster_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AccountRecord {
                    purpose: r.try_get("purpose")?,
                    user: r.try_get("user_name")?,
                    secret_id: r.try_get("secret_id")?,
                })
            })
            .collect()
    }

    async fn set_maintenance(
        &self,
        cluster_id: i64,
        node: Option<&str>,
        reason: &str,
        set_by: &str,
        until: Option<DateTime<Utc>>,
    ) -> Result<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(
            "DELETE FROM maintenance WHERE cluster_id = ? AND COALESCE(node, '') = COALESCE(?, '')",
        )
        .bind(cluster_id)
        .bind(node)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO maintenance (cluster_id, node, reason, set_by, since, until) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(cluster_id)
        .bind(node)
        .bind(reason)
        .bind(set_by)
        .bind(now_ms())
        .bind(until.map(|t| t.timestamp_millis()))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn clear_maintenance(&self, cluster_id: i64, node: Option<&str>) -> Result<bool> {
        let done = sqlx::query(
            "DELETE FROM maintenance WHERE cluster_id = ? AND COALESCE(node, '') = COALESCE(?, '')",
        )
        .bind(cluster_id)
        .bind(node)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn maintenance(
        &self,
        cluster_id: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<MaintenanceRecord>> {
        let rows = sqlx::query(
            "SELECT node, reason, set_by, since, until FROM maintenance \
             WHERE cluster_id = ? AND (until IS NULL OR until > ?) ORDER BY COALESCE(node, '')",
        )
        .bind(cluster_id)
        .bind(now.timestamp_millis())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(maintenance_from_row).collect()
    }

    async fn all_maintenance(&self, now: DateTime<Utc>) -> Result<Vec<(i64, MaintenanceRecord)>> {
        let rows = sqlx::query(
            "SELECT cluster_id, node, reason, set_by, since, until FROM maintenance \
             WHERE until IS NULL OR until > ? ORDER BY cluster_id, COALESCE(node, '')",
        )
        .bind(now.timestamp_millis())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("cluster_id")?, maintenance_from_row(r)?)))
            .collect()
    }

    async fn record_failover(&self, f: &NewFailover) -> Result<i64> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let id = insert_failover(&mut tx, f).await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn begin_promotion(&self, i: &NewPromotionIntent) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO promotion_intents (cluster_id, job_id, kind, old_primary, candidate, \
             planned_position, primary_sample, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
             RETURNING id",
        )
        .bind(i.cluster_id)
        .bind(i.job_id)
        .bind(i.kind.as_str())
        .bind(i.old_primary.to_string())
        .bind(i.candidate.to_string())
        .bind(&i.planned_position)
        .bind(
            i.primary_sample
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(|e| StoreError::Invalid(format!("primary sample: {e}")))?,
        )
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("id")?)
    }

    async fn open_promotions(&self) -> Result<Vec<PromotionIntent>> {
        let rows = sqlx::query(
            "SELECT p.*, c.name FROM promotion_intents p JOIN clusters c ON c.id = p.cluster_id \
             ORDER BY p.id",
        )
        .fetch_all(&self.pool)
        .await?;
        let endpoint = |r: &sqlx::sqlite::SqliteRow, col: &str| -> Result<Endpoint> {
            let text: String = r.try_get(col)?;
            text.parse()
                .map_err(|e| StoreError::Corrupt(format!("promotion intent {col} `{text}`: {e}")))
        };
        rows.iter()
            .map(|r| {
                Ok(PromotionIntent {
                    id: r.try_get("id")?,
                    cluster: r.try_get("name")?,
                    intent: NewPromotionIntent {
                        cluster_id: r.try_get("cluster_id")?,
                        job_id: r.try_get("job_id")?,
                        kind: parse::<PromotionKind>(
                            "promotion kind",
                            &r.try_get::<String, _>("kind")?,
                        )?,
                        old_primary: endpoint(r, "old_primary")?,
                        candidate: endpoint(r, "candidate")?,
                        planned_position: r.try_get("planned_position")?,
                        primary_sample: json_opt(
                            "promotion intent primary_sample",
                            r.try_get("primary_sample")?,
                        )?,
                    },
                    created_at: to_time(r.try_get("created_at")?),
                })
            })
            .collect()
    }

    async fn abandon_promotion(&self, id: i64) -> Result<()> {
        sqlx::query("DELETE FROM promotion_intents WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn record_promotion(&self, p: &PromotionRecord) -> Result<i64> {
        let f = &p.failover;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let id = insert_failover(&mut tx, f).await?;
        sqlx::query("UPDATE clusters SET primary_node = ? WHERE id = ?")
            .bind(f.new_primary.to_string())
            .bind(f.cluster_id)
            .execute(&mut *tx)
            .await?;
        for (node, role) in &p.roles {
            let done = sqlx::query("UPDATE nodes SET role = ? WHERE id = ? AND cluster_id = ?")
                .bind(role.as_str())
                .bind(node)
                .bind(f.cluster_id)
                .execute(&mut *tx)
                .await?;
            found(&done, || format!("node {node} of cluster {}", f.cluster_id))?;
        }
        for (node, fence) in &p.fences {
            let done = sqlx::query("UPDATE nodes SET fenced = ? WHERE id = ? AND cluster_id = ?")
                .bind(fence.as_ref().map(ToString::to_string))
                .bind(node)
                .bind(f.cluster_id)
                .execute(&mut *tx)
                .await?;
            found(&done, || format!("node {node} of cluster {}", f.cluster_id))?;
        }
        sqlx::query("DELETE FROM promotion_intents WHERE cluster_id = ?")
            .bind(f.cluster_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn failovers(
        &self,
        cluster_id: i64,
        since: DateTime<Utc>,
    ) -> Result<Vec<FailoverRecord>> {
        sqlx::query("SELECT * FROM failovers WHERE cluster_id = ? AND at >= ? ORDER BY at, id")
            .bind(cluster_id)
            .bind(since.timestamp_millis())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(Self::failover_from_row)
            .collect()
    }

    async fn acknowledge_failovers(&self, cluster_id: i64) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE failovers SET acknowledged = 1 WHERE cluster_id = ? AND acknowledged = 0",
        )
        .bind(cluster_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn create_job(&self, spec: &JobSpec, requested_by: &str) -> Result<JobRecord> {
        let spec_json =
            serde_json::to_string(spec).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let row = sqlx::query(
            "INSERT INTO jobs (kind, cluster_name, spec, state, requested_by, created_at) \
             VALUES (?, ?, ?, 'queued', ?, ?) RETURNING *",
        )
        .bind(spec.kind())
        .bind(spec.cluster_name())
        .bind(spec_json)
        .bind(requested_by)
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await?;
        Self::job_from_row(&row)
    }

    async fn get_job(&self, id: i64) -> Result<Option<JobRecord>> {
        sqlx::query("SELECT * FROM jobs WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(Self::job_from_row)
            .transpose()
    }

    async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<JobRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM jobs WHERE (?1 IS NULL OR cluster_name = ?1) AND (?2 IS NULL OR state = ?2) \
             ORDER BY id DESC LIMIT ?3",
        )
        .bind(filter.cluster.as_deref())
        .bind(filter.state.map(|s| s.as_str()))
        .bind(filter.limit.unwrap_or(100))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Self::job_from_row).collect()
    }

    async fn active_jobs(&self) -> Result<Vec<JobRecord>> {
        let rows =
            sqlx::query("SELECT * FROM jobs WHERE state IN ('queued', 'running') ORDER BY id")
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(Self::job_from_row).collect()
    }

    async fn start_job(&self, id: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE jobs SET state = 'running', started_at = ? WHERE id = ? AND state = 'queued'",
        )
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn set_job_progress(&self, id: i64, progress: &Progress) -> Result<()> {
        sqlx::query("UPDATE jobs SET phase = ?, percent = ? WHERE id = ?")
            .bind(&progress.phase)
            .bind(i64::from(progress.percent.min(100)))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn finish_job(
        &self,
        id: i64,
        state: JobState,
        error: Option<&str>,
        failure: Option<FailureKind>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE jobs SET state = ?, error = ?, failure = ?, finished_at = ?, \
             percent = CASE WHEN ? = 'succeeded' THEN 100 ELSE percent END \
             WHERE id = ? AND state IN ('queued', 'running')",
        )
        .bind(state.as_str())
        .bind(error)
        .bind(failure.map(FailureKind::as_str))
        .bind(now_ms())
        .bind(state.as_str())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn append_job_log(&self, id: i64, level: LogLevel, message: &str) -> Result<i64> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let row = sqlx::query(
            "INSERT INTO job_logs (job_id, seq, at, level, message) \
             VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM job_logs WHERE job_id = ?1), ?2, ?3, ?4) \
             RETURNING seq",
        )
        .bind(id)
        .bind(now_ms())
        .bind(level.as_str())
        .bind(message)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row.try_get("seq")?)
    }

    async fn job_logs(&self, id: i64, after_seq: i64) -> Result<Vec<JobLogRecord>> {
        let rows = sqlx::query(
            "SELECT seq, at, level, message FROM job_logs WHERE job_id = ? AND seq > ? ORDER BY seq",
        )
        .bind(id)
        .bind(after_seq)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(JobLogRecord {
                    seq: r.try_get("seq")?,
                    at: to_time(r.try_get("at")?),
                    level: parse::<LogLevel>("log level", &r.try_get::<String, _>("level")?)?,
                    message: r.try_get("message")?,
                })
            })
            .collect()
    }

    async fn request_cancel(&self, id: i64) -> Result<JobState> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let row = sqlx::query("SELECT state FROM jobs WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("job {id}")))?;
        let state = parse::<JobState>("job state", &row.try_get::<String, _>("state")?)?;
        let after = match state {
            JobState::Queued => {
                sqlx::query(
                    "UPDATE jobs SET state = 'cancelled', cancel_requested = 1, finished_at = ?, \
                     error = 'cancelled before it started' WHERE id = ?",
                )
                .bind(now_ms())
                .bind(id)
                .execute(&mut *tx)
                .await?;
                JobState::Cancelled
            }
            JobState::Running => {
                sqlx::query("UPDATE jobs SET cancel_requested = 1 WHERE id = ?")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                JobState::Running
            }
            other => other,
        };
        tx.commit().await?;
        Ok(after)
    }

    async fn fail_interrupted_jobs(&self, reason: &str) -> Result<Vec<i64>> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let ids: Vec<i64> = sqlx::query("SELECT id FROM jobs WHERE state = 'running' ORDER BY id")
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<Result<_, _>>()?;
        let now = now_ms();
        for id in &ids {
            sqlx::query(
                "UPDATE jobs SET state = 'failed', error = ?, failure = 'failed', finished_at = ? WHERE id = ?",
            )
            .bind(reason)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO job_logs (job_id, seq, at, level, message) \
                 VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM job_logs WHERE job_id = ?1), ?2, 'error', ?3)",
            )
            .bind(id)
            .bind(now)
            .bind(reason)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(ids)
    }

    async fn record_attempt(&self, a: &HaAttempt) -> Result<()> {
        sqlx::query(
            "INSERT INTO ha_attempts (cluster_id, repair, subject, at) VALUES (?, ?, ?, ?)",
        )
        .bind(a.cluster_id)
        .bind(&a.repair)
        .bind(&a.subject)
        .bind(a.at.timestamp_millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn attempts_since(&self, since: DateTime<Utc>) -> Result<Vec<HaAttempt>> {
        let rows = sqlx::query("SELECT * FROM ha_attempts WHERE at >= ? ORDER BY at, id")
            .bind(since.timestamp_millis())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(HaAttempt {
                    cluster_id: r.try_get("cluster_id")?,
                    repair: r.try_get("repair")?,
                    subject: r.try_get("subject")?,
                    at: to_time(r.try_get("at")?),
                })
            })
            .collect()
    }

    async fn clear_attempts(&self, cluster_id: i64, repair: &str, subject: &str) -> Result<()> {
        sqlx::query("DELETE FROM ha_attempts WHERE cluster_id = ? AND repair = ? AND subject = ?")
            .bind(cluster_id)
            .bind(repair)
            .bind(subject)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn prune_attempts(&self, before: DateTime<Utc>) -> Result<u64> {
        let done = sqlx::query("DELETE FROM ha_attempts WHERE at < ?")
            .bind(before.timestamp_millis())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn raise_alarm(&self, a: &RaisedAlarm) -> Result<bool> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let done = sqlx::query(
            "INSERT INTO ha_alarms (cluster_id, alarm, subject, raised_at, message) \
             SELECT ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM clusters WHERE id = ?) \
             ON CONFLICT (cluster_id, alarm, subject) DO NOTHING",
        )
        .bind(a.cluster_id)
        .bind(&a.alarm)
        .bind(&a.subject)
        .bind(a.raised_at.timestamp_millis())
        .bind(&a.message)
        .bind(a.cluster_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("INSERT INTO events (at, cluster, node, kind, message) VALUES (?, ?, ?, ?, ?)")
            .bind(now_ms())
            .bind(&a.cluster)
            .bind((!a.subject.is_empty()).then_some(a.subject.as_str()))
            .bind(EventKind::Alarm.as_str())
            .bind(&a.message)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn clear_alarm(&self, cluster_id: i64, alarm: &str, subject: &str) -> Result<bool> {
        let done =
            sqlx::query("DELETE FROM ha_alarms WHERE cluster_id = ? AND alarm = ? AND subject = ?")
                .bind(cluster_id)
                .bind(alarm)
                .bind(subject)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn raised_alarms(&self) -> Result<Vec<RaisedAlarm>> {
        let rows = sqlx::query(
            "SELECT a.*, c.name FROM ha_alarms a JOIN clusters c ON c.id = a.cluster_id \
             ORDER BY a.raised_at",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RaisedAlarm {
                    cluster_id: r.try_get("cluster_id")?,
                    cluster: r.try_get("name")?,
                    alarm: r.try_get("alarm")?,
                    subject: r.try_get("subject")?,
                    raised_at: to_time(r.try_get("raised_at")?),
                    message: r.try_get("message")?,
                })
            })
            .collect()
    }

    async fn add_event(
        &self,
        cluster: &str,
        node: Option<&str>,
        kind: EventKind,
        message: &str,
    ) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO events (at, cluster, node, kind, message) VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(now_ms())
        .bind(cluster)
        .bind(node)
        .bind(kind.as_str())
        .bind(message)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("id")?)
    }

    async fn list_events(&self, cluster: Option<&str>, limit: i64) -> Result<Vec<EventRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM events WHERE (?1 IS NULL OR cluster = ?1) ORDER BY id DESC LIMIT ?2",
        )
        .bind(cluster)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(EventRecord {
                    id: r.try_get("id")?,
                    at: to_time(r.try_get("at")?),
                    cluster: r.try_get("cluster")?,
                    node: r.try_get("node")?,
                    kind: r.try_get("kind")?,
                    message: r.try_get("message")?,
                })
            })
            .collect()
    }

    async fn token_count(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM api_tokens")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    async fn create_token(&self, name: &str, token_hash: &str, role: &str) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO api_tokens (name, token_hash, role, created_at) VALUES (?, ?, ?, ?) RETURNING id",
        )
        .bind(name)
        .bind(token_hash)
        .bind(role)
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict(format!("a token named `{name}` already exists"))
            } else {
                e.into()
            }
        })?;
        Ok(row.try_get("id")?)
    }

    async fn find_token(&self, token_hash: &str) -> Result<Option<TokenRecord>> {
        let row = sqlx::query("SELECT id, name, role FROM api_tokens WHERE token_hash = ?")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(TokenRecord {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                role: r.try_get("role")?,
            })
        })
        .transpose()
    }

    async fn insert_rollups(&self, rollups: &[Rollup]) -> Result<()> {
        if rollups.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for r in rollups {
            sqlx::query(
                "INSERT OR REPLACE INTO metric_rollups (node, metric, minute, avg, min, max, samples) \
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&r.node)
            .bind(&r.metric)
            .bind(r.minute.timestamp_millis())
            .bind(r.avg)
            .bind(r.min)
            .bind(r.max)
            .bind(r.samples)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn rollups(&self, node: &str, metric: &str, since: DateTime<Utc>) -> Result<Vec<Rollup>> {
        let rows = sqlx::query(
            "SELECT * FROM metric_rollups WHERE node = ? AND metric = ? AND minute >= ? ORDER BY minute",
        )
        .bind(node)
        .bind(metric)
        .bind(since.timestamp_millis())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Rollup {
                    node: r.try_get("node")?,
                    metric: r.try_get("metric")?,
                    minute: to_time(r.try_get("minute")?),
                    avg: r.try_get("avg")?,
                    min: r.try_get("min")?,
                    max: r.try_get("max")?,
                    samples: r.try_get("samples")?,
                })
            })
            .collect()
    }

    async fn prune_rollups(&self, before: DateTime<Utc>) -> Result<u64> {
        let done = sqlx::query("DELETE FROM metric_rollups WHERE minute < ?")
            .bind(before.timestamp_millis())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
