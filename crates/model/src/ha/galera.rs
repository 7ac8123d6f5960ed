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
//!    go on at once, nothing can heal by itself. **Some down, the rest running but
//!    non-Primary** (a majority killed): go on at once too: the survivors cannot form a
//!    Primary component without the dead, and a dead Galera node is never restarted on
//!    its own while no Primary component exists (it would only join the non-Primary
//!    one). Otherwise (every node running, or some not answering) **wait** until the
//!    Primary component has been gone for [`HaPolicy::galera_no_primary_timeout`]:
//!    Galera restores it itself when a partition heals or all members of the last
//!    component see each other again (pc.recovery).
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
//!    bootstrap from an empty node). A running node bootstraps in place (`pc.bootstrap`);
//!    a stopped one is started with `--wsrep-new-cluster`, and then the running
//!    non-Primary nodes are stopped first (they rejoin as joiners, by IST).
//!
//! [`plan_galera_recovery`] is rules 5 to 7 alone: the recovery job plans again with it
//! from the freshest view and the positions it collected, and carries out exactly the
//! plan it returns. [`forced_galera_recovery`] is a person's choice of bootstrap node
//! (`nines cluster recover --bootstrap-from ADDR --force`): it overrides rules 4, 5 and
//! 7's choice, never rule 2 (a Primary component that serves), and it never starts a
//! node whose history is ahead of the chosen one (it would refuse to join, and making it
//! join means throwing its transactions away: a person decides that).
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
    /// Stop `stop_first` (running non-Primary nodes, when a stopped node bootstraps),
    /// bootstrap `node`, wait for Synced, remove the flag, then start `then_join` one at
    /// a time, in this order.
    Bootstrap {
        node: Endpoint,
        method: BootstrapMethod,
        #[serde(default)]
        stop_first: Vec<Endpoint>,
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
    let states = classify_all(view);
    let mut reasons: Vec<String> = states.iter().map(|(n, s)| describe(n, s)).collect();
    if let Some(last) = serving(&states) {
        reasons.push(last);
        return Decision::new(GaleraAction::NoAction, reasons);
    }
    let done = |action, mut reasons: Vec<String>, last: String| {
        reasons.push(last);
        Decision::new(action, reasons)
    };
    if !policy.automatic_recovery {
        return done(
            GaleraAction::NoAction,
            reasons,
            "no node is in a Primary component, but automatic recovery is disabled for this cluster: a person must recover it (`nines cluster recover`)".into(),
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
    let count = |f: fn(&State<'_>) -> bool| states.iter().filter(|(_, s)| f(s)).count();
    let down = count(|s| matches!(s, State::Down(_)));
    let unknown = count(|s| matches!(s, State::Unknown(_)));
    let running = count(|s| matches!(s, State::NonPrimary(_)));
    if down == states.len() {
        reasons.push("every server is down: nothing can restore the Primary component by itself, recover now".into());
    } else if down > 0 && unknown == 0 && running > 0 {
        reasons.push(format!(
            "{down} of {} servers are down and the {running} running one(s) are not in a Primary component: they cannot form one without the dead, so recover now",
            states.len()
        ));
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
    plan(&states, reasons)
}

/// Whether a dead node can be restarted to join a Primary component now: a reachable
/// node says Primary, and its component counts no more members than the nodes that
/// answer. A component that still counts nodes which refuse connections has not evicted
/// them yet (Galera takes a few seconds, its suspect timeout): it may be about to lose
/// its majority, and a joiner started now would wait on a component that is going away.
pub fn joinable_primary(view: &GaleraView) -> bool {
    let answering = view.nodes.iter().filter(|n| n.probe.is_reachable()).count();
    view.nodes.iter().any(|n| {
        n.probe.is_reachable()
            && n.wsrep.as_ref().is_some_and(|w| {
                w.is_primary_component()
                    && usize::try_from(w.cluster_size).unwrap_or(0) <= answering
            })
    })
}

/// Rules 5 to 7 alone (no switch, window or waiting): what the recovery job plans from
/// the freshest view and the positions it collected, right before carrying it out.
pub fn plan_galera_recovery(view: &GaleraView) -> GaleraDecision {
    let states = classify_all(view);
    let mut reasons: Vec<String> = states.iter().map(|(n, s)| describe(n, s)).collect();
    if let Some(last) = serving(&states) {
        reasons.push(last);
        return Decision::new(GaleraAction::NoAction, reasons);
    }
    plan(&states, reasons)
}

/// A person's choice: bootstrap `from`, whatever the positions and the nodes that do not
/// answer say (see the module docs for what it still refuses).
pub fn forced_galera_recovery(view: &GaleraView, from: &Endpoint) -> GaleraDecision {
    let states = classify_all(view);
    let mut reasons: Vec<String> = states.iter().map(|(n, s)| describe(n, s)).collect();
    let refuse = |mut reasons: Vec<String>, last: String| {
        reasons.push(last);
        Decision::new(GaleraAction::Refuse, reasons)
    };
    if let Some(last) = serving(&states) {
        return refuse(
            reasons,
            format!(
                "{last}: bootstrapping another node would make a second Primary component, so nines does not, even when forced"
            ),
        );
    }
    let Some((chosen, state)) = states.iter().find(|(n, _)| &n.endpoint == from) else {
        return refuse(reasons, format!("{from} is not a node of this cluster"));
    };
    let method = match state {
        State::NonPrimary(_) => BootstrapMethod::PcBootstrap,
        State::Down(_) => BootstrapMethod::NewCluster,
        // (A Primary node made `serving` refuse above.)
        State::NoWsrep | State::Primary(_) => {
            return refuse(
                reasons,
                format!("{from} answers without wsrep: it cannot bootstrap a Galera cluster"),
            );
        }
        State::Unknown(_) => {
            return refuse(
                reasons,
                format!(
                    "{from} does not answer and is not confirmed down: nines cannot bootstrap a server it cannot reach"
                ),
            );
        }
    };
    let (positions, missing) = positions(&states);
    if let Some(collect) = collect_action(&missing, &mut reasons) {
        return Decision::new(collect, reasons);
    }
    let seqno_of = |e: &Endpoint| {
        positions
            .iter()
            .find(|(_, n, _)| &n.endpoint == e)
            .map(|(p, _, _)| p.seqno)
    };
    let own = seqno_of(&chosen.endpoint).unwrap_or(-1);
    reasons.push(format!(
        "forced by a person: bootstrap {from} (seqno {own}){}",
        method_words(method)
    ));
    let mut then_join = Vec::new();
    let mut stop_first = Vec::new();
    for (n, s) in &states {
        if n.endpoint == *from {
            continue;
        }
        match s {
            State::Unknown(_) | State::NoWsrep => {
                reasons.push(format!(
                    "{} is left as it is (it does not answer, or answers without wsrep): it joins the new Primary component when it comes back, or a person restarts it",
                    n.endpoint
                ));
                continue;
            }
            _ => {}
        }
        let seqno = seqno_of(&n.endpoint).unwrap_or(-1);
        if seqno > own {
            reasons.push(format!(
                "{} is ahead of {from} (seqno {seqno} > {own}): it would refuse to join a history that lacks its transactions, so it is left stopped for a person to decide (making it join means a full state transfer that throws those transactions away)",
                n.endpoint
            ));
            if matches!(s, State::NonPrimary(_)) {
                stop_first.push(n.endpoint.clone());
            }
            continue;
        }
        if method == BootstrapMethod::NewCluster && matches!(s, State::NonPrimary(_)) {
            stop_first.push(n.endpoint.clone());
        }
        then_join.push((seqno, n.endpoint.clone()));
    }
    then_join.sort_by_key(|(seqno, _)| std::cmp::Reverse(*seqno));
    let then_join: Vec<Endpoint> = then_join.into_iter().map(|(_, e)| e).collect();
    push_order(&mut reasons, &stop_first, &then_join);
    Decision::new(
        GaleraAction::Bootstrap {
            node: from.clone(),
            method,
            stop_first,
            then_join,
        },
        reasons,
    )
}

fn classify_all(view: &GaleraView) -> Vec<(&GaleraNode, State<'_>)> {
    view.nodes.iter().map(|n| (n, classify(n))).collect()
}

/// Rule 2: the sentence that says the cluster serves, when a node is Primary.
fn serving(states: &[(&GaleraNode, State<'_>)]) -> Option<String> {
    states.iter().find_map(|(n, s)| match s {
        State::Primary(w) => Some(format!(
            "{} is in a Primary component of {} node(s): the cluster serves; nodes outside it rejoin by node recovery, never by a bootstrap",
            n.endpoint, w.cluster_size
        )),
        _ => None,
    })
}

/// Rules 5 to 7 on classified nodes, none of them Primary.
fn plan(states: &[(&GaleraNode, State<'_>)], mut reasons: Vec<String>) -> GaleraDecision {
    if let Some((n, _)) = states.iter().find(|(_, s)| matches!(s, State::NoWsrep)) {
        reasons.push(format!(
            "{} answers without wsrep, so its Galera position cannot be read: a person must look",
            n.endpoint
        ));
        return Decision::new(GaleraAction::Refuse, reasons);
    }
    let unknown: Vec<String> = states
        .iter()
        .filter(|(_, s)| matches!(s, State::Unknown(_)))
        .map(|(n, _)| n.endpoint.to_string())
        .collect();
    if !unknown.is_empty() {
        reasons.push(format!(
            "{} may still be running, even in a Primary component on the far side of a partition: forcing a bootstrap here could make two Primary components, so nines does not; it waits for them to answer or to be confirmed down, and a person who knows they are gone can run `nines cluster recover --bootstrap-from ADDR --force`",
            unknown.join(", ")
        ));
        return Decision::new(GaleraAction::Refuse, reasons);
    }
    choose(states, reasons)
}

/// Every known position, running nodes first (on a tie they need no restart), and the
/// stopped nodes whose position must still be collected.
#[allow(clippy::type_complexity)]
fn positions<'a>(
    states: &[(&'a GaleraNode, State<'_>)],
) -> (
    Vec<(GaleraPosition, &'a GaleraNode, BootstrapMethod)>,
    Missing,
) {
    let mut missing = Missing::default();
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
                missing.wsrep_recover.push(n.endpoint.clone());
                continue;
            }
            (None, None) => {
                missing.grastate.push(n.endpoint.clone());
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
    (positions, missing)
}

/// Stopped nodes whose position is not known yet.
#[derive(Default)]
struct Missing {
    grastate: Vec<Endpoint>,
    wsrep_recover: Vec<Endpoint>,
}

/// Rule 6: the action that collects missing positions, with its reasons; None when
/// every position is known.
fn collect_action(missing: &Missing, reasons: &mut Vec<String>) -> Option<GaleraAction> {
    if missing.grastate.is_empty() && missing.wsrep_recover.is_empty() {
        return None;
    }
    if !missing.grastate.is_empty() {
        reasons.push(format!("read grastate.dat on {}", names(&missing.grastate)));
    }
    if !missing.wsrep_recover.is_empty() {
        reasons.push(format!(
            "grastate.dat says seqno -1 (not shut down cleanly) on {}: run mysqld --wsrep-recover there",
            names(&missing.wsrep_recover)
        ));
    }
    reasons.push("every node's position is needed before choosing; keep what was collected".into());
    Some(GaleraAction::CollectPositions {
        grastate: missing.grastate.clone(),
        wsrep_recover: missing.wsrep_recover.clone(),
    })
}

fn names(v: &[Endpoint]) -> String {
    v.iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn method_words(method: BootstrapMethod) -> &'static str {
    match method {
        BootstrapMethod::PcBootstrap => ", with pc.bootstrap on the running server",
        BootstrapMethod::NewCluster => ", starting it with --wsrep-new-cluster",
    }
}

fn push_order(reasons: &mut Vec<String>, stop_first: &[Endpoint], then_join: &[Endpoint]) {
    if !stop_first.is_empty() {
        reasons.push(format!(
            "first stop {} (running outside any Primary component; they rejoin the new one as joiners)",
            names(stop_first)
        ));
    }
    if !then_join.is_empty() {
        reasons.push(format!(
            "then, once it is Synced and its bootstrap flag removed, start {} one at a time",
            names(then_join)
        ));
    }
}

/// Positions, then the choice (rules 6 and 7).
fn choose(states: &[(&GaleraNode, State<'_>)], mut reasons: Vec<String>) -> GaleraDecision {
    let (positions, missing) = positions(states);
    if let Some(collect) = collect_action(&missing, &mut reasons) {
        return Decision::new(collect, reasons);
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
    // A stopped node bootstraps: the running ones sit in a non-Primary component and
    // must leave it first, to join the new one.
    let stop_first: Vec<Endpoint> = if *method == BootstrapMethod::NewCluster {
        rest.iter()
            .filter(|(_, _, m)| *m == BootstrapMethod::PcBootstrap)
            .map(|(_, n, _)| n.endpoint.clone())
            .collect()
    } else {
        Vec::new()
    };
    reasons.push(format!(
        "bootstrap {}: the highest seqno ({}) of cluster {}{}",
        node.endpoint,
        chosen.seqno,
        chosen.uuid,
        method_words(*method)
    ));
    if rest.iter().any(|(p, _, _)| p.seqno == chosen.seqno) {
        reasons.push("other nodes have the same seqno: chosen by safe_to_bootstrap, then running nodes first, then node order".into());
    }
    push_order(&mut reasons, &stop_first, &then_join);
    Decision::new(
        GaleraAction::Bootstrap {
            node: node.endpoint.clone(),
            method: *method,
            stop_first,
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
