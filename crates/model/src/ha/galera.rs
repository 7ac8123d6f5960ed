//! Galera full-cluster recovery: when no node is in a Primary component, which node
//! bootstraps, and when it is not safe to pick one.
//!
//! [`decide_galera_recovery`] (the choice itself is [`crate::galera::choose_bootstrap`]:
//! highest seqno of the one cluster UUID, never an arbitrary node):
//!
//! 1. Nothing while automatic recovery is off or the cluster is in maintenance.
//! 2. **A Primary component exists** (any reachable node says Primary): no cluster
//!    recovery. Nodes outside it are node recovery's business, and they join, never
//!    bootstrap ("conflicting prims", bigstack-oss/cubecos#1328).
//! 3. A node in its own maintenance window: refuse, since recovery touches every node.
//! 4. **Every server down** (connection refused, or the runtime confirmed no mysqld):
//!    go on at once, nothing can heal by itself. Otherwise **wait** until the Primary
//!    component has been gone for [`HaPolicy::galera_no_primary_timeout`]: Galera
//!    restores it itself when a partition heals or all members of the last component
//!    see each other again (pc.recovery).
//! 5. **A node that does not answer (timeout) and is not confirmed down: refuse.** It
//!    may be alive and Primary on the far side of a partition; a bootstrap here would
//!    make a second Primary component (split brain; ClusterControl's "make this side
//!    Primary" is the anti-pattern, ha.md 2c). The runtime or a person must confirm it
//!    down (host access shows no mysqld, or it is fenced).
//! 6. **Positions**: a running non-Primary node reports its own (wsrep_last_committed
//!    and cluster_state_uuid); a stopped one needs grastate.dat, and where that says
//!    seqno -1 (crash), `mysqld --wsrep-recover`. Missing ones are asked for
//!    ([`GaleraAction::CollectPositions`]); the runtime keeps what it collected across
//!    attempts and timeouts (mariadb-operator's #1816 fix) and hands it back in the view.
//! 7. **Choose**: two cluster UUIDs, or a seqno still unknown, refuse; otherwise
//!    bootstrap the highest seqno (ties: safe_to_bootstrap, then running nodes, then
//!    view order). `safe_to_bootstrap` alone never decides (mariadb-operator#1701,
//!    bootstrap from an empty node).
//!
//! The runtime, right before bootstrapping, re-checks that no node is Primary and that
//! bootstrap is disabled on every other node (mariadb-operator#1626), removes the flag
//! once the node is Synced, then starts the others one at a time (IST where the donor's
//! gcache holds the gap).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::endpoint::Endpoint;
use crate::galera::{GaleraPosition, choose_bootstrap};
use crate::ha::maintenance::{cluster_window, node_window};
use crate::ha::policy::HaPolicy;
use crate::ha::view::ProbeStatus;
use crate::ha::{Decision, at, span};
use crate::replication::WsrepStatus;
use crate::snapshot::ProbeErrorKind;

/// One Galera node as the recovery decision sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GaleraNode {
    pub endpoint: Endpoint,
    pub probe: ProbeStatus,
    /// wsrep status of the last good sample (current when the probe answers).
    pub wsrep: Option<WsrepStatus>,
    /// The runtime established that no mysqld runs there (host access found no
    /// process, or the node is fenced), whatever the probe says.
    pub down_confirmed: bool,
    /// Position read from grastate.dat, once collected.
    pub grastate: Option<GaleraPosition>,
    /// Position printed by `mysqld --wsrep-recover`, once collected; wins over grastate.
    pub recovered: Option<GaleraPosition>,
}

/// A Galera cluster as the recovery decision sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GaleraView {
    pub nodes: Vec<GaleraNode>,
    /// Since when no node has been seen in a Primary component; the controller records
    /// it (None: not recorded, taken as now, so the full timeout is waited).
    pub no_primary_since: Option<DateTime<Utc>>,
    pub maintenance: Vec<crate::ha::maintenance::Maintenance>,
}

/// How the chosen node becomes the new Primary component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BootstrapMethod {
    /// The node is stopped: set safe_to_bootstrap and start it with
    /// `--wsrep-new-cluster`.
    NewCluster,
    /// The node runs in a non-Primary component:
    /// `SET GLOBAL wsrep_provider_options='pc.bootstrap=YES'`.
    PcBootstrap,
}

/// What to do about a Galera cluster's Primary component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GaleraAction {
    NoAction,
    /// Look again at `until` (the cluster may still heal by itself).
    Wait {
        until: DateTime<Utc>,
    },
    /// Read these nodes' grastate.dat / run `--wsrep-recover` on them, keep the results,
    /// and decide again.
    CollectPositions {
        grastate: Vec<Endpoint>,
        wsrep_recover: Vec<Endpoint>,
    },
    /// Bootstrap `node`, wait for Synced, remove the flag, then start `then_join` one at
    /// a time, in this order.
    Bootstrap {
        node: Endpoint,
        method: BootstrapMethod,
        then_join: Vec<Endpoint>,
    },
    /// Recovery is needed but not safe: raise an alarm.
    Refuse,
}

/// [`decide_galera_recovery`]'s answer.
pub type GaleraDecision = Decision<GaleraAction>;

/// What a node is, for the recovery.
enum State<'a> {
    Primary(&'a WsrepStatus),
    NonPrimary(&'a WsrepStatus),
    NoWsrep,
    Down(String),
    Unknown(String),
}

fn classify(n: &GaleraNode) -> State<'_> {
    if n.down_confirmed {
        return State::Down("confirmed not running".into());
    }
    match n.probe {
        ProbeStatus::Reachable => match &n.wsrep {
            Some(w) if w.enabled && w.is_primary_component() => State::Primary(w),
            Some(w) if w.enabled => State::NonPrimary(w),
            _ => State::NoWsrep,
        },
        ProbeStatus::Failing {
            kind: ProbeErrorKind::Refused,
            since,
            ..
        } => State::Down(format!("refuses connections since {}", at(since))),
        ProbeStatus::Failing { kind, since, .. } => State::Unknown(format!(
            "does not answer ({} since {})",
            kind.as_str(),
            at(since)
        )),
    }
}

/// Decides what Galera cluster recovery does now; see the module docs for the rules.
pub fn decide_galera_recovery(
    view: &GaleraView,
    policy: &HaPolicy,
    now: DateTime<Utc>,
) -> GaleraDecision {
    let states: Vec<(&GaleraNode, State<'_>)> =
        view.nodes.iter().map(|n| (n, classify(n))).collect();
    let mut reasons: Vec<String> = states.iter().map(|(n, s)| describe(n, s)).collect();
    let done = |action, mut reasons: Vec<String>, last: String| {
        reasons.push(last);
        Decision::new(action, reasons)
    };
    if let Some((n, State::Primary(w))) =
        states.iter().find(|(_, s)| matches!(s, State::Primary(_)))
    {
        return done(
            GaleraAction::NoAction,
            reasons,
            format!(
                "{} is in a Primary component of {} node(s): the cluster serves; nodes outside it rejoin by node recovery, never by a bootstrap",
                n.endpoint, w.cluster_size
            ),
        );
    }
    if !policy.automatic_recovery {
        return done(
            GaleraAction::NoAction,
            reasons,
            "no node is in a Primary component, but automatic recovery is disabled for this cluster: a person must recover it".into(),
        );
    }
    if let Some(m) = cluster_window(&view.maintenance, now) {
        return done(
            GaleraAction::NoAction,
            reasons,
            format!("{}: no automatic recovery", m.describe()),
        );
    }
    if let Some(m) = view
        .nodes
        .iter()
        .find_map(|n| node_window(&view.maintenance, &n.endpoint, now))
    {
        return done(
            GaleraAction::Refuse,
            reasons,
            format!(
                "{}: a full cluster recovery would have to touch it, so a person must decide",
                m.describe()
            ),
        );
    }
    if let Some((n, _)) = states.iter().find(|(_, s)| matches!(s, State::NoWsrep)) {
        return done(
            GaleraAction::Refuse,
            reasons,
            format!(
                "{} answers without wsrep, so its Galera position cannot be read: a person must look",
                n.endpoint
            ),
        );
    }
    let all_down = states.iter().all(|(_, s)| matches!(s, State::Down(_)));
    if all_down {
        reasons.push("every server is down: nothing can restore the Primary component by itself, recover now".into());
    } else {
        let since = view.no_primary_since.unwrap_or(now);
        let until = since + policy.galera_no_primary_timeout;
        if now < until {
            return done(
                GaleraAction::Wait { until },
                reasons,
                format!(
                    "no Primary component since {} ({} ago), less than the {} Galera gets to restore it itself (pc.recovery, a healing partition): look again at {}",
                    at(since),
                    span(now - since),
                    span(policy.galera_no_primary_timeout),
                    at(until)
                ),
            );
        }
        reasons.push(format!(
            "no Primary component since {} ({} ago), at least the {} allowed",
            at(since),
            span(now - since),
            span(policy.galera_no_primary_timeout)
        ));
    }
    let unknown: Vec<String> = states
        .iter()
        .filter(|(_, s)| matches!(s, State::Unknown(_)))
        .map(|(n, _)| n.endpoint.to_string())
        .collect();
    if !unknown.is_empty() {
        return done(
            GaleraAction::Refuse,
            reasons,
            format!(
                "{} may still be running, even in a Primary component on the far side of a partition: forcing a bootstrap here could make two Primary components, so nines does not; confirm them down (or fence them) and recovery goes on",
                unknown.join(", ")
            ),
        );
    }
    choose(&states, reasons)
}

/// Positions, then the choice (rules 6 and 7).
fn choose(states: &[(&GaleraNode, State<'_>)], mut reasons: Vec<String>) -> GaleraDecision {
    let mut grastate = Vec::new();
    let mut wsrep_recover = Vec::new();
    // Running nodes first: on a tie they need no restart.
    let mut positions: Vec<(GaleraPosition, &GaleraNode, BootstrapMethod)> = Vec::new();
    for (n, s) in states {
        if let State::NonPrimary(w) = s {
            positions.push((
                GaleraPosition {
                    node: n.endpoint.to_string(),
                    uuid: w.cluster_state_uuid.clone(),
                    seqno: w.last_committed,
                    safe_to_bootstrap: false,
                },
                n,
                BootstrapMethod::PcBootstrap,
            ));
        }
    }
    for (n, s) in states {
        if !matches!(s, State::Down(_)) {
            continue;
        }
        let pos = match (&n.recovered, &n.grastate) {
            (Some(r), _) => r,
            (None, Some(g)) if g.seqno >= 0 => g,
            (None, Some(_)) => {
                wsrep_recover.push(n.endpoint.clone());
                continue;
            }
            (None, None) => {
                grastate.push(n.endpoint.clone());
                continue;
            }
        };
        positions.push((
            GaleraPosition {
                node: n.endpoint.to_string(),
                ..pos.clone()
            },
            n,
            BootstrapMethod::NewCluster,
        ));
    }
    if !grastate.is_empty() || !wsrep_recover.is_empty() {
        let names = |v: &[Endpoint]| {
            v.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !grastate.is_empty() {
            reasons.push(format!("read grastate.dat on {}", names(&grastate)));
        }
        if !wsrep_recover.is_empty() {
            reasons.push(format!(
                "grastate.dat says seqno -1 (not shut down cleanly) on {}: run mysqld --wsrep-recover there",
                names(&wsrep_recover)
            ));
        }
        reasons.push(
            "every node's position is needed before choosing; keep what was collected".into(),
        );
        return Decision::new(
            GaleraAction::CollectPositions {
                grastate,
                wsrep_recover,
            },
            reasons,
        );
    }
    let list: Vec<GaleraPosition> = positions.iter().map(|(p, _, _)| p.clone()).collect();
    let chosen = match choose_bootstrap(&list) {
        Ok(p) => p,
        Err(why) => {
            reasons.push(why);
            reasons.push("automatic recovery refused: a person must decide".into());
            return Decision::new(GaleraAction::Refuse, reasons);
        }
    };
    let Some((_, node, method)) = positions.iter().find(|(p, _, _)| p.node == chosen.node) else {
        reasons.push(format!(
            "the chosen node {} is not in the view",
            chosen.node
        ));
        return Decision::new(GaleraAction::Refuse, reasons);
    };
    let mut rest: Vec<&(GaleraPosition, &GaleraNode, BootstrapMethod)> = positions
        .iter()
        .filter(|(p, _, _)| p.node != chosen.node)
        .collect();
    rest.sort_by_key(|(p, _, _)| std::cmp::Reverse(p.seqno));
    // Most advanced first (the smallest IST); nodes without a state (seqno -1) last.
    let then_join: Vec<Endpoint> = rest.iter().map(|(_, n, _)| n.endpoint.clone()).collect();
    reasons.push(format!(
        "bootstrap {}: the highest seqno ({}) of cluster {}{}",
        node.endpoint,
        chosen.seqno,
        chosen.uuid,
        match method {
            BootstrapMethod::PcBootstrap => ", with pc.bootstrap on the running server",
            BootstrapMethod::NewCluster => ", starting it with --wsrep-new-cluster",
        }
    ));
    if rest.iter().any(|(p, _, _)| p.seqno == chosen.seqno) {
        reasons.push("other nodes have the same seqno: chosen by safe_to_bootstrap, then running nodes first, then node order".into());
    }
    if !then_join.is_empty() {
        reasons.push(format!(
            "then, once it is Synced and its bootstrap flag removed, start {} one at a time",
            then_join
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Decision::new(
        GaleraAction::Bootstrap {
            node: node.endpoint.clone(),
            method: *method,
            then_join,
        },
        reasons,
    )
}

/// One sentence per node for the reasons.
fn describe(n: &GaleraNode, s: &State<'_>) -> String {
    let e = &n.endpoint;
    let pos = |p: &Option<GaleraPosition>| p.as_ref().map(|p| format!("{}:{}", p.uuid, p.seqno));
    match s {
        State::Primary(w) => format!(
            "{e} is {} in a Primary component of {}",
            w.local_state, w.cluster_size
        ),
        State::NonPrimary(w) => format!(
            "{e} runs, {} and {}, at {}:{}",
            w.cluster_status, w.local_state, w.cluster_state_uuid, w.last_committed
        ),
        State::NoWsrep => format!("{e} answers, but wsrep is off"),
        State::Unknown(why) => format!("{e} {why}"),
        State::Down(why) => {
            let known = match (pos(&n.recovered), pos(&n.grastate)) {
                (Some(r), _) => format!("; --wsrep-recover found {r}"),
                (None, Some(g)) => format!("; grastate.dat has {g}"),
                (None, None) => String::new(),
            };
            format!("{e} is down ({why}){known}")
        }
    }
}

#[cfg(test)]
mod tests;
