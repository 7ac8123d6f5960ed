//! Typed replication and Galera (wsrep) status, as parsed from the server's SHOW output.
//!
//! The parsers live in `nines-access` (server::parse); these types are what the monitor,
//! the decision functions and the API use, for MariaDB and MySQL alike.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Which server family a node runs: the two differ in GTID format and SHOW syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Flavor {
    MariaDb,
    MySql,
}

/// The server's version, from `SELECT VERSION()` / `@@version_comment`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ServerVersion {
    pub flavor: Flavor,
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
    /// The full version string as the server reports it.
    pub text: String,
}

/// State of a replica's IO (receiver) thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IoThreadState {
    Running,
    Connecting,
    Stopped,
}

/// One replication channel of a replica: a row of SHOW ALL SLAVES STATUS (MariaDB),
/// SHOW SLAVE STATUS, or SHOW REPLICA STATUS (MySQL 8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReplicaStatus {
    /// MariaDB multi-source connection name or MySQL channel name; empty for the default.
    pub channel: String,
    /// Master_Host / Source_Host.
    pub source_host: String,
    /// Master_Port / Source_Port.
    pub source_port: u16,
    pub io_state: IoThreadState,
    pub sql_running: bool,
    /// Seconds_Behind_Master / Seconds_Behind_Source; None when the server reports NULL.
    pub seconds_behind: Option<u64>,
    pub last_io_errno: u32,
    pub last_io_error: String,
    pub last_sql_errno: u32,
    pub last_sql_error: String,
    /// MariaDB `Using_Gtid` (No, Current_Pos, Slave_Pos); MySQL: "Yes" when Auto_Position=1.
    pub using_gtid: String,
    /// GTIDs received from the source: MariaDB Gtid_IO_Pos, MySQL Retrieved_Gtid_Set.
    pub received_gtids: String,
    /// MySQL Executed_Gtid_Set (MariaDB keeps this in @@gtid_slave_pos instead; empty there).
    pub executed_gtids: String,
    /// SQL_Delay / SQL_Delay seconds (delayed replica).
    pub sql_delay: u64,
    /// Master_Server_Id / Source_Server_Id.
    pub source_server_id: u32,
    /// Slave_heartbeat_period (MariaDB) / heartbeat period, in seconds, if known.
    pub heartbeat_period: Option<f64>,
    /// MariaDB Slave_received_heartbeats; None elsewhere.
    pub received_heartbeats: Option<u64>,
    /// Relay_Master_Log_File / Relay_Source_Log_File and Exec_Master_Log_Pos.
    pub exec_source_log_file: String,
    pub exec_source_log_pos: u64,
    /// Master_Log_File / Source_Log_File and Read_Master_Log_Pos.
    pub read_source_log_file: String,
    pub read_source_log_pos: u64,
}

/// Galera status of one node, from SHOW GLOBAL STATUS LIKE 'wsrep_%' and wsrep variables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WsrepStatus {
    /// wsrep_on (variable) and a loaded provider: false means "not a Galera node".
    pub enabled: bool,
    /// wsrep_local_state_comment: Synced, Donor/Desynced, Joining, Joined, Initialized…
    pub local_state: String,
    /// wsrep_cluster_status: Primary, non-Primary, Disconnected.
    pub cluster_status: String,
    pub cluster_size: u32,
    pub cluster_state_uuid: String,
    /// wsrep_last_committed: the seqno this node has committed.
    pub last_committed: i64,
    pub ready: bool,
    pub connected: bool,
    /// wsrep_incoming_addresses: the members' client addresses, as the server lists them.
    pub incoming_addresses: Vec<String>,
    /// wsrep_local_recv_queue and wsrep_flow_control_paused (fraction of time paused).
    pub recv_queue: u64,
    pub flow_control_paused: f64,
}

impl WsrepStatus {
    /// True when this node is a member of a Primary component.
    pub fn is_primary_component(&self) -> bool {
        self.cluster_status == "Primary"
    }

    /// True when this node is Synced with its cluster.
    pub fn is_synced(&self) -> bool {
        self.local_state == "Synced"
    }
}
