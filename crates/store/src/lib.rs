//! The controller's durable state behind one boundary, [`Store`].
//!
//! Callers see the trait and plain records; the default implementation is an embedded
//! SQLite database in WAL mode ([`sqlite::SqliteStore`]). A PostgreSQL implementation for
//! a highly available controller can satisfy the same trait later without touching callers.
//! Database passwords are sealed with a key kept in the data directory ([`secret`]).

pub mod advisors;
pub mod alarms;
pub mod backups;
pub mod balancers;
pub mod queries;
pub mod secret;
pub mod sqlite;
pub mod users;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nines_model::deploy::{ClusterSettings, NodeSettings};
use nines_model::event::EventKind;
use nines_model::ha::fence::Fence;
use nines_model::ha::{HaPolicy, PromotionKind};
use nines_model::job::{FailureKind, HostAccessSpec, JobSpec, JobState, LogLevel, Progress};
use nines_model::{ClusterState, ClusterType, DeployState, Desired, Endpoint, NodeState, Role};

pub use advisors::{AdviceChange, AdviceRecord, AdvisorStore};
pub use alarms::{
    AlarmRecord, AlarmStore, Attempt, ChannelRecord, DeliveryRecord, DeliveryState, NewChannel,
    SilenceRecord,
};
pub use backups::{
    ArchiveState, BackupOutcome, BackupRecord, BackupStore, NewBackup, NewSchedule, RepoLocation,
    RepoRecord, ScheduleRecord, SegmentRecord,
};
pub use balancers::{BalancerStore, LbRecord, LbState, NewLb, Vip};
pub use queries::QueryStore;
pub use secret::{Secret, SecretBox};
pub use sqlite::SqliteStore;
pub use users::{AuditRecord, NewAudit, SessionRecord, TokenInfo, UserRecord, UserStore};

/// What can go wrong with the store; variants a caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken: the message names what already exists.
    #[error("{0}")]
    Conflict(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("store database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("store migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("secret store: {0}")]
    Crypto(String),
    #[error("store I/O error on {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// A stored value could not be read back (bad JSON, unknown enum value).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A value the store refuses to write (a caller's mistake), with what is wrong with it.
    #[error("invalid value for the store: {0}")]
    Invalid(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A registered cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterRecord {
    pub id: i64,
    pub name: String,
    pub cluster_type: ClusterType,
    pub host_access: HostAccessSpec,
    pub db_user: String,
    pub db_password_secret: i64,
    /// Last state the monitor derived (None until it has).
    pub state: Option<ClusterState>,
    pub state_reason: String,
    pub created_at: DateTime<Utc>,
    /// How nines deployed it; None for imported clusters.
    pub settings: Option<ClusterSettings>,
    /// deploying, failed or deployed; None for imported clusters.
    pub deploy_state: Option<DeployState>,
    /// Whether nines repairs this cluster by itself (on by default).
    pub auto_recovery: bool,
    /// The designated primary of a replication cluster, kept by nines (deploy, import,
    /// failover, switchover); None for other types or when unknown.
    pub primary: Option<Endpoint>,
    /// The HA policy an operator set for this cluster, whole, as last set; None: the
    /// controller's default. Its `automatic_recovery` is not used ([`Self::auto_recovery`]
    /// is the switch).
    pub ha_policy: Option<HaPolicy>,
}

/// A node of a registered cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRecord {
    pub id: i64,
    pub cluster_id: i64,
    pub endpoint: Endpoint,
    /// Last role seen (the role found at import until the monitor sees another).
    pub role: Role,
    pub state: Option<NodeState>,
    pub created_at: DateTime<Utc>,
    /// Layout and service of a node nines deployed; None for imported nodes.
    pub settings: Option<NodeSettings>,
    /// What the operator wants: running (kept up) or stopped.
    pub desired: Desired,
    /// Why the node is kept read-only and out of the cluster (a former primary waiting
    /// for its rejoin check, errant GTIDs…); None when it is not fenced.
    pub fenced: Option<Fence>,
}

/// A node to register.
#[derive(Debug, Clone)]
pub struct NewNode {
    pub endpoint: Endpoint,
    pub role: Role,
    pub settings: Option<NodeSettings>,
}

/// An account nines keeps for a cluster; the password is a sealed secret.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountRecord {
    pub purpose: String,
    pub user: String,
    pub secret_id: i64,
}

/// A cluster to register, with its nodes, in one transaction.
#[derive(Debug, Clone)]
pub struct NewCluster {
    pub name: String,
    pub cluster_type: ClusterType,
    pub host_access: HostAccessSpec,
    pub db_user: String,
    pub db_password_secret: i64,
    pub nodes: Vec<NewNode>,
    pub settings: Option<ClusterSettings>,
    pub deploy_state: Option<DeployState>,
    /// The designated primary of a replication cluster; None for other types.
    pub primary: Option<Endpoint>,
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    pub id: i64,
    pub kind: String,
    pub cluster_name: String,
    pub spec: JobSpec,
    pub state: JobState,
    pub requested_by: String,
    pub progress: Progress,
    pub error: Option<String>,
    /// How a failed job failed (refused, or a step failed).
    pub failure: Option<FailureKind>,
    pub cancel_requested: bool,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A stored job log line.
#[derive(Debug, Clone, PartialEq)]
pub struct JobLogRecord {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub level: LogLevel,
    pub message: String,
}

/// A maintenance window of a cluster (node None) or of one node.
#[derive(Debug, Clone, PartialEq)]
pub struct MaintenanceRecord {
    pub node: Option<String>,
    pub reason: String,
    pub set_by: String,
    pub since: DateTime<Utc>,
    /// None: until switched off.
    pub until: Option<DateTime<Utc>>,
}

/// A failover (the primary was lost) or switchover (the primary was handed over) as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct FailoverRecord {
    pub id: i64,
    pub cluster_id: i64,
    pub at: DateTime<Utc>,
    pub kind: PromotionKind,
    /// Decided by nines (true) or asked by an operator (false).
    pub automatic: bool,
    pub old_primary: Endpoint,
    pub new_primary: Endpoint,
    /// GTID set of the new primary when it was promoted; may be empty.
    pub promoted_at: String,
    /// The job that carried it out, if any.
    pub job_id: Option<i64>,
    /// Whether an operator has acknowledged it.
    pub acknowledged: bool,
}

/// A failover or switchover to record (unacknowledged).
#[derive(Debug, Clone)]
pub struct NewFailover {
    pub cluster_id: i64,
    pub at: DateTime<Utc>,
    pub kind: PromotionKind,
    pub automatic: bool,
    pub old_primary: Endpoint,
    pub new_primary: Endpoint,
    /// GTID set of the new primary when it was promoted; may be empty.
    pub promoted_at: String,
    pub job_id: Option<i64>,
}

/// A promotion's outcome, recorded in one transaction with its failovers row: the new
/// designated primary (the failover's `new_primary`), the nodes' roles, their fences, and
/// the end of the cluster's open promotion intents.
#[derive(Debug, Clone)]
pub struct PromotionRecord {
    pub failover: NewFailover,
    /// Node id and its role after the promotion.
    pub roles: Vec<(i64, Role)>,
    /// Node id and its fence (None: not fenced); nodes not listed keep theirs.
    pub fences: Vec<(i64, Option<Fence>)>,
}

/// What a failover or switchover is about to do, written before its first change.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPromotionIntent {
    pub cluster_id: i64,
    pub job_id: Option<i64>,
    pub kind: PromotionKind,
    pub old_primary: Endpoint,
    pub candidate: Endpoint,
    /// The candidate's GTID set when the promotion was planned; may be empty.
    pub planned_position: String,
    /// The old primary's last good sample the plan relied on (its last GTID position
    /// bounds what the promotion may lose): a controller that completes the promotion
    /// after a restart has not seen the primary alive itself.
    pub primary_sample: Option<nines_model::ha::TimedSample>,
}

/// A promotion intent not yet replaced by its outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct PromotionIntent {
    pub id: i64,
    pub cluster: String,
    pub intent: NewPromotionIntent,
    pub created_at: DateTime<Utc>,
}

/// Filter of job lists.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub cluster: Option<String>,
    pub state: Option<JobState>,
    pub limit: Option<i64>,
}

/// One attempt of an automatic repair, for its retry budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaAttempt {
    pub cluster_id: i64,
    /// `node_restart`, `failover`, `rejoin` or `galera_recovery`.
    pub repair: String,
    /// The node's host:port, or empty for the whole cluster.
    pub subject: String,
    pub at: DateTime<Utc>,
}

/// An alarm the reconciler raised and has not cleared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaisedAlarm {
    pub cluster_id: i64,
    /// The cluster's name, for the event (not stored with the alarm).
    pub cluster: String,
    /// The condition: `node_restart`, `failover`, `galera_recovery`, `semi_sync`.
    pub alarm: String,
    /// The node's host:port, or empty for the whole cluster.
    pub subject: String,
    pub raised_at: DateTime<Utc>,
    pub message: String,
}

/// A recorded event: a state change or a decision, with its reason.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub cluster: String,
    pub node: Option<String>,
    /// The stored word: one of [`EventKind`]'s when this version wrote it, kept as text
    /// so that a history written by another version reads back whole.
    pub kind: String,
    pub message: String,
}

/// An API token (the token itself is never stored, only its hash).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRecord {
    pub id: i64,
    pub name: String,
    pub role: String,
}

/// One per-minute rollup of one metric of one node.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollup {
    pub node: String,
    pub metric: String,
    pub minute: DateTime<Utc>,
    pub avg: f64,
    pub min: f64,
    pub max: f64,
    pub samples: i64,
}

/// The controller's durable state. Every method is one atomic change or one consistent read.
#[async_trait]
pub trait Store:
    BackupStore + AlarmStore + AdvisorStore + QueryStore + BalancerStore + UserStore + Send + Sync
{
    // Secrets.
    /// Seals and stores a secret; returns its id.
    async fn put_secret(&self, plaintext: &str) -> Result<i64>;
    async fn get_secret(&self, id: i64) -> Result<Secret>;
    async fn delete_secret(&self, id: i64) -> Result<()>;

    // Inventory.
    /// Registers a cluster and its nodes atomically; Conflict when the name or a node address is taken.
    async fn create_cluster(&self, new: NewCluster) -> Result<ClusterRecord>;
    async fn list_clusters(&self) -> Result<Vec<ClusterRecord>>;
    async fn get_cluster(&self, name: &str) -> Result<Option<ClusterRecord>>;
    /// Nodes of one cluster, or of all clusters.
    async fn list_nodes(&self, cluster_id: Option<i64>) -> Result<Vec<NodeRecord>>;
    /// The cluster that manages a node address, if any.
    async fn cluster_of_node(&self, endpoint: &Endpoint) -> Result<Option<String>>;
    async fn set_cluster_state(&self, id: i64, state: ClusterState, reason: &str) -> Result<()>;
    async fn set_node_state(&self, id: i64, role: Role, state: NodeState) -> Result<()>;
    /// Changes a node's role alone; NotFound when there is no such node.
    async fn set_node_role(&self, node_id: i64, role: Role) -> Result<()>;
    /// Designates (or with None forgets) the primary of a cluster; NotFound when there is
    /// no such cluster.
    async fn set_cluster_primary(&self, cluster_id: i64, primary: Option<&Endpoint>) -> Result<()>;
    /// Fences a node with the reason, or with None lifts the fence; NotFound when there is
    /// no such node.
    async fn set_node_fenced(&self, node_id: i64, fence: Option<&Fence>) -> Result<()>;
    async fn set_deploy_state(&self, cluster_id: i64, state: DeployState) -> Result<()>;
    async fn set_auto_recovery(&self, cluster_id: i64, enabled: bool) -> Result<()>;
    /// Stores the whole HA policy of a cluster, or with None forgets it (back to the
    /// controller's default); NotFound when there is no such cluster.
    async fn set_ha_policy(&self, cluster_id: i64, policy: Option<&HaPolicy>) -> Result<()>;
    /// Adds a node to a cluster; Conflict when the address is managed already.
    async fn add_node(&self, cluster_id: i64, node: NewNode) -> Result<NodeRecord>;
    async fn remove_node(&self, node_id: i64) -> Result<()>;
    async fn set_node_desired(&self, node_id: i64, desired: Desired) -> Result<()>;
    /// Deletes a cluster with its nodes, accounts and their secrets.
    async fn delete_cluster(&self, cluster_id: i64) -> Result<()>;
    /// Records (or replaces) an account of a cluster.
    async fn put_account(
        &self,
        cluster_id: i64,
        purpose: &str,
        user: &str,
        secret_id: i64,
    ) -> Result<()>;
    async fn accounts(&self, cluster_id: i64) -> Result<Vec<AccountRecord>>;

    // Maintenance.
    /// Starts (or replaces) the maintenance window of a cluster or one of its nodes.
    async fn set_maintenance(
        &self,
        cluster_id: i64,
        node: Option<&str>,
        reason: &str,
        set_by: &str,
        until: Option<DateTime<Utc>>,
    ) -> Result<()>;
    /// Ends it; false when there was none.
    async fn clear_maintenance(&self, cluster_id: i64, node: Option<&str>) -> Result<bool>;
    /// Every cluster's windows in force at `now`, with their cluster's id.
    async fn all_maintenance(&self, now: DateTime<Utc>) -> Result<Vec<(i64, MaintenanceRecord)>>;
    /// Windows in force at `now` (expired ones are not returned).
    async fn maintenance(
        &self,
        cluster_id: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<MaintenanceRecord>>;

    // Failovers and switchovers.
    /// Records one; returns its id. NotFound when the cluster does not exist.
    async fn record_failover(&self, f: &NewFailover) -> Result<i64>;
    /// Those of a cluster at or after `since`, oldest first.
    async fn failovers(&self, cluster_id: i64, since: DateTime<Utc>)
    -> Result<Vec<FailoverRecord>>;
    /// Marks every unacknowledged one of a cluster acknowledged; returns how many.
    async fn acknowledge_failovers(&self, cluster_id: i64) -> Result<u64>;

    /// Writes a promotion's intent before its first change; returns its id.
    async fn begin_promotion(&self, intent: &NewPromotionIntent) -> Result<i64>;
    /// Intents not replaced by an outcome, oldest first.
    async fn open_promotions(&self) -> Result<Vec<PromotionIntent>>;
    /// Ends an intent whose promotion did not happen (refused, failed before promoting,
    /// or rolled back).
    async fn abandon_promotion(&self, id: i64) -> Result<()>;
    /// Records a promotion's outcome at once (see [`PromotionRecord`]); returns the
    /// failovers row's id. Nothing is written when any part fails.
    async fn record_promotion(&self, p: &PromotionRecord) -> Result<i64>;

    // Jobs.
    async fn create_job(&self, spec: &JobSpec, requested_by: &str) -> Result<JobRecord>;
    async fn get_job(&self, id: i64) -> Result<Option<JobRecord>>;
    async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<JobRecord>>;
    /// Queued and running jobs, oldest first: what the job runner decides on (which may
    /// start is `nines_model::lanes::startable`, the runner's alone).
    async fn active_jobs(&self) -> Result<Vec<JobRecord>>;
    /// Moves a queued job to running; false when it was not queued any more (cancelled,
    /// or started already).
    async fn start_job(&self, id: i64) -> Result<bool>;
    async fn set_job_progress(&self, id: i64, progress: &Progress) -> Result<()>;
    /// Moves a job to a final state (no-op when it is final already).
    async fn finish_job(
        &self,
        id: i64,
        state: JobState,
        error: Option<&str>,
        failure: Option<FailureKind>,
    ) -> Result<()>;
    async fn append_job_log(&self, id: i64, level: LogLevel, message: &str) -> Result<i64>;
    async fn job_logs(&self, id: i64, after_seq: i64) -> Result<Vec<JobLogRecord>>;
    /// Cancels a queued job at once, or flags a running one; returns the state after the call.
    async fn request_cancel(&self, id: i64) -> Result<JobState>;
    /// At start-up: closes jobs left running by a previous controller as failed; returns their ids.
    async fn fail_interrupted_jobs(&self, reason: &str) -> Result<Vec<i64>>;

    // What the reconciler remembers (retry budgets, raised alarms).
    /// Records an attempt of an automatic repair.
    async fn record_attempt(&self, attempt: &HaAttempt) -> Result<()>;
    /// Attempts made since `since`, oldest first, of every cluster.
    async fn attempts_since(&self, since: DateTime<Utc>) -> Result<Vec<HaAttempt>>;
    /// Forgets the attempts of one repair on one subject (its outage ended).
    async fn clear_attempts(&self, cluster_id: i64, repair: &str, subject: &str) -> Result<()>;
    /// Forgets attempts older than `before`; returns how many.
    async fn prune_attempts(&self, before: DateTime<Utc>) -> Result<u64>;
    /// Raises an alarm unless it is raised already, and writes its event (kind `alarm`,
    /// with `message`) in the same transaction; true when it was raised now.
    async fn raise_alarm(&self, alarm: &RaisedAlarm) -> Result<bool>;
    /// Clears a raised alarm; true when it was raised.
    async fn clear_alarm(&self, cluster_id: i64, alarm: &str, subject: &str) -> Result<bool>;
    /// Every raised alarm of every cluster.
    async fn raised_alarms(&self) -> Result<Vec<RaisedAlarm>>;

    // Events.
    async fn add_event(
        &self,
        cluster: &str,
        node: Option<&str>,
        kind: EventKind,
        message: &str,
    ) -> Result<i64>;
    async fn list_events(&self, cluster: Option<&str>, limit: i64) -> Result<Vec<EventRecord>>;

    // API tokens.
    async fn token_count(&self) -> Result<i64>;
    async fn create_token(&self, name: &str, token_hash: &str, role: &str) -> Result<i64>;
    async fn find_token(&self, token_hash: &str) -> Result<Option<TokenRecord>>;

    // Metrics history.
    async fn insert_rollups(&self, rollups: &[Rollup]) -> Result<()>;
    async fn rollups(&self, node: &str, metric: &str, since: DateTime<Utc>) -> Result<Vec<Rollup>>;
    /// Deletes rollups older than `before`; returns how many.
    async fn prune_rollups(&self, before: DateTime<Utc>) -> Result<u64>;
}
