//! The vocabulary of cluster shape and health: cluster types, node roles, node and cluster states.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How a cluster's nodes relate to one another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClusterType {
    /// Galera: every node a writable member of one synchronous group.
    Galera,
    /// Asynchronous or semi-synchronous replication from one primary.
    Replication,
    /// One server on its own.
    Standalone,
}

/// What a node does in its cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Primary,
    Replica,
    Galera,
    Standalone,
}

/// A node's health as the monitor sees it, after hysteresis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    /// Reachable and doing its job.
    Online,
    /// Reachable but not doing all of its job (replication stopped or lagging, Galera not Synced…).
    Degraded,
    /// Not reachable.
    Offline,
}

/// A cluster's health, derived from its nodes' states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClusterState {
    /// Every node online.
    Healthy,
    /// Serving, but some node is degraded or offline.
    Degraded,
    /// Not serving writes: no primary, or no Galera Primary component.
    Failed,
}

/// What the operator wants of a node: whether nines keeps it running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Desired {
    /// nines starts it when it stops (the default).
    Running,
    /// Stopped on purpose (`node stop`): nines leaves it down.
    Stopped,
}

/// How far nines got deploying a cluster it created (imported clusters have none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeployState {
    /// The deploy job is running.
    Deploying,
    /// Every node was installed and started.
    Deployed,
    /// The deploy job failed; `cluster create` with the same name tries again.
    Failed,
}

/// `as_str`, `Display` and `FromStr` (naming every accepted word in its error) for an
/// enum of states stored and shown as words; used across the model.
macro_rules! str_enum {
    ($t:ty { $($v:ident => $s:literal),* $(,)? }) => {
        impl $t {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),* }
            }
        }
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl std::str::FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($s => Ok(Self::$v),)*
                    other => Err(format!(
                        "`{other}` is not one of: {}",
                        [$($s),*].join(", ")
                    )),
                }
            }
        }
    };
}
pub(crate) use str_enum;

str_enum!(ClusterType { Galera => "galera", Replication => "replication", Standalone => "standalone" });
str_enum!(Role { Primary => "primary", Replica => "replica", Galera => "galera", Standalone => "standalone" });
str_enum!(NodeState { Online => "online", Degraded => "degraded", Offline => "offline" });
str_enum!(ClusterState { Healthy => "healthy", Degraded => "degraded", Failed => "failed" });
str_enum!(Desired { Running => "running", Stopped => "stopped" });
str_enum!(DeployState { Deploying => "deploying", Deployed => "deployed", Failed => "failed" });

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for t in [
            ClusterType::Galera,
            ClusterType::Replication,
            ClusterType::Standalone,
        ] {
            assert_eq!(t.as_str().parse::<ClusterType>().unwrap(), t);
            assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"{t}\""));
        }
        for d in [Desired::Running, Desired::Stopped] {
            assert_eq!(d.as_str().parse::<Desired>().unwrap(), d);
            assert_eq!(serde_json::to_string(&d).unwrap(), format!("\"{d}\""));
        }
        for d in [
            DeployState::Deploying,
            DeployState::Deployed,
            DeployState::Failed,
        ] {
            assert_eq!(d.as_str().parse::<DeployState>().unwrap(), d);
            assert_eq!(serde_json::to_string(&d).unwrap(), format!("\"{d}\""));
        }
        assert!(
            "gallera"
                .parse::<ClusterType>()
                .unwrap_err()
                .contains("galera")
        );
    }
}
