//! Whole-cluster Galera recovery: when no node the operator wants running is in a
//! Primary component, [`decide_galera_recovery`] says whether to recover now, wait or
//! refuse; a recovery is a `galera_recovery` job under the retry budget (it collects the
//! stopped nodes' positions and carries out the plan it makes from them), a refusal an
//! alarm that names what blocks it.

use crate::ha::galera::{GaleraAction, GaleraNode, GaleraView, decide_galera_recovery};
use crate::ha::memory::{AlarmKind, Repair};
use crate::ha::retry::RetryVerdict;
use crate::job::JobSpec;

use super::{NodeFacts, Note, Observations, Pass};

/// True when recovery is Galera's business now (node restarts wait).
pub(super) fn decide(out: &mut Pass<'_>, obs: &mut Observations) -> bool {
    let snap = out.snap;
    // Nodes an operator stopped are not recovered (a stopped cluster stays stopped).
    let nodes: Vec<GaleraNode> = snap
        .nodes
        .iter()
        .filter(|n| n.deployed && n.desired_running)
        .map(NodeFacts::galera_node)
        .collect();
    if nodes.is_empty() {
        return false;
    }
    let any_primary = nodes
        .iter()
        .any(|n| n.wsrep.as_ref().is_some_and(|w| w.is_primary_component()));
    if any_primary {
        if obs.no_primary_since.remove(&snap.id).is_some() {
            out.clear_attempts(Repair::GaleraRecovery, "");
            out.clear(AlarmKind::GaleraRecovery, "", None);
        }
        return false;
    }
    let since = *obs.no_primary_since.entry(snap.id).or_insert(out.now);
    let view = GaleraView {
        nodes,
        no_primary_since: Some(since),
        maintenance: snap.maintenance.clone(),
    };
    let decision = decide_galera_recovery(&view, &snap.policy, out.now);
    match decision.action {
        GaleraAction::CollectPositions { .. } | GaleraAction::Bootstrap { .. } => {
            let spec = JobSpec::GaleraRecovery {
                cluster: snap.name.clone(),
                bootstrap_from: None,
                force: false,
                automatic: true,
                reasons: decision.reasons.clone(),
            };
            if out.would_wait(&spec) {
                return true;
            }
            let attempts = out.attempts(Repair::GaleraRecovery, "");
            let first = attempts.first().copied().unwrap_or(out.now);
            match out
                .budget(chrono::Duration::zero())
                .next(first, &attempts, out.now)
            {
                RetryVerdict::Exhausted { attempts: max } => {
                    let message = format!(
                        "alarm: the Galera cluster has no Primary component and {max} recovery attempts failed; {}",
                        decision.explain()
                    );
                    out.raise(AlarmKind::GaleraRecovery, "", message);
                }
                RetryVerdict::Wait { .. } => {}
                RetryVerdict::Go { attempt } => {
                    let message = format!(
                        "recovering the Galera cluster (job {{job}}, attempt {attempt}): {}",
                        decision.explain()
                    );
                    out.submit(
                        spec,
                        Some((Repair::GaleraRecovery, String::new())),
                        Note {
                            kind: crate::event::EventKind::AutoGaleraRecovery,
                            node: None,
                            message,
                        },
                    );
                }
            }
            true
        }
        GaleraAction::Refuse => {
            let message = format!("alarm: Galera recovery refused: {}", decision.explain());
            out.raise(AlarmKind::GaleraRecovery, "", message);
            true
        }
        GaleraAction::Wait { .. } | GaleraAction::NoAction => false,
    }
}
