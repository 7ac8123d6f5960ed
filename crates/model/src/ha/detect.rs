//! Is the replication primary dead? Suspicion from nines' own probes, confirmation from
//! the primary's replicas.
//!
//! Counting failed pings is what causes false failovers (ha.md §0, §3): a frozen server, a
//! cut between the controller and the primary, a DNS hiccup all look like death from one
//! place. So:
//!
//! * **Suspicion** comes from the primary's probes. A refused connection means nothing
//!   listens: suspect at once (this is what makes a kill -9 fail over within about 1 s).
//!   A timeout may be a stall: suspect only after
//!   [`HaPolicy::suspect_after_timeouts`] consecutive ones (2: a primary frozen for
//!   1 s misses at most one 1 s probe). An authentication failure means the server
//!   answers: it is alive.
//! * **Confirmation** comes from every reachable replica of the primary, each a
//!   witness ([`testimony`]):
//!   - *disconnected*: its IO thread is Connecting, or Stopped after a connection error
//!     (2003, 2013…): it lost the primary too;
//!   - *stalled*: its IO thread still says Running (TCP has not noticed yet), but
//!     neither its heartbeat counter, nor its received GTIDs, nor its read position
//!     moved across samples spanning [`HaPolicy::confirm_heartbeat_periods`] heartbeat
//!     periods (replication-manager's heartbeat check, MaxScale's
//!     `verify_master_failure`);
//!   - *receiving*: something moved: the primary is alive and the controller is the one
//!     cut off. Any such witness vetoes the failover (orchestrator's UnreachableMaster:
//!     alert, never fail over — orchestrator#1041);
//!   - *undecided*: its newest sample predates the suspicion, or its samples do not span
//!     the window yet, or it has no heartbeat counter (then an idle primary and a dead
//!     one look alike, and only a disconnect can confirm). Undecided witnesses make the
//!     verdict wait; the controller should probe the replicas at once when the primary
//!     becomes suspect;
//!   - *cut off*: the replica itself stopped answering nines (timeouts) after the
//!     primary was last seen alive. nines may be on the wrong side of a partition, with
//!     the primary alive and writable beyond it; promoting a replica on this side would
//!     make two writers (replication-manager#307), and the old primary could not be
//!     fenced from here. Any such replica blocks the verdict;
//!   - *abstaining*: a replica in maintenance (it may only veto), one whose IO thread
//!     was stopped without a connection error (a backup stopped it:
//!     outbrain/orchestrator#138), or one that was unreachable before the primary
//!     failed or whose server refuses connections (a separate, earlier failure): it
//!     says nothing about the primary.
//!
//! The primary is dead only when at least one witness confirms and none vetoes, is
//! undecided or is cut off. Without a confirming witness nothing can confirm, and nines
//! never fails over on its own probes alone ([`PrimaryHealth::Unconfirmable`]).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::endpoint::Endpoint;
use crate::gtid::GtidSet;
use crate::ha::maintenance::window_for;
use crate::ha::policy::HaPolicy;
use crate::ha::view::{ProbeStatus, ReplicationNode, ReplicationView, channel_from};
use crate::ha::{Decision, at, span};
use crate::replication::{Flavor, IoThreadState, ReplicaStatus};
use crate::snapshot::ProbeErrorKind;

/// The verdict on the known primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrimaryHealth {
    /// It answers, or is not (yet) suspected.
    Alive,
    /// nines cannot reach it, but a replica still receives from it: alert, no failover.
    Unreachable,
    /// Suspected; the replicas have not confirmed yet (look again after probing them).
    Suspect,
    /// Suspected, and no reachable replica can confirm: a person must decide.
    Unconfirmable,
    /// Suspected and confirmed by every reachable replica.
    Dead,
    /// No primary is known (the topology was not seen healthy).
    Unknown,
}

/// [`primary_health`]'s answer.
pub type PrimaryVerdict = Decision<PrimaryHealth>;

/// What one replica says about the primary (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Witness {
    Disconnected,
    Stalled,
    Receiving,
    Undecided,
    CutOff,
    Abstains,
}

/// One replica's witness with the sentence explaining it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Testimony {
    pub replica: Endpoint,
    pub witness: Witness,
    pub detail: String,
}

/// Decides whether the view's known primary is dead; see the module docs for the rules.
pub fn primary_health(
    view: &ReplicationView,
    policy: &HaPolicy,
    now: DateTime<Utc>,
) -> PrimaryVerdict {
    let verdict = |health, reasons| Decision::new(health, reasons);
    let Some(topology) = &view.topology else {
        return verdict(
            PrimaryHealth::Unknown,
            vec!["the topology is not known: this controller has not seen a primary alive with its replicas, so it cannot tell which server failed".into()],
        );
    };
    let Some(primary) = view.node(&topology.primary) else {
        return verdict(
            PrimaryHealth::Unknown,
            vec![format!(
                "the known primary {} is not among the cluster's nodes",
                topology.primary
            )],
        );
    };
    let p = &primary.endpoint;
    let (kind, consecutive, since) = match primary.probe {
        ProbeStatus::Reachable => {
            return verdict(
                PrimaryHealth::Alive,
                vec![format!("primary {p} answered its latest probe")],
            );
        }
        ProbeStatus::Failing {
            kind,
            consecutive,
            since,
        } => (kind, consecutive, since),
    };
    let needed = policy.suspect_after_timeouts.max(1);
    let suspicion = match kind {
        ProbeErrorKind::Auth => {
            return verdict(
                PrimaryHealth::Alive,
                vec![format!(
                    "primary {p} answers but rejects the monitor's credentials (since {}): it is running, so this is not a reason to fail over; fix the monitoring account",
                    at(since)
                )],
            );
        }
        ProbeErrorKind::Refused => format!(
            "primary {p} refuses connections since {} ({} ago): nothing listens, the server is down",
            at(since),
            span(now - since)
        ),
        ProbeErrorKind::Timeout | ProbeErrorKind::Other if consecutive < needed => {
            return verdict(
                PrimaryHealth::Alive,
                vec![format!(
                    "primary {p} failed {consecutive} probe(s) in a row ({}) since {}; a {} needs {needed} consecutive misses before suspicion, since a frozen or busy server recovers",
                    kind.as_str(),
                    at(since),
                    kind.as_str()
                )],
            );
        }
        ProbeErrorKind::Timeout | ProbeErrorKind::Other => format!(
            "primary {p} failed {consecutive} consecutive probes ({}) since {} ({} ago), at least the {needed} needed for suspicion",
            kind.as_str(),
            at(since),
            span(now - since)
        ),
    };
    let sid = primary.latest().map(|s| s.sample.server_id);
    let context = Suspicion {
        primary: p,
        primary_server_id: sid,
        since,
        last_seen: primary.latest().map_or(since, |s| s.at),
    };
    let testimonies: Vec<Testimony> = view
        .nodes
        .iter()
        .filter(|n| n.endpoint != *p)
        .filter_map(|n| {
            let in_maintenance = window_for(&view.maintenance, &n.endpoint, now).is_some();
            testimony(view.flavor, n, &context, policy, in_maintenance)
        })
        .collect();
    let mut reasons = vec![suspicion];
    reasons.extend(testimonies.iter().map(|t| t.detail.clone()));
    let count = |w: Witness| testimonies.iter().filter(|t| t.witness == w).count();
    let confirming = count(Witness::Disconnected) + count(Witness::Stalled);
    let health = if count(Witness::Receiving) > 0 {
        reasons.push(format!(
            "a replica still receives from {p}: the primary is alive and this controller is the one cut off from it; no failover"
        ));
        PrimaryHealth::Unreachable
    } else if count(Witness::Undecided) > 0 {
        reasons.push(format!(
            "not every reachable replica has confirmed yet that {p} is gone: probe the replicas again before deciding"
        ));
        PrimaryHealth::Suspect
    } else if count(Witness::CutOff) > 0 {
        reasons.push(format!(
            "replicas stopped answering together with {p}: nines may be partitioned from a primary that is still alive, so it does not fail over; a person must decide (or the partition heals)"
        ));
        PrimaryHealth::Unconfirmable
    } else if confirming == 0 {
        reasons.push(format!(
            "no reachable replica of {p} can confirm that it is gone; nines never fails over on its own probes alone, a person must decide"
        ));
        PrimaryHealth::Unconfirmable
    } else {
        reasons.push(format!(
            "every reachable replica confirms that {p} is gone ({confirming} of {}): the primary is dead",
            testimonies.len()
        ));
        PrimaryHealth::Dead
    };
    verdict(health, reasons)
}

/// The suspicion a witness is asked about.
#[derive(Debug, Clone, Copy)]
pub struct Suspicion<'a> {
    pub primary: &'a Endpoint,
    pub primary_server_id: Option<u32>,
    /// The primary's first failed probe.
    pub since: DateTime<Utc>,
    /// The primary's last good sample.
    pub last_seen: DateTime<Utc>,
}

/// What replica `node` says about the suspected primary; None when the node does not
/// replicate from it (not a witness at all).
pub fn testimony(
    flavor: Flavor,
    node: &ReplicationNode,
    suspicion: &Suspicion<'_>,
    policy: &HaPolicy,
    in_maintenance: bool,
) -> Option<Testimony> {
    let (primary, primary_server_id) = (suspicion.primary, suspicion.primary_server_id);
    let suspected_since = suspicion.since;
    let latest = node.latest()?;
    let ch = channel_from(&latest.sample, primary, primary_server_id)?;
    let r = &node.endpoint;
    let said = |witness, detail: String| {
        Some(Testimony {
            replica: r.clone(),
            witness,
            detail,
        })
    };
    if let ProbeStatus::Failing { kind, since, .. } = node.probe {
        let kind_str = kind.as_str();
        let cut_off = matches!(kind, ProbeErrorKind::Timeout | ProbeErrorKind::Other)
            && since >= suspicion.last_seen
            && !in_maintenance;
        return if cut_off {
            said(
                Witness::CutOff,
                format!(
                    "replica {r} stopped answering too ({kind_str} since {}, after the primary was last seen alive at {}): it may be beyond the same network partition",
                    at(since),
                    at(suspicion.last_seen)
                ),
            )
        } else {
            said(
                Witness::Abstains,
                format!(
                    "replica {r} is unreachable itself ({kind_str} since {}): it cannot testify",
                    at(since)
                ),
            )
        };
    }
    if latest.at < suspected_since {
        return said(
            Witness::Undecided,
            format!(
                "replica {r}'s newest sample ({}) predates the primary's first failed probe ({}): waiting for a newer one",
                at(latest.at),
                at(suspected_since)
            ),
        );
    }
    let progress = progress(flavor, node, primary, primary_server_id, policy);
    let (witness, detail) = match ch.io_state {
        IoThreadState::Connecting => (
            Witness::Disconnected,
            format!(
                "replica {r}'s IO thread is reconnecting to the primary{}",
                io_error(ch)
            ),
        ),
        IoThreadState::Stopped if is_connection_error(ch.last_io_errno) => (
            Witness::Disconnected,
            format!(
                "replica {r}'s IO thread stopped after a connection error{}",
                io_error(ch)
            ),
        ),
        IoThreadState::Stopped => (
            Witness::Abstains,
            format!(
                "replica {r}'s IO thread is stopped without a connection error{} (stopped by someone, or for another cause): it says nothing about the primary",
                io_error(ch)
            ),
        ),
        IoThreadState::Running => match progress {
            Progress::Moved(what) => (
                Witness::Receiving,
                format!("replica {r} still receives from the primary: {what}"),
            ),
            Progress::Still(what) => (
                Witness::Stalled,
                format!("replica {r}'s IO thread says Running but {what}"),
            ),
            Progress::Unknown(why) => (
                Witness::Undecided,
                format!("replica {r}'s IO thread says Running and {why}"),
            ),
        },
    };
    // A replica in maintenance may veto (it still receives) but never confirms.
    if in_maintenance && witness != Witness::Receiving {
        return said(
            Witness::Abstains,
            format!("replica {r} is in maintenance, so it cannot confirm ({detail})"),
        );
    }
    said(witness, detail)
}

/// Client errors of a replica's IO thread that mean "the connection to the source broke
/// or could not be made": the source (or the path to it) is gone.
pub fn is_connection_error(errno: u32) -> bool {
    matches!(errno, 1158..=1161 | 2002 | 2003 | 2005 | 2006 | 2013)
}

fn io_error(ch: &ReplicaStatus) -> String {
    match (ch.last_io_errno, ch.last_io_error.is_empty()) {
        (0, true) => String::new(),
        (n, true) => format!(" (error {n})"),
        (n, false) => format!(" (error {n}: {})", ch.last_io_error),
    }
}

/// Whether a replica received anything over the confirmation window.
enum Progress {
    Moved(String),
    Still(String),
    Unknown(String),
}

/// Compares the newest sample with the newest one at least the window older (or, when
/// the history is shorter, the oldest one: movement then still proves life).
fn progress(
    flavor: Flavor,
    node: &ReplicationNode,
    primary: &Endpoint,
    sid: Option<u32>,
    policy: &HaPolicy,
) -> Progress {
    let Some(latest) = node.latest() else {
        return Progress::Unknown("has no sample".into());
    };
    let Some(new) = channel_from(&latest.sample, primary, sid) else {
        return Progress::Unknown("has no channel from the primary".into());
    };
    let period = new.heartbeat_period.filter(|p| p.is_finite() && *p > 0.0);
    let window = period.map(|p| {
        Duration::milliseconds(
            (p * 1000.0 * f64::from(policy.confirm_heartbeat_periods.max(1))) as i64,
        )
    });
    let spanning = window.and_then(|w| node.samples.iter().rev().find(|s| latest.at - s.at >= w));
    let Some(old_sample) = spanning.or_else(|| node.samples.first().filter(|s| s.at < latest.at))
    else {
        return Progress::Unknown(
            "only one sample shows it: no progress can be measured yet".into(),
        );
    };
    let Some(old) = channel_from(&old_sample.sample, primary, sid) else {
        return Progress::Unknown(format!(
            "its sample of {} had no channel from the primary",
            at(old_sample.at)
        ));
    };
    let elapsed = span(latest.at - old_sample.at);
    let mut moved = Vec::new();
    if !same_gtids(flavor, &old.received_gtids, &new.received_gtids) {
        moved.push(format!(
            "received GTIDs went from {} to {}",
            old.received_gtids, new.received_gtids
        ));
    }
    let heartbeats = match (old.received_heartbeats, new.received_heartbeats) {
        (Some(a), Some(b)) => {
            if a != b {
                moved.push(format!("heartbeats went from {a} to {b}"));
            }
            Some(b)
        }
        _ => None,
    };
    if (&old.read_source_log_file, old.read_source_log_pos)
        != (&new.read_source_log_file, new.read_source_log_pos)
    {
        moved.push(format!(
            "read position went from {}:{} to {}:{}",
            old.read_source_log_file,
            old.read_source_log_pos,
            new.read_source_log_file,
            new.read_source_log_pos
        ));
    }
    if !moved.is_empty() {
        return Progress::Moved(format!("{} within {elapsed}", moved.join(", ")));
    }
    let (Some(window), Some(period)) = (window, period) else {
        return Progress::Unknown(format!(
            "nothing moved in {elapsed}, but its heartbeat period is unknown, so silence proves nothing: only a disconnect can confirm"
        ));
    };
    let Some(heartbeats) = heartbeats else {
        return Progress::Unknown(format!(
            "no GTID moved in {elapsed}, but it reports no heartbeat counter, so an idle primary looks the same: only a disconnect can confirm"
        ));
    };
    if spanning.is_none() {
        return Progress::Unknown(format!(
            "nothing moved in {elapsed}, less than the {} ({} heartbeat periods of {period} s) needed to call it silence",
            span(window),
            policy.confirm_heartbeat_periods.max(1)
        ));
    }
    Progress::Still(format!(
        "neither heartbeats ({heartbeats}) nor received GTIDs ({}) nor its read position moved in {elapsed}, at least {} heartbeat periods of {period} s",
        new.received_gtids,
        policy.confirm_heartbeat_periods.max(1)
    ))
}

/// GTID texts compared as sets (SHOW output wraps and orders them freely); as text when
/// either does not parse.
fn same_gtids(flavor: Flavor, a: &str, b: &str) -> bool {
    match (GtidSet::parse(flavor, a), GtidSet::parse(flavor, b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a.trim() == b.trim(),
    }
}

#[cfg(test)]
mod tests;
