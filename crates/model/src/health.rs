//! Node and cluster health, decided from monitoring snapshots.
//!
//! Three pure pieces: [`assess_node`] reads one successful sample and says what role the
//! node plays and whether it does its job; [`StateTracker`] adds hysteresis so that one
//! odd sample does not flip a node's state (but a refused connection, which is
//! unambiguous, does at once); [`assess_cluster`] derives the cluster's state from its
//! nodes. The monitor owns the I/O and calls these.

use serde::{Deserialize, Serialize};

use crate::snapshot::{ProbeErrorKind, ServerSample};
use crate::topology::{ClusterState, ClusterType, NodeState, Role};

/// Tunables of state derivation; defaults meet "SIGKILL shows offline within 3 s at a 1 s probe interval".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthPolicy {
    /// Consecutive timed-out or failed probes before a node is called offline.
    pub offline_after_failures: u32,
    /// Consecutive samples before online and degraded swap.
    pub degraded_after_samples: u32,
    /// Consecutive good probes before an offline node is called online again.
    pub online_after_successes: u32,
    /// Replication lag, in seconds, above which a replica is degraded.
    pub max_lag_seconds: u64,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        Self {
            offline_after_failures: 2,
            degraded_after_samples: 2,
            online_after_successes: 1,
            max_lag_seconds: 30,
        }
    }
}

/// What one good sample says about a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAssessment {
    pub role: Role,
    /// Online or Degraded (a sample exists, so never Offline).
    pub state: NodeState,
    /// Why the node is degraded; empty when online.
    pub reasons: Vec<String>,
}

/// Reads one sample: the node's role within a cluster of `cluster_type`, and whether it does its job.
pub fn assess_node(
    sample: &ServerSample,
    cluster_type: ClusterType,
    policy: &HealthPolicy,
) -> NodeAssessment {
    let mut reasons = Vec::new();
    let role = node_role(sample, cluster_type);
    match role {
        Role::Galera => {
            if let Some(w) = &sample.wsrep {
                if !w.is_primary_component() {
                    reasons.push(format!("wsrep cluster status is {}", w.cluster_status));
                }
                if !w.is_synced() {
                    reasons.push(format!("wsrep state is {}", w.local_state));
                }
                if !w.ready {
                    reasons.push("wsrep_ready is OFF".to_string());
                }
            }
        }
        Role::Replica => {
            for ch in &sample.replication {
                let name = if ch.channel.is_empty() {
                    String::new()
                } else {
                    format!(" (channel {})", ch.channel)
                };
                match ch.io_state {
                    crate::replication::IoThreadState::Running => {}
                    other => {
                        let what = match other {
                            crate::replication::IoThreadState::Connecting => "connecting",
                            _ => "stopped",
                        };
                        let err = if ch.last_io_error.is_empty() {
                            String::new()
                        } else {
                            format!(": {}", ch.last_io_error)
                        };
                        reasons.push(format!("replication IO thread {what}{name}{err}"));
                    }
                }
                if !ch.sql_running {
                    let err = if ch.last_sql_error.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", ch.last_sql_error)
                    };
                    reasons.push(format!("replication SQL thread stopped{name}{err}"));
                }
                if let Some(lag) = ch.seconds_behind {
                    let allowed = policy.max_lag_seconds + ch.sql_delay;
                    if lag > allowed {
                        reasons.push(format!("replication lag {lag}s above {allowed}s{name}"));
                    }
                }
            }
        }
        Role::Primary => {
            if sample.read_only {
                reasons.push("primary is read_only".to_string());
            }
        }
        Role::Standalone => {}
    }
    let state = if reasons.is_empty() {
        NodeState::Online
    } else {
        NodeState::Degraded
    };
    NodeAssessment {
        role,
        state,
        reasons,
    }
}

/// The role a sample shows: Galera when wsrep is on, replica when it replicates from
/// somewhere, otherwise primary (replication clusters) or standalone.
pub fn node_role(sample: &ServerSample, cluster_type: ClusterType) -> Role {
    if sample.wsrep.as_ref().is_some_and(|w| w.enabled) {
        return Role::Galera;
    }
    if sample.replication.iter().any(|c| !c.source_host.is_empty()) {
        return Role::Replica;
    }
    match cluster_type {
        ClusterType::Standalone => Role::Standalone,
        ClusterType::Galera => Role::Galera,
        ClusterType::Replication => Role::Primary,
    }
}

/// What a probe observed, as input to the tracker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    Reachable(NodeState),
    Unreachable(ProbeErrorKind),
}

/// A node state change with the samples that justified it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub from: Option<NodeState>,
    pub to: NodeState,
}

/// Hysteresis over observations: a node's state changes only after enough consecutive
/// observations agree. A refused connection or an authentication failure is certain
/// and counts at once; a timeout may be a hiccup and must repeat.
#[derive(Debug, Clone, Default)]
pub struct StateTracker {
    current: Option<NodeState>,
    pending: Option<(NodeState, u32)>,
}

impl StateTracker {
    pub fn current(&self) -> Option<NodeState> {
        self.current
    }

    /// Feeds one observation; returns the transition when the state changes.
    pub fn observe(&mut self, obs: &Observation, policy: &HealthPolicy) -> Option<Transition> {
        let (target, needed) = match obs {
            Observation::Unreachable(ProbeErrorKind::Refused | ProbeErrorKind::Auth) => {
                (NodeState::Offline, 1)
            }
            Observation::Unreachable(_) => (NodeState::Offline, policy.offline_after_failures),
            Observation::Reachable(s) => {
                let needed = if self.current == Some(NodeState::Offline) {
                    policy.online_after_successes
                } else {
                    policy.degraded_after_samples
                };
                (*s, needed)
            }
        };
        if self.current.is_none() {
            // The first observation of a node is taken as it is.
            self.current = Some(target);
            self.pending = None;
            return Some(Transition {
                from: None,
                to: target,
            });
        }
        if self.current == Some(target) {
            self.pending = None;
            return None;
        }
        let count = match self.pending {
            Some((s, n)) if s == target => n + 1,
            _ => 1,
        };
        if count >= needed.max(1) {
            let from = self.current;
            self.current = Some(target);
            self.pending = None;
            Some(Transition { from, to: target })
        } else {
            self.pending = Some((target, count));
            None
        }
    }
}

/// One node as [`assess_cluster`] sees it.
#[derive(Debug, Clone)]
pub struct NodeView<'a> {
    pub address: &'a str,
    pub role: Option<Role>,
    pub state: Option<NodeState>,
    pub sample: Option<&'a ServerSample>,
}

/// Derives a cluster's state from its nodes' states, with the reason.
pub fn assess_cluster(cluster_type: ClusterType, nodes: &[NodeView<'_>]) -> (ClusterState, String) {
    let count = nodes.len();
    let up: Vec<&NodeView<'_>> = nodes
        .iter()
        .filter(|n| matches!(n.state, Some(NodeState::Online | NodeState::Degraded)))
        .collect();
    let online = nodes
        .iter()
        .filter(|n| n.state == Some(NodeState::Online))
        .count();
    let not_online: Vec<String> = nodes
        .iter()
        .filter(|n| n.state != Some(NodeState::Online))
        .map(|n| {
            format!(
                "{} {}",
                n.address,
                n.state.map(|s| s.as_str()).unwrap_or("unknown")
            )
        })
        .collect();
    match cluster_type {
        ClusterType::Galera => {
            let primary: Vec<&&NodeView<'_>> = up
                .iter()
                .filter(|n| {
                    n.sample
                        .and_then(|s| s.wsrep.as_ref())
                        .is_some_and(|w| w.is_primary_component())
                })
                .collect();
            if primary.is_empty() {
                return (
                    ClusterState::Failed,
                    "no node is in a Primary component".to_string(),
                );
            }
            let size = primary
                .iter()
                .filter_map(|n| n.sample.and_then(|s| s.wsrep.as_ref()))
                .map(|w| w.cluster_size as usize)
                .max()
                .unwrap_or(0);
            if online == count && size == count {
                (
                    ClusterState::Healthy,
                    format!("all {count} nodes synced in the Primary component"),
                )
            } else {
                let mut why = format!("Primary component has {size} of {count} nodes");
                if !not_online.is_empty() {
                    why.push_str(&format!("; {}", not_online.join(", ")));
                }
                (ClusterState::Degraded, why)
            }
        }
        ClusterType::Replication => {
            let primaries: Vec<&&NodeView<'_>> = up
                .iter()
                .filter(|n| n.role == Some(Role::Primary))
                .collect();
            let writable = primaries
                .iter()
                .filter(|n| n.sample.is_some_and(|s| !s.read_only))
                .count();
            if primaries.is_empty() {
                return (ClusterState::Failed, "no primary is reachable".to_string());
            }
            if writable > 1 {
                return (
                    ClusterState::Degraded,
                    format!("{writable} writable primaries"),
                );
            }
            if online == count {
                (ClusterState::Healthy, format!("all {count} nodes online"))
            } else {
                (ClusterState::Degraded, not_online.join(", "))
            }
        }
        ClusterType::Standalone => match nodes.first().and_then(|n| n.state) {
            Some(NodeState::Online) => (ClusterState::Healthy, "server online".to_string()),
            Some(NodeState::Degraded) => (ClusterState::Degraded, not_online.join(", ")),
            _ => (ClusterState::Failed, "server not reachable".to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reach(s: NodeState) -> Observation {
        Observation::Reachable(s)
    }

    #[test]
    fn refused_is_offline_at_once_timeout_needs_two() {
        let p = HealthPolicy::default();
        let mut t = StateTracker::default();
        assert_eq!(
            t.observe(&reach(NodeState::Online), &p).unwrap().to,
            NodeState::Online
        );
        assert!(
            t.observe(&Observation::Unreachable(ProbeErrorKind::Timeout), &p)
                .is_none()
        );
        assert_eq!(t.current(), Some(NodeState::Online));
        let tr = t
            .observe(&Observation::Unreachable(ProbeErrorKind::Timeout), &p)
            .unwrap();
        assert_eq!(tr.to, NodeState::Offline);
        assert_eq!(
            t.observe(&reach(NodeState::Online), &p).unwrap().to,
            NodeState::Online
        );
        let tr = t
            .observe(&Observation::Unreachable(ProbeErrorKind::Refused), &p)
            .unwrap();
        assert_eq!(tr.from, Some(NodeState::Online));
        assert_eq!(tr.to, NodeState::Offline);
    }

    #[test]
    fn one_timeout_between_successes_does_not_flip() {
        let p = HealthPolicy::default();
        let mut t = StateTracker::default();
        t.observe(&reach(NodeState::Online), &p);
        assert!(
            t.observe(&Observation::Unreachable(ProbeErrorKind::Timeout), &p)
                .is_none()
        );
        assert!(t.observe(&reach(NodeState::Online), &p).is_none());
        assert!(
            t.observe(&Observation::Unreachable(ProbeErrorKind::Timeout), &p)
                .is_none()
        );
        assert_eq!(t.current(), Some(NodeState::Online));
    }

    #[test]
    fn degraded_needs_two_samples() {
        let p = HealthPolicy::default();
        let mut t = StateTracker::default();
        t.observe(&reach(NodeState::Online), &p);
        assert!(t.observe(&reach(NodeState::Degraded), &p).is_none());
        assert_eq!(
            t.observe(&reach(NodeState::Degraded), &p).unwrap().to,
            NodeState::Degraded
        );
        assert!(t.observe(&reach(NodeState::Online), &p).is_none());
        assert_eq!(
            t.observe(&reach(NodeState::Online), &p).unwrap().to,
            NodeState::Online
        );
    }

    fn sample(wsrep: Option<(&str, &str, u32)>, read_only: bool) -> ServerSample {
        use crate::replication::{Flavor, ServerVersion, WsrepStatus};
        ServerSample {
            version: ServerVersion {
                flavor: Flavor::MariaDb,
                major: 10,
                minor: 11,
                patch: 19,
                text: "10.11.19-MariaDB".into(),
            },
            server_id: 1,
            read_only,
            super_read_only: None,
            log_bin: true,
            log_slave_updates: true,
            gtid_executed: String::new(),
            gtid_binlog_pos: String::new(),
            replication: vec![],
            wsrep: wsrep.map(|(state, status, size)| WsrepStatus {
                enabled: true,
                local_state: state.into(),
                cluster_status: status.into(),
                cluster_size: size,
                cluster_state_uuid: "u".into(),
                last_committed: 1,
                ready: status == "Primary",
                connected: true,
                incoming_addresses: vec![],
                recv_queue: 0,
                flow_control_paused: 0.0,
            }),
            binlog_dump_clients: vec![],
            status: Default::default(),
            uptime_seconds: 1,
            hostname: String::new(),
            port: 3306,
            datadir: String::new(),
        }
    }

    #[test]
    fn galera_cluster_states() {
        let synced = sample(Some(("Synced", "Primary", 3)), false);
        let synced2 = sample(Some(("Synced", "Primary", 2)), false);
        let nonprim = sample(Some(("Initialized", "non-Primary", 1)), false);
        fn v(s: Option<NodeState>, smp: Option<&ServerSample>) -> NodeView<'_> {
            NodeView {
                address: "a",
                role: Some(Role::Galera),
                state: s,
                sample: smp,
            }
        }
        let all = [
            v(Some(NodeState::Online), Some(&synced)),
            v(Some(NodeState::Online), Some(&synced)),
            v(Some(NodeState::Online), Some(&synced)),
        ];
        assert_eq!(
            assess_cluster(ClusterType::Galera, &all).0,
            ClusterState::Healthy
        );
        let one_down = [
            v(Some(NodeState::Online), Some(&synced2)),
            v(Some(NodeState::Online), Some(&synced2)),
            v(Some(NodeState::Offline), None),
        ];
        let (s, why) = assess_cluster(ClusterType::Galera, &one_down);
        assert_eq!(s, ClusterState::Degraded);
        assert!(why.contains("2 of 3"), "{why}");
        // Minority partitions only: nobody in a Primary component.
        let split = [
            v(Some(NodeState::Degraded), Some(&nonprim)),
            v(Some(NodeState::Degraded), Some(&nonprim)),
            v(Some(NodeState::Offline), None),
        ];
        assert_eq!(
            assess_cluster(ClusterType::Galera, &split).0,
            ClusterState::Failed
        );
        assert_eq!(
            assess_node(&nonprim, ClusterType::Galera, &HealthPolicy::default()).state,
            NodeState::Degraded
        );
    }

    #[test]
    fn replication_cluster_states() {
        let writable = sample(None, false);
        let ro = sample(None, true);
        fn v(role: Role, s: Option<NodeState>, smp: Option<&ServerSample>) -> NodeView<'_> {
            NodeView {
                address: "a",
                role: Some(role),
                state: s,
                sample: smp,
            }
        }
        let ok = [
            v(Role::Primary, Some(NodeState::Online), Some(&writable)),
            v(Role::Replica, Some(NodeState::Online), Some(&ro)),
        ];
        assert_eq!(
            assess_cluster(ClusterType::Replication, &ok).0,
            ClusterState::Healthy
        );
        let dead_primary = [
            v(Role::Primary, Some(NodeState::Offline), None),
            v(Role::Replica, Some(NodeState::Degraded), Some(&ro)),
        ];
        assert_eq!(
            assess_cluster(ClusterType::Replication, &dead_primary).0,
            ClusterState::Failed
        );
        let two_writers = [
            v(Role::Primary, Some(NodeState::Online), Some(&writable)),
            v(Role::Primary, Some(NodeState::Online), Some(&writable)),
        ];
        let (s, why) = assess_cluster(ClusterType::Replication, &two_writers);
        assert_eq!(s, ClusterState::Degraded);
        assert!(why.contains("2 writable"), "{why}");
        // A read-only primary is degraded: it takes no writes.
        let a = assess_node(&ro, ClusterType::Replication, &HealthPolicy::default());
        assert_eq!((a.role, a.state), (Role::Primary, NodeState::Degraded));
    }
}
