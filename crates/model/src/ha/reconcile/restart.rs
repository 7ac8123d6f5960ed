//! Node restarts: every deployed node whose server refuses connections goes to
//! [`decide_node_restart`], with its attempts of the current outage.

use crate::ha::GaleraView;
use crate::ha::galera::joinable_primary;
use crate::ha::memory::{AlarmKind, Repair};
use crate::ha::node_recovery::{NodeKind, NodeRestartState, RestartAction, decide_node_restart};
use crate::ha::view::ProbeStatus;
use crate::job::{JobSpec, NodeAction};
use crate::snapshot::ProbeErrorKind;
use crate::topology::{ClusterType, NodeState};

use super::{NodeFacts, Note, Observations, Pass};

pub(super) fn decide(out: &mut Pass<'_>, obs: &mut Observations) {
    let snap = out.snap;
    let galera_has_primary = snap.cluster_type == ClusterType::Galera && {
        let view = GaleraView {
            nodes: snap.nodes.iter().map(NodeFacts::galera_node).collect(),
            no_primary_since: None,
            maintenance: Vec::new(),
        };
        joinable_primary(&view)
    };
    for node in snap.nodes.iter().filter(|n| n.deployed) {
        let addr = node.endpoint.to_string();
        let key = (snap.id, node.endpoint.clone());
        // "Down" is a refused connection: nothing listens, the server died. A timeout may
        // be the network; restarting cannot help there.
        let down = node.state == Some(NodeState::Offline)
            && matches!(
                node.probe,
                ProbeStatus::Failing {
                    kind: ProbeErrorKind::Refused,
                    ..
                }
            );
        if !down {
            obs.down_since.remove(&key);
            out.clear_attempts(Repair::NodeRestart, &addr);
            out.clear(AlarmKind::NodeRestart, &addr, None);
            continue;
        }
        let attempts = out.attempts(Repair::NodeRestart, &addr);
        // After a controller restart the outage began no later than its first recorded
        // attempt.
        let first = attempts.first().copied().unwrap_or(out.now).min(out.now);
        let since = *obs.down_since.entry(key).or_insert(first);
        let state = NodeRestartState {
            endpoint: node.endpoint.clone(),
            kind: match snap.cluster_type {
                ClusterType::Galera => NodeKind::Galera {
                    cluster_has_primary: galera_has_primary,
                },
                ClusterType::Replication => NodeKind::Replication,
                ClusterType::Standalone => NodeKind::Standalone,
            },
            desired_running: node.desired_running,
            down_since: Some(since),
            attempts,
        };
        let decision = decide_node_restart(&state, &snap.maintenance, &snap.policy, out.now);
        match decision.action {
            RestartAction::Restart { attempt } => {
                let spec = JobSpec::NodeAction {
                    cluster: snap.name.clone(),
                    node: node.endpoint.clone(),
                    action: NodeAction::Start,
                    force: false,
                };
                // An operator's job in flight goes first (the lanes decide).
                if out.would_wait(&spec) {
                    continue;
                }
                let message = format!(
                    "restarting {addr} (attempt {attempt}, job {{job}}): {}",
                    decision.explain()
                );
                out.submit(
                    spec,
                    Some((Repair::NodeRestart, addr)),
                    Note {
                        kind: crate::event::EventKind::AutoRestart,
                        node: Some(node.endpoint.clone()),
                        message,
                    },
                );
            }
            RestartAction::GiveUp => {
                let message = format!("alarm: {}", decision.explain());
                out.raise(AlarmKind::NodeRestart, &addr, message);
            }
            RestartAction::Wait { .. } | RestartAction::NoAction => {}
        }
    }
}
