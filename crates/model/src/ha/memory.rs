//! What the reconciler remembers about its own past actions: the attempts of each
//! automatic repair (for the [`crate::ha::RetryBudget`]) and the alarms it raised (so an
//! alarm is raised once per condition and cleared when it ends). The controller keeps
//! this in the store and loads it at start, so a restart neither resets a budget nor
//! raises an alarm again; [`HaMemory`] is the in-memory copy it writes through.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

/// A repair the reconciler retries under a budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Repair {
    NodeRestart,
    Failover,
    Rejoin,
    GaleraRecovery,
}

/// A condition the reconciler raises an alarm about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlarmKind {
    /// A node's restarts ran out.
    NodeRestart,
    /// A failover was refused, ran out of attempts, or the primary is cut off from nines.
    Failover,
    /// Galera recovery was refused or ran out of attempts.
    GaleraRecovery,
    /// The primary's semi-synchronous replication fell back to asynchronous.
    SemiSync,
}

macro_rules! names {
    ($t:ty { $($v:ident => $s:literal),* $(,)? }) => {
        impl $t {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),* }
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($s => Ok(Self::$v),)*
                    other => Err(format!("unknown {} `{other}`", stringify!($t))),
                }
            }
        }
    };
}

names!(Repair {
    NodeRestart => "node_restart",
    Failover => "failover",
    Rejoin => "rejoin",
    GaleraRecovery => "galera_recovery",
});

names!(AlarmKind {
    NodeRestart => "node_restart",
    Failover => "failover",
    GaleraRecovery => "galera_recovery",
    SemiSync => "semi_sync",
});

impl Repair {
    /// The alarm raised when this repair cannot be made.
    pub fn alarm(self) -> AlarmKind {
        match self {
            Self::NodeRestart => AlarmKind::NodeRestart,
            Self::Failover | Self::Rejoin => AlarmKind::Failover,
            Self::GaleraRecovery => AlarmKind::GaleraRecovery,
        }
    }
}

/// A repair job that ended without being retryable (refused, or cancelled by a person):
/// the reconciler raises its alarm at once and does not submit the same repair again for
/// a while ([`crate::ha::reconcile`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub repair: Repair,
    /// A node's host:port, or empty for the whole cluster.
    pub subject: String,
    pub job: i64,
    /// When the job ended.
    pub at: DateTime<Utc>,
    /// Why (the job's error).
    pub message: String,
}

/// The reconciler's memory of its attempts and raised alarms, per cluster id and subject
/// (a node's host:port, or empty for the whole cluster).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HaMemory {
    attempts: HashMap<(i64, Repair, String), Vec<DateTime<Utc>>>,
    alarms: HashSet<(i64, AlarmKind, String)>,
}

impl HaMemory {
    /// The attempts of `repair` on `subject` since they were last cleared, oldest first.
    pub fn attempts(&self, cluster_id: i64, repair: Repair, subject: &str) -> &[DateTime<Utc>] {
        self.attempts
            .get(&(cluster_id, repair, subject.to_string()))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    pub fn note_attempt(
        &mut self,
        cluster_id: i64,
        repair: Repair,
        subject: &str,
        at: DateTime<Utc>,
    ) {
        let v = self
            .attempts
            .entry((cluster_id, repair, subject.to_string()))
            .or_default();
        v.push(at);
        v.sort();
    }

    /// Forgets the attempts (the outage ended); true when there were any.
    pub fn clear_attempts(&mut self, cluster_id: i64, repair: Repair, subject: &str) -> bool {
        self.attempts
            .remove(&(cluster_id, repair, subject.to_string()))
            .is_some()
    }

    /// Whether anything is remembered about the cluster (an attempt or a raised alarm).
    pub fn knows(&self, cluster_id: i64) -> bool {
        self.attempts.keys().any(|(c, _, _)| *c == cluster_id)
            || self.alarms.iter().any(|(c, _, _)| *c == cluster_id)
    }

    pub fn is_raised(&self, cluster_id: i64, alarm: AlarmKind, subject: &str) -> bool {
        self.alarms
            .contains(&(cluster_id, alarm, subject.to_string()))
    }

    /// Notes a raised alarm; true when it was not raised before.
    pub fn note_raised(&mut self, cluster_id: i64, alarm: AlarmKind, subject: &str) -> bool {
        self.alarms.insert((cluster_id, alarm, subject.to_string()))
    }

    /// Notes a cleared alarm; true when it was raised.
    pub fn note_cleared(&mut self, cluster_id: i64, alarm: AlarmKind, subject: &str) -> bool {
        self.alarms
            .remove(&(cluster_id, alarm, subject.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ha::testkit::t;

    #[test]
    fn names_round_trip() {
        for r in [
            Repair::NodeRestart,
            Repair::Failover,
            Repair::Rejoin,
            Repair::GaleraRecovery,
        ] {
            assert_eq!(r.as_str().parse::<Repair>(), Ok(r));
        }
        for a in [
            AlarmKind::NodeRestart,
            AlarmKind::Failover,
            AlarmKind::GaleraRecovery,
            AlarmKind::SemiSync,
        ] {
            assert_eq!(a.as_str().parse::<AlarmKind>(), Ok(a));
        }
        assert!("reboot".parse::<Repair>().is_err());
    }

    #[test]
    fn attempts_and_alarms_are_kept_per_subject() {
        let mut m = HaMemory::default();
        m.note_attempt(1, Repair::NodeRestart, "a:3306", t(5));
        m.note_attempt(1, Repair::NodeRestart, "a:3306", t(1));
        m.note_attempt(1, Repair::NodeRestart, "b:3306", t(2));
        assert_eq!(m.attempts(1, Repair::NodeRestart, "a:3306"), &[t(1), t(5)]);
        assert!(m.attempts(2, Repair::NodeRestart, "a:3306").is_empty());
        assert!(m.clear_attempts(1, Repair::NodeRestart, "a:3306"));
        assert!(!m.clear_attempts(1, Repair::NodeRestart, "a:3306"));
        assert_eq!(m.attempts(1, Repair::NodeRestart, "b:3306"), &[t(2)]);

        assert!(m.knows(1) && !m.knows(2));
        assert!(m.note_raised(1, AlarmKind::Failover, ""));
        assert!(!m.note_raised(1, AlarmKind::Failover, ""), "raised once");
        assert!(m.is_raised(1, AlarmKind::Failover, ""));
        assert!(!m.is_raised(1, AlarmKind::SemiSync, ""));
        assert!(m.note_cleared(1, AlarmKind::Failover, ""));
        assert!(!m.is_raised(1, AlarmKind::Failover, ""));
    }
}
