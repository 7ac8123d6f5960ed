//! Which replica may be promoted, and which of them is the most advanced, by real GTID
//! set comparison (never a sum of seqnos: replication-manager's crude comparison, ha.md
//! §1.3; "wrong candidate chosen" must be 0, target 8).
//!
//! * **Received set** of a replica: what it received from the primary (MariaDB
//!   `Gtid_IO_Pos`, MySQL `Retrieved_Gtid_Set`) united with what it executed
//!   (`gtid_current_pos` / `gtid_executed`; a restart may reset the received set). This is
//!   what it holds once its relay log is applied (ha.md 2a step 5).
//! * **Errant transactions**: what a replica executed that did not come from the
//!   primary. Such a replica must never be promoted: its extra transactions would reach
//!   every other replica, or, once purged from its binlog, break them all
//!   (orchestrator#1061). The reference is everything known to come from the primary:
//!   its gtid_executed / gtid_binlog_pos at its last sample, united with what every
//!   replica received on its channel from it (never their executed sets, or an errant
//!   replica would whitewash itself).
//!   - MySQL: `gtid_executed − reference`, exactly.
//!   - MariaDB positions keep only the last GTID of each domain, so three checks, as far
//!     as positions can prove: a domain further than the reference (MaxScale's
//!     `events_ahead`); a domain at the same seq_no as the reference under another
//!     server_id (two different transactions with one number); a domain whose last GTID
//!     carries the replica's own server_id and is not the reference's (written on the
//!     replica itself). A local write later overtaken by replicated ones in the same
//!     domain is invisible to positions; `gtid_strict_mode` (ha.md 2, required
//!     settings) stops replication on it instead, and a replica whose SQL thread stopped
//!     with an error is not a candidate.
//! * **Most advanced**: the eligible replica whose received set contains every other
//!   eligible one's. When none does, two replicas hold transactions the other lacks:
//!   their histories diverged and promoting either loses the other's, so nines refuses
//!   (ha.md 2a step 6: "incomparable sets mean divergence, so page"). Equal sets are a
//!   tie, broken by the configured preference order, then the lower lag, then the lower
//!   address, and the reasons say which.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::endpoint::Endpoint;
use crate::gtid::{GtidError, GtidSet, MariaDbGtid, MariaDbGtidPos};
use crate::replication::{Flavor, ReplicaStatus};
use crate::snapshot::ServerSample;

/// One replica considered for promotion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub endpoint: Endpoint,
    /// Its received set (see the module docs).
    pub received: GtidSet,
    /// Seconds_Behind_Master in its newest sample.
    pub seconds_behind: Option<u64>,
    /// Why it may not be promoted; None when eligible.
    pub exclusion: Option<String>,
}

/// Transactions a server executed that did not come from its primary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Errant {
    /// The errant GTIDs (MySQL: the exact set; MariaDB: the offending domains' GTIDs).
    pub gtids: String,
    /// Why they are errant, as a sentence.
    pub why: String,
}

/// The received set of a replica: its channel's received GTIDs united with its executed
/// ones.
pub fn received_set(
    flavor: Flavor,
    sample: &ServerSample,
    channel: &ReplicaStatus,
) -> Result<GtidSet, GtidError> {
    let received = GtidSet::parse(flavor, &channel.received_gtids)?;
    let executed = GtidSet::parse(flavor, &sample.gtid_executed)?;
    received.union(&executed)
}

/// What the primary last reported having: MariaDB `gtid_binlog_pos`, MySQL
/// `gtid_executed`.
pub fn primary_position(flavor: Flavor, sample: &ServerSample) -> Result<GtidSet, GtidError> {
    match flavor {
        Flavor::MariaDb => GtidSet::parse(flavor, &sample.gtid_binlog_pos),
        Flavor::MySql => GtidSet::parse(flavor, &sample.gtid_executed),
    }
}

/// The errant transactions of a server with `sample` against `reference`, everything
/// known to come from its primary (see the module docs); None when there are none.
pub fn errant_transactions(
    flavor: Flavor,
    sample: &ServerSample,
    reference: &GtidSet,
) -> Result<Option<Errant>, GtidError> {
    let executed = GtidSet::parse(flavor, &sample.gtid_executed)?;
    match (&executed, reference) {
        (GtidSet::MariaDb(e), GtidSet::MariaDb(r)) => Ok(mariadb_errant(e, r, sample.server_id)),
        (GtidSet::MariaDb(e), r) if r.is_empty() => {
            Ok(mariadb_errant(e, &MariaDbGtidPos::new(), sample.server_id))
        }
        _ => {
            let extra = executed.difference(reference)?;
            Ok((!extra.is_empty()).then(|| Errant {
                gtids: extra.to_string(),
                why: format!(
                    "it executed {extra}, which is neither in the primary's last known gtid_executed nor in any set a replica received from it"
                ),
            }))
        }
    }
}

fn mariadb_errant(e: &MariaDbGtidPos, r: &MariaDbGtidPos, own_server_id: u32) -> Option<Errant> {
    let mut bad: BTreeMap<u32, (MariaDbGtid, String)> = BTreeMap::new();
    let reference = |d: u32| {
        r.get(d)
            .map_or_else(|| "nothing".to_string(), |g| g.to_string())
    };
    for g in e.ahead_of(r) {
        bad.entry(g.domain).or_insert_with(|| {
            (
                g,
                format!(
                    "domain {} reached {g}, beyond everything received from the primary ({})",
                    g.domain,
                    reference(g.domain)
                ),
            )
        });
    }
    for d in e.diverging_domains(r) {
        if let Some(g) = e.get(d) {
            bad.entry(d).or_insert_with(|| {
                (
                    g,
                    format!(
                        "domain {d} is at {g} where the primary's history has {}: two different transactions with the same number",
                        reference(d)
                    ),
                )
            });
        }
    }
    for g in e.iter() {
        if g.seq > 0 && g.server_id == own_server_id && r.get(g.domain) != Some(g) {
            bad.entry(g.domain).or_insert_with(|| {
                (
                    g,
                    format!(
                        "domain {}'s last transaction {g} was written on this server itself (server_id {own_server_id}), not received from the primary ({})",
                        g.domain,
                        reference(g.domain)
                    ),
                )
            });
        }
    }
    if bad.is_empty() {
        return None;
    }
    let gtids: MariaDbGtidPos = bad.values().map(|(g, _)| *g).collect();
    let why = bad
        .into_values()
        .map(|(_, why)| why)
        .collect::<Vec<_>>()
        .join("; ");
    Some(Errant {
        gtids: gtids.to_string(),
        why,
    })
}

/// What `want` has that `have` lacks, and how many transactions that is (MariaDB: the
/// seq_no gaps summed over domains).
pub fn missing_transactions(have: &GtidSet, want: &GtidSet) -> Result<(u64, GtidSet), GtidError> {
    let missing = want.difference(have)?;
    let count = match (&missing, have) {
        (GtidSet::MariaDb(m), h) => {
            let h = h.as_mariadb();
            m.iter()
                .map(|g| g.seq.saturating_sub(h.map_or(0, |h| h.seq(g.domain))))
                .sum()
        }
        (GtidSet::MySql(m), _) => m.count(),
    };
    Ok((count, missing))
}

/// The domains where two MariaDB positions stand at the same seq_no under different
/// server_ids (histories that diverged although neither is "ahead"); empty for MySQL.
fn diverged(a: &GtidSet, b: &GtidSet) -> Vec<u32> {
    match (a, b) {
        (GtidSet::MariaDb(a), GtidSet::MariaDb(b)) => a.diverging_domains(b),
        _ => Vec::new(),
    }
}

/// The chosen candidate, by index into the list given to [`most_advanced`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub index: usize,
    pub reasons: Vec<String>,
}

/// Picks the eligible candidate whose received set contains every other eligible one's;
/// Err with the reasons when none may be chosen (none eligible, or diverged histories).
pub fn most_advanced(
    candidates: &[Candidate],
    preferred: &[Endpoint],
) -> Result<Choice, Vec<String>> {
    let eligible: Vec<(usize, &Candidate)> = candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| c.exclusion.is_none())
        .collect();
    if eligible.is_empty() {
        return Err(vec![
            "no replica may be promoted: every one of them is excluded".into(),
        ]);
    }
    let contains = |a: &Candidate, b: &Candidate| {
        a.received.contains(&b.received).map_err(|e| {
            vec![format!(
                "cannot compare the GTIDs of {} and {}: {e}",
                a.endpoint, b.endpoint
            )]
        })
    };
    let mut top = Vec::new();
    for &(i, a) in &eligible {
        let mut greatest = true;
        for (_, b) in &eligible {
            greatest &= contains(a, b)?;
        }
        if greatest {
            top.push((i, a));
        }
    }
    let mut refusal = Vec::new();
    for (k, (_, a)) in eligible.iter().enumerate() {
        for (_, b) in &eligible[k + 1..] {
            let domains = diverged(&a.received, &b.received);
            if !domains.is_empty() {
                refusal.push(format!(
                    "{} received {} and {} received {}: in domain(s) {domains:?} they hold different transactions with the same number, so their histories diverged",
                    a.endpoint, a.received, b.endpoint, b.received
                ));
            } else if top.is_empty() && !contains(a, b)? && !contains(b, a)? {
                let a_lacks = b
                    .received
                    .difference(&a.received)
                    .map_err(|e| vec![e.to_string()])?;
                let b_lacks = a
                    .received
                    .difference(&b.received)
                    .map_err(|e| vec![e.to_string()])?;
                refusal.push(format!(
                    "{} received {} and {} received {}: neither contains the other ({} lacks {a_lacks}, {} lacks {b_lacks}), so their histories diverged",
                    a.endpoint, a.received, b.endpoint, b.received, a.endpoint, b.endpoint
                ));
            }
        }
    }
    if !refusal.is_empty() {
        refusal.push(
            "promoting either would lose the other's transactions; a person must decide which history to keep".into(),
        );
        return Err(refusal);
    }
    let rank = |c: &Candidate| {
        (
            preferred
                .iter()
                .position(|p| *p == c.endpoint)
                .unwrap_or(usize::MAX),
            c.seconds_behind.unwrap_or(u64::MAX),
            c.endpoint.clone(),
        )
    };
    top.sort_by_key(|(_, c)| rank(c));
    let (Some(&(index, best)), rest) = (top.first(), top.get(1..).unwrap_or_default()) else {
        return Err(vec![
            "no replica's received set contains all the others'".into(),
        ]);
    };
    let mut reasons = vec![format!(
        "{} has received the most ({}): its set contains what every other eligible replica received",
        best.endpoint, best.received
    )];
    if let Some(&(_, second)) = rest.first() {
        let (rb, rs) = (rank(best), rank(second));
        let lag = |c: &Candidate| {
            c.seconds_behind
                .map_or("unknown".to_string(), |s| format!("{s} s"))
        };
        let by = if rb.0 != rs.0 {
            "the configured preference order".to_string()
        } else if rb.1 != rs.1 {
            format!("the lower lag ({} against {})", lag(best), lag(second))
        } else {
            "the lowest address, since preference and lag are equal".to_string()
        };
        let names: Vec<String> = top.iter().map(|(_, c)| c.endpoint.to_string()).collect();
        reasons.push(format!(
            "a tie: {} received the same transactions; {} chosen by {by}",
            names.join(", "),
            best.endpoint
        ));
    }
    Ok(Choice { index, reasons })
}

#[cfg(test)]
mod tests;
