//! The kinds of event nines writes to a cluster's history (`nines events`, the cluster
//! page's events, the reasons for every automatic decision). Writers name a kind from
//! this one list, so a misspelt kind cannot reach the store and every kind a person may
//! see is documented here. Readers keep the stored word as text: a history written by
//! another version of nines still reads back whole.

use std::fmt;

macro_rules! event_kinds {
    ($( $(#[$doc:meta])* $v:ident => $s:literal ),* $(,)?) => {
        /// What an event records.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum EventKind {
            $( $(#[$doc])* $v, )*
        }

        impl EventKind {
            /// Every kind, in the order of this list.
            pub const ALL: &[EventKind] = &[$(Self::$v),*];

            /// The word stored and shown.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),* }
            }
        }
    };
}

event_kinds! {
    /// The monitor derived a new cluster state.
    ClusterState => "cluster_state",
    /// The monitor derived a new node state.
    NodeState => "node_state",
    /// An existing cluster was imported.
    ClusterRegistered => "cluster_registered",
    /// A cluster nines created finished deploying.
    ClusterDeployed => "cluster_deployed",
    /// A cluster was deleted (its servers stopped, its data kept or purged).
    ClusterDeleted => "cluster_deleted",
    /// A node joined the cluster.
    NodeAdded => "node_added",
    /// A node left the cluster.
    NodeRemoved => "node_removed",
    /// A maintenance window opened.
    MaintenanceOn => "maintenance_on",
    /// A maintenance window closed.
    MaintenanceOff => "maintenance_off",
    /// Automatic recovery was switched on or off.
    Recovery => "recovery",
    /// The cluster's HA policy was set or reset.
    HaPolicy => "ha_policy",
    /// A failover promoted a replica.
    Failover => "failover",
    /// A switchover moved the primary.
    Switchover => "switchover",
    /// A person acknowledged a failover.
    FailoverAcknowledged => "failover_acknowledged",
    /// A promotion interrupted by a controller stop was taken up again.
    PromotionResumed => "promotion_resumed",
    /// A promotion that could not finish gave writes back to the old primary.
    PromotionRolledBack => "promotion_rolled_back",
    /// A fenced former primary rejoined as a replica.
    Rejoin => "rejoin",
    /// An alarm was raised (or a condition a person must act on was found).
    Alarm => "alarm",
    /// An alarm cleared.
    AlarmCleared => "alarm_cleared",
    /// A person acknowledged an alarm.
    AlarmAcknowledged => "alarm_acknowledged",
    /// A backup finished and was verified.
    BackupCompleted => "backup_completed",
    /// A backup was restored.
    BackupRestored => "backup_restored",
    /// Retention removed backups or archived binlogs.
    BackupPurged => "backup_purged",
    /// A schedule started a backup.
    BackupScheduled => "backup_scheduled",
    /// A backup schedule was added or deleted.
    BackupSchedule => "backup_schedule",
    /// A Galera cluster was brought back to a Primary component.
    GaleraRecovered => "galera_recovered",
    /// A load balancer was added.
    LbAdded => "lb_added",
    /// A load balancer was removed.
    LbRemoved => "lb_removed",
    /// A load balancer was restarted.
    LbRestarted => "lb_restarted",
    /// A load balancer's configuration was rewritten.
    LbReconfigured => "lb_reconfigured",
    /// A load balancer's backends changed state.
    LbBackends => "lb_backends",
    /// The reconciler restarts a stopped node.
    AutoRestart => "auto_restart",
    /// The reconciler followed a promotion made outside nines.
    PrimaryAdopted => "primary_adopted",
    /// Automatic failover became possible (the topology was seen healthy).
    FailoverArmed => "failover_armed",
    /// The reconciler starts a failover.
    AutoFailover => "auto_failover",
    /// The reconciler starts a fenced former primary's rejoin check.
    AutoRejoin => "auto_rejoin",
    /// Semi-synchronous replication was switched on or off.
    SemiSync => "semi_sync",
    /// The reconciler starts a Galera recovery.
    AutoGaleraRecovery => "auto_galera_recovery",
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_a_distinct_lowercase_word() {
        let mut seen = std::collections::BTreeSet::new();
        for k in EventKind::ALL {
            let s = k.as_str();
            assert!(
                !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{s}"
            );
            assert!(seen.insert(s), "{s} twice");
        }
        assert_eq!(EventKind::Alarm.to_string(), "alarm");
    }
}
