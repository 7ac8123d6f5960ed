//! What a deploy needs to decide before touching a host: each node's file layout from the
//! directory template, the server's settings sized from its host, and the configuration
//! file rendered from a template the user can override.
//!
//! All pure: the deploy job (nines-ops) gathers host facts, calls these, then acts.

pub mod config;
pub mod layout;
pub mod sizing;

pub use config::{ConfigError, ConfigInput, DEFAULT_TEMPLATE, render_config};
pub use layout::{DEFAULT_DATADIR_TEMPLATE, LayoutError, NodeLayout};
pub use sizing::{HostShare, Sizing, size_for};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How a node's server process is run on its host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ServiceKind {
    /// A systemd unit nines writes (Restart=no: nines decides restarts).
    Systemd,
    /// A background process with a pid file, supervised by nines.
    Process,
}

/// What nines chose for a cluster it deployed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ClusterSettings {
    pub datadir_template: String,
    pub semi_sync: bool,
    /// The user's configuration template, when not the default.
    pub config_template: Option<String>,
    /// Explicit buffer pool size, when the user overrode the sizing.
    pub innodb_buffer_pool_size: Option<u64>,
}

/// What nines chose for one node it deployed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NodeSettings {
    pub layout: NodeLayout,
    pub server_id: u32,
    pub service: ServiceKind,
}

/// Purposes of the accounts nines keeps for a deployed cluster.
pub mod accounts {
    /// nines's own administration account (all privileges).
    pub const ADMIN: &str = "admin";
    /// Read-only monitoring account the monitor uses.
    pub const MONITOR: &str = "monitor";
    /// Replication account replicas connect with.
    pub const REPLICATION: &str = "replication";
    /// The user's own administrator, created from --db-admin-user.
    pub const USER_ADMIN: &str = "user_admin";
}
