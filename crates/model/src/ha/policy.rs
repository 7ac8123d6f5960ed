//! A cluster's HA policy: the switches and limits every HA decision reads.
//!
//! The defaults aim at the contract of the HA issue: a primary frozen for 1 s never causes
//! a failover, a killed primary is replaced within about 2 s at a 1 s probe interval, and
//! nothing is promoted, bootstrapped or restarted when it could lose data or make two
//! writers. Each field says why its default is what it is. Durations serialize as whole
//! milliseconds so that a stored policy stays readable.

use chrono::Duration;
use serde::{Deserialize, Serialize};

use crate::endpoint::Endpoint;

/// How far behind a replica may be and still be promoted by an automatic failover.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CandidateLagLimit {
    /// Largest Seconds_Behind_Master of a candidate (its unapplied relay log, which the
    /// failover must apply before promoting, so this bounds the failover's duration).
    /// None: no limit. Default 10 s, matching [`HaPolicy::relay_log_apply_timeout`].
    pub max_seconds_behind: Option<u64>,
    /// Largest number of transactions the primary reported in its last sample that the
    /// chosen candidate never received: those are lost by the failover. None: no limit.
    /// Default 0: an automatic failover never knowingly loses a transaction
    /// (mariadb-operator#209 promoted a lagging replica and lost data; ha.md target 5).
    pub max_missing_transactions: Option<u64>,
}

impl Default for CandidateLagLimit {
    fn default() -> Self {
        Self {
            max_seconds_behind: Some(10),
            max_missing_transactions: Some(0),
        }
    }
}

/// The switches and limits of automatic recovery for one cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HaPolicy {
    /// Whether nines repairs the cluster by itself (failover, Galera recovery, restarts).
    /// Default on: the product's point; `cluster recovery disable` turns it off.
    pub automatic_recovery: bool,
    /// After an automatic failover, no other one until this much time has passed or a
    /// person acknowledges it. Default 5 min: long enough for the old primary's rejoin
    /// (target <= 30 s), the repointing of every replica and a person to read the first
    /// failover's alarm, so a new primary that dies of the same cause (a query of death,
    /// a full disk) is not failed over in a ping-pong. orchestrator blocks for 1 h
    /// because it has no other brake; nines also has [`Self::daily_failover_budget`],
    /// which bounds a cascade, so the window need not leave the cluster unprotected for
    /// an hour.
    #[serde(with = "millis")]
    pub failover_block_window: Duration,
    /// Automatic failovers allowed in any 24 h, acknowledged or not; beyond it a person
    /// decides. Default 3, replication-manager's advice (`failover-limit=3`).
    pub daily_failover_budget: u32,
    /// How far behind a candidate may be.
    pub max_candidate_lag: CandidateLagLimit,
    /// Replicas never promoted automatically (reporting or backup replicas, another DC).
    pub excluded_candidates: Vec<Endpoint>,
    /// Preference order among candidates that received exactly the same transactions;
    /// unlisted replicas come after listed ones. Never beats a more advanced replica.
    pub preferred_candidates: Vec<Endpoint>,
    /// The cluster promises that acknowledged commits survive a failover (semi-sync
    /// AFTER_SYNC): refuse an automatic failover when that promise may have been broken
    /// (the primary had fallen back to asynchronous replication, or a replica that may
    /// hold the only copy of an acknowledged commit is unreachable). Default off, since
    /// only clusters deployed with semi-sync can keep it; deploy turns it on with them.
    pub require_semi_sync_ack: bool,
    /// Consecutive timed-out probes before the primary is suspected. A refused
    /// connection (nothing listens) is suspected at once. Default 2: a primary frozen
    /// for 1 s (SIGSTOP, a stall) misses at most one 1 s probe.
    pub suspect_after_timeouts: u32,
    /// Heartbeat periods during which a replica whose IO thread still says Running must
    /// see neither a heartbeat nor an event before it confirms the primary's death.
    /// Default 2 (ha.md 2a): one lost heartbeat is jitter, two is silence.
    pub confirm_heartbeat_periods: u32,
    /// How long a failover waits for the candidate to apply its relay log before giving
    /// up (the runtime's bound; never promote before it is applied). Default 10 s.
    #[serde(with = "millis")]
    pub relay_log_apply_timeout: Duration,
    /// Largest lag, in seconds, of a switchover candidate. Default 1 s (ha.md 2b): the
    /// primary is read-only while the candidate catches up.
    pub switchover_max_lag_seconds: u64,
    /// Oldest transaction allowed on the primary when a switchover starts: it would be
    /// killed by the demotion. Default 10 s (replication-manager cancels above 10 s).
    #[serde(with = "millis")]
    pub switchover_max_transaction_age: Duration,
    /// How long a node whose server died is left alone before nines restarts it (systemd
    /// or mysqld_safe may restart it first). Default 5 s: longer than a failover takes
    /// to confirm a dead primary (about 1 s), so a replication primary is failed over
    /// before anything restarts it.
    #[serde(with = "millis")]
    pub restart_grace: Duration,
    /// Wait after a failed restart before the next one, doubled after each. Default 10 s.
    #[serde(with = "millis")]
    pub restart_backoff: Duration,
    /// Restarts of one outage before nines gives up and raises an alarm. Default 3.
    pub max_restart_attempts: u32,
    /// How long a Galera cluster may have no Primary component, with some server still
    /// running, before nines recovers it. Default 10 s (ha.md 2c), longer than Galera's
    /// own suspect timeout (5 s), so that a cluster that can heal itself (pc.recovery,
    /// a short partition) does so first.
    #[serde(with = "millis")]
    pub galera_no_primary_timeout: Duration,
}

impl Default for HaPolicy {
    fn default() -> Self {
        Self {
            automatic_recovery: true,
            failover_block_window: Duration::minutes(5),
            daily_failover_budget: 3,
            max_candidate_lag: CandidateLagLimit::default(),
            excluded_candidates: Vec::new(),
            preferred_candidates: Vec::new(),
            require_semi_sync_ack: false,
            suspect_after_timeouts: 2,
            confirm_heartbeat_periods: 2,
            relay_log_apply_timeout: Duration::seconds(10),
            switchover_max_lag_seconds: 1,
            switchover_max_transaction_age: Duration::seconds(10),
            restart_grace: Duration::seconds(5),
            restart_backoff: Duration::seconds(10),
            max_restart_attempts: 3,
            galera_no_primary_timeout: Duration::seconds(10),
        }
    }
}

/// Serde for durations as whole milliseconds.
mod millis {
    use chrono::Duration;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(d.num_milliseconds())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let ms = i64::deserialize(d)?;
        Duration::try_milliseconds(ms)
            .filter(|d| *d >= Duration::zero())
            .ok_or_else(|| serde::de::Error::custom("duration out of range"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_durations_as_millis_and_fills_defaults() {
        let p = HaPolicy::default();
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["failover_block_window"], 300_000);
        assert_eq!(json["restart_grace"], 5_000);
        let back: HaPolicy = serde_json::from_value(json).unwrap();
        assert_eq!(back, p);
        let partial: HaPolicy =
            serde_json::from_str(r#"{"automatic_recovery": false, "restart_grace": 2500}"#)
                .unwrap();
        assert!(!partial.automatic_recovery);
        assert_eq!(partial.restart_grace, Duration::milliseconds(2500));
        assert_eq!(partial.daily_failover_budget, 3);
        assert!(serde_json::from_str::<HaPolicy>(r#"{"restart_grace": -1}"#).is_err());
    }
}
