//! Preflight of a planned switchover: may the primary hand over to this replica (or to
//! the best one) without losing a transaction or a client's work?
//!
//! A switchover is asked for by a person, so it is allowed during maintenance of the
//! cluster (often its very purpose), but every check must pass before anything changes
//! (ha.md 2b step 1; "validate before acting"). Every failing check is reported at once,
//! not only the first. The checks:
//!
//! * the primary answers (otherwise this is a failover) and its oldest open transaction
//!   is measured and younger than [`HaPolicy::switchover_max_transaction_age`]: the
//!   demotion kills client sessions (replication-manager cancels above 10 s);
//! * with [`HaPolicy::require_semi_sync_ack`], semi-sync is active on the primary;
//! * the candidate answers, is not in maintenance, replicates from the primary with both
//!   threads running, lags at most [`HaPolicy::switchover_max_lag_seconds`] (the primary
//!   is read-only while it catches up), is not delayed, has the binlog and
//!   log_slave_updates on, and has no errant transactions against the primary's live
//!   position (orchestrator#1061).
//!
//! Without a named candidate, the most advanced replica that passes is chosen, with the
//! same ordering and tie-breaks as a failover ([`crate::ha::candidate`]); replicas the
//! policy excludes from automatic promotion are skipped, but a person may name one.
//! The runtime then demotes (read_only, super_read_only, kill sessions), records the
//! final GTID set once two reads agree, waits for the candidate to reach it (bounded;
//! on timeout it restores the old primary's writability), promotes and repoints.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::endpoint::Endpoint;
use crate::gtid::GtidSet;
use crate::ha::candidate::{
    Candidate, errant_transactions, most_advanced, primary_position, received_set,
};
use crate::ha::maintenance::node_window;
use crate::ha::policy::HaPolicy;
use crate::ha::span;
use crate::ha::view::{ReplicationNode, ReplicationView};
use crate::replication::IoThreadState;

/// A switchover that passed its preflight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchoverPlan {
    pub old_primary: Endpoint,
    pub candidate: Endpoint,
    /// The other replicas of the old primary, to repoint to the candidate (the old
    /// primary itself is repointed too).
    pub others: Vec<Endpoint>,
    /// What the preflight checked, for the job log.
    pub reasons: Vec<String>,
}

/// Checks a switchover to `candidate` (or to the best replica when None); Err lists
/// every check that failed.
pub fn switchover_preflight(
    view: &ReplicationView,
    candidate: Option<&Endpoint>,
    policy: &HaPolicy,
    now: DateTime<Utc>,
) -> Result<SwitchoverPlan, Vec<String>> {
    let Some(topology) = &view.topology else {
        return Err(vec![
            "the topology is not known: there is no primary to switch over from".into(),
        ]);
    };
    let Some(primary) = view.primary() else {
        return Err(vec![format!(
            "the primary {} is not among the cluster's nodes",
            topology.primary
        )]);
    };
    let old = &primary.endpoint;
    let mut problems = Vec::new();
    let mut reasons = Vec::new();
    let primary_pos = primary
        .latest()
        .map(|s| primary_position(view.flavor, &s.sample));
    match (&primary.probe.error_kind(), &primary_pos) {
        (Some(kind), _) => problems.push(format!(
            "the primary {old} does not answer ({}): a switchover needs a live primary; this is a failover's job",
            kind.as_str()
        )),
        (None, None) => problems.push(format!("the primary {old} has not been sampled yet")),
        (None, Some(Err(e))) => problems.push(format!("the primary's GTID position cannot be read: {e}")),
        (None, Some(Ok(pos))) => reasons.push(format!("the primary {old} answers, at {pos}")),
    }
    let max_age = policy.switchover_max_transaction_age;
    match primary.longest_transaction_secs {
        None => problems.push(format!(
            "the age of the primary's oldest open transaction was not measured (at most {} allowed)",
            span(max_age)
        )),
        Some(s) if i64::try_from(s).unwrap_or(i64::MAX) > max_age.num_seconds() => problems.push(format!(
            "the primary has a transaction open for {s} s, above the {} allowed: demoting would kill it; retry when it ends",
            span(max_age)
        )),
        Some(s) => reasons.push(format!(
            "the primary's oldest open transaction is {s} s old (at most {} allowed)",
            span(max_age)
        )),
    }
    if policy.require_semi_sync_ack {
        match view.primary_semi_sync {
            Some(s) if s.active && s.clients > 0 => reasons.push(format!(
                "semi-sync is active on the primary with {} client(s)",
                s.clients
            )),
            _ => problems
                .push("semi-sync is not active on the primary, which the policy requires".into()),
        }
    }
    let reference = match &primary_pos {
        Some(Ok(p)) => p.clone(),
        _ => GtidSet::empty(view.flavor),
    };
    let replicas = view.replicas_of_primary();
    let chosen: Option<&ReplicationNode> = match candidate {
        Some(c) if c == old => {
            problems.push(format!("{c} is already the primary"));
            None
        }
        Some(c) => match view.node(c) {
            None => {
                problems.push(format!("{c} is not a node of this cluster"));
                None
            }
            Some(node) => {
                let found = check_candidate(view, node, &reference, policy, now);
                if found.is_empty() {
                    reasons.push(format!("{c} passes every check"));
                } else {
                    problems.extend(found.into_iter().map(|p| format!("{c}: {p}")));
                }
                if policy.excluded_candidates.contains(c) {
                    reasons.push(format!(
                        "{c} is excluded from automatic promotion, but was named for this switchover"
                    ));
                }
                Some(node)
            }
        },
        None => {
            let mut candidates = Vec::new();
            let mut rejected = Vec::new();
            for r in &replicas {
                let mut found = check_candidate(view, r, &reference, policy, now);
                if policy.excluded_candidates.contains(&r.endpoint) {
                    found.push("excluded from promotion by the cluster's policy".into());
                }
                let received = r
                    .latest()
                    .zip(r.channel_from(old, view.primary_server_id()))
                    .and_then(|(s, ch)| received_set(view.flavor, &s.sample, ch).ok())
                    .unwrap_or_else(|| GtidSet::empty(view.flavor));
                if !found.is_empty() {
                    rejected.push(format!(
                        "{} is not a candidate: {}",
                        r.endpoint,
                        found.join("; ")
                    ));
                }
                candidates.push(Candidate {
                    endpoint: r.endpoint.clone(),
                    received,
                    seconds_behind: r
                        .channel_from(old, view.primary_server_id())
                        .and_then(|c| c.seconds_behind),
                    exclusion: (!found.is_empty()).then(|| found.join("; ")),
                });
            }
            match most_advanced(&candidates, &policy.preferred_candidates) {
                Ok(choice) => {
                    reasons.extend(rejected);
                    reasons.extend(choice.reasons);
                    replicas.get(choice.index).copied()
                }
                Err(why) => {
                    problems.extend(rejected);
                    problems.extend(why);
                    None
                }
            }
        }
    };
    match chosen {
        Some(c) if problems.is_empty() => Ok(SwitchoverPlan {
            old_primary: old.clone(),
            candidate: c.endpoint.clone(),
            others: replicas
                .iter()
                .map(|r| r.endpoint.clone())
                .filter(|e| *e != c.endpoint)
                .collect(),
            reasons,
        }),
        _ => Err(problems),
    }
}

/// What keeps `node` from taking over from the live primary (empty when nothing).
fn check_candidate(
    view: &ReplicationView,
    node: &ReplicationNode,
    reference: &GtidSet,
    policy: &HaPolicy,
    now: DateTime<Utc>,
) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(kind) = node.probe.error_kind() {
        problems.push(format!("it does not answer ({})", kind.as_str()));
        return problems;
    }
    if let Some(m) = node_window(&view.maintenance, &node.endpoint, now) {
        problems.push(format!("it is in maintenance ({})", m.reason));
    }
    let Some(topology) = &view.topology else {
        return problems;
    };
    let Some(sample) = node.latest().map(|s| &s.sample) else {
        problems.push("it has not been sampled yet".into());
        return problems;
    };
    let Some(ch) = node.channel_from(&topology.primary, view.primary_server_id()) else {
        problems.push(format!(
            "it does not replicate from the primary {}",
            topology.primary
        ));
        return problems;
    };
    if ch.io_state != IoThreadState::Running {
        problems.push(format!("its IO thread is not running ({:?})", ch.io_state));
    }
    if !ch.sql_running {
        problems.push("its SQL thread is not running".into());
    }
    let max = policy.switchover_max_lag_seconds;
    match ch.seconds_behind {
        None => problems.push("its lag is unknown (Seconds_Behind_Master is NULL)".into()),
        Some(l) if l > max => problems.push(format!(
            "it lags {l} s behind, above the switchover limit of {max} s"
        )),
        Some(_) => {}
    }
    if ch.sql_delay > 0 {
        problems.push(format!(
            "it is a delayed replica (SQL_Delay {} s)",
            ch.sql_delay
        ));
    }
    if !sample.log_bin {
        problems.push("its binary log is off".into());
    } else if !sample.log_slave_updates {
        problems.push("log_slave_updates is off".into());
    }
    match errant_transactions(view.flavor, sample, reference) {
        Ok(Some(e)) => problems.push(format!("it has errant transactions {}: {}", e.gtids, e.why)),
        Ok(None) => {}
        Err(e) => problems.push(format!("its gtid_executed cannot be read: {e}")),
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ha::maintenance::{Maintenance, MaintenanceScope};
    use crate::ha::testkit::{Cluster, U, assert_mentions, ep, t};
    use crate::replication::IoThreadState::Stopped;
    use crate::snapshot::ProbeErrorKind::Refused;

    fn healthy() -> Cluster {
        Cluster::mariadb("0-1-100")
            .replica(2, "0-1-100")
            .replica(3, "0-1-100")
    }

    #[test]
    fn preflight_passes() {
        let c = healthy();
        let p = switchover_preflight(&c.view, Some(&ep(3)), &HaPolicy::default(), t(0)).unwrap();
        assert_eq!(p.old_primary, ep(1));
        assert_eq!(p.candidate, ep(3));
        assert_eq!(p.others, vec![ep(2)]);
        assert_mentions(&p.reasons, "127.0.0.13:3306 passes every check");

        // Without a name: the best replica (a tie here, lowest address).
        let p = switchover_preflight(&c.view, None, &HaPolicy::default(), t(0)).unwrap();
        assert_eq!(p.candidate, ep(2));
        assert_mentions(&p.reasons, "a tie");

        // MySQL: the most advanced by set comparison.
        let g = |s: &str| format!("{}:{s}", U[1]);
        let c = Cluster::mysql(&g("1-100"))
            .replica(2, &g("1-99"))
            .replica(3, &g("1-100"));
        let p = switchover_preflight(&c.view, None, &HaPolicy::default(), t(0)).unwrap();
        assert_eq!(p.candidate, ep(3));
    }

    #[test]
    fn preflight_refusals() {
        let named = |c: Cluster, n: u8| (c, Some(ep(n)));
        // (name, (cluster, candidate), needle)
        type Case<'a> = (&'a str, (Cluster, Option<Endpoint>), &'a str);
        let cases: Vec<Case<'_>> = vec![
            (
                "lagging candidate",
                named(
                    healthy().edit(3, |s| s.replication[0].seconds_behind = Some(5)),
                    3,
                ),
                "lags 5 s behind, above the switchover limit of 1 s",
            ),
            (
                "errant candidate",
                named(
                    healthy().edit(3, |s| s.gtid_executed = "0-1-100,1-3-2".into()),
                    3,
                ),
                "errant transactions 1-3-2",
            ),
            (
                "binlog off",
                named(healthy().edit(3, |s| s.log_bin = false), 3),
                "binary log is off",
            ),
            (
                "not replicating",
                named(healthy().io(3, Stopped, 0), 3),
                "IO thread is not running",
            ),
            (
                "long transaction on the primary",
                named(
                    healthy().node(1, |n| n.longest_transaction_secs = Some(60)),
                    3,
                ),
                "transaction open for 60 s",
            ),
            (
                "long transactions not measured",
                named(healthy().node(1, |n| n.longest_transaction_secs = None), 3),
                "was not measured",
            ),
            (
                "dead primary",
                named(healthy().primary_fails(Refused, 3), 3),
                "this is a failover's job",
            ),
            (
                "candidate is the primary",
                named(healthy(), 1),
                "already the primary",
            ),
            (
                "unknown candidate",
                named(healthy(), 9),
                "not a node of this cluster",
            ),
            (
                "candidate in maintenance",
                named(
                    {
                        let mut c = healthy();
                        c.view.maintenance.push(Maintenance {
                            scope: MaintenanceScope::Node(ep(3)),
                            reason: "backup".into(),
                            since: t(-5),
                            until: None,
                        });
                        c
                    },
                    3,
                ),
                "in maintenance (backup)",
            ),
            (
                "no replica qualifies",
                (
                    healthy()
                        .edit(2, |s| s.replication[0].seconds_behind = Some(9))
                        .edit(3, |s| s.log_slave_updates = false),
                    None,
                ),
                "every one of them is excluded",
            ),
        ];
        for (name, (c, candidate), needle) in cases {
            let e = switchover_preflight(&c.view, candidate.as_ref(), &HaPolicy::default(), t(0))
                .expect_err(name);
            assert_mentions(&e, needle);
        }
    }

    #[test]
    fn every_failing_check_is_reported() {
        let c = healthy()
            .node(1, |n| n.longest_transaction_secs = Some(60))
            .edit(3, |s| {
                s.replication[0].seconds_behind = Some(5);
                s.log_bin = false;
            });
        let e =
            switchover_preflight(&c.view, Some(&ep(3)), &HaPolicy::default(), t(0)).unwrap_err();
        assert_eq!(e.len(), 3, "{e:#?}");
        let policy = HaPolicy {
            require_semi_sync_ack: true,
            ..HaPolicy::default()
        };
        let e = switchover_preflight(&healthy().view, Some(&ep(3)), &policy, t(0)).unwrap_err();
        assert_mentions(&e, "semi-sync is not active");
    }
}
