//! The reconciler's decisions for one cluster, as one pure function:
//! [`reconcile`]`(snapshot, observations, memory, now) -> Vec<Intent>`.
//!
//! The controller fills a [`ClusterSnapshot`] (what the monitor sees, what the operator
//! wants, the cluster's policy, the locks of its jobs), keeps the [`Observations`] (since
//! when a node is down, since when Galera has no Primary component, when the replication
//! topology was last seen healthy) and the durable [`HaMemory`] (attempts, raised
//! alarms), and performs the [`Intent`]s it gets back in order: submit a job (with its
//! event, recording the attempt), raise or clear an alarm, forget an outage's attempts,
//! adopt a primary promoted outside nines. Each intent is a write the runner must make:
//! an alarm already raised is not raised again, and nothing is cleared that is not there.
//!
//! What it decides, in this order (each part is a decision of its own module):
//!
//! 1. Nothing while a probe predates the cluster's last job (it may show that job's own
//!    doing, such as a planned restart) or a node was never probed.
//! 2. Replication clusters ([`replication`]): adopt a primary promoted outside nines;
//!    note the topology healthy (which clears the failover alarm and attempts); raise or
//!    clear the semi-sync fallback alarm; run [`crate::ha::decide_failover`] and submit a
//!    failover under the [`RetryBudget`], or raise the refusal; rejoin fenced former
//!    primaries once they answer. A failover due holds node restarts back.
//! 3. Galera clusters nines deployed ([`galera`]): run
//!    [`crate::ha::decide_galera_recovery`] over the nodes the operator wants running and
//!    submit a recovery under the budget, or raise the refusal; while recovery is
//!    Galera's business, node restarts wait.
//! 4. Node restarts ([`restart`]): [`crate::ha::decide_node_restart`] for every deployed
//!    node whose server refuses connections.
//!
//! A job is submitted only when the job lanes would start it now
//! ([`crate::lanes::startable`] over the cluster's jobs, including those submitted by
//! this same pass).

mod galera;
mod replication;
mod restart;

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::endpoint::Endpoint;
use crate::ha::Maintenance;
use crate::ha::fence::Fence;
use crate::ha::memory::{AlarmKind, HaMemory, Refusal, Repair};
use crate::ha::policy::HaPolicy;
use crate::ha::retry::RetryBudget;
use crate::ha::view::{ProbeStatus, ReplicationView};
use crate::job::JobSpec;
use crate::lanes::{Lock, startable};
use crate::replication::WsrepStatus;
use crate::topology::{ClusterType, NodeState};

/// One cluster as the reconciler decides on it.
#[derive(Debug, Clone)]
pub struct ClusterSnapshot {
    pub id: i64,
    pub name: String,
    pub cluster_type: ClusterType,
    /// nines deployed the cluster (it knows its nodes' files and services).
    pub deployed: bool,
    /// The cluster's policy, with its recovery switch.
    pub policy: HaPolicy,
    pub maintenance: Vec<Maintenance>,
    pub nodes: Vec<NodeFacts>,
    /// Every probe started after the cluster's last job ended.
    pub probes_fresh: bool,
    /// Locks of the cluster's running jobs.
    pub running: Vec<Vec<Lock>>,
    /// Ids and locks of its queued jobs, oldest first.
    pub queued: Vec<(i64, Vec<Lock>)>,
    /// Replication clusters: the designated primary.
    pub primary: Option<Endpoint>,
    /// Replication clusters: deployed with semi-synchronous replication.
    pub semi_sync: bool,
    /// Replication clusters: the failover view (its topology is left to [`reconcile`],
    /// which knows when it was last seen healthy).
    pub replication: Option<ReplicationView>,
    /// Recent repair jobs of the cluster that ended refused or cancelled, the latest per
    /// repair and subject.
    pub refusals: Vec<Refusal>,
}

/// One node as the reconciler decides on it.
#[derive(Debug, Clone)]
pub struct NodeFacts {
    pub endpoint: Endpoint,
    /// nines deployed it: it can start its server.
    pub deployed: bool,
    /// The operator wants it running (not stopped by `node stop` or `cluster stop`).
    pub desired_running: bool,
    /// Why it is fenced, when it is.
    pub fence: Option<Fence>,
    /// The monitor's state after hysteresis; None until first probed.
    pub state: Option<NodeState>,
    pub probe: ProbeStatus,
    /// wsrep status of the current sample, when it answers.
    pub wsrep: Option<WsrepStatus>,
}

impl NodeFacts {
    /// The node as the Galera decisions see it (positions are the recovery job's).
    fn galera_node(&self) -> crate::ha::GaleraNode {
        crate::ha::GaleraNode {
            endpoint: self.endpoint.clone(),
            probe: self.probe,
            wsrep: self.wsrep.clone(),
            down_confirmed: false,
            grastate: None,
            recovered: None,
        }
    }

    fn pending_rejoin(&self) -> bool {
        self.fence.as_ref().is_some_and(Fence::pending_rejoin)
    }
}

/// What the reconciler observed over time, kept in memory (rebuilt from the monitor
/// after a controller restart): per cluster id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observations {
    /// Since when a node's server refuses connections.
    pub down_since: HashMap<(i64, Endpoint), DateTime<Utc>>,
    /// Since when no Galera node is in a Primary component.
    pub no_primary_since: HashMap<i64, DateTime<Utc>>,
    /// The designated primary and when it was last seen healthy with its replicas: the
    /// topology the failover decision may trust.
    pub confirmed: HashMap<i64, (Endpoint, DateTime<Utc>)>,
}

/// An event the runner writes; `{job}` in the message stands for the id of the job the
/// same intent submitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub kind: crate::event::EventKind,
    pub node: Option<Endpoint>,
    pub message: String,
}

/// A write the runner makes for the reconciler.
#[derive(Debug, Clone, PartialEq)]
pub enum Intent {
    /// Submit the job, write the event, and record the attempt when there is one.
    Submit {
        spec: JobSpec,
        attempt: Option<(Repair, String)>,
        event: Note,
    },
    /// Raise an alarm not raised yet (an `alarm` event with the message).
    Raise {
        alarm: AlarmKind,
        subject: String,
        message: String,
    },
    /// Clear a raised alarm, and write the note when there is one.
    Clear {
        alarm: AlarmKind,
        subject: String,
        note: Option<Note>,
    },
    /// The outage ended: forget its attempts.
    ClearAttempts { repair: Repair, subject: String },
    /// Write an event.
    Event(Note),
    /// The topology moved without nines: `primary` is the primary now, `old` is fenced
    /// with `fence` until its rejoin check.
    Adopt {
        primary: Endpoint,
        old: Endpoint,
        fence: Fence,
        note: Note,
    },
}

/// Decides what to do about one cluster now; see the module docs.
pub fn reconcile(
    snap: &ClusterSnapshot,
    obs: &mut Observations,
    memory: &HaMemory,
    now: DateTime<Utc>,
) -> Vec<Intent> {
    let mut out = Pass {
        snap,
        memory,
        now,
        intents: Vec::new(),
        queued: snap.queued.clone(),
        alarms: HashMap::new(),
        forgotten: Vec::new(),
    };
    if !snap.probes_fresh || snap.nodes.iter().any(|n| n.state.is_none()) {
        return out.intents;
    }
    if snap.cluster_type == ClusterType::Replication && replication::decide(&mut out, obs) {
        return out.intents;
    }
    if !snap.deployed {
        return out.intents;
    }
    if snap.cluster_type == ClusterType::Galera && galera::decide(&mut out, obs) {
        return out.intents;
    }
    restart::decide(&mut out, obs);
    out.intents
}

/// One reconciliation pass over a cluster: the intents so far, and the jobs queued by it.
struct Pass<'a> {
    snap: &'a ClusterSnapshot,
    memory: &'a HaMemory,
    now: DateTime<Utc>,
    intents: Vec<Intent>,
    queued: Vec<(i64, Vec<Lock>)>,
    /// Alarms raised (true) or cleared (false) by this pass, over the memory.
    alarms: HashMap<(AlarmKind, String), bool>,
    /// Attempts forgotten by this pass.
    forgotten: Vec<(Repair, String)>,
}

impl Pass<'_> {
    /// Whether `spec` would wait for a running or queued job (this pass's too).
    fn would_wait(&self, spec: &JobSpec) -> bool {
        let new = self.queued.iter().map(|(id, _)| *id).max().unwrap_or(0) + 1;
        let mut queued = self.queued.clone();
        queued.push((new, spec.locks()));
        !startable(&self.snap.running, &queued).contains(&new)
    }

    /// Whether the cluster has any job in flight (this pass's too).
    fn busy(&self) -> bool {
        !self.snap.running.is_empty() || !self.queued.is_empty()
    }

    fn attempts(&self, repair: Repair, subject: &str) -> Vec<DateTime<Utc>> {
        if self.forgotten.contains(&(repair, subject.to_string())) {
            return Vec::new();
        }
        self.memory.attempts(self.snap.id, repair, subject).to_vec()
    }

    fn budget(&self, grace: chrono::Duration) -> RetryBudget {
        RetryBudget::from_policy(&self.snap.policy, grace)
    }

    /// Queues the job, unless it is a repair whose last attempt was refused or cancelled
    /// (its job's error says why) not long ago: then its alarm is raised at once instead
    /// of retrying what will fail the same way, and the repair is tried again once the
    /// budget's longest wait has passed (the facts may have changed by then).
    fn submit(&mut self, spec: JobSpec, attempt: Option<(Repair, String)>, event: Note) {
        if let Some((repair, subject)) = &attempt
            && let Some(message) = self.held_by_refusal(*repair, subject)
        {
            self.raise(repair.alarm(), subject, message);
            return;
        }
        let id = self.queued.iter().map(|(id, _)| *id).max().unwrap_or(0) + 1;
        self.queued.push((id, spec.locks()));
        self.intents.push(Intent::Submit {
            spec,
            attempt,
            event,
        });
    }

    /// Why `repair` on `subject` is held back: its latest attempt (or a person's job
    /// for the same repair after it) ended refused or cancelled, within the budget's
    /// longest wait.
    fn held_by_refusal(&self, repair: Repair, subject: &str) -> Option<String> {
        let refusal = self
            .snap
            .refusals
            .iter()
            .find(|r| r.repair == repair && r.subject == subject)?;
        let attempts = self.attempts(repair, subject);
        if attempts.last().is_some_and(|last| *last > refusal.at) {
            return None;
        }
        let policy = &self.snap.policy;
        let hold = self
            .budget(chrono::Duration::zero())
            .wait_after(policy.max_restart_attempts);
        let until = refusal.at + hold;
        (self.now < until).then(|| {
            let what = if subject.is_empty() {
                format!("{repair} of the cluster")
            } else {
                format!("{repair} of {subject}")
            };
            format!(
                "alarm: {what} was refused by job {} ({}); retrying it would fail the same way, so nines waits until {} before it tries again — act on the reason, or run the repair by hand",
                refusal.job,
                refusal.message,
                until.format("%H:%M:%S UTC")
            )
        })
    }

    fn is_raised(&self, alarm: AlarmKind, subject: &str) -> bool {
        self.alarms
            .get(&(alarm, subject.to_string()))
            .copied()
            .unwrap_or_else(|| self.memory.is_raised(self.snap.id, alarm, subject))
    }

    fn raise(&mut self, alarm: AlarmKind, subject: &str, message: String) {
        if !self.is_raised(alarm, subject) {
            self.alarms.insert((alarm, subject.to_string()), true);
            self.intents.push(Intent::Raise {
                alarm,
                subject: subject.to_string(),
                message,
            });
        }
    }

    /// Clears the alarm when raised; true when it was.
    fn clear(&mut self, alarm: AlarmKind, subject: &str, note: Option<Note>) -> bool {
        let raised = self.is_raised(alarm, subject);
        if raised {
            self.alarms.insert((alarm, subject.to_string()), false);
            self.intents.push(Intent::Clear {
                alarm,
                subject: subject.to_string(),
                note,
            });
        }
        raised
    }

    fn clear_attempts(&mut self, repair: Repair, subject: &str) {
        let key = (repair, subject.to_string());
        if !self.forgotten.contains(&key)
            && !self
                .memory
                .attempts(self.snap.id, repair, subject)
                .is_empty()
        {
            self.forgotten.push(key);
            self.intents.push(Intent::ClearAttempts {
                repair,
                subject: subject.to_string(),
            });
        }
    }
}

#[cfg(test)]
mod tests;
