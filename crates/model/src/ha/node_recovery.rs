//! Restarting one node whose server died while it should run.
//!
//! [`decide_node_restart`]:
//!
//! * Nothing when the server runs, when the operator wants it stopped, when the node or
//!   its cluster is in maintenance (a node in maintenance is never touched), or when
//!   automatic recovery is off.
//! * A Galera node whose cluster has no Primary component is left to cluster recovery
//!   ([`crate::ha::galera`]): a plain start cannot join, and a node must never bootstrap
//!   on its own (mariadb-operator#1626, "conflicting prims").
//! * Otherwise wait [`HaPolicy::restart_grace`] after the server went down (systemd or
//!   mysqld_safe may bring it back first; ClusterControl waits 30 s), then restart, and
//!   after a failed restart wait [`HaPolicy::restart_backoff`], doubled each time, up to
//!   [`HaPolicy::max_restart_attempts`] (the [`RetryBudget`] every repair shares); then
//!   give up and raise an alarm, since a server that keeps dying needs a person (disk
//!   full, corrupt table, bad configuration).
//!
//! Attempts made before the current outage began are ignored, so the controller need
//! not clear them when the server comes back. A Galera node is started plainly and
//! joins by IST when a donor's gcache still holds the gap (SST otherwise); a
//! replication node starts read-only, and an old primary waits for the rejoin check.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::endpoint::Endpoint;
use crate::ha::maintenance::{Maintenance, window_for};
use crate::ha::policy::HaPolicy;
use crate::ha::retry::{RetryBudget, RetryVerdict};
use crate::ha::{Decision, at, span};

/// What kind of node is restarted, and what restarting it depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    Replication,
    Standalone,
    Galera {
        /// Some other node is in a Primary component this node can join.
        cluster_has_primary: bool,
    },
}

/// One node's restart history in its current outage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRestartState {
    pub endpoint: Endpoint,
    pub kind: NodeKind,
    /// The operator wants the server running (not stopped by `node stop`).
    pub desired_running: bool,
    /// When the server was first seen down (connection refused, or no process on the
    /// host); None while it runs.
    pub down_since: Option<DateTime<Utc>>,
    /// When nines started restarts of it, oldest first.
    pub attempts: Vec<DateTime<Utc>>,
}

/// What to do about a node whose server is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestartAction {
    NoAction,
    /// Look again at `until`.
    Wait {
        until: DateTime<Utc>,
    },
    /// Restart it; `attempt` counts from 1 within this outage.
    Restart {
        attempt: u32,
    },
    /// Out of attempts: raise an alarm (the reasons say why).
    GiveUp,
}

/// [`decide_node_restart`]'s answer.
pub type RestartDecision = Decision<RestartAction>;

/// Decides whether to restart `node` now; see the module docs for the rules.
pub fn decide_node_restart(
    node: &NodeRestartState,
    maintenance: &[Maintenance],
    policy: &HaPolicy,
    now: DateTime<Utc>,
) -> RestartDecision {
    let e = &node.endpoint;
    let no_action = |why: String| Decision::new(RestartAction::NoAction, vec![why]);
    let Some(down) = node.down_since else {
        return no_action(format!("{e}'s server runs"));
    };
    let outage = format!(
        "{e}'s server is down since {} ({} ago)",
        at(down),
        span(now - down)
    );
    if !node.desired_running {
        return no_action(format!("{outage}, as the operator wants it stopped"));
    }
    if let Some(m) = window_for(maintenance, e, now) {
        return no_action(format!(
            "{outage}, but {}: nines does not touch it",
            m.describe()
        ));
    }
    if !policy.automatic_recovery {
        return no_action(format!(
            "{outage}, but automatic recovery is disabled for this cluster"
        ));
    }
    if node.kind
        == (NodeKind::Galera {
            cluster_has_primary: false,
        })
    {
        return no_action(format!(
            "{outage}, and no node is in a Primary component it could join: cluster recovery decides, a node never bootstraps on its own"
        ));
    }
    let budget = RetryBudget::from_policy(policy, policy.restart_grace);
    let attempts = RetryBudget::in_outage(down, &node.attempts);
    let max = policy.max_restart_attempts;
    let attempt = match budget.next(down, &attempts, now) {
        RetryVerdict::Exhausted { attempts: done } => {
            let when: Vec<String> = attempts.iter().map(|a| at(*a)).collect();
            return Decision::new(
                RestartAction::GiveUp,
                vec![
                    outage,
                    format!(
                        "still down after {done} restart(s) (at {}), the most allowed is {max}: nines stops restarting it and raises an alarm; look at its error log",
                        when.join(", ")
                    ),
                ],
            );
        }
        RetryVerdict::Wait { until: next } => {
            let done = attempts.len();
            let why = if done == 0 {
                format!(
                    "the grace period of {} lets it come back by itself",
                    span(policy.restart_grace)
                )
            } else {
                format!(
                    "restart {done} of {max} did not bring it back; the next waits {}",
                    span(next - attempts.last().copied().unwrap_or(down))
                )
            };
            return Decision::new(
                RestartAction::Wait { until: next },
                vec![outage, format!("{why}: look again at {}", at(next))],
            );
        }
        RetryVerdict::Go { attempt } => attempt,
    };
    let how = match node.kind {
        NodeKind::Galera { .. } => {
            "start it plainly (never --wsrep-new-cluster): it joins the Primary component by IST when a donor's gcache still holds the gap, by SST otherwise"
        }
        NodeKind::Replication => {
            "start it read-only; if it was the primary and another was promoted, it stays fenced until the rejoin check"
        }
        NodeKind::Standalone => "start it",
    };
    Decision::new(
        RestartAction::Restart { attempt },
        vec![
            outage,
            format!("it should run: restart attempt {attempt} of {max}"),
            how.to_string(),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ha::maintenance::MaintenanceScope;
    use crate::ha::testkit::{assert_mentions, ep, t};

    fn state(kind: NodeKind, down: Option<i64>, attempts: &[i64]) -> NodeRestartState {
        NodeRestartState {
            endpoint: ep(2),
            kind,
            desired_running: true,
            down_since: down.map(t),
            attempts: attempts.iter().map(|s| t(*s)).collect(),
        }
    }

    #[test]
    fn restart_scenarios() {
        use NodeKind::{Galera, Replication, Standalone};
        use RestartAction::*;
        let galera_ok = Galera {
            cluster_has_primary: true,
        };
        let node_window = Maintenance {
            scope: MaintenanceScope::Node(ep(2)),
            reason: "memory upgrade".into(),
            since: t(-100),
            until: None,
        };
        let cluster_window = Maintenance {
            scope: MaintenanceScope::Cluster,
            ..node_window.clone()
        };
        let stopped = NodeRestartState {
            desired_running: false,
            ..state(Replication, Some(-60), &[])
        };
        // (name, state, maintenance, want, needle)
        let cases: Vec<(
            &str,
            NodeRestartState,
            Vec<Maintenance>,
            RestartAction,
            &str,
        )> = vec![
            (
                "server runs",
                state(Replication, None, &[]),
                vec![],
                NoAction,
                "runs",
            ),
            (
                "just died: grace period",
                state(Replication, Some(-2), &[]),
                vec![],
                Wait { until: t(3) },
                "grace period of 5 s",
            ),
            (
                "grace over: first restart",
                state(Replication, Some(-6), &[]),
                vec![],
                Restart { attempt: 1 },
                "restart attempt 1 of 3",
            ),
            (
                "after a failed restart: back off",
                state(Replication, Some(-20), &[-3]),
                vec![],
                Wait { until: t(7) },
                "restart 1 of 3 did not bring it back; the next waits 10 s",
            ),
            (
                "second restart",
                state(Standalone, Some(-30), &[-11]),
                vec![],
                Restart { attempt: 2 },
                "restart attempt 2 of 3",
            ),
            (
                "backoff doubles",
                state(Replication, Some(-60), &[-40, -15]),
                vec![],
                Wait { until: t(5) },
                "the next waits 20 s",
            ),
            (
                "out of retries: alarm",
                state(Replication, Some(-100), &[-90, -70, -40]),
                vec![],
                GiveUp,
                "still down after 3 restart(s)",
            ),
            (
                "attempts of an earlier outage do not count",
                state(Replication, Some(-10), &[-900, -800, -700]),
                vec![],
                Restart { attempt: 1 },
                "restart attempt 1 of 3",
            ),
            (
                "node in maintenance",
                state(Replication, Some(-60), &[]),
                vec![node_window],
                NoAction,
                "memory upgrade",
            ),
            (
                "cluster in maintenance",
                state(Replication, Some(-60), &[]),
                vec![cluster_window],
                NoAction,
                "the cluster is in maintenance",
            ),
            (
                "desired stopped",
                stopped,
                vec![],
                NoAction,
                "wants it stopped",
            ),
            (
                "Galera node, cluster has a Primary: rejoin by IST",
                state(galera_ok, Some(-6), &[]),
                vec![],
                Restart { attempt: 1 },
                "IST",
            ),
            (
                "Galera node, no Primary component: cluster recovery's job",
                state(
                    Galera {
                        cluster_has_primary: false,
                    },
                    Some(-60),
                    &[],
                ),
                vec![],
                NoAction,
                "cluster recovery decides",
            ),
        ];
        for (name, s, m, want, needle) in cases {
            let d = decide_node_restart(&s, &m, &HaPolicy::default(), t(0));
            assert_eq!(d.action, want, "{name}: {:#?}", d.reasons);
            assert_mentions(&d.reasons, needle);
        }
        let off = HaPolicy {
            automatic_recovery: false,
            ..HaPolicy::default()
        };
        let d = decide_node_restart(&state(Replication, Some(-60), &[]), &[], &off, t(0));
        assert_eq!(d.action, NoAction);
        assert_mentions(&d.reasons, "automatic recovery is disabled");
    }
}
