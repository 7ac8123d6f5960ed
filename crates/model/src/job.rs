//! Jobs: every change to a cluster is a job with a spec, a state, a log and progress.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::endpoint::Endpoint;

/// Lifecycle of a job. Queued → Running → one of the three final states;
/// a queued job may also be cancelled before it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// True for succeeded, failed and cancelled: the job will not change again.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            other => return Err(format!("unknown job state `{other}`")),
        })
    }
}

/// How a failed job failed, stored with it: whether trying the same again may help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The job looked and would not act: what it found forbids the change (no candidate
    /// may be promoted without losing writes, a node only times out, the cluster is not
    /// in the state the job needs). The same job fails the same way until the facts change.
    Refused,
    /// A step went wrong on the way (a host, a server, a timeout): trying again may work.
    Failed,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Refused => "refused",
            Self::Failed => "failed",
        }
    }

    /// Whether running the same job again, unchanged, may succeed.
    pub fn retryable(self) -> bool {
        self == Self::Failed
    }
}

impl FromStr for FailureKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "refused" => Ok(Self::Refused),
            "failed" => Ok(Self::Failed),
            other => Err(format!("unknown failure kind `{other}`")),
        }
    }
}

/// Why a job did not succeed: what job functions return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobError {
    /// See [`FailureKind::Refused`].
    Refused(String),
    /// See [`FailureKind::Failed`].
    Failed(String),
    /// Its cancellation was requested and a step saw it.
    Cancelled,
}

impl JobError {
    /// A refusal: the job will not act on what it found.
    pub fn refused(message: impl Into<String>) -> Self {
        Self::Refused(message.into())
    }

    /// Whether running the same job again, unchanged, may succeed.
    pub fn retryable(&self) -> bool {
        self.kind().is_some_and(FailureKind::retryable)
    }

    /// How it failed, for the job record; None when cancelled.
    pub fn kind(&self) -> Option<FailureKind> {
        match self {
            Self::Refused(_) => Some(FailureKind::Refused),
            Self::Failed(_) => Some(FailureKind::Failed),
            Self::Cancelled => None,
        }
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused(m) | Self::Failed(m) => f.write_str(m),
            Self::Cancelled => f.write_str("cancelled by request"),
        }
    }
}

impl std::error::Error for JobError {}

/// A step's error message is a failure (retryable); refusals are made on purpose with
/// [`JobError::refused`].
impl From<String> for JobError {
    fn from(message: String) -> Self {
        Self::Failed(message)
    }
}

impl From<&str> for JobError {
    fn from(message: &str) -> Self {
        Self::Failed(message.to_string())
    }
}

/// How nines reaches the hosts of a cluster's nodes for host-level work (metrics, files, services).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(tag = "transport", rename_all = "snake_case")]
pub enum HostAccessSpec {
    /// No host access: SQL-level monitoring only.
    #[default]
    None,
    /// The nodes run on the controller's own machine.
    Local,
    /// OpenSSH to each node's host address.
    Ssh {
        user: String,
        /// Private key path on the controller; None uses ssh's own defaults and agent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key_path: Option<String>,
        #[serde(default = "default_ssh_port")]
        port: u16,
    },
}

fn default_ssh_port() -> u16 {
    22
}

/// What a job is asked to do. The password of an import is not here: the controller
/// keeps it encrypted in the store and the spec refers to it by id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobSpec {
    /// Discover an existing cluster from one seed node and register it.
    ImportCluster {
        name: String,
        #[schema(value_type = String, example = "127.0.0.11:3306")]
        seed: Endpoint,
        db_user: String,
        /// Id of the encrypted secret that holds the password.
        db_password_secret: i64,
        #[serde(default)]
        host_access: HostAccessSpec,
    },
    /// Deploy a new cluster onto hosts.
    CreateCluster {
        name: String,
        cluster_type: crate::ClusterType,
        #[schema(value_type = Vec<String>)]
        nodes: Vec<Endpoint>,
        datadir_template: String,
        admin_user: String,
        /// Id of the encrypted secret that holds the user's admin password.
        admin_password_secret: i64,
        host_access: HostAccessSpec,
        #[serde(default)]
        semi_sync: bool,
        #[serde(default)]
        config_template: Option<String>,
        #[serde(default)]
        innodb_buffer_pool_size: Option<u64>,
    },
    /// Stop, start or restart one node.
    NodeAction {
        cluster: String,
        #[schema(value_type = String)]
        node: Endpoint,
        action: NodeAction,
        #[serde(default)]
        force: bool,
    },
    /// Stop or start a whole cluster, or restart it node by node.
    ClusterAction {
        cluster: String,
        action: ClusterAction,
    },
    /// Unregister a cluster; with purge, stop its nodes and remove their files.
    DeleteCluster { cluster: String, purge: bool },
    /// Add a node to a cluster: a Galera joiner or a new replica.
    AddNode {
        cluster: String,
        #[schema(value_type = String)]
        node: Endpoint,
        /// The node to copy from (Galera donor, or the replica's backup source); None: nines chooses.
        #[serde(default)]
        #[schema(value_type = Option<String>)]
        source: Option<Endpoint>,
        /// Replication clusters: provision the new replica from this stored backup
        /// instead of a live node (nothing is read from the cluster but the binlogs since).
        #[serde(default)]
        from_backup: Option<i64>,
    },
    /// Remove a node from a cluster.
    RemoveNode {
        cluster: String,
        #[schema(value_type = String)]
        node: Endpoint,
        mode: RemoveMode,
    },
    /// Promote a replica of a replication cluster whose primary is gone. Automatic ones
    /// carry the reconciler's decision (`reasons`); manual ones are planned when they run.
    Failover {
        cluster: String,
        /// The replica to promote; None: the most advanced eligible one.
        #[serde(default)]
        #[schema(value_type = Option<String>)]
        to: Option<Endpoint>,
        /// Fail over even when the primary answers (it is fenced first) or when the
        /// chosen replica lacks transactions (they are named in the log).
        #[serde(default)]
        force: bool,
        /// Started by the reconciler rather than a person.
        #[serde(default)]
        automatic: bool,
        /// The decision's reasons, for the job log (automatic failovers).
        #[serde(default)]
        reasons: Vec<String>,
    },
    /// Planned handover of the primary role with zero loss.
    Switchover {
        cluster: String,
        #[serde(default)]
        #[schema(value_type = Option<String>)]
        to: Option<Endpoint>,
    },
    /// Make a former primary (or a stray node) a replica of the current primary, after
    /// proving it has no transaction the cluster lacks.
    Rejoin {
        cluster: String,
        #[schema(value_type = String)]
        node: Endpoint,
    },
    /// Bring back a Galera cluster that has no Primary component: collect the stopped
    /// nodes' positions, bootstrap the node the model chooses (or, forced, the one a
    /// person names), then join the others one at a time.
    GaleraRecovery {
        cluster: String,
        /// The node a person chose to bootstrap from; None: the model's choice.
        #[serde(default)]
        #[schema(value_type = Option<String>)]
        bootstrap_from: Option<Endpoint>,
        /// Bootstrap `bootstrap_from` even where the model would not.
        #[serde(default)]
        force: bool,
        /// Started by the reconciler rather than a person.
        #[serde(default)]
        automatic: bool,
        /// The decision's reasons, for the job log (automatic recoveries).
        #[serde(default)]
        reasons: Vec<String>,
    },
    /// Take a backup of a cluster into a repository.
    CreateBackup {
        cluster: String,
        method: crate::backup::BackupMethod,
        /// The node a person asked for; None: chosen by policy.
        #[serde(default)]
        #[schema(value_type = Option<String>)]
        node: Option<Endpoint>,
        repo: String,
        /// After the backup, let go of what the restorable window of this many seconds
        /// does not need (scheduled backups with a retention).
        #[serde(default)]
        retention_secs: Option<u64>,
        /// Check the backup by restoring it onto a throwaway server (scheduled backups).
        #[serde(default)]
        verify_restore: bool,
    },
    /// Check a backup: every chunk, and a physical backup's `--prepare`.
    VerifyBackup { cluster: String, backup_id: i64 },
    /// Restore a backup onto a cluster.
    RestoreBackup {
        cluster: String,
        backup_id: i64,
        /// Even over a cluster that serves.
        #[serde(default)]
        force: bool,
        /// Roll forward with the archived binlogs to this time (events before it).
        #[serde(default)]
        until: Option<chrono::DateTime<chrono::Utc>>,
        /// Roll forward with the archived binlogs to this GTID position (included).
        #[serde(default)]
        until_gtid: Option<String>,
    },
    /// Deploy HAProxy in front of the cluster on a host.
    AddLoadBalancer {
        cluster: String,
        /// The address HAProxy listens on (its host).
        host: String,
        rw_port: u16,
        ro_port: u16,
        stats_port: u16,
        host_access: HostAccessSpec,
        /// A virtual IP Keepalived keeps on one of the cluster's load balancers that
        /// share it.
        #[serde(default)]
        vip: Option<String>,
        #[serde(default)]
        policy: crate::lb::LbPolicy,
    },
    /// Stop and remove a load balancer.
    RemoveLoadBalancer { cluster: String, host: String },
    /// Restart a load balancer's HAProxy (and Keepalived).
    RestartLoadBalancer { cluster: String, host: String },
    /// Change a load balancer's policy and apply it.
    ReconfigureLoadBalancer {
        cluster: String,
        host: String,
        policy: crate::lb::LbPolicy,
    },
}

/// What to do with one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NodeAction {
    Stop,
    Start,
    Restart,
}

/// What to do with a whole cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClusterAction {
    Stop,
    Start,
    RollingRestart,
}

/// How far removing a node goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RemoveMode {
    /// Forget the node; leave the server running as it is.
    Unregister,
    /// Stop the server and keep its data.
    Stop,
    /// Stop the server and delete its data directory and files.
    Purge,
}

impl JobSpec {
    /// The job's kind as a short name, for lists and filters.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ImportCluster { .. } => "import_cluster",
            Self::CreateCluster { .. } => "create_cluster",
            Self::NodeAction { action, .. } => match action {
                NodeAction::Stop => "node_stop",
                NodeAction::Start => "node_start",
                NodeAction::Restart => "node_restart",
            },
            Self::ClusterAction { action, .. } => match action {
                ClusterAction::Stop => "cluster_stop",
                ClusterAction::Start => "cluster_start",
                ClusterAction::RollingRestart => "rolling_restart",
            },
            Self::DeleteCluster { .. } => "delete_cluster",
            Self::AddNode { .. } => "add_node",
            Self::RemoveNode { .. } => "remove_node",
            Self::Failover { .. } => "failover",
            Self::Switchover { .. } => "switchover",
            Self::Rejoin { .. } => "rejoin",
            Self::GaleraRecovery { .. } => "galera_recovery",
            Self::CreateBackup { .. } => "backup",
            Self::VerifyBackup { .. } => "backup_verify",
            Self::RestoreBackup { .. } => "backup_restore",
            Self::AddLoadBalancer { .. } => "lb_add",
            Self::RemoveLoadBalancer { .. } => "lb_remove",
            Self::RestartLoadBalancer { .. } => "lb_restart",
            Self::ReconfigureLoadBalancer { .. } => "lb_reconfigure",
        }
    }

    /// The automatic repair this job carries out, with its subject (a node's host:port or
    /// empty for the whole cluster), whoever submitted it: its outcome counts for the
    /// reconciler's next attempt at the same repair.
    pub fn repair(&self) -> Option<(crate::ha::memory::Repair, String)> {
        use crate::ha::memory::Repair;
        match self {
            Self::NodeAction {
                node,
                action: NodeAction::Start,
                ..
            } => Some((Repair::NodeRestart, node.to_string())),
            Self::Failover { .. } => Some((Repair::Failover, String::new())),
            Self::Rejoin { node, .. } => Some((Repair::Rejoin, node.to_string())),
            Self::GaleraRecovery { .. } => Some((Repair::GaleraRecovery, String::new())),
            _ => None,
        }
    }

    /// The cluster the job works on; its jobs take turns by their locks ([`crate::lanes`]).
    pub fn cluster_name(&self) -> &str {
        match self {
            Self::ImportCluster { name, .. } | Self::CreateCluster { name, .. } => name,
            Self::NodeAction { cluster, .. }
            | Self::ClusterAction { cluster, .. }
            | Self::DeleteCluster { cluster, .. }
            | Self::AddNode { cluster, .. }
            | Self::RemoveNode { cluster, .. }
            | Self::Failover { cluster, .. }
            | Self::Switchover { cluster, .. }
            | Self::Rejoin { cluster, .. }
            | Self::GaleraRecovery { cluster, .. }
            | Self::CreateBackup { cluster, .. }
            | Self::VerifyBackup { cluster, .. }
            | Self::RestoreBackup { cluster, .. }
            | Self::AddLoadBalancer { cluster, .. }
            | Self::RemoveLoadBalancer { cluster, .. }
            | Self::RestartLoadBalancer { cluster, .. }
            | Self::ReconfigureLoadBalancer { cluster, .. } => cluster,
        }
    }
}

/// A job's progress: the phase it is in and how far along, 0-100.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
pub struct Progress {
    pub phase: String,
    pub percent: u8,
}

/// Severity of a job log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }
}

impl FromStr for LogLevel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "info" => Self::Info,
            "warn" => Self::Warn,
            "error" => Self::Error,
            other => return Err(format!("unknown log level `{other}`")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failures_are_retryable() {
        // (error, retryable, stored kind)
        let cases = [
            (
                JobError::refused("no candidate"),
                false,
                Some(FailureKind::Refused),
            ),
            (
                JobError::from("ssh: timeout"),
                true,
                Some(FailureKind::Failed),
            ),
            (JobError::Cancelled, false, None),
        ];
        for (e, retryable, kind) in cases {
            assert_eq!(e.retryable(), retryable, "{e:?}");
            assert_eq!(e.kind(), kind, "{e:?}");
        }
        for k in [FailureKind::Refused, FailureKind::Failed] {
            assert_eq!(k.as_str().parse::<FailureKind>(), Ok(k));
        }
        assert!("other".parse::<FailureKind>().is_err());
        assert_eq!(JobError::Cancelled.to_string(), "cancelled by request");
    }

    #[test]
    fn spec_round_trips_as_tagged_json() {
        let spec = JobSpec::ImportCluster {
            name: "c1".into(),
            seed: "127.0.0.11:3306".parse().unwrap(),
            db_user: "nines".into(),
            db_password_secret: 4,
            host_access: HostAccessSpec::Ssh {
                user: "root".into(),
                key_path: Some("/k".into()),
                port: 2222,
            },
        };
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(json["kind"], "import_cluster");
        assert_eq!(json["host_access"]["transport"], "ssh");
        let back: JobSpec = serde_json::from_value(json).unwrap();
        assert_eq!(back, spec);
        assert!(JobState::Failed.is_final() && !JobState::Running.is_final());
    }
}
