//! High-availability decisions as pure functions: is the primary dead, which replica to
//! promote, may the old primary rejoin, which Galera node bootstraps, when to restart a
//! node.
//!
//! Each decision takes an observed view of a cluster (filled by the controller from the
//! monitor's snapshots), the cluster's [`HaPolicy`] and the current time, and returns a
//! [`Decision`]: an action for the job runner and the `reasons` an operator reads in the
//! event or job log. Nothing here does I/O or reads a clock, so every rule is tested with
//! tables of scenarios (see ../../../shared/research/ha.md for the failure modes each rule
//! prevents; the modules cite them).
//!
//! Where to look:
//!
//! | question | module |
//! |---|---|
//! | what the controller must fill in for replication clusters | [`view`] |
//! | is the primary dead (suspicion, replica confirmation) | [`detect`] |
//! | errant GTIDs, received sets, ranking of candidates | [`candidate`] |
//! | gates and the failover plan | [`failover`] |
//! | planned switchover preflight | [`switchover`] |
//! | may the old primary rejoin | [`rejoin`] |
//! | Galera full-cluster recovery | [`galera`] |
//! | restarting one node whose server died | [`node_recovery`] |
//! | how often and how soon any repair is tried again | [`retry`] |
//! | what the reconciler does about one cluster now (all of the above) | [`reconcile`] |
//! | what it remembers of its own attempts and alarms | [`memory`] |
//!
//! The runtime (controller and ops) keeps the duties no pure function can carry: it
//! re-checks the facts a decision relied on right before acting (for example "no Galera
//! node is Primary" before a bootstrap), it times each step out, and it journals every
//! step with the decision's reasons.

pub mod candidate;
pub mod detect;
pub mod failover;
pub mod fence;
pub mod galera;
pub mod maintenance;
pub mod memory;
pub mod node_recovery;
pub mod policy;
pub mod reconcile;
pub mod rejoin;
pub mod retry;
pub mod switchover;
pub mod view;

#[cfg(test)]
pub(crate) mod testkit;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

pub use detect::{PrimaryHealth, PrimaryVerdict, primary_health};
pub use failover::{
    FailoverAction, FailoverDecision, FailoverPlan, decide_failover, requested_failover,
};
pub use galera::{
    BootstrapMethod, GaleraAction, GaleraDecision, GaleraNode, GaleraView, decide_galera_recovery,
    forced_galera_recovery, joinable_primary, plan_galera_recovery,
};
pub use maintenance::{Maintenance, MaintenanceScope};
pub use memory::{AlarmKind, HaMemory, Refusal, Repair};
pub use node_recovery::{
    NodeKind, NodeRestartState, RestartAction, RestartDecision, decide_node_restart,
};
pub use policy::{CandidateLagLimit, HaPolicy};
pub use rejoin::{RejoinAction, RejoinDecision, old_primary_rejoin};
pub use retry::{RetryBudget, RetryVerdict};
pub use switchover::{SwitchoverPlan, switchover_preflight};
pub use view::{
    FailoverRecord, KnownTopology, ProbeStatus, ReplicationNode, ReplicationView, SemiSyncState,
    TimedSample,
};

/// What a decision function returns: the action to take and, in plain sentences, every
/// input that decided it, so that a person can always answer "why did nines do that?".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision<A> {
    pub action: A,
    pub reasons: Vec<String>,
}

impl<A> Decision<A> {
    pub fn new(action: A, reasons: Vec<String>) -> Self {
        Self { action, reasons }
    }

    /// The reasons as one line, for an event message.
    pub fn explain(&self) -> String {
        self.reasons.join("; ")
    }
}

/// Which way a primary changed: a failover (the primary was lost) or a switchover (it
/// was handed over while alive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PromotionKind {
    Failover,
    Switchover,
}

crate::topology::str_enum!(PromotionKind { Failover => "failover", Switchover => "switchover" });

impl PromotionKind {
    /// The event that records a finished promotion of this kind.
    pub fn event_kind(self) -> crate::event::EventKind {
        match self {
            Self::Failover => crate::event::EventKind::Failover,
            Self::Switchover => crate::event::EventKind::Switchover,
        }
    }
}

/// A point in time as reasons print it (RFC 3339, milliseconds, UTC).
pub(crate) fn at(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A duration as reasons print it: `1.5 s`, `30 s`, `5 min`, `2 h`.
pub(crate) fn span(d: Duration) -> String {
    let ms = d.num_milliseconds();
    if ms != 0 && ms % 3_600_000 == 0 {
        format!("{} h", ms / 3_600_000)
    } else if ms != 0 && ms % 60_000 == 0 {
        format!("{} min", ms / 60_000)
    } else if ms % 1000 == 0 {
        format!("{} s", ms / 1000)
    } else {
        format!("{} s", ms as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn promotion_kinds_read_back_as_written() {
        for k in [PromotionKind::Failover, PromotionKind::Switchover] {
            assert_eq!(k.as_str().parse::<PromotionKind>().unwrap(), k);
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{k}\""));
            assert_eq!(k.event_kind().as_str(), k.as_str());
        }
        assert!(
            "failback"
                .parse::<PromotionKind>()
                .unwrap_err()
                .contains("switchover")
        );
    }

    #[test]
    fn spans_print_for_people() {
        assert_eq!(span(Duration::minutes(5)), "5 min");
        assert_eq!(span(Duration::hours(24)), "24 h");
        assert_eq!(span(Duration::seconds(30)), "30 s");
        assert_eq!(span(Duration::milliseconds(1500)), "1.5 s");
        assert_eq!(span(Duration::zero()), "0 s");
    }

    #[test]
    fn explain_joins_reasons() {
        let d = Decision::new((), vec!["a".into(), "b".into()]);
        assert_eq!(d.explain(), "a; b");
    }
}
