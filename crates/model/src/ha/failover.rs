//! Unplanned failover of a replication cluster: whether to fail over now, and to which
//! replica.
//!
//! [`decide_failover`] applies, in this order, and stops at the first that fails:
//!
//! 1. **Automatic recovery is on** for the cluster (otherwise a person decides).
//! 2. **No maintenance** of the cluster or of the primary (outbrain/orchestrator#138:
//!    planned work must not be "repaired").
//! 3. **The primary is dead** by [`primary_health`]: suspected by nines' probes and
//!    confirmed by every reachable replica. Alive, unreachable-but-replicating and
//!    not-yet-confirmed primaries get no action; an unconfirmable suspicion is refused
//!    (a person must look).
//! 4. **The topology was known** before the failure (no failover of a cluster whose
//!    primary nines never saw alive: mariadb-operator#622 promoted a stale node).
//! 5. **Outside the block window** after the last unacknowledged automatic failover,
//!    and 6. **within the daily budget** (anti-flapping, ha.md 2d).
//! 7. **A candidate** ([`crate::ha::candidate`]): reachable replicas of the old primary,
//!    minus those in maintenance, excluded by policy, with the binlog or
//!    log_slave_updates off, delayed, with a failed SQL thread, with errant
//!    transactions, or lagging beyond the policy; the one whose received set contains
//!    every other's. Refused when histories diverged, when an ineligible replica received
//!    transactions the candidate lacks (promoting would lose them), or when the candidate
//!    lacks more of the primary's last reported transactions than the policy allows
//!    (mariadb-operator#209).
//! 8. **Semi-sync** when the policy requires acknowledged commits to survive: refused if
//!    the primary had fallen back to asynchronous replication at its last sample, or a
//!    replica that may hold the only copy of an acknowledged commit is unreachable,
//!    unless the candidate provably has every GTID the primary reported in that last
//!    sample (commits after it cannot be accounted for either way).
//!
//! The plan then says what the runtime does: fence the old primary where it can
//! (super_read_only, kill sessions; ha.md 2a step 4), stop the replicas' IO threads,
//! wait (bounded by [`HaPolicy::relay_log_apply_timeout`]) until the candidate has
//! applied `apply_until`, promote it, repoint `others` with GTID auto-position, verify a
//! write, and journal every step with these reasons.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::endpoint::Endpoint;
use crate::gtid::GtidSet;
use crate::ha::candidate::{
    Candidate, Errant, errant_transactions, missing_transactions, most_advanced, primary_position,
    received_set,
};
use crate::ha::detect::{PrimaryHealth, primary_health};
use crate::ha::maintenance::{cluster_window, node_window};
use crate::ha::policy::HaPolicy;
use crate::ha::view::{ReplicationNode, ReplicationView};
use crate::ha::{Decision, at, span};
use crate::snapshot::ProbeErrorKind;

/// What to do about the cluster's primary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailoverAction {
    /// Nothing: the primary is alive, or not yet confirmed dead, or nines is told to
    /// keep off.
    NoAction,
    /// A failover may be needed but is not safe or not allowed: raise an alarm.
    Refuse,
    /// Fail over as planned.
    Failover(FailoverPlan),
}

/// A replica with errant transactions, for the alarm that names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrantReplica {
    pub endpoint: Endpoint,
    pub errant: Errant,
}

/// What the failover job does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailoverPlan {
    pub old_primary: Endpoint,
    /// The replica to promote.
    pub candidate: Endpoint,
    /// The candidate's received set: it must have applied all of it before promotion.
    pub apply_until: GtidSet,
    /// Reachable replicas to repoint to the candidate (with GTID auto-position).
    pub others: Vec<Endpoint>,
    /// Replicas of the old primary that do not answer: repoint them when they do.
    pub unreachable: Vec<Endpoint>,
    /// Replicas with errant transactions (repointed, never promoted; alarm).
    pub errant: Vec<ErrantReplica>,
    /// The old primary may still be running (its probes time out rather than being
    /// refused): fence it by every means available before promoting. When false,
    /// nothing listens; it must still come back read-only and stay fenced until
    /// [`crate::ha::rejoin`] allows it back.
    pub fence_old_primary: bool,
}

/// [`decide_failover`]'s answer.
pub type FailoverDecision = Decision<FailoverAction>;

/// Decides whether to fail over now and how; see the module docs for the rules.
pub fn decide_failover(
    view: &ReplicationView,
    policy: &HaPolicy,
    now: DateTime<Utc>,
) -> FailoverDecision {
    let verdict = primary_health(view, policy, now);
    let no_action = |reasons| Decision::new(FailoverAction::NoAction, reasons);
    let refuse = |reasons| Decision::new(FailoverAction::Refuse, reasons);
    let with_verdict = |first: String| {
        let mut r = vec![first];
        if verdict.action != PrimaryHealth::Alive {
            r.extend(verdict.reasons.iter().cloned());
        }
        r
    };
    if !policy.automatic_recovery {
        return no_action(with_verdict(
            "automatic recovery is disabled for this cluster: nines does not fail over by itself (a person may run a failover or switchover)".into(),
        ));
    }
    if let Some(m) = cluster_window(&view.maintenance, now) {
        return no_action(with_verdict(format!(
            "{}: no automatic failover",
            m.describe()
        )));
    }
    if let Some(m) = view
        .topology
        .as_ref()
        .and_then(|t| node_window(&view.maintenance, &t.primary, now))
    {
        return no_action(with_verdict(format!(
            "{}: the primary is in maintenance, no automatic failover",
            m.describe()
        )));
    }
    let mut reasons = verdict.reasons.clone();
    match verdict.action {
        PrimaryHealth::Dead => {}
        PrimaryHealth::Alive | PrimaryHealth::Unreachable | PrimaryHealth::Suspect => {
            reasons.push("no failover".into());
            return no_action(reasons);
        }
        PrimaryHealth::Unconfirmable => {
            reasons.push("automatic failover refused: the primary's death is not confirmed".into());
            return refuse(reasons);
        }
        PrimaryHealth::Unknown => {
            let failing: Vec<String> = view
                .nodes
                .iter()
                .filter(|n| !n.is_reachable())
                .map(|n| n.endpoint.to_string())
                .collect();
            if failing.is_empty() {
                reasons.push("every node answers; nothing to fail over".into());
                return no_action(reasons);
            }
            reasons.push(format!(
                "{} do(es) not answer, but without a known topology nines cannot tell whether a primary failed or which one: no automatic failover",
                failing.join(", ")
            ));
            return refuse(reasons);
        }
    }
    let Some(topology) = &view.topology else {
        return refuse(reasons);
    };
    reasons.push(format!(
        "topology known: {} was the primary, last seen healthy with its replicas at {}",
        topology.primary,
        at(topology.confirmed_at)
    ));
    if let Err(r) = gates(view, policy, now, &mut reasons) {
        reasons.push(r);
        return refuse(reasons);
    }
    match plan(view, policy, now, &mut reasons) {
        Some(plan) => Decision::new(FailoverAction::Failover(plan), reasons),
        None => refuse(reasons),
    }
}

/// A failover a person asked for (`nines cluster failover`), and the job of an automatic
/// one, which plans again from the freshest view before acting. No automatic gates
/// (recovery switch, maintenance, block window, budget: a person decides), but the same
/// candidate rules as [`decide_failover`]. Without `force` the primary must not answer
/// (a live primary is a switchover's job) and `to`, when given, must be the replica
/// that received the most; with `force` a live primary is fenced first, lag and
/// semi-sync limits are lifted, and `to` is promoted even when it lacks transactions
/// another replica has, which the reasons name. Ok holds the plan and its reasons; Err
/// the reasons for refusing.
pub fn requested_failover(
    view: &ReplicationView,
    to: Option<&Endpoint>,
    force: bool,
    policy: &HaPolicy,
    now: DateTime<Utc>,
) -> Result<(FailoverPlan, Vec<String>), Vec<String>> {
    let Some(topology) = &view.topology else {
        return Err(vec![
            "no primary is known for this cluster, so there is nothing to fail over from".into(),
        ]);
    };
    let old = &topology.primary;
    let Some(primary) = view.primary() else {
        return Err(vec![format!(
            "the primary {old} is not among the cluster's nodes"
        )]);
    };
    let mut reasons = Vec::new();
    match primary.probe {
        crate::ha::view::ProbeStatus::Reachable if !force => {
            return Err(vec![format!(
                "the primary {old} answers: use a switchover for a planned change (no write is lost), or --force to fence {old} and fail over anyway"
            )]);
        }
        crate::ha::view::ProbeStatus::Reachable => reasons.push(format!(
            "the primary {old} answers, but the failover is forced: it is fenced (read-only, sessions killed) before the promotion"
        )),
        crate::ha::view::ProbeStatus::Failing {
            kind,
            consecutive,
            since,
        } => reasons.push(format!(
            "the primary {old} does not answer ({}, {consecutive} probe(s) in a row since {})",
            kind.as_str(),
            at(since)
        )),
    }
    if let Some(t) = to {
        if t == old {
            return Err(vec![format!("{t} is the primary itself")]);
        }
        if view.node(t).is_none() {
            return Err(vec![format!("{t} is not a node of this cluster")]);
        }
    }
    let mut p = policy.clone();
    if let Some(t) = to {
        p.preferred_candidates = vec![t.clone()];
        p.excluded_candidates.retain(|e| e != t);
    }
    if force {
        p.max_candidate_lag = crate::ha::policy::CandidateLagLimit {
            max_seconds_behind: None,
            max_missing_transactions: None,
        };
        p.require_semi_sync_ack = false;
    }
    let planned = plan(view, &p, now, &mut reasons);
    let mut plan = match (planned, to) {
        (Some(plan), Some(t)) if plan.candidate != *t => {
            if !force {
                reasons.push(format!(
                    "{t} was asked for, but {} received more: promoting {t} would lose what only {} has; use --force to promote {t} anyway",
                    plan.candidate, plan.candidate
                ));
                return Err(reasons);
            }
            forced_plan(view, t, &mut reasons)?
        }
        (Some(plan), _) => plan,
        (None, Some(t)) if force => forced_plan(view, t, &mut reasons)?,
        (None, _) => {
            if !force {
                reasons.push("use --force (with --to) to promote a replica anyway".into());
            }
            return Err(reasons);
        }
    };
    if primary.is_reachable() {
        plan.fence_old_primary = true;
    }
    Ok((plan, reasons))
}

/// Promote `to` whatever it lacks: the reasons say what the other replicas have beyond it.
fn forced_plan(
    view: &ReplicationView,
    to: &Endpoint,
    reasons: &mut Vec<String>,
) -> Result<FailoverPlan, Vec<String>> {
    let refuse = |mut r: Vec<String>, why: String| {
        r.push(why);
        Err(r)
    };
    let Some(topology) = &view.topology else {
        return refuse(reasons.clone(), "no primary is known".into());
    };
    let old = &topology.primary;
    let sid = view.primary_server_id();
    let Some(node) = view.node(to) else {
        return refuse(
            reasons.clone(),
            format!("{to} is not a node of this cluster"),
        );
    };
    if !node.is_reachable() {
        return refuse(
            reasons.clone(),
            format!("{to} does not answer: it cannot be promoted"),
        );
    }
    let (Some(sample), Some(ch)) = (node.latest(), node.channel_from(old, sid)) else {
        return refuse(
            reasons.clone(),
            format!("{to} does not replicate from the primary {old}"),
        );
    };
    let received = match received_set(view.flavor, &sample.sample, ch) {
        Ok(r) => r,
        Err(e) => {
            return refuse(
                reasons.clone(),
                format!("{to}: its received GTIDs cannot be read: {e}"),
            );
        }
    };
    let mut others = Vec::new();
    let mut unreachable = Vec::new();
    for r in view.replicas_of_primary() {
        if &r.endpoint == to {
            continue;
        }
        if !r.is_reachable() {
            unreachable.push(r.endpoint.clone());
            continue;
        }
        if let Some(theirs) = r
            .latest()
            .zip(r.channel_from(old, sid))
            .and_then(|(s, c)| received_set(view.flavor, &s.sample, c).ok())
            && let Ok(extra) = theirs.difference(&received)
            && !extra.is_empty()
        {
            reasons.push(format!(
                "forced: {} received {extra}, which {to} lacks; those transactions are not on the new primary (saved in {}'s binlog)",
                r.endpoint, r.endpoint
            ));
        }
        others.push(r.endpoint.clone());
    }
    reasons.push(format!("forced: promoting {to} as asked"));
    Ok(FailoverPlan {
        old_primary: old.clone(),
        candidate: to.clone(),
        apply_until: received,
        others,
        unreachable,
        errant: Vec::new(),
        fence_old_primary: true,
    })
}

/// The block window and the daily budget.
fn gates(
    view: &ReplicationView,
    policy: &HaPolicy,
    now: DateTime<Utc>,
    reasons: &mut Vec<String>,
) -> Result<(), String> {
    let window = policy.failover_block_window;
    let blocking = view
        .failovers
        .iter()
        .filter(|f| !f.acknowledged && f.at <= now && now - f.at < window)
        .map(|f| f.at)
        .max();
    if let Some(last) = blocking {
        return Err(format!(
            "the last automatic failover, at {} ({} ago), is within the block window of {} and not acknowledged: no other automatic failover before {} unless a person acknowledges it",
            at(last),
            span(now - last),
            span(window),
            at(last + window)
        ));
    }
    reasons.push(format!(
        "no unacknowledged automatic failover within the block window of {}",
        span(window)
    ));
    let day = Duration::hours(24);
    let used = view
        .failovers
        .iter()
        .filter(|f| f.at <= now && now - f.at < day)
        .count();
    let budget = policy.daily_failover_budget as usize;
    if used >= budget {
        return Err(format!(
            "{used} automatic failover(s) in the last 24 h reach the daily budget of {budget}: a person must decide"
        ));
    }
    reasons.push(format!(
        "{used} of the daily budget of {budget} automatic failovers used"
    ));
    Ok(())
}

/// A replica of the old primary with everything the choice needs.
struct Considered {
    candidate: Candidate,
    /// What its channel received (without its executed set, which may hold errant
    /// transactions).
    channel_received: Option<GtidSet>,
}

/// Chooses the candidate and writes the plan; None (with the reasons) when refused.
fn plan(
    view: &ReplicationView,
    policy: &HaPolicy,
    now: DateTime<Utc>,
    reasons: &mut Vec<String>,
) -> Option<FailoverPlan> {
    let topology = view.topology.as_ref()?;
    let old = &topology.primary;
    let flavor = view.flavor;
    let sid = view.primary_server_id();
    let primary = view.primary()?;
    let primary_last = primary.latest();
    let primary_pos = primary_last.map(|s| primary_position(flavor, &s.sample));
    let replicas = view.replicas_of_primary();
    if replicas.is_empty() {
        reasons.push(format!("{old} has no replica to promote"));
        return None;
    }
    // Everything known to come from the primary, to find errant transactions.
    let mut reference = match &primary_pos {
        Some(Ok(p)) => p.clone(),
        _ => GtidSet::empty(flavor),
    };
    for r in &replicas {
        let received = r
            .channel_from(old, sid)
            .and_then(|ch| GtidSet::parse(flavor, &ch.received_gtids).ok());
        if let Some(u) = received.and_then(|x| reference.union(&x).ok()) {
            reference = u;
        }
    }
    let mut considered = Vec::new();
    let mut unreachable = Vec::new();
    let mut errant = Vec::new();
    for r in &replicas {
        if !r.is_reachable() {
            reasons.push(format!(
                "replica {} does not answer: not a candidate; repoint it when it does",
                r.endpoint
            ));
            unreachable.push(r.endpoint.clone());
            continue;
        }
        considered.push(consider(view, policy, now, r, &reference, &mut errant));
    }
    for c in &considered {
        if let Some(why) = &c.candidate.exclusion {
            reasons.push(format!(
                "{} is not a candidate: {why}",
                c.candidate.endpoint
            ));
        }
    }
    let candidates: Vec<Candidate> = considered.iter().map(|c| c.candidate.clone()).collect();
    let choice = match most_advanced(&candidates, &policy.preferred_candidates) {
        Ok(c) => c,
        Err(r) => {
            reasons.extend(r);
            return None;
        }
    };
    reasons.extend(choice.reasons);
    let best = &candidates[choice.index];
    // An ineligible replica ahead of the candidate would lose its extra transactions.
    for c in &considered {
        let (Some(why), Some(received)) = (&c.candidate.exclusion, &c.channel_received) else {
            continue;
        };
        match received.difference(&best.received) {
            Ok(extra) if !extra.is_empty() => {
                reasons.push(format!(
                    "{} ({why}) received {extra}, which the chosen candidate {} lacks: promoting {} would lose those transactions, so nines refuses",
                    c.candidate.endpoint, best.endpoint, best.endpoint
                ));
                return None;
            }
            Ok(_) => {}
            Err(e) => {
                reasons.push(format!(
                    "cannot compare {} with {}: {e}",
                    c.candidate.endpoint, best.endpoint
                ));
                return None;
            }
        }
    }
    if !check_loss(
        policy,
        best,
        primary_last.map(|s| s.at),
        primary_pos.as_ref(),
        reasons,
    ) {
        return None;
    }
    if policy.require_semi_sync_ack
        && !check_semi_sync(view, best, primary_pos.as_ref(), &unreachable, reasons)
    {
        return None;
    }
    let fence_old_primary = primary.probe.error_kind() != Some(ProbeErrorKind::Refused);
    reasons.push(if fence_old_primary {
        format!("{old} may still be running (its probes do not get a refusal): fence it (super_read_only, kill client sessions, or stop it) before promoting")
    } else {
        format!("{old} refuses connections, so nothing can be fenced now: it must come back read-only and stays fenced until the rejoin check")
    });
    reasons.push(format!(
        "promote {} once it has applied {} (within {}), then repoint the other replicas",
        best.endpoint,
        best.received,
        span(policy.relay_log_apply_timeout)
    ));
    let others = considered
        .iter()
        .map(|c| c.candidate.endpoint.clone())
        .filter(|e| *e != best.endpoint)
        .collect();
    Some(FailoverPlan {
        old_primary: old.clone(),
        candidate: best.endpoint.clone(),
        apply_until: best.received.clone(),
        others,
        unreachable,
        errant,
        fence_old_primary,
    })
}

/// One reachable replica: its received set and the first reason it may not be promoted.
fn consider(
    view: &ReplicationView,
    policy: &HaPolicy,
    now: DateTime<Utc>,
    node: &ReplicationNode,
    reference: &GtidSet,
    errant: &mut Vec<ErrantReplica>,
) -> Considered {
    let flavor = view.flavor;
    let (old, sid) = match &view.topology {
        Some(t) => (&t.primary, view.primary_server_id()),
        None => (&node.endpoint, None),
    };
    let sample = node.latest().map(|s| &s.sample);
    let channel = node.channel_from(old, sid);
    let received = match (sample, channel) {
        (Some(s), Some(ch)) => received_set(flavor, s, ch).map_err(|e| e.to_string()),
        _ => Err("it has no sample replicating from the primary".to_string()),
    };
    let channel_received = channel.and_then(|ch| GtidSet::parse(flavor, &ch.received_gtids).ok());
    let mut why: Option<String> = None;
    let mut exclude = |reason: String| {
        why.get_or_insert(reason);
    };
    let e = &node.endpoint;
    if let Some(m) = node_window(&view.maintenance, e, now) {
        exclude(format!("in maintenance ({})", m.reason));
    }
    if policy.excluded_candidates.contains(e) {
        exclude("excluded from promotion by the cluster's policy".into());
    }
    if let (Some(s), Some(ch)) = (sample, channel) {
        if !s.log_bin {
            exclude("its binary log is off, so no replica could follow it".into());
        } else if !s.log_slave_updates {
            exclude("log_slave_updates is off: what it replicated is not in its binlog, so the other replicas could not catch up from it".into());
        }
        if ch.sql_delay > 0 {
            exclude(format!(
                "it is a delayed replica (SQL_Delay {} s)",
                ch.sql_delay
            ));
        }
        if !ch.sql_running && ch.last_sql_errno != 0 {
            exclude(format!(
                "its SQL thread stopped with error {} ({}): it cannot apply its relay log",
                ch.last_sql_errno, ch.last_sql_error
            ));
        }
        match errant_transactions(flavor, s, reference) {
            Ok(Some(x)) => {
                exclude(format!("it has errant transactions {}: {}", x.gtids, x.why));
                errant.push(ErrantReplica {
                    endpoint: e.clone(),
                    errant: x,
                });
            }
            Ok(None) => {}
            Err(err) => exclude(format!("its gtid_executed cannot be read: {err}")),
        }
        if let (Some(limit), Some(lag)) = (
            policy.max_candidate_lag.max_seconds_behind,
            ch.seconds_behind,
        ) && lag > limit
        {
            exclude(format!(
                "it lags {lag} s behind, above the limit of {limit} s: its relay log would take too long to apply"
            ));
        }
    }
    if let Err(err) = &received {
        exclude(format!("its received GTIDs cannot be read: {err}"));
    }
    Considered {
        candidate: Candidate {
            endpoint: e.clone(),
            received: received.unwrap_or_else(|_| GtidSet::empty(flavor)),
            seconds_behind: channel.and_then(|c| c.seconds_behind),
            exclusion: why,
        },
        channel_received,
    }
}

/// Refuses when the candidate lacks more of the primary's last reported transactions
/// than the policy allows.
fn check_loss(
    policy: &HaPolicy,
    best: &Candidate,
    primary_at: Option<DateTime<Utc>>,
    primary_pos: Option<&Result<GtidSet, crate::gtid::GtidError>>,
    reasons: &mut Vec<String>,
) -> bool {
    let limit = policy.max_candidate_lag.max_missing_transactions;
    let when = primary_at.map_or_else(|| "?".to_string(), at);
    let Some(Ok(pos)) = primary_pos else {
        reasons.push(match limit {
            Some(l) => format!("the primary's last GTID position is unknown, so the transactions a failover would lose cannot be bounded by the policy's limit of {l}: nines refuses"),
            None => "the primary's last GTID position is unknown; the policy sets no limit on lost transactions".into(),
        });
        return limit.is_none();
    };
    match missing_transactions(&best.received, pos) {
        Ok((0, _)) => {
            reasons.push(format!(
                "{} has every transaction the primary reported in its last sample ({when}: {pos})",
                best.endpoint
            ));
            true
        }
        Ok((n, missing)) if limit.is_some_and(|l| n > l) => {
            reasons.push(format!(
                "{} lacks {n} transaction(s) the primary reported at {when} ({missing}), more than the {} allowed: a failover would lose them, so nines refuses",
                best.endpoint,
                limit.unwrap_or_default()
            ));
            false
        }
        Ok((n, missing)) => {
            reasons.push(format!(
                "{} lacks {n} transaction(s) the primary reported at {when} ({missing}), within the policy's limit: they are lost",
                best.endpoint
            ));
            true
        }
        Err(e) => {
            reasons.push(format!(
                "cannot compare the candidate with the primary: {e}"
            ));
            false
        }
    }
}

/// The semi-sync gate (policy.require_semi_sync_ack).
fn check_semi_sync(
    view: &ReplicationView,
    best: &Candidate,
    primary_pos: Option<&Result<GtidSet, crate::gtid::GtidError>>,
    unreachable: &[Endpoint],
    reasons: &mut Vec<String>,
) -> bool {
    let proof = match primary_pos {
        Some(Ok(p)) => best.received.contains(p).unwrap_or(false),
        _ => false,
    };
    let proven = |reasons: &mut Vec<String>| {
        reasons.push(format!(
            "but {} has every GTID the primary reported in its last sample, so nothing it had acknowledged by then is lost (commits after that sample cannot be accounted for)",
            best.endpoint
        ));
        true
    };
    match view.primary_semi_sync {
        Some(s) if s.active && s.clients > 0 => {
            if unreachable.is_empty() {
                reasons.push(format!(
                    "semi-sync was on at {} with {} acknowledging replica(s): every acknowledged commit is in a reachable replica's relay log, and {} contains what they all received",
                    at(s.at),
                    s.clients,
                    best.endpoint
                ));
                return true;
            }
            let names: Vec<String> = unreachable.iter().map(|e| e.to_string()).collect();
            reasons.push(format!(
                "semi-sync was on at {}, but replica(s) {} do not answer: an acknowledged commit may exist only in their relay logs",
                at(s.at),
                names.join(", ")
            ));
        }
        Some(s) => reasons.push(format!(
            "the primary had fallen back to asynchronous replication at {} (Rpl_semi_sync_master_status {}, {} semi-sync client(s)): commits acknowledged to clients since then may exist nowhere else",
            at(s.at),
            if s.active { "ON" } else { "OFF" },
            s.clients
        )),
        None => reasons.push(
            "the primary's semi-sync state is unknown, so acknowledged commits cannot be proven to be on a replica".into(),
        ),
    }
    if proof {
        return proven(reasons);
    }
    reasons.push(
        "the policy requires acknowledged commits to survive a failover: automatic failover refused".into(),
    );
    false
}

#[cfg(test)]
mod tests;
