//! Replication clusters: adoption of a primary promoted outside nines, the topology the
//! failover decision may trust, the semi-sync fallback alarm, automatic failover under
//! the retry budget, and the rejoin of fenced former primaries.

use chrono::Duration;

use crate::endpoint::Endpoint;
use crate::ha::detect::{PrimaryHealth, primary_health};
use crate::ha::failover::{FailoverAction, decide_failover};
use crate::ha::maintenance::window_for;
use crate::ha::memory::{AlarmKind, Repair};
use crate::ha::retry::RetryVerdict;
use crate::ha::view::{KnownTopology, ReplicationView, channel_from};
use crate::job::JobSpec;
use crate::replication::IoThreadState;

use super::{Intent, Note, Observations, Pass};
use crate::ha::fence::Fence;

/// True when a failover is due or under way (node restarts then wait).
pub(super) fn decide(out: &mut Pass<'_>, obs: &mut Observations) -> bool {
    let snap = out.snap;
    let (Some(primary), Some(base_view)) = (snap.primary.clone(), snap.replication.as_ref()) else {
        return false;
    };
    let now = out.now;
    let fenced: Vec<Endpoint> = snap
        .nodes
        .iter()
        .filter(|n| n.fence.is_some())
        .map(|n| n.endpoint.clone())
        .collect();
    if let Some(adopted) = adopt_primary(base_view, &primary, &fenced)
        && !out.busy()
    {
        // The topology moved without nines (a person promoted a replica, or a controller
        // stopped between a promotion and its recording): follow it.
        out.intents.push(Intent::Adopt {
            primary: adopted.clone(),
            old: primary.clone(),
            fence: Fence::PendingRejoin(format!(
                "replaced by {adopted} as the primary while it was down; read-only until its GTIDs are proven to be in {adopted}'s history"
            )),
            note: Note {
                kind: crate::event::EventKind::PrimaryAdopted,
                node: Some(adopted.clone()),
                message: format!(
                    "{adopted} is the primary now: the designated primary {primary} does not answer, and {adopted} is the only writable node without a source, with every other reachable node replicating from it; {primary} is fenced until its rejoin check"
                ),
            },
        });
        obs.confirmed.insert(snap.id, (adopted, now));
        return true;
    }
    if topology_healthy(base_view, &primary, &fenced) {
        let newly = obs
            .confirmed
            .get(&snap.id)
            .is_none_or(|(p, _)| *p != primary);
        if newly {
            // From now on this controller can tell which server failed: say so once.
            let replicas = base_view
                .nodes
                .iter()
                .filter(|n| n.endpoint != primary && n.is_reachable())
                .count();
            out.intents.push(Intent::Event(Note {
                kind: crate::event::EventKind::FailoverArmed,
                node: Some(primary.clone()),
                message: format!(
                    "{primary} seen as the primary with its {replicas} reachable replica(s) replicating: nines knows this topology, and automatic failover can act should the primary fail"
                ),
            }));
        }
        obs.confirmed.insert(snap.id, (primary.clone(), now));
        out.clear(AlarmKind::Failover, "", None);
        out.clear_attempts(Repair::Failover, "");
    }
    let confirmed_at = obs
        .confirmed
        .get(&snap.id)
        .filter(|(p, _)| *p == primary)
        .map(|(_, at)| *at);
    let primary_answers = base_view.node(&primary).is_some_and(|n| n.is_reachable());
    let mut view = base_view.clone();
    view.topology = confirmed_at.map(|at| KnownTopology {
        primary: primary.clone(),
        confirmed_at: at,
    });
    let mut policy = snap.policy.clone();
    // A primary an operator stopped (`node stop --force`, `cluster stop`) is not failed
    // over: the operator chose to have no writer; a switchover is how to move it.
    if snap
        .nodes
        .iter()
        .any(|n| n.endpoint == primary && !n.desired_running)
    {
        policy.automatic_recovery = false;
    }
    semi_sync(out, &view);
    let decision = decide_failover(&view, &policy, now);
    match &decision.action {
        FailoverAction::Failover(plan) => {
            let spec = JobSpec::Failover {
                cluster: snap.name.clone(),
                to: Some(plan.candidate.clone()),
                force: false,
                automatic: true,
                reasons: decision.reasons.clone(),
            };
            // A data copy for a new node (hours, maybe) does not hold a failover back:
            // the lanes let it run beside it.
            if out.would_wait(&spec) {
                return true;
            }
            let attempts = out.attempts(Repair::Failover, "");
            let first = attempts.first().copied().unwrap_or(now);
            match out.budget(Duration::zero()).next(first, &attempts, now) {
                RetryVerdict::Exhausted { attempts: max } => {
                    let message = format!(
                        "alarm: {max} failover jobs failed for this outage; nines stops trying, a person must decide (`nines job list --cluster {}` shows why). {}",
                        snap.name,
                        decision.explain()
                    );
                    out.raise(AlarmKind::Failover, "", message);
                    return false;
                }
                RetryVerdict::Wait { .. } => return true,
                RetryVerdict::Go { .. } => {}
            }
            let message = format!(
                "failing over from {} to {} (job {{job}}): {}",
                plan.old_primary,
                plan.candidate,
                decision.explain()
            );
            let old = plan.old_primary.clone();
            out.submit(
                spec,
                Some((Repair::Failover, String::new())),
                Note {
                    kind: crate::event::EventKind::AutoFailover,
                    node: Some(old),
                    message,
                },
            );
            return true;
        }
        FailoverAction::Refuse => {
            // Not while a job (the failover itself) changes the topology, and not about a
            // topology never confirmed while its designated primary answers (a node
            // restart's business).
            let quiet = (confirmed_at.is_none() && primary_answers) || out.busy();
            if !quiet {
                let message = format!("alarm: automatic failover refused: {}", decision.explain());
                out.raise(AlarmKind::Failover, "", message);
            }
        }
        FailoverAction::NoAction => {
            // The replicas still receive from a primary this controller cannot reach: no
            // failover (rightly), but a person should know the controller is cut off.
            let verdict = primary_health(&view, &policy, now);
            match verdict.action {
                PrimaryHealth::Unreachable => {
                    let message = format!(
                        "alarm: the primary does not answer nines but its replicas still receive from it, so nines does not fail over: {}",
                        verdict.explain()
                    );
                    out.raise(AlarmKind::Failover, "", message);
                }
                PrimaryHealth::Alive => {
                    out.clear(AlarmKind::Failover, "", None);
                }
                _ => {}
            }
        }
    }
    rejoins(out, &view, &policy);
    false
}

/// Rejoin jobs for fenced former primaries that answer again, under the budget.
fn rejoins(out: &mut Pass<'_>, view: &ReplicationView, policy: &crate::ha::HaPolicy) {
    let snap = out.snap;
    for node in &snap.nodes {
        let addr = node.endpoint.to_string();
        if !node.pending_rejoin() {
            // Rejoined (or fenced for good, with its own alarm): its attempts are over.
            out.clear_attempts(Repair::Rejoin, &addr);
            continue;
        }
        let reachable = view.node(&node.endpoint).is_some_and(|n| n.is_reachable());
        let in_maintenance = window_for(&view.maintenance, &node.endpoint, out.now).is_some();
        if !reachable || !policy.automatic_recovery || in_maintenance {
            continue;
        }
        let attempts = out.attempts(Repair::Rejoin, &addr);
        let first = attempts.first().copied().unwrap_or(out.now);
        let RetryVerdict::Go { attempt } =
            out.budget(Duration::zero()).next(first, &attempts, out.now)
        else {
            continue;
        };
        let spec = JobSpec::Rejoin {
            cluster: snap.name.clone(),
            node: node.endpoint.clone(),
        };
        if out.would_wait(&spec) {
            return;
        }
        let message = format!(
            "{addr} answers again: checking its GTIDs and rejoining it as a replica (job {{job}}, attempt {attempt})"
        );
        out.submit(
            spec,
            Some((Repair::Rejoin, addr)),
            Note {
                kind: crate::event::EventKind::AutoRejoin,
                node: Some(node.endpoint.clone()),
                message,
            },
        );
    }
}

/// Raises an alarm when a semi-sync primary fell back to asynchronous replication (its
/// commits no longer wait for a replica), and clears it with a note when it is back.
fn semi_sync(out: &mut Pass<'_>, view: &ReplicationView) {
    if !out.snap.semi_sync {
        return;
    }
    let Some(state) = view.primary_semi_sync else {
        return;
    };
    if !state.active {
        let message = format!(
            "alarm: the primary's semi-synchronous replication is off ({} semi-sync replica(s) connected): commits are acknowledged before any replica has them, and an automatic failover will refuse to run unless a replica provably has everything",
            state.clients
        );
        out.raise(AlarmKind::SemiSync, "", message);
    } else if state.clients > 0 {
        let note = Note {
            kind: crate::event::EventKind::SemiSync,
            node: None,
            message: format!(
                "semi-synchronous replication is on again ({} replica(s) acknowledging)",
                state.clients
            ),
        };
        out.clear(AlarmKind::SemiSync, "", Some(note));
    }
}

/// Whether the designated primary answers with every reachable, unfenced other node
/// replicating from it (IO and SQL threads running): the topology this controller can
/// vouch for, should the primary fail later.
pub fn topology_healthy(view: &ReplicationView, primary: &Endpoint, fenced: &[Endpoint]) -> bool {
    let Some(p) = view.node(primary) else {
        return false;
    };
    if !p.is_reachable() {
        return false;
    }
    let sid = p.latest().map(|s| s.sample.server_id);
    view.nodes
        .iter()
        .filter(|n| &n.endpoint != primary && !fenced.contains(&n.endpoint))
        .filter(|n| n.is_reachable())
        .all(|n| {
            n.latest().is_some_and(|s| {
                channel_from(&s.sample, primary, sid)
                    .is_some_and(|ch| ch.io_state == IoThreadState::Running && ch.sql_running)
            })
        })
}

/// The node to adopt as the primary when the topology moved without nines: the designated
/// primary does not answer, exactly one other reachable node is writable and replicates
/// from nobody, and every other reachable, unfenced node replicates from it.
pub fn adopt_primary(
    view: &ReplicationView,
    primary: &Endpoint,
    fenced: &[Endpoint],
) -> Option<Endpoint> {
    let designated = view.node(primary)?;
    if designated.is_reachable() {
        return None;
    }
    let writable: Vec<&Endpoint> = view
        .nodes
        .iter()
        .filter(|n| &n.endpoint != primary && n.is_reachable())
        .filter(|n| {
            n.latest().is_some_and(|s| {
                !s.sample.read_only && s.sample.replication.is_empty() && s.sample.wsrep.is_none()
            })
        })
        .map(|n| &n.endpoint)
        .collect();
    let [only] = writable.as_slice() else {
        return None;
    };
    let mut ignore = fenced.to_vec();
    ignore.push(primary.clone());
    topology_healthy(view, only, &ignore).then(|| (*only).clone())
}
