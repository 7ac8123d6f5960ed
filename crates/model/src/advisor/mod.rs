//! Advisors: rules that look at a cluster's servers, hosts and backups and say what is
//! wrong and what to do about it.
//!
//! Every built-in rule ([`rules::RULES`]) is a pure function of [`ClusterFacts`]: the
//! advisor sample of each node (its variables and status counters, read about twice a
//! minute, with the previous one for rates), the monitor's latest sample, the host's
//! metrics and the cluster's backups. A rule either finds nothing (one `ok` result with
//! a note), finds problems (a `warning` or `critical` result per node or for the
//! cluster, with the facts and the advice), or cannot be checked this time (no result;
//! the last one stays with its time). User rules ([`user`]) are SQL queries returning one
//! number compared with thresholds. A non-`ok` result raises an alarm `advisor.<rule>`.

pub mod rules;
pub mod user;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::HostStatus;
use crate::snapshot::ServerSample;
use crate::{ClusterType, Role};

/// A rule's verdict.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Warning,
    Critical,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }

    /// The alarm severity of a failing verdict.
    pub fn severity(self) -> Option<crate::alarm::Severity> {
        match self {
            Self::Ok => None,
            Self::Warning => Some(crate::alarm::Severity::Warning),
            Self::Critical => Some(crate::alarm::Severity::Critical),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ok" => Ok(Self::Ok),
            "warning" => Ok(Self::Warning),
            "critical" => Ok(Self::Critical),
            other => Err(format!("`{other}` is not an advisor status")),
        }
    }
}

/// What the advisor read from one server: its global variables and status counters
/// (names in lower case), its oldest open transaction, how many user tables it has and,
/// on one node per cluster, which InnoDB tables lack a primary key; and its clock.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AdvisorSample {
    /// When the controller received the answer.
    pub at: DateTime<Utc>,
    pub variables: BTreeMap<String, String>,
    pub status: BTreeMap<String, String>,
    /// The oldest open InnoDB transaction: (seconds open, connection id).
    pub oldest_trx: Option<(u64, u64)>,
    /// Base tables outside the system schemas.
    pub user_tables: u64,
    /// `schema.table` of InnoDB base tables without a primary key; None when not read.
    pub tables_without_pk: Option<Vec<String>>,
    /// The server's clock (`UNIX_TIMESTAMP(NOW(6))`) and the query's round trip: the
    /// clock's offset from the controller's is known within half of it.
    pub server_unix_time: f64,
    pub round_trip_ms: f64,
}

impl AdvisorSample {
    pub fn var(&self, name: &str) -> Option<&str> {
        self.variables.get(name).map(String::as_str)
    }

    pub fn var_u64(&self, name: &str) -> Option<u64> {
        self.var(name).and_then(|v| v.trim().parse().ok())
    }

    /// ON / 1 / YES.
    pub fn var_on(&self, name: &str) -> Option<bool> {
        self.var(name).map(|v| {
            matches!(
                v.trim().to_ascii_uppercase().as_str(),
                "ON" | "1" | "YES" | "TRUE"
            )
        })
    }

    pub fn stat(&self, name: &str) -> Option<f64> {
        self.status.get(name).and_then(|v| v.trim().parse().ok())
    }

    /// How much a counter grew since `prev` (None when it went back: a restart).
    pub fn grew(&self, prev: &AdvisorSample, name: &str) -> Option<f64> {
        let d = self.stat(name)? - prev.stat(name)?;
        (d >= 0.0).then_some(d)
    }

    /// Seconds between `prev` and this sample.
    pub fn seconds_since(&self, prev: &AdvisorSample) -> f64 {
        (self.at - prev.at).num_milliseconds().max(0) as f64 / 1000.0
    }

    /// The server clock's offset from the controller's, in seconds (positive: ahead).
    pub fn clock_offset(&self) -> f64 {
        let controller = self.at.timestamp_micros() as f64 / 1e6 - self.round_trip_ms / 2000.0;
        self.server_unix_time - controller
    }
}

/// One node as the rules see it.
#[derive(Debug, Clone)]
pub struct NodeFacts<'a> {
    /// host:port.
    pub address: String,
    pub role: Role,
    /// This run's advisor sample; None when the node did not answer.
    pub sample: Option<&'a AdvisorSample>,
    /// The previous run's, for rates.
    pub prev: Option<&'a AdvisorSample>,
    /// The monitor's latest sample (replication, wsrep, read_only, version).
    pub server: Option<&'a ServerSample>,
    pub host: Option<&'a HostStatus>,
}

/// What the rules know of a cluster's backups.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BackupFacts {
    /// The newest completed backup: when it finished, and whether it verified.
    pub last_completed: Option<(DateTime<Utc>, Option<bool>)>,
    /// The shortest period of the cluster's backup schedules, if it has any.
    pub schedule_every: Option<chrono::Duration>,
}

/// A cluster as the rules see it.
#[derive(Debug, Clone)]
pub struct ClusterFacts<'a> {
    pub name: String,
    pub cluster_type: ClusterType,
    /// Deployed with semi-synchronous replication.
    pub semi_sync: bool,
    pub nodes: Vec<NodeFacts<'a>>,
    pub backups: BackupFacts,
    pub now: DateTime<Utc>,
}

impl ClusterFacts<'_> {
    /// Nodes that answered this run, with their sample.
    pub fn sampled(&self) -> impl Iterator<Item = (&NodeFacts<'_>, &AdvisorSample)> {
        self.nodes.iter().filter_map(|n| n.sample.map(|s| (n, s)))
    }
}

/// A problem a rule found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The node (host:port); None for the cluster.
    pub node: Option<String>,
    pub status: Status,
    /// The facts.
    pub message: String,
}

impl Finding {
    pub fn node(n: &NodeFacts<'_>, status: Status, message: String) -> Self {
        Self {
            node: Some(n.address.clone()),
            status,
            message,
        }
    }

    pub fn cluster(status: Status, message: String) -> Self {
        Self {
            node: None,
            status,
            message,
        }
    }
}

/// What one check of a rule found: its problems, or a note saying what was fine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub findings: Vec<Finding>,
    pub ok: String,
}

impl Check {
    pub fn ok(note: impl Into<String>) -> Option<Self> {
        Some(Self {
            findings: Vec::new(),
            ok: note.into(),
        })
    }

    pub fn found(findings: Vec<Finding>, ok: impl Into<String>) -> Option<Self> {
        Some(Self {
            findings,
            ok: ok.into(),
        })
    }
}

/// A rule's result, as stored and listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleResult {
    /// The rule's id (`advisor.<id>` is its alarm kind).
    pub rule: String,
    pub node: Option<String>,
    pub status: Status,
    pub message: String,
    pub advice: String,
}

/// Runs every built-in rule that applies to the cluster.
pub fn evaluate(facts: &ClusterFacts<'_>) -> Vec<RuleResult> {
    let mut out = Vec::new();
    for r in rules::RULES {
        if !(r.applies)(facts.cluster_type) {
            continue;
        }
        let Some(check) = (r.check)(facts) else {
            continue;
        };
        if check.findings.is_empty() {
            out.push(RuleResult {
                rule: r.id.to_string(),
                node: None,
                status: Status::Ok,
                message: check.ok,
                advice: String::new(),
            });
        } else {
            for f in check.findings {
                out.push(RuleResult {
                    rule: r.id.to_string(),
                    node: f.node,
                    status: f.status,
                    message: f.message,
                    advice: r.advice.to_string(),
                });
            }
        }
    }
    out
}

/// The alarm conditions of a set of results: one per non-`ok` result.
pub fn conditions(cluster: &str, results: &[RuleResult]) -> Vec<crate::alarm::Condition> {
    results
        .iter()
        .filter_map(|r| {
            let severity = r.status.severity()?;
            let kind = crate::alarm::AlarmKind::Advisor(r.rule.clone());
            let mut c = crate::alarm::Condition::new(
                cluster,
                r.node.as_deref(),
                kind,
                if r.advice.is_empty() {
                    r.message.clone()
                } else {
                    format!("{} Advice: {}", r.message, r.advice)
                },
            );
            c.severity = severity;
            Some(c)
        })
        .collect()
}

#[cfg(test)]
mod tests;
