//! The HTTP API's request and response bodies, shared by the controller and the CLI.
//!
//! Field names here are a public contract (`nines -o json …` prints them): add fields
//! freely, rename none.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::job::{JobState, LogLevel};
use crate::topology::{ClusterState, ClusterType, DeployState, Desired, NodeState, Role};

/// Every error the API returns: a message, and the request field at fault when there is one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApiError {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// A cluster in lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ClusterSummary {
    pub id: i64,
    pub name: String,
    #[serde(rename = "type")]
    pub cluster_type: ClusterType,
    pub state: ClusterState,
    /// Why the cluster is in its state.
    pub state_reason: String,
    /// Number of nodes.
    pub nodes: usize,
    pub nodes_online: usize,
    pub created_at: DateTime<Utc>,
    /// For clusters nines deployed: deploying, failed or deployed; null for imported ones.
    pub deploy_state: Option<DeployState>,
    /// Whether nines repairs the cluster by itself (`cluster recovery enable|disable`).
    pub auto_recovery: bool,
}

/// One cluster with its nodes and recent events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ClusterDetail {
    #[serde(flatten)]
    pub summary: ClusterSummary,
    pub node_list: Vec<NodeStatus>,
    pub host_access: String,
    /// Maintenance windows in force.
    pub maintenance: Vec<MaintenanceView>,
    pub events: Vec<EventView>,
}

/// A node and what the monitor last saw of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NodeStatus {
    pub cluster: String,
    /// `host:port`.
    pub address: String,
    pub role: Role,
    pub state: NodeState,
    /// Why the node is degraded or offline; empty when online.
    pub state_reason: String,
    pub read_only: bool,
    /// Seconds behind the source, for replicas; null otherwise (and when unknown).
    pub lag_seconds: Option<u64>,
    /// Transactions the replica still lacks compared with its source, by GTID; null when not a replica.
    pub lag_transactions: Option<u64>,
    /// Kind of the last probe error: refused, timeout, auth or other.
    pub error_kind: Option<String>,
    pub version: Option<String>,
    pub server_id: Option<u32>,
    /// The source this replica replicates from, `host:port`.
    pub source: Option<String>,
    pub io_thread: Option<String>,
    pub sql_thread: Option<bool>,
    pub gtid_executed: Option<String>,
    pub wsrep_state: Option<String>,
    pub wsrep_cluster_status: Option<String>,
    pub wsrep_cluster_size: Option<u32>,
    /// When the node last answered a probe.
    pub last_seen: Option<DateTime<Utc>>,
    /// Rates per second over the last probe interval (queries, connections, rows…).
    pub rates: std::collections::BTreeMap<String, f64>,
    /// The node's host, where the cluster has host access.
    pub host: Option<HostStatus>,
    /// What the operator wants: `running` or `stopped` (set by node and cluster stop/start).
    pub desired: Desired,
    /// Why the node is in maintenance (its own window or its cluster's); null when not.
    pub maintenance: Option<String>,
    /// Why nines keeps the node read-only and out of replication (a failed-over primary
    /// before its rejoin check, errant transactions); null when it is not fenced.
    #[serde(default)]
    pub fenced: Option<String>,
}

/// Host metrics of a node's host, as last read over SSH or locally.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HostStatus {
    pub at: DateTime<Utc>,
    pub cpu_count: u32,
    /// Busy CPU fraction (0-1) since the previous host sample; null on the first.
    pub cpu_busy: Option<f64>,
    pub cpu_iowait: Option<f64>,
    pub mem_total_bytes: u64,
    pub mem_available_bytes: u64,
    pub load1: f64,
    /// Free and total bytes of the file system holding the datadir.
    pub disk_free_bytes: Option<u64>,
    pub disk_total_bytes: Option<u64>,
}

/// A job as lists and `job show` present it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobView {
    pub id: i64,
    pub kind: String,
    pub cluster: String,
    pub state: JobState,
    pub requested_by: String,
    pub phase: String,
    pub percent: u8,
    pub error: Option<String>,
    /// A failed job: `refused` (it looked and would not act; the same job fails the same
    /// way until the facts change) or `failed` (a step went wrong; trying again may work).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<crate::job::FailureKind>,
    /// A failed job: whether running it again, unchanged, may succeed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retryable: Option<bool>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The job's spec, secrets excluded.
    #[schema(value_type = Object)]
    pub spec: serde_json::Value,
}

/// One line of a job's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobLogLine {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub level: LogLevel,
    pub message: String,
}

/// A state change or decision, with its reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventView {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub cluster: String,
    pub node: Option<String>,
    pub kind: String,
    pub message: String,
}

/// SSH settings of an import.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SshAccessRequest {
    pub user: String,
    #[serde(default)]
    pub key_path: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
}

/// Body of `POST /api/v1/clusters/import`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    pub name: String,
    /// One node of the cluster, `host:port`.
    pub seed: String,
    pub db_user: String,
    pub db_password: String,
    #[serde(default)]
    pub ssh: Option<SshAccessRequest>,
    /// The nodes run on the controller's machine: use local execution for host access.
    #[serde(default)]
    pub local: bool,
}

/// Answer to a request that started a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobCreated {
    pub job_id: i64,
}

/// One metric series of a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MetricSeries {
    pub node: String,
    pub metric: String,
    /// `raw` (one point per probe) or `1m` (per-minute rollups: avg, with min and max).
    pub resolution: String,
    pub points: Vec<MetricPoint>,
}

/// One point of a series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MetricPoint {
    pub at: DateTime<Utc>,
    pub value: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

/// Body of `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: String,
    pub version: String,
}

/// Body of `POST /api/v1/clusters`: deploy a new cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateClusterRequest {
    pub name: String,
    /// galera, replication or standalone.
    #[serde(rename = "type")]
    pub cluster_type: String,
    /// `host[:port]` of every node; for replication the first is the primary.
    pub nodes: Vec<String>,
    pub db_admin_user: String,
    pub db_admin_password: String,
    /// Data directory template with {host} and {port}, e.g. /srv/db/{host}_{port}.
    #[serde(default)]
    pub datadir: Option<String>,
    #[serde(default)]
    pub ssh: Option<SshAccessRequest>,
    #[serde(default)]
    pub local: bool,
    /// Semi-synchronous replication (replication clusters): on when not given, so that
    /// a failover never loses an acknowledged commit; false for asynchronous replication.
    #[serde(default)]
    pub semi_sync: Option<bool>,
    /// A configuration template replacing the default (minijinja syntax).
    #[serde(default)]
    pub config_template: Option<String>,
    /// Overrides the sized buffer pool, e.g. `256M`, `2G`.
    #[serde(default)]
    pub innodb_buffer_pool_size: Option<String>,
}

/// Body of `POST /api/v1/clusters/{name}/nodes`: add a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddNodeRequest {
    /// `host[:port]` of the new node.
    pub node: String,
    /// The node to copy from: a Galera donor, or the source of a replica's backup.
    /// Default: nines chooses (Galera picks its donor; a running replica, else the primary).
    #[serde(default)]
    pub source: Option<String>,
    /// Replication clusters: provision the new replica from this stored backup of the
    /// cluster instead of copying a live node.
    #[serde(default)]
    pub from_backup: Option<i64>,
}

/// Parses sizes like `512M`, `2G`, `1048576`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.chars().last() {
        Some('K' | 'k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('M' | 'm') => (&t[..t.len() - 1], 1 << 20),
        Some('G' | 'g') => (&t[..t.len() - 1], 1 << 30),
        Some('T' | 't') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("`{s}` is not a size (e.g. 512M, 2G)"))
}

/// Body of `PUT /api/v1/clusters/{name}/maintenance`: start a maintenance window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceRequest {
    /// `host:port` of one node; absent for the whole cluster.
    #[serde(default)]
    pub node: Option<String>,
    /// Why: shown in lists and events.
    pub reason: String,
    /// How long, e.g. `30m`, `2h`; absent until switched off.
    #[serde(default)]
    pub duration: Option<String>,
}

/// A maintenance window in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MaintenanceView {
    pub cluster: String,
    /// Null for the whole cluster.
    pub node: Option<String>,
    pub reason: String,
    pub set_by: String,
    pub since: DateTime<Utc>,
    pub until: Option<DateTime<Utc>>,
}

/// Parses durations like `500ms`, `1s`, `15m`, `2h`, `7d`.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (e.g. 500ms, 1s, 15m, 7d)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        other => {
            return Err(format!(
                "unknown duration unit `{other}` (use ms, s, m, h or d)"
            ));
        }
    };
    if secs.is_nan() || secs <= 0.0 {
        return Err(format!("duration `{s}` must be positive"));
    }
    std::time::Duration::try_from_secs_f64(secs).map_err(|_| format!("duration `{s}` is too long"))
}

/// Body of `PUT /api/v1/clusters/{name}/recovery`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoveryRequest {
    pub enabled: bool,
}

/// Body of `POST /api/v1/clusters/{name}/failover`: promote a replica of a replication
/// cluster whose primary is gone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailoverRequest {
    /// `host[:port]` of the replica to promote; absent: the most advanced eligible one.
    #[serde(default)]
    pub to: Option<String>,
    /// Fail over even when the primary answers (it is fenced first) or when the chosen
    /// replica lacks transactions (they are named in the job's log).
    #[serde(default)]
    pub force: bool,
}

/// Body of `POST /api/v1/clusters/{name}/recover`: bring back a Galera cluster's Primary
/// component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoverRequest {
    /// `host[:port]` of the node to bootstrap from; absent: the one nines chooses (the
    /// most advanced). Without `force` it must be the one nines would choose.
    #[serde(default)]
    pub bootstrap_from: Option<String>,
    /// Bootstrap `bootstrap_from` even though nines would not: nodes that do not answer
    /// may be alive elsewhere, or another node is more advanced (the job's log names what
    /// that costs). Never beside a Primary component that serves.
    #[serde(default)]
    pub force: bool,
}

/// Body of `POST /api/v1/clusters/{name}/switchover`: hand the primary role of a
/// replication cluster to a replica, with zero loss.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchoverRequest {
    /// `host[:port]` of the replica to promote; absent: the most advanced eligible one.
    #[serde(default)]
    pub to: Option<String>,
}

/// A failover (the primary was lost) or switchover (the primary was handed over) of a
/// replication cluster, as `GET /api/v1/clusters/{name}/failovers` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FailoverView {
    /// When the new primary was promoted.
    pub at: DateTime<Utc>,
    /// `failover` or `switchover`.
    pub kind: crate::ha::PromotionKind,
    /// Decided by nines (true) or asked for by an operator (false).
    pub automatic: bool,
    /// `host:port` of the primary before.
    pub old_primary: String,
    /// `host:port` of the primary after.
    pub new_primary: String,
    /// GTID set of the new primary when it was promoted; may be empty.
    pub promoted_at: String,
    /// The job that carried it out, if any.
    pub job_id: Option<i64>,
    /// Whether an operator has acknowledged it. An unacknowledged automatic failover
    /// blocks further automatic failovers of the cluster for a while.
    pub acknowledged: bool,
}

/// Answer of `POST /api/v1/clusters/{name}/failovers/acknowledge`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FailoversAcknowledged {
    /// How many failovers and switchovers were acknowledged now (those acknowledged
    /// before are not counted).
    pub acknowledged: u64,
}

/// [`HaPolicyView::source`] of a cluster whose policy was set for it.
pub const HA_POLICY_FROM_CLUSTER: &str = "cluster";
/// [`HaPolicyView::source`] of a cluster that uses the controller's default policy.
pub const HA_POLICY_FROM_DEFAULT: &str = "controller default";

/// Answer of `GET`, `PUT` and `DELETE /api/v1/clusters/{name}/ha-policy`: the policy the
/// cluster's HA decisions read.
///
/// The body of `PUT` is a JSON object with any subset of the policy's fields (nested
/// ones too, e.g. `{"max_candidate_lag": {"max_seconds_behind": 30}}`), merged onto the
/// effective policy; `automatic_recovery` is the recovery switch (`PUT …/recovery`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HaPolicyView {
    /// The effective policy: every field of the HA policy, durations in milliseconds.
    /// `automatic_recovery` is the cluster's recovery switch, and
    /// `require_semi_sync_ack` is on for clusters deployed with semi-sync whatever was
    /// set.
    #[schema(value_type = Object)]
    pub policy: crate::ha::HaPolicy,
    /// `cluster` when a policy was set for the cluster, `controller default` otherwise.
    pub source: String,
}

/// Body of `POST /api/v1/backup-repos`: a directory (`path`) or an S3-compatible bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RepoAddRequest {
    pub name: String,
    /// A directory on the controller.
    #[serde(default)]
    pub path: Option<String>,
    /// `http(s)://host:port` of an S3-compatible service.
    #[serde(default)]
    pub s3_endpoint: Option<String>,
    #[serde(default)]
    pub s3_bucket: Option<String>,
    #[serde(default)]
    pub s3_region: Option<String>,
    #[serde(default)]
    pub s3_access_key: Option<String>,
    #[serde(default)]
    pub s3_secret_key: Option<String>,
}

/// A backup repository as lists show it (never its keys).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RepoView {
    pub name: String,
    /// `directory` or `s3`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_bucket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_region: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Body of `POST /api/v1/clusters/{name}/backups`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct BackupCreateRequest {
    /// `full` (default), `incremental` or `logical`.
    #[serde(default)]
    pub method: Option<String>,
    /// `host[:port]` of the node to read; default: chosen by policy.
    #[serde(default)]
    pub node: Option<String>,
    /// Repository name; default `local`.
    #[serde(default)]
    pub repo: Option<String>,
}

/// A backup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BackupView {
    pub id: i64,
    pub cluster: String,
    pub method: crate::backup::BackupMethod,
    pub state: crate::backup::BackupState,
    pub node: String,
    pub repo: String,
    /// Bytes of the backup stream (before compression).
    pub size_bytes: i64,
    /// Bytes stored in the repository.
    pub stored_bytes: i64,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub gtid_position: Option<String>,
    pub parent_id: Option<i64>,
    /// None until verified; then whether the verification passed.
    pub verified: Option<bool>,
    pub verify_note: Option<String>,
    pub job_id: Option<i64>,
    pub error: Option<String>,
}

/// Body of `POST /api/v1/backups/{id}/restore`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreRequest {
    /// The cluster to restore onto.
    pub cluster: String,
    /// Even over a cluster whose servers serve.
    #[serde(default)]
    pub force: bool,
    /// Roll forward with the archived binlogs to this time (RFC 3339): what was
    /// committed before it.
    #[serde(default)]
    pub until: Option<String>,
    /// Roll forward to this GTID position (`domain-server-seq`, comma-separated per
    /// domain), included.
    #[serde(default)]
    pub until_gtid: Option<String>,
}

/// A cluster's restorable window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BackupWindow {
    pub earliest: DateTime<Utc>,
    pub latest: DateTime<Utc>,
}

/// Body of `POST /api/v1/clusters/{name}/backup-schedules`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleCreateRequest {
    /// Five fields (minute hour day month weekday), or six with seconds first.
    pub cron: String,
    /// IANA time zone the expression is read in; default UTC.
    #[serde(default)]
    pub tz: Option<String>,
    /// full (default), incremental or logical.
    #[serde(default)]
    pub method: Option<String>,
    /// Repository; default `local`.
    #[serde(default)]
    pub repo: Option<String>,
    /// Restorable window kept after each backup, e.g. `14d`; none: keep everything.
    #[serde(default)]
    pub retention: Option<String>,
}

/// A backup schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScheduleView {
    pub id: i64,
    pub cluster: String,
    pub cron: String,
    pub tz: String,
    pub method: crate::backup::BackupMethod,
    pub repo: String,
    /// The restorable window kept, in seconds.
    pub retention_secs: Option<i64>,
    pub next_run_at: DateTime<Utc>,
    pub last_run_at: Option<DateTime<Utc>>,
}

/// An alarm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AlarmView {
    pub id: i64,
    pub cluster: String,
    /// The node's host:port; null for the whole cluster.
    pub node: Option<String>,
    /// `node_down`, `replication_broken`, … or `advisor.<rule>` (docs/monitoring.md).
    pub kind: String,
    pub severity: crate::alarm::Severity,
    pub title: String,
    /// The facts and what to do.
    pub message: String,
    pub raised_at: DateTime<Utc>,
    /// When nines last changed its facts.
    pub updated_at: DateTime<Utc>,
    /// Null while active.
    pub cleared_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub ack_note: Option<String>,
    /// A silence covers it: no notifications.
    pub silenced: bool,
}

/// Body of `POST /api/v1/alarms/{id}/ack`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AckRequest {
    #[serde(default)]
    pub note: Option<String>,
}

/// Body of `POST /api/v1/alarm-silences`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SilenceRequest {
    /// The alarm kind silenced.
    pub kind: String,
    /// One cluster; every cluster when absent.
    #[serde(default)]
    pub cluster: Option<String>,
    /// For how long, e.g. `2h` (at most 30 days).
    pub duration: String,
    #[serde(default)]
    pub note: Option<String>,
}

/// A silence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SilenceView {
    pub id: i64,
    pub kind: String,
    pub cluster: Option<String>,
    pub until: DateTime<Utc>,
    pub created_by: String,
    pub note: String,
    pub created_at: DateTime<Utc>,
}

/// Body of `POST /api/v1/notify-channels`: exactly one of `webhook`, `slack`, `email`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelAddRequest {
    pub name: String,
    /// A URL that receives a JSON object per message.
    #[serde(default)]
    pub webhook: Option<String>,
    /// A Slack-compatible incoming-webhook URL.
    #[serde(default)]
    pub slack: Option<String>,
    /// Recipients, comma-separated.
    #[serde(default)]
    pub email: Option<String>,
    /// The SMTP server, HOST:PORT (with `email`).
    #[serde(default)]
    pub smtp: Option<String>,
    /// The sender address (with `email`; default `nines@<controller host>`).
    #[serde(default)]
    pub from: Option<String>,
    /// A key to sign webhook bodies with (HMAC-SHA256, header `X-Nines-Signature`).
    #[serde(default)]
    pub hmac_key: Option<String>,
    /// `critical`, `warning` (default) or `info`.
    #[serde(default)]
    pub min_severity: Option<crate::alarm::Severity>,
    /// Only this cluster's alarms.
    #[serde(default)]
    pub cluster: Option<String>,
}

/// A notification channel as lists show it (never its URL's path or keys).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChannelView {
    pub name: String,
    pub kind: crate::alarm::notify::ChannelKind,
    /// The URL's scheme and host, or the recipients.
    pub target: String,
    pub smtp: Option<String>,
    pub from: Option<String>,
    pub signed: bool,
    pub min_severity: crate::alarm::Severity,
    pub cluster: Option<String>,
    pub created_at: DateTime<Utc>,
    /// The latest delivery: `pending`, `sent` or `failed`, and its error.
    pub last_state: Option<crate::alarm::notify::DeliveryState>,
    pub last_error: Option<String>,
    pub last_at: Option<DateTime<Utc>>,
    /// Deliveries that gave up after their retries.
    pub failed: u64,
}

/// One delivery of a channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryView {
    pub id: i64,
    pub alarm_id: Option<i64>,
    pub event: crate::alarm::notify::Event,
    pub title: String,
    /// `pending`, `sent` or `failed` (given up).
    pub state: crate::alarm::notify::DeliveryState,
    pub attempts: u32,
    pub queued_at: DateTime<Utc>,
    pub next_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// The answer of `POST /api/v1/notify-channels/{name}/test`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChannelTestResult {
    pub sent: bool,
    pub error: Option<String>,
}

/// One advisor rule's result on a cluster (or one of its nodes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AdviceView {
    /// The rule's id (`advisor.<rule>` is its alarm kind); user rules are `user_<name>`.
    pub rule: String,
    pub title: String,
    /// The node (host:port); null for the cluster.
    pub node: Option<String>,
    pub status: crate::advisor::Status,
    pub message: String,
    pub advice: String,
    pub checked_at: DateTime<Utc>,
}

/// A change of a rule's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AdviceChangeView {
    pub rule: String,
    pub status: crate::advisor::Status,
    pub message: String,
    pub at: DateTime<Utc>,
}

/// Body of `POST /api/v1/clusters/{name}/advisor-rules`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserRuleRequest {
    pub name: String,
    /// One query returning one number.
    pub sql: String,
    #[serde(default)]
    pub warning: Option<f64>,
    #[serde(default)]
    pub critical: Option<f64>,
    /// The value goes wrong downward (default: upward).
    #[serde(default)]
    pub below: bool,
    /// What a failing result says; `{value}` is the number.
    pub message: String,
    /// How often, e.g. `60s` (default 60s, 10s-1d).
    #[serde(default)]
    pub every: Option<String>,
    /// `all` (default), `primary`, `replicas`, or host:port,…
    #[serde(default)]
    pub nodes: Option<String>,
}

/// One step of a chart series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SeriesPoint {
    /// The step's start.
    pub at: DateTime<Utc>,
    /// The average over the step; null when nothing was recorded in it.
    pub value: Option<f64>,
}

/// One metric of one node, or of the cluster (`node` null: the nodes combined, summed for
/// rates and counts, the worst for lag, flow control and CPU, the least for free disk and
/// memory).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChartSeries {
    pub name: String,
    pub unit: String,
    pub node: Option<String>,
    pub points: Vec<SeriesPoint>,
}

/// The answer of `GET /api/v1/clusters/{name}/metrics`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ClusterMetrics {
    pub cluster: String,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub step_seconds: f64,
    pub series: Vec<ChartSeries>,
}

/// Body of `POST /api/v1/clusters/{name}/load-balancers`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LbAddRequest {
    /// `haproxy` (the default and, for now, the only type).
    #[serde(default, rename = "type")]
    pub lb_type: Option<String>,
    /// The address HAProxy listens on (its host).
    pub host: String,
    /// Default 3306.
    #[serde(default)]
    pub rw_port: Option<u16>,
    /// Default 3307.
    #[serde(default)]
    pub ro_port: Option<u16>,
    /// Prometheus and stats (default 9101).
    #[serde(default)]
    pub stats_port: Option<u16>,
    #[serde(default)]
    pub ssh: Option<SshAccessRequest>,
    #[serde(default)]
    pub local: bool,
    /// A virtual IP shared with the cluster's other load balancers that name it, kept
    /// by Keepalived (VRRP); needs `keepalived`.
    #[serde(default)]
    pub vip: Option<String>,
    /// Run Keepalived for `vip`.
    #[serde(default)]
    pub keepalived: bool,
    /// A replica further behind leaves the read-only pool (default 10).
    #[serde(default)]
    pub max_replica_lag_seconds: Option<u64>,
    /// The primary serves reads when no replica qualifies (default true).
    #[serde(default)]
    pub ro_fallback_to_primary: Option<bool>,
}

/// Body of `PUT /api/v1/clusters/{name}/load-balancers/{host}`: what to change (a job
/// applies it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LbReconfigureRequest {
    #[serde(default)]
    pub max_replica_lag_seconds: Option<u64>,
    #[serde(default)]
    pub ro_fallback_to_primary: Option<bool>,
}

/// One HAProxy backend server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LbBackendView {
    pub address: String,
    pub pool: crate::lb::Pool,
    pub state: crate::lb::BackendState,
    pub reason: String,
    /// Galera read-write pool: a backup, used by HAProxy only when the writer is down.
    pub backup: bool,
    /// HAProxy's own word for it at the last look (`UP`, `DOWN`, `MAINT`, `DRAIN`, …).
    pub haproxy_status: Option<String>,
    /// Sessions through this server now, at the last look.
    pub sessions: Option<u64>,
}

/// A load balancer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LbView {
    pub id: i64,
    #[serde(rename = "type")]
    pub lb_type: String,
    pub host: String,
    pub rw_port: u16,
    pub ro_port: u16,
    pub stats_port: u16,
    /// `deploying`, `running` or `failed`.
    pub state: crate::lb::LbState,
    pub error: Option<String>,
    /// Galera: the node the read-write listener sends to.
    pub writer: Option<String>,
    pub backends: Vec<LbBackendView>,
    /// `running`, `stopped` or `unknown` (the host did not answer), at the last look.
    pub haproxy: String,
    pub vip: Option<String>,
    /// Whether this load balancer holds the VIP now.
    pub vip_held: Option<bool>,
    pub keepalived: Option<String>,
    pub policy: crate::lb::LbPolicy,
}

/// A user (never the password's hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    pub name: String,
    pub role: crate::auth::UserRole,
    pub created_at: DateTime<Utc>,
}

/// Body of `POST /api/v1/users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserAddRequest {
    pub name: String,
    pub role: crate::auth::UserRole,
    /// At least 12 characters.
    pub password: String,
}

/// Body of `PUT /api/v1/users/{name}/password`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordRequest {
    pub password: String,
}

/// Body of `POST /api/v1/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenCreateRequest {
    /// The user the token acts for (with that user's role).
    pub user: String,
    /// A label, unique per user.
    pub name: String,
}

/// An API token (never the token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenView {
    pub id: i64,
    pub name: String,
    /// None: the bootstrap admin token (`<data-dir>/admin.token`).
    pub user: Option<String>,
    pub role: crate::auth::UserRole,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A new token: the only time it is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenCreated {
    pub token: String,
    #[serde(flatten)]
    pub info: TokenView,
}

/// Query of `GET /api/v1/tokens`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::IntoParams)]
pub struct TokenQuery {
    /// Only this user's tokens.
    pub user: Option<String>,
}

/// Query of `GET /api/v1/audit`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::IntoParams)]
pub struct AuditQuery {
    /// How far back (default 30d), e.g. `1h`, `7d`.
    pub since: Option<String>,
    /// At most this many, newest first (default 200, at most 10000).
    pub limit: Option<i64>,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditView {
    pub at: DateTime<Utc>,
    /// The user (or token label) who asked; `anonymous` without credentials; for a
    /// login, the name tried.
    pub who: String,
    /// Method and route, e.g. `POST /api/v1/clusters/{name}/failover`.
    pub action: String,
    /// The path asked for.
    pub target: String,
    /// The client's address.
    pub from: String,
    /// The answer's status, e.g. `202 Accepted`, `403 Forbidden`.
    pub outcome: String,
    /// `api` or `ui`.
    pub via: String,
}
