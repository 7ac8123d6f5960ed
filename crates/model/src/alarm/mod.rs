//! Alarms: a condition on a cluster or one of its nodes that a person must know about.
//!
//! An alarm is identified by (cluster, node, kind): however many probes, passes or jobs
//! see the same condition, it is one alarm, raised once, updated while it lasts and
//! cleared (with the time) when it ends. Each kind belongs to one [`Source`]: the
//! monitor's kinds are recomputed whole on every pass ([`monitor_conditions`]), so an
//! alarm of the monitor that a pass no longer finds is cleared; the other sources raise
//! and clear theirs explicitly (the reconciler when a repair runs out or succeeds,
//! backups when one fails and the next succeeds).
//!
//! A person acknowledges an alarm (who, when, a note) and may silence a kind, on one
//! cluster or all, for a time: a silenced alarm is still raised, listed and counted, but
//! no notification is sent for it ([`silenced`]). Notifications are decided in
//! [`notify`].

pub mod notify;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{ClusterState, ClusterType, NodeState};

/// How urgent an alarm is. Ordered: `Info < Warning < Critical`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "info" => Ok(Self::Info),
            "warning" => Ok(Self::Warning),
            "critical" => Ok(Self::Critical),
            other => Err(format!(
                "`{other}` is not a severity: one of critical, warning, info"
            )),
        }
    }
}

/// Who raises and clears an alarm kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// Recomputed whole on every monitor pass: what a pass does not find is cleared.
    Monitor,
    /// The reconciler's repairs: raised when one runs out or is refused, cleared when the
    /// condition ends.
    Reconciler,
    /// Backups, their verification and the binlog archive.
    Backup,
    /// Advisor rules, recomputed whole on every run of the rules.
    Advisor,
    /// Load balancers' watcher, recomputed whole on every look.
    Balancer,
}

/// Every kind of alarm nines raises (docs/monitoring.md lists them with what to do).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AlarmKind {
    /// A node nines expects to run does not answer.
    NodeDown,
    /// A replica's IO or SQL thread stopped (with the server's error).
    ReplicationBroken,
    /// The cluster does not serve writes (no primary, no Galera Primary component).
    ClusterFailed,
    /// A node's automatic restarts ran out or were refused.
    NodeRestart,
    /// A failover was refused, ran out of attempts, or the primary is cut off.
    Failover,
    /// Galera recovery was refused or ran out of attempts.
    GaleraRecovery,
    /// The primary's semi-synchronous replication fell back to asynchronous.
    SemiSync,
    /// A backup failed.
    BackupFailed,
    /// A backup failed its verification.
    BackupVerify,
    /// The binlog archive fell behind (point-in-time recovery cannot reach now).
    ArchiveLag,
    /// A load balancer's HAProxy is not running, or its host does not answer.
    LbDown,
    /// A load balancer's backend server keeps going down and up (HAProxy's checks).
    LbBackendFlapping,
    /// No load balancer holds the virtual IP, or more than one does.
    LbVip,
    /// An advisor rule (built in, or a user rule) found a problem; the rule's id.
    Advisor(String),
}

/// The prefix of advisor kinds (`advisor.<rule>`).
const ADVISOR_PREFIX: &str = "advisor.";

impl AlarmKind {
    /// The kinds that are not advisor rules, for documentation and validation.
    pub const BUILT_IN: [AlarmKind; 13] = [
        AlarmKind::NodeDown,
        AlarmKind::ReplicationBroken,
        AlarmKind::ClusterFailed,
        AlarmKind::NodeRestart,
        AlarmKind::Failover,
        AlarmKind::GaleraRecovery,
        AlarmKind::SemiSync,
        AlarmKind::BackupFailed,
        AlarmKind::BackupVerify,
        AlarmKind::ArchiveLag,
        AlarmKind::LbDown,
        AlarmKind::LbBackendFlapping,
        AlarmKind::LbVip,
    ];

    pub fn as_string(&self) -> String {
        match self {
            Self::Advisor(rule) => format!("{ADVISOR_PREFIX}{rule}"),
            other => other.fixed_name().to_string(),
        }
    }

    fn fixed_name(&self) -> &'static str {
        match self {
            Self::NodeDown => "node_down",
            Self::ReplicationBroken => "replication_broken",
            Self::ClusterFailed => "cluster_failed",
            Self::NodeRestart => "node_restart",
            Self::Failover => "failover",
            Self::GaleraRecovery => "galera_recovery",
            Self::SemiSync => "semi_sync",
            Self::BackupFailed => "backup_failed",
            Self::BackupVerify => "backup_verify",
            Self::ArchiveLag => "archive_lag",
            Self::LbDown => "lb_down",
            Self::LbBackendFlapping => "lb_backend_flapping",
            Self::LbVip => "lb_vip",
            Self::Advisor(_) => "advisor",
        }
    }

    pub fn source(&self) -> Source {
        match self {
            Self::NodeDown | Self::ReplicationBroken | Self::ClusterFailed => Source::Monitor,
            Self::NodeRestart | Self::Failover | Self::GaleraRecovery | Self::SemiSync => {
                Source::Reconciler
            }
            Self::BackupFailed | Self::BackupVerify | Self::ArchiveLag => Source::Backup,
            Self::LbDown | Self::LbBackendFlapping | Self::LbVip => Source::Balancer,
            Self::Advisor(_) => Source::Advisor,
        }
    }

    /// The alarm's usual severity (a source may choose another for one condition).
    pub fn severity(&self) -> Severity {
        match self {
            Self::SemiSync | Self::ArchiveLag | Self::BackupVerify => Severity::Warning,
            Self::BackupFailed | Self::LbBackendFlapping => Severity::Warning,
            Self::Advisor(_) => Severity::Warning,
            _ => Severity::Critical,
        }
    }

    /// A short title, without the subject.
    pub fn title(&self) -> String {
        match self {
            Self::NodeDown => "node down".into(),
            Self::ReplicationBroken => "replication stopped".into(),
            Self::ClusterFailed => "cluster not serving writes".into(),
            Self::NodeRestart => "automatic restart of a node gave up".into(),
            Self::Failover => "failover not possible".into(),
            Self::GaleraRecovery => "Galera recovery not possible".into(),
            Self::SemiSync => "semi-synchronous replication fell back to asynchronous".into(),
            Self::BackupFailed => "backup failed".into(),
            Self::BackupVerify => "backup verification failed".into(),
            Self::ArchiveLag => "binlog archive behind".into(),
            Self::LbDown => "load balancer down".into(),
            Self::LbBackendFlapping => "load balancer backend flapping".into(),
            Self::LbVip => "virtual IP not held by exactly one load balancer".into(),
            Self::Advisor(rule) => crate::advisor::rules::RULES
                .iter()
                .find(|r| r.id == rule)
                .map(|r| r.title.to_string())
                .unwrap_or_else(|| match rule.strip_prefix("user_") {
                    Some(name) => format!("user rule {name}"),
                    None => format!("advisor {rule}"),
                }),
        }
    }
}

impl fmt::Display for AlarmKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_string())
    }
}

impl FromStr for AlarmKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(rule) = s.strip_prefix(ADVISOR_PREFIX) {
            let ok = !rule.is_empty()
                && rule.len() <= 64
                && rule
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            return if ok {
                Ok(Self::Advisor(rule.to_string()))
            } else {
                Err(format!(
                    "`{s}` is not an alarm kind: an advisor rule id has 1 to 64 letters, digits, `_` or `-`"
                ))
            };
        }
        Self::BUILT_IN
            .iter()
            .find(|k| k.fixed_name() == s)
            .cloned()
            .ok_or_else(|| {
                format!(
                    "`{s}` is not an alarm kind: one of {}, or advisor.RULE",
                    Self::BUILT_IN
                        .iter()
                        .map(|k| k.fixed_name())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }
}

/// What identifies an alarm: one condition, one alarm.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AlarmKey {
    pub cluster: String,
    /// The node's host:port; None for the whole cluster.
    pub node: Option<String>,
    pub kind: AlarmKind,
}

/// A condition a source finds true now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub key: AlarmKey,
    pub severity: Severity,
    pub title: String,
    /// The facts and what to do.
    pub message: String,
}

impl Condition {
    /// A condition of `kind` with its usual severity and a title naming the subject.
    pub fn new(cluster: &str, node: Option<&str>, kind: AlarmKind, message: String) -> Self {
        let title = match node {
            Some(n) => format!("{}: {n} ({cluster})", kind.title()),
            None => format!("{}: {cluster}", kind.title()),
        };
        Self {
            severity: kind.severity(),
            key: AlarmKey {
                cluster: cluster.to_string(),
                node: node.map(str::to_string),
                kind,
            },
            title,
            message,
        }
    }

    pub fn with_severity(mut self, s: Severity) -> Self {
        self.severity = s;
        self
    }
}

/// A silence: no notifications for alarms of `kind` (on `cluster`, or every cluster)
/// until `until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Silence {
    pub kind: AlarmKind,
    pub cluster: Option<String>,
    pub until: DateTime<Utc>,
}

/// Whether a silence in force at `now` covers the alarm.
pub fn silenced(key: &AlarmKey, silences: &[Silence], now: DateTime<Utc>) -> bool {
    silences.iter().any(|s| {
        s.until > now && s.kind == key.kind && s.cluster.as_ref().is_none_or(|c| *c == key.cluster)
    })
}

/// One node as the monitor's alarm rules see it.
#[derive(Debug, Clone)]
pub struct MonitoredNode {
    /// host:port.
    pub address: String,
    /// The monitor's state after hysteresis; None until first probed.
    pub state: Option<NodeState>,
    /// Why it is in that state (the probe's error, the health reasons).
    pub reason: String,
    /// The operator wants it running (not stopped by `node stop` or `cluster stop`).
    pub desired_running: bool,
    /// In a maintenance window (its own or its cluster's).
    pub in_maintenance: bool,
    /// Replication channels that stopped: (channel, what the server says).
    pub stopped_channels: Vec<(String, String)>,
}

/// A cluster as the monitor's alarm rules see it.
#[derive(Debug, Clone)]
pub struct MonitoredCluster {
    pub name: String,
    pub cluster_type: ClusterType,
    /// None until every node was probed once.
    pub state: Option<ClusterState>,
    pub reason: String,
    /// The whole cluster is in a maintenance window.
    pub in_maintenance: bool,
    /// nines repairs it by itself.
    pub auto_recovery: bool,
    /// nines deployed it (can start its servers).
    pub deployed: bool,
    pub nodes: Vec<MonitoredNode>,
}

/// The monitor's alarms of a cluster, as of one pass: a node that should run and does
/// not answer; a replica whose replication stopped; a cluster that serves no writes.
/// Nothing is raised for what a person stopped or put in maintenance.
pub fn monitor_conditions(c: &MonitoredCluster) -> Vec<Condition> {
    let mut out = Vec::new();
    if c.in_maintenance {
        return out;
    }
    let name = &c.name;
    for n in &c.nodes {
        if n.in_maintenance || !n.desired_running {
            continue;
        }
        match n.state {
            Some(NodeState::Offline) => {
                let what_next = if !c.deployed {
                    "nines did not deploy this server and cannot start it: start it on its host"
                        .to_string()
                } else if c.auto_recovery {
                    "nines restarts it by itself (see `nines events`); if this alarm stays, look at the server's error log".to_string()
                } else {
                    format!(
                        "automatic recovery is off for `{name}`: start it with `nines node start --cluster {name} --node {}`",
                        n.address
                    )
                };
                out.push(Condition::new(
                    name,
                    Some(&n.address),
                    AlarmKind::NodeDown,
                    format!(
                        "{} does not answer: {}. {what_next}.",
                        n.address,
                        if n.reason.is_empty() {
                            "no reply to probes"
                        } else {
                            &n.reason
                        }
                    ),
                ));
            }
            Some(_) if !n.stopped_channels.is_empty() => {
                let said: Vec<String> = n
                    .stopped_channels
                    .iter()
                    .map(|(ch, why)| {
                        let ch = if ch.is_empty() { "default" } else { ch };
                        format!("channel {ch}: {why}")
                    })
                    .collect();
                out.push(Condition::new(
                    name,
                    Some(&n.address),
                    AlarmKind::ReplicationBroken,
                    format!(
                        "replication on {} stopped ({}). Fix the cause the server names, then `START SLAVE`; or rebuild the replica (`nines node remove` and `nines node add`).",
                        n.address,
                        said.join("; ")
                    ),
                ));
            }
            _ => {}
        }
    }
    // A standalone server's cluster fails with it: its node alarm says all there is.
    if c.state == Some(ClusterState::Failed) && c.cluster_type != ClusterType::Standalone {
        let what_next = if c.auto_recovery && c.deployed {
            "nines is repairing it (see `nines job list` and `nines events`)"
        } else if c.cluster_type == ClusterType::Galera {
            "recover it with `nines cluster recover`"
        } else {
            "promote a replica with `nines cluster failover`, or start the primary"
        };
        out.push(Condition::new(
            name,
            None,
            AlarmKind::ClusterFailed,
            format!("{name} serves no writes: {}. {what_next}.", c.reason),
        ));
    }
    out
}

/// What to do with the stored alarms of one source and cluster, given the conditions a
/// pass found: raise (or update) each condition, clear the alarms it no longer finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Not active yet: raise it.
    Raise(Condition),
    /// Active with another severity, title or message: update it (no new notification
    /// unless the severity rose).
    Update(Condition),
    /// Active, no longer found: clear it.
    Clear(AlarmKey),
}

/// An active alarm as [`diff`] compares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Active {
    pub key: AlarmKey,
    pub severity: Severity,
    pub title: String,
    pub message: String,
}

/// The changes that bring the active alarms of `source` on `cluster` to `found`.
/// Alarms of other sources or clusters are left alone; a condition found twice counts once.
pub fn diff(
    cluster: &str,
    source: Source,
    active: &[Active],
    found: Vec<Condition>,
) -> Vec<Change> {
    let mut out = Vec::new();
    let mut seen: Vec<AlarmKey> = Vec::new();
    for c in found {
        if seen.contains(&c.key) {
            continue;
        }
        seen.push(c.key.clone());
        match active.iter().find(|a| a.key == c.key) {
            None => out.push(Change::Raise(c)),
            Some(a) if a.severity != c.severity || a.title != c.title || a.message != c.message => {
                out.push(Change::Update(c))
            }
            Some(_) => {}
        }
    }
    for a in active {
        if a.key.cluster == cluster && a.key.kind.source() == source && !seen.contains(&a.key) {
            out.push(Change::Clear(a.key.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests;
