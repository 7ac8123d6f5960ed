//! What one probe of one node observed: either a server sample or a classified failure.
//!
//! Snapshots are the monitor's raw input; node and cluster states are derived from a
//! sequence of them in [`crate::health`], never stored in them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::endpoint::Endpoint;
use crate::replication::{ReplicaStatus, ServerVersion, WsrepStatus};

/// Why a probe failed, in terms an operator (and the failover logic) can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProbeErrorKind {
    /// Connection refused: nothing listens on the address (the server is down).
    Refused,
    /// No answer within the probe timeout (host down, network cut, server frozen).
    Timeout,
    /// The server answered but rejected the credentials.
    Auth,
    /// Anything else (protocol error, query error, too many connections…).
    Other,
}

impl ProbeErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Refused => "refused",
            Self::Timeout => "timeout",
            Self::Auth => "auth",
            Self::Other => "other",
        }
    }
}

/// A failed probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProbeError {
    pub kind: ProbeErrorKind,
    pub message: String,
}

/// Everything one successful probe read from a server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerSample {
    pub version: ServerVersion,
    pub server_id: u32,
    pub read_only: bool,
    /// super_read_only where the server has it (MySQL); None on MariaDB 10.11.
    pub super_read_only: Option<bool>,
    pub log_bin: bool,
    pub log_slave_updates: bool,
    /// The GTIDs this server has executed: MariaDB @@gtid_current_pos, MySQL @@gtid_executed.
    pub gtid_executed: String,
    /// MariaDB @@gtid_binlog_pos (what this server's binlog holds); MySQL: same as executed.
    pub gtid_binlog_pos: String,
    /// Replication channels where this server is a replica (empty for none).
    pub replication: Vec<ReplicaStatus>,
    /// Galera status, when wsrep is on.
    pub wsrep: Option<WsrepStatus>,
    /// Client hosts of the binlog dump threads (replicas connected to this server).
    pub binlog_dump_clients: Vec<String>,
    /// Selected SHOW GLOBAL STATUS counters and gauges, by variable name.
    pub status: BTreeMap<String, u64>,
    pub uptime_seconds: u64,
    /// @@hostname, @@port as the server reports them (report_host where set).
    pub hostname: String,
    pub port: u16,
    /// @@datadir, for disk metrics of the node's host.
    pub datadir: String,
}

/// One probe of one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSnapshot {
    pub endpoint: Endpoint,
    pub at: DateTime<Utc>,
    /// How long the probe took, in milliseconds.
    pub latency_ms: u64,
    pub result: Result<ServerSample, ProbeError>,
}

impl NodeSnapshot {
    pub fn sample(&self) -> Option<&ServerSample> {
        self.result.as_ref().ok()
    }
}
