//! Job lanes: which jobs of a cluster may run at the same time.
//!
//! Every job kind declares the locks it holds while it runs ([`JobSpec::locks`]); two
//! jobs may run together unless a lock of one [`conflicts`] with a lock of the other.
//! Jobs of different clusters never conflict.
//!
//! | lane | who holds it | how |
//! |---|---|---|
//! | topology | every job that changes servers, membership or roles | exclusive, one at a time |
//! | topology | failover and Galera recovery | urgent: exclusive, but never waits for a shared holder |
//! | topology | long read-only work (a new node's data copy, later backups and verification restores) | shared |
//! | provision | adding a node (server ids and the donor are chosen from the membership) | exclusive |
//! | backup | taking a backup (shared on topology: never delays a failover) | exclusive |
//! | none | verifying a stored backup (beside anything) | - |
//! | all three | restoring a backup onto the cluster | exclusive |
//!
//! So a node's data copy (hours, maybe) never delays a failover, while a planned change
//! (a switchover, a rolling restart) waits for it: the planned change can wait, the
//! outage cannot. An urgent job also starts ahead of queued exclusive jobs submitted
//! before it; otherwise jobs start in the order they were submitted, and a shared job
//! does not overtake an exclusive one that waits for the same lane (no starvation).
//! [`startable`] applies these rules to the queue.

use serde::{Deserialize, Serialize};

use crate::job::{ClusterAction, JobSpec};

/// A part of a cluster that jobs take turns on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    /// The cluster's servers, members and roles.
    Topology,
    /// Choosing and preparing a new member.
    Provision,
    /// The cluster's backups: one taken at a time.
    Backup,
    /// The cluster's load balancers: added and removed one at a time.
    Balancer,
}

/// How a job holds a lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockMode {
    /// Beside other shared holders and urgent jobs.
    Shared,
    /// Alone.
    Exclusive,
    /// Alone among exclusive holders, but beside shared ones, and ahead of queued
    /// exclusive jobs: restoring service.
    Urgent,
}

/// One lock a job holds while it runs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Lock {
    pub cluster: String,
    pub lane: Lane,
    pub mode: LockMode,
}

/// Whether two locks keep their jobs from running together.
pub fn conflicts(a: &Lock, b: &Lock) -> bool {
    use LockMode::{Shared, Urgent};
    if a.cluster != b.cluster || a.lane != b.lane {
        return false;
    }
    !matches!(
        (a.mode, b.mode),
        (Shared, Shared) | (Shared, Urgent) | (Urgent, Shared)
    )
}

/// Whether any lock of `a` conflicts with any lock of `b`.
pub fn jobs_conflict(a: &[Lock], b: &[Lock]) -> bool {
    a.iter().any(|x| b.iter().any(|y| conflicts(x, y)))
}

fn is_urgent(locks: &[Lock]) -> bool {
    locks.iter().any(|l| l.mode == LockMode::Urgent)
}

impl JobSpec {
    /// The locks the job holds while it runs (see the module docs).
    pub fn locks(&self) -> Vec<Lock> {
        let cluster = self.cluster_name().to_string();
        let lock = |lane, mode| Lock {
            cluster: cluster.clone(),
            lane,
            mode,
        };
        match self {
            Self::Failover { .. } | Self::GaleraRecovery { .. } => {
                vec![lock(Lane::Topology, LockMode::Urgent)]
            }
            Self::AddNode { .. } => vec![
                lock(Lane::Topology, LockMode::Shared),
                lock(Lane::Provision, LockMode::Exclusive),
            ],
            // A backup reads beside everything but another backup and a restore.
            Self::CreateBackup { .. } => vec![
                lock(Lane::Topology, LockMode::Shared),
                lock(Lane::Backup, LockMode::Exclusive),
            ],
            // Reading a stored backup (and preparing it in a scratch directory) touches
            // nothing of the cluster's: it runs beside anything.
            Self::VerifyBackup { .. } => vec![],
            // Load balancers sit beside the cluster: they never wait for its topology.
            Self::AddLoadBalancer { .. }
            | Self::RemoveLoadBalancer { .. }
            | Self::RestartLoadBalancer { .. }
            | Self::ReconfigureLoadBalancer { .. } => {
                vec![lock(Lane::Balancer, LockMode::Exclusive)]
            }
            Self::RestoreBackup { .. } => vec![
                lock(Lane::Topology, LockMode::Exclusive),
                lock(Lane::Provision, LockMode::Exclusive),
                lock(Lane::Backup, LockMode::Exclusive),
            ],
            // A whole cluster appears or goes: nothing else of it may run.
            Self::ImportCluster { .. }
            | Self::CreateCluster { .. }
            | Self::DeleteCluster { .. } => vec![
                lock(Lane::Topology, LockMode::Exclusive),
                lock(Lane::Provision, LockMode::Exclusive),
            ],
            Self::NodeAction { .. }
            | Self::ClusterAction {
                action: ClusterAction::Stop | ClusterAction::Start | ClusterAction::RollingRestart,
                ..
            }
            | Self::RemoveNode { .. }
            | Self::Switchover { .. }
            | Self::Rejoin { .. } => vec![lock(Lane::Topology, LockMode::Exclusive)],
        }
    }
}

/// Which queued jobs may start now: `running` are the locks of the running jobs,
/// `queued` the queued jobs' ids and locks in the order they were submitted. A queued job
/// starts when it conflicts with no running job and with no job started in this same
/// pass, and, unless it is urgent, with no job queued before it.
pub fn startable(running: &[Vec<Lock>], queued: &[(i64, Vec<Lock>)]) -> Vec<i64> {
    let mut held: Vec<&[Lock]> = running.iter().map(Vec::as_slice).collect();
    let mut started = Vec::new();
    for (i, (id, locks)) in queued.iter().enumerate() {
        let blocked_by_running = held.iter().any(|h| jobs_conflict(h, locks));
        let blocked_by_earlier = !is_urgent(locks)
            && queued[..i]
                .iter()
                .any(|(_, earlier)| jobs_conflict(earlier, locks));
        if !blocked_by_running && !blocked_by_earlier {
            started.push(*id);
            held.push(locks);
        }
    }
    started
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{NodeAction, RemoveMode};

    fn ep() -> crate::Endpoint {
        "127.0.0.11:3306".parse().unwrap()
    }

    fn failover(c: &str) -> JobSpec {
        JobSpec::Failover {
            cluster: c.into(),
            to: None,
            force: false,
            automatic: true,
            reasons: vec![],
        }
    }

    fn add_node(c: &str) -> JobSpec {
        JobSpec::AddNode {
            cluster: c.into(),
            node: ep(),
            source: None,
            from_backup: None,
        }
    }

    fn backup(c: &str) -> JobSpec {
        JobSpec::CreateBackup {
            cluster: c.into(),
            method: crate::backup::BackupMethod::Full,
            node: None,
            repo: "local".into(),
            retention_secs: None,
            verify_restore: false,
        }
    }

    fn verify(c: &str) -> JobSpec {
        JobSpec::VerifyBackup {
            cluster: c.into(),
            backup_id: 1,
        }
    }

    fn restore(c: &str) -> JobSpec {
        JobSpec::RestoreBackup {
            cluster: c.into(),
            backup_id: 1,
            force: true,
            until: None,
            until_gtid: None,
        }
    }

    fn restart(c: &str) -> JobSpec {
        JobSpec::ClusterAction {
            cluster: c.into(),
            action: ClusterAction::RollingRestart,
        }
    }

    fn node_stop(c: &str) -> JobSpec {
        JobSpec::NodeAction {
            cluster: c.into(),
            node: ep(),
            action: NodeAction::Stop,
            force: false,
        }
    }

    fn remove(c: &str) -> JobSpec {
        JobSpec::RemoveNode {
            cluster: c.into(),
            node: ep(),
            mode: RemoveMode::Stop,
        }
    }

    fn recovery(c: &str) -> JobSpec {
        JobSpec::GaleraRecovery {
            cluster: c.into(),
            bootstrap_from: None,
            force: false,
            automatic: true,
            reasons: vec![],
        }
    }

    fn delete(c: &str) -> JobSpec {
        JobSpec::DeleteCluster {
            cluster: c.into(),
            purge: false,
        }
    }

    #[test]
    fn which_jobs_may_run_together() {
        let cases: Vec<(&str, JobSpec, JobSpec, bool)> = vec![
            ("two failovers", failover("a"), failover("a"), true),
            (
                "failover beside a data copy",
                failover("a"),
                add_node("a"),
                false,
            ),
            (
                "Galera recovery beside a data copy",
                recovery("a"),
                add_node("a"),
                false,
            ),
            (
                "rolling restart waits for a data copy",
                restart("a"),
                add_node("a"),
                true,
            ),
            (
                "node stop waits for a failover",
                node_stop("a"),
                failover("a"),
                true,
            ),
            (
                "failover waits for a node stop",
                failover("a"),
                node_stop("a"),
                true,
            ),
            (
                "failover beside a backup",
                failover("a"),
                backup("a"),
                false,
            ),
            (
                "Galera recovery beside a backup",
                recovery("a"),
                backup("a"),
                false,
            ),
            (
                "a backup beside a data copy",
                backup("a"),
                add_node("a"),
                false,
            ),
            ("two backups: one at a time", backup("a"), backup("a"), true),
            (
                "verification beside a backup",
                verify("a"),
                backup("a"),
                false,
            ),
            (
                "a restore waits for a backup",
                restore("a"),
                backup("a"),
                true,
            ),
            (
                "a restore waits for a failover",
                restore("a"),
                failover("a"),
                true,
            ),
            (
                "a rolling restart waits for a backup",
                restart("a"),
                backup("a"),
                true,
            ),
            (
                "two data copies: one at a time",
                add_node("a"),
                add_node("a"),
                true,
            ),
            (
                "remove beside add: membership changes",
                remove("a"),
                add_node("a"),
                true,
            ),
            (
                "delete waits for everything",
                delete("a"),
                add_node("a"),
                true,
            ),
            (
                "other clusters never conflict",
                failover("a"),
                restart("b"),
                false,
            ),
            (
                "other clusters never conflict (deletes)",
                delete("a"),
                delete("b"),
                false,
            ),
        ];
        for (name, a, b, want) in cases {
            assert_eq!(jobs_conflict(&a.locks(), &b.locks()), want, "{name}");
            assert_eq!(
                jobs_conflict(&b.locks(), &a.locks()),
                want,
                "{name} (swapped)"
            );
        }
    }

    #[test]
    fn lock_modes_table() {
        use LockMode::*;
        let l = |mode| Lock {
            cluster: "a".into(),
            lane: Lane::Topology,
            mode,
        };
        let cases = [
            (Shared, Shared, false),
            (Shared, Urgent, false),
            (Shared, Exclusive, true),
            (Exclusive, Exclusive, true),
            (Exclusive, Urgent, true),
            (Urgent, Urgent, true),
        ];
        for (a, b, want) in cases {
            assert_eq!(conflicts(&l(a), &l(b)), want, "{a:?} {b:?}");
            assert_eq!(conflicts(&l(b), &l(a)), want, "{b:?} {a:?}");
        }
        let other_lane = Lock {
            lane: Lane::Provision,
            ..l(Exclusive)
        };
        assert!(!conflicts(&l(Exclusive), &other_lane));
    }

    #[test]
    fn the_queue_starts_what_it_can_in_order() {
        let q = |jobs: Vec<(i64, JobSpec)>| -> Vec<(i64, Vec<Lock>)> {
            jobs.into_iter().map(|(id, s)| (id, s.locks())).collect()
        };
        // A data copy runs; a failover starts beside it, a rolling restart waits.
        let running = vec![add_node("a").locks()];
        let queued = q(vec![
            (2, restart("a")),
            (3, failover("a")),
            (4, failover("b")),
        ]);
        assert_eq!(startable(&running, &queued), vec![3, 4]);
        // Nothing runs: the first exclusive job starts, the next of the same cluster waits.
        let queued = q(vec![
            (1, node_stop("a")),
            (2, remove("a")),
            (3, restart("b")),
        ]);
        assert_eq!(startable(&[], &queued), vec![1, 3]);
        // A shared job does not overtake an exclusive one queued before it.
        let running = vec![add_node("a").locks()];
        let queued = q(vec![(2, restart("a")), (3, add_node("a"))]);
        assert_eq!(startable(&running, &queued), Vec::<i64>::new());
        // An urgent job overtakes queued exclusive ones, not a running one.
        let queued = q(vec![(1, restart("a")), (2, failover("a"))]);
        assert_eq!(startable(&[], &queued), vec![1]);
        let queued = q(vec![
            (1, add_node("a")),
            (2, restart("a")),
            (3, recovery("a")),
        ]);
        assert_eq!(startable(&[], &queued), vec![1, 3]);
    }
}
