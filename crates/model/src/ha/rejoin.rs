//! May a failed-over old primary rejoin as a replica of the new one?
//!
//! It stays fenced (read-only) until a GTID proof (ha.md 2a, "Old primary"): when every
//! transaction it executed is in the new primary's history, it rejoins with GTID
//! auto-position; when it has transactions the cluster lacks (committed but never
//! replicated before it died), it stays fenced and the alarm names those GTIDs, so that
//! they can be saved and a person (or a later flashback or rebuild step) decides. Never
//! promote it back automatically (mariadb-operator#622), never let it take writes
//! (orchestrator#887).
//!
//! * MySQL: `old − new` is exact; empty means rejoin.
//! * MariaDB positions keep one GTID per domain, so "contained" needs care: the new
//!   primary's own writes after promotion continue the same domains under its
//!   server_id, and a position cannot tell whether the old primary's last GTID precedes
//!   the promotion point. With `promoted_at`, the new primary's position when it was
//!   promoted (the failover journals it), the rule is exact as positions go: every
//!   domain of the old primary at or before the promotion position, and never at the
//!   same seq_no under another server_id. Without it, only what positions prove is
//!   accepted: a domain equal to the new primary's, or continued by the same
//!   originating server; anything else stays fenced as unproven.

use serde::{Deserialize, Serialize};

use crate::gtid::{GtidSet, MariaDbGtidPos};
use crate::ha::Decision;

/// What to do with the old primary once it answers again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejoinAction {
    /// Make it a replica of the new primary (GTID auto-position), still read-only.
    Rejoin,
    /// Keep it read-only and out of the cluster; `errant` names the GTIDs it has that
    /// the cluster lacks (or that cannot be proven to be in the cluster's history).
    StayFenced { errant: String },
}

/// [`old_primary_rejoin`]'s answer.
pub type RejoinDecision = Decision<RejoinAction>;

/// Decides whether the old primary, having executed `old_executed`, may replicate from
/// the new primary, now at `new_primary_executed` and promoted at `promoted_at` (MariaDB
/// needs it to prove most rejoins; see the module docs).
pub fn old_primary_rejoin(
    old_executed: &GtidSet,
    new_primary_executed: &GtidSet,
    promoted_at: Option<&GtidSet>,
) -> RejoinDecision {
    let fenced =
        |errant: String, reasons| Decision::new(RejoinAction::StayFenced { errant }, reasons);
    match (old_executed, new_primary_executed) {
        (GtidSet::MariaDb(old), GtidSet::MariaDb(new)) => {
            let promoted = promoted_at.and_then(GtidSet::as_mariadb);
            mariadb(old, new, promoted)
        }
        _ => match old_executed.difference(new_primary_executed) {
            Ok(extra) if extra.is_empty() => Decision::new(
                RejoinAction::Rejoin,
                vec![format!(
                    "the old primary's executed set ({old_executed}) is contained in the new primary's ({new_primary_executed}): it lost nothing and rejoins as a replica"
                )],
            ),
            Ok(extra) => fenced(
                extra.to_string(),
                vec![format!(
                    "the old primary has transactions the cluster lacks: {extra} (the new primary has {new_primary_executed}); it stays read-only and out of the cluster until they are saved and a person decides (flashback, rebuild)"
                )],
            ),
            Err(e) => fenced(
                old_executed.to_string(),
                vec![format!(
                    "cannot compare the old primary's GTIDs with the new primary's: {e}; it stays fenced"
                )],
            ),
        },
    }
}

fn mariadb(
    old: &MariaDbGtidPos,
    new: &MariaDbGtidPos,
    promoted: Option<&MariaDbGtidPos>,
) -> RejoinDecision {
    let mut doubtful = Vec::new();
    let mut reasons = Vec::new();
    for g in old.iter().filter(|g| g.seq > 0) {
        let d = g.domain;
        let why = match promoted {
            Some(p) => {
                let at = p.get(d);
                match at {
                    None => Some(format!(
                        "domain {d}: the old primary has {g}, the new primary was promoted with nothing in that domain"
                    )),
                    Some(a) if g.seq > a.seq => Some(format!(
                        "domain {d}: the old primary reached {g}, beyond the promotion position {a}"
                    )),
                    Some(a) if g.seq == a.seq && g.server_id != a.server_id => Some(format!(
                        "domain {d}: the old primary's {g} and the promotion position's {a} are different transactions with the same number"
                    )),
                    Some(_) => None,
                }
            }
            None => match new.get(d) {
                Some(n) if n == g => None,
                Some(n) if n.server_id == g.server_id && n.seq >= g.seq => None,
                Some(n) if n.seq < g.seq => Some(format!(
                    "domain {d}: the old primary reached {g}, beyond the new primary's {n}"
                )),
                Some(n) if n.seq == g.seq => Some(format!(
                    "domain {d}: the old primary's {g} and the new primary's {n} are different transactions with the same number"
                )),
                Some(n) => Some(format!(
                    "domain {d}: the new primary moved on to {n} under another server, and without the promotion position nines cannot prove that {g} is in its history"
                )),
                None => Some(format!(
                    "domain {d}: the old primary has {g}, the new primary has nothing in that domain"
                )),
            },
        };
        if let Some(why) = why {
            doubtful.push(g);
            reasons.push(why);
        }
    }
    if doubtful.is_empty() {
        let against = match promoted {
            Some(p) => format!("the promotion position ({p})"),
            None => format!("the new primary's position ({new})"),
        };
        return Decision::new(
            RejoinAction::Rejoin,
            vec![format!(
                "the old primary's position ({old}) is within {against}: it lost nothing and rejoins as a replica"
            )],
        );
    }
    let errant: MariaDbGtidPos = doubtful.into_iter().collect();
    reasons.push(format!(
        "the old primary stays read-only and out of the cluster: {errant} may exist only there; save its binlog from those positions before a flashback or rebuild"
    ));
    Decision::new(
        RejoinAction::StayFenced {
            errant: errant.to_string(),
        },
        reasons,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ha::testkit::{U, assert_mentions};
    use crate::replication::Flavor;

    #[test]
    fn rejoin_scenarios() {
        let my = |s: &str| {
            GtidSet::parse(Flavor::MySql, &s.replace("U1", U[1]).replace("U2", U[2])).unwrap()
        };
        let ma = |s: &str| GtidSet::parse(Flavor::MariaDb, s).unwrap();
        // (name, old, new, promoted_at, errant (None: rejoin), needle)
        type Case<'a> = (
            &'a str,
            GtidSet,
            GtidSet,
            Option<GtidSet>,
            Option<&'a str>,
            &'a str,
        );
        let cases: Vec<Case<'_>> = vec![
            (
                "MySQL contained",
                my("U1:1-100"),
                my("U1:1-100,U2:1-20"),
                None,
                None,
                "contained",
            ),
            (
                "MySQL extra transactions",
                my("U1:1-103"),
                my("U1:1-100,U2:1-20"),
                None,
                Some("U1:101-103"),
                "transactions the cluster lacks",
            ),
            (
                "MariaDB equal",
                ma("0-1-100"),
                ma("0-1-100"),
                None,
                None,
                "within",
            ),
            (
                "MariaDB same originator",
                ma("0-1-98"),
                ma("0-1-100"),
                None,
                None,
                "rejoins as a replica",
            ),
            (
                "MariaDB behind the promotion point",
                ma("0-1-100"),
                ma("0-2-120"),
                Some(ma("0-1-100")),
                None,
                "within the promotion position (0-1-100)",
            ),
            (
                "MariaDB beyond the promotion point",
                ma("0-1-103"),
                ma("0-2-120"),
                Some(ma("0-1-100")),
                Some("0-1-103"),
                "beyond the promotion position 0-1-100",
            ),
            (
                "MariaDB unprovable without the promotion position",
                ma("0-1-98"),
                ma("0-2-120"),
                None,
                Some("0-1-98"),
                "cannot prove",
            ),
            (
                "MariaDB same number, other server",
                ma("0-1-100"),
                ma("0-2-100"),
                None,
                Some("0-1-100"),
                "same number",
            ),
            (
                "MariaDB domain the cluster never saw",
                ma("0-1-100,5-1-3"),
                ma("0-1-100"),
                None,
                Some("5-1-3"),
                "nothing in that domain",
            ),
        ];
        for (name, old, new, promoted, errant, needle) in cases {
            let d = old_primary_rejoin(&old, &new, promoted.as_ref());
            let want = match errant {
                None => RejoinAction::Rejoin,
                Some(e) => RejoinAction::StayFenced {
                    errant: e.replace("U1", U[1]),
                },
            };
            assert_eq!(d.action, want, "{name}: {:#?}", d.reasons);
            assert_mentions(&d.reasons, needle);
        }
    }

    #[test]
    fn mixed_families_stay_fenced() {
        let old = GtidSet::parse(Flavor::MariaDb, "0-1-1").unwrap();
        let new = GtidSet::parse(Flavor::MySql, &format!("{}:1", U[1])).unwrap();
        let d = old_primary_rejoin(&old, &new, None);
        assert!(matches!(d.action, RejoinAction::StayFenced { .. }));
        assert_mentions(&d.reasons, "cannot compare");
    }
}
