//! One cluster's watch: per-node probe tasks feeding one aggregating task.

use nines_model::event::EventKind;
use std::collections::VecDeque;
use std::sync::Arc;

use nines_access::server::{Credentials, Prober};
use nines_model::ha::{ProbeStatus, TimedSample};
use nines_model::health::{self, NodeView, Observation, StateTracker};
use nines_model::snapshot::NodeSnapshot;
use nines_model::{ClusterState, ClusterType, NodeState, Role};
use nines_store::{ClusterRecord, NodeRecord, Secret};
use tokio::sync::Notify;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::rates::RateState;
use super::{ClusterObserved, Monitor, NodeObserved, Update};

pub(super) struct ClusterTask {
    monitor: Arc<Monitor>,
    record: ClusterRecord,
    nodes: Vec<NodeRecord>,
    password: Secret,
    cancel: CancellationToken,
}

struct NodeTrack {
    observed: NodeObserved,
    tracker: StateTracker,
    rates: RateState,
    recent: VecDeque<TimedSample>,
    /// Wakes the node's probe task for an immediate probe.
    probe_now: Arc<Notify>,
}

impl ClusterTask {
    pub(super) fn new(
        monitor: Arc<Monitor>,
        record: ClusterRecord,
        nodes: Vec<NodeRecord>,
        password: Secret,
        cancel: CancellationToken,
    ) -> Self {
        Self {
            monitor,
            record,
            nodes,
            password,
            cancel,
        }
    }

    pub(super) async fn run(self) {
        let cfg = self.monitor.config().clone();
        let creds = Credentials {
            user: self.record.db_user.clone(),
            password: self.password.expose().to_string(),
        };
        let (tx, mut rx) = mpsc::channel::<Update>(64);
        let wakers: Vec<Arc<Notify>> = self.nodes.iter().map(|_| Arc::default()).collect();
        for (i, n) in self.nodes.iter().enumerate() {
            let mut prober = Prober::new(n.endpoint.clone(), creds.clone(), cfg.timeouts);
            let tx = tx.clone();
            let cancel = self.cancel.clone();
            let interval = cfg.probe_interval;
            let probe_now = Arc::clone(&wakers[i]);
            self.monitor.tasks.spawn(async move {
                // The first probe at once; then every node's probes on the same beat
                // (see `aligned_start`), so that one timer turn starts a whole round.
                let mut tick = tokio::time::interval_at(aligned_start(interval), interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                let mut first = true;
                loop {
                    if !std::mem::take(&mut first) {
                        tokio::select! {
                            _ = cancel.cancelled() => break,
                            _ = tick.tick() => {}
                            _ = probe_now.notified() => {}
                        }
                    }
                    let snap = tokio::select! {
                        _ = cancel.cancelled() => break,
                        s = prober.probe() => s,
                    };
                    if tx.send(Update::Probe(i, Box::new(snap))).await.is_err() {
                        break;
                    }
                }
                prober.disconnect().await;
            });
        }
        let disk_paths = super::hostmon::spawn_host_watches(
            &self.monitor,
            &self.record,
            &self.nodes,
            tx.clone(),
            self.cancel.clone(),
        );
        drop(tx);

        let mut tracks: Vec<NodeTrack> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| NodeTrack {
                observed: NodeObserved {
                    node_id: n.id,
                    endpoint: n.endpoint.clone(),
                    role: n.role,
                    state: n.state,
                    reason: String::new(),
                    sample: None,
                    error: None,
                    last_seen: None,
                    probed_at: None,
                    rates: Default::default(),
                    lag_transactions: None,
                    host: None,
                    probe: ProbeStatus::Reachable,
                    recent: Arc::default(),
                },
                tracker: StateTracker::default(),
                rates: RateState::default(),
                recent: VecDeque::with_capacity(super::RECENT_SAMPLES),
                probe_now: Arc::clone(&wakers[i]),
            })
            .collect();
        let mut cluster_state: Option<ClusterState> = self.record.state;
        let mut cluster_reason = self.record.state_reason.clone();
        self.publish(&tracks, cluster_state, &cluster_reason);

        loop {
            let msg = tokio::select! {
                _ = self.cancel.cancelled() => break,
                m = rx.recv() => m,
            };
            let (i, snap) = match msg {
                None => break,
                Some(Update::Host(host, view)) => {
                    let mut values = [("", 0.0); 5];
                    let mut n = 0;
                    let mut put = |k: &'static str, v: Option<f64>| {
                        if let Some(v) = v {
                            values[n] = (k, v);
                            n += 1;
                        }
                    };
                    put("cpu_busy", view.cpu_busy);
                    put("cpu_iowait", view.cpu_iowait);
                    put("load1", Some(view.load1));
                    put(
                        "memory_available_bytes",
                        Some(view.mem_available_bytes as f64),
                    );
                    put("disk_free_bytes", view.disk_free_bytes.map(|b| b as f64));
                    for t in tracks
                        .iter_mut()
                        .filter(|t| t.observed.endpoint.host == host)
                    {
                        self.monitor.history.record(
                            &t.observed.endpoint.to_string(),
                            view.at,
                            &values[..n],
                        );
                        t.observed.host = Some(view.clone());
                    }
                    continue;
                }
                Some(Update::Probe(i, snap)) => (i, *snap),
            };
            let Some(track) = tracks.get_mut(i) else {
                continue;
            };
            if let (Ok(sample), Some(paths)) = (&snap.result, disk_paths.get(&snap.endpoint.host))
                && !sample.datadir.is_empty()
            {
                paths.send_if_modified(|p| {
                    if p.contains(&sample.datadir) {
                        return false;
                    }
                    p.retain(|x| x != "/");
                    p.push(sample.datadir.clone());
                    true
                });
            }
            let primary_failing = self.record.cluster_type == ClusterType::Replication
                && snap.result.is_err()
                && track.observed.role == Role::Primary;
            self.apply(track, snap).await;
            self.update_lag(&mut tracks);
            if primary_failing {
                // A primary that stops answering may be dead: ask its replicas now rather
                // than at their next tick, so that the failover decision has fresh
                // witnesses within milliseconds (issue 4: failover in about 1 s).
                for (j, t) in tracks.iter().enumerate() {
                    if j != i {
                        t.probe_now.notify_one();
                    }
                }
            }
            let attention = self.record.cluster_type == ClusterType::Replication
                && tracks
                    .iter()
                    .any(|t| t.observed.role == Role::Primary && !t.observed.probe.is_reachable());
            let views: Vec<NodeView<'_>> = tracks
                .iter()
                .map(|t| NodeView {
                    address: "",
                    role: Some(t.observed.role),
                    state: t.observed.state,
                    sample: t.observed.sample.as_deref(),
                })
                .collect();
            // Only judge the cluster once every node has been seen once.
            if tracks.iter().all(|t| t.observed.state.is_some()) {
                let addresses: Vec<String> = tracks
                    .iter()
                    .map(|t| t.observed.endpoint.to_string())
                    .collect();
                let views: Vec<NodeView<'_>> = views
                    .into_iter()
                    .zip(addresses.iter())
                    .map(|(mut v, a)| {
                        v.address = a;
                        v
                    })
                    .collect();
                let (state, reason) = health::assess_cluster(self.record.cluster_type, &views);
                if Some(state) != cluster_state {
                    let msg = format!(
                        "cluster {} → {state}: {reason}",
                        cluster_state.map(|s| s.as_str()).unwrap_or("unknown")
                    );
                    tracing::info!(cluster = %self.record.name, "{msg}");
                    let store = &self.monitor.store;
                    crate::log_store_error(
                        "a cluster state event",
                        store
                            .add_event(&self.record.name, None, EventKind::ClusterState, &msg)
                            .await,
                    );
                    crate::log_store_error(
                        "a cluster state",
                        store
                            .set_cluster_state(self.record.id, state, &reason)
                            .await,
                    );
                    cluster_state = Some(state);
                } else if reason != cluster_reason {
                    crate::log_store_error(
                        "a cluster state",
                        self.monitor
                            .store
                            .set_cluster_state(self.record.id, state, &reason)
                            .await,
                    );
                }
                cluster_reason = reason;
            }
            self.publish(&tracks, cluster_state, &cluster_reason);
            if attention {
                self.monitor.attention().notify_one();
            }
        }
    }

    /// Folds one snapshot into its node's track; records a state change as an event.
    async fn apply(&self, track: &mut NodeTrack, snap: NodeSnapshot) {
        let policy = &self.monitor.config().policy;
        let obs = &mut track.observed;
        obs.probed_at = Some(snap.at);
        let observation = match &snap.result {
            Ok(sample) => {
                let a = health::assess_node(sample, self.record.cluster_type, policy);
                obs.role = a.role;
                obs.reason = a.reasons.join("; ");
                obs.rates = track
                    .rates
                    .update(snap.at, sample.uptime_seconds, &sample.status);
                obs.last_seen = Some(snap.at);
                obs.error = None;
                let node = obs.endpoint.to_string();
                self.monitor.history.record(&node, snap.at, &obs.rates);
                // Replication and Galera figures for charts, beside the rates.
                let mut extra = [("", 0.0); 3];
                let mut n = 0;
                if let Some(lag) = sample
                    .replication
                    .iter()
                    .filter_map(|r| r.seconds_behind)
                    .max()
                {
                    extra[n] = ("replication_lag_seconds", lag as f64);
                    n += 1;
                }
                if let Some(w) = &sample.wsrep {
                    extra[n] = ("wsrep_flow_control_paused", w.flow_control_paused);
                    extra[n + 1] = ("wsrep_local_recv_queue", w.recv_queue as f64);
                    n += 2;
                }
                self.monitor.history.record(&node, snap.at, &extra[..n]);
                Observation::Reachable(a.state)
            }
            Err(e) => {
                obs.reason = e.message.clone();
                obs.error = Some(e.clone());
                obs.rates.clear();
                Observation::Unreachable(e.kind)
            }
        };
        obs.probe = match (&snap.result, obs.probe) {
            (Ok(_), _) => ProbeStatus::Reachable,
            (
                Err(e),
                ProbeStatus::Failing {
                    consecutive, since, ..
                },
            ) => ProbeStatus::Failing {
                kind: e.kind,
                consecutive: consecutive.saturating_add(1),
                since,
            },
            (Err(e), ProbeStatus::Reachable) => ProbeStatus::Failing {
                kind: e.kind,
                consecutive: 1,
                since: snap.at,
            },
        };
        if let Ok(sample) = snap.result {
            let sample = Arc::new(sample);
            if track.recent.len() >= super::RECENT_SAMPLES {
                track.recent.pop_front();
            }
            track.recent.push_back(TimedSample {
                at: snap.at,
                sample: Arc::clone(&sample),
            });
            obs.recent = Arc::new(track.recent.iter().cloned().collect());
            obs.sample = Some(sample);
        }
        if let Some(tr) = track.tracker.observe(&observation, policy) {
            obs.state = Some(tr.to);
            let from = tr.from.map(|s| s.as_str()).unwrap_or("unknown");
            let why = if obs.reason.is_empty() {
                "answering probes".to_string()
            } else {
                obs.reason.clone()
            };
            let msg = format!("{} {from} → {}: {why}", obs.endpoint, tr.to);
            tracing::info!(cluster = %self.record.name, "{msg}");
            let store = &self.monitor.store;
            let addr = obs.endpoint.to_string();
            crate::log_store_error(
                "a node state event",
                store
                    .add_event(&self.record.name, Some(&addr), EventKind::NodeState, &msg)
                    .await,
            );
            crate::log_store_error(
                "a node state",
                store.set_node_state(obs.node_id, obs.role, tr.to).await,
            );
        }
        if obs.state == Some(NodeState::Online) && obs.error.is_none() {
            obs.reason.clear();
        }
    }

    /// Computes each replica's lag in transactions against its source, by GTID sets.
    /// Each replica's lag in transactions behind its source, found among the cluster's
    /// nodes (by reference: this runs on every probe).
    fn update_lag(&self, tracks: &mut [NodeTrack]) {
        let lags: Vec<Option<u64>> = tracks
            .iter()
            .map(|t| {
                let sample = t.observed.sample.as_deref()?;
                let ch = sample.replication.first()?;
                // By address, or by server_id when the replica reaches its source by
                // another address (a second bind address, a host name).
                let by_address = tracks.iter().find(|s| {
                    s.observed.endpoint.port == ch.source_port
                        && s.observed
                            .endpoint
                            .host
                            .eq_ignore_ascii_case(&ch.source_host)
                });
                let source = by_address.or_else(|| {
                    tracks.iter().find(|s| {
                        ch.source_server_id != 0
                            && s.observed
                                .sample
                                .as_ref()
                                .is_some_and(|s| s.server_id == ch.source_server_id)
                    })
                })?;
                let src = source.observed.sample.as_deref()?;
                nines_model::lag::transactions_behind(src, sample)
            })
            .collect();
        for (t, lag) in tracks.iter_mut().zip(lags) {
            t.observed.lag_transactions = lag;
        }
    }

    fn publish(&self, tracks: &[NodeTrack], state: Option<ClusterState>, reason: &str) {
        if self.cancel.is_cancelled() {
            // Unwatched: publishing now would bring back a view just removed.
            return;
        }
        self.monitor.publish(ClusterObserved {
            cluster_id: self.record.id,
            name: self.record.name.clone(),
            cluster_type: self.record.cluster_type,
            state,
            reason: reason.to_string(),
            nodes: tracks.iter().map(|t| t.observed.clone()).collect(),
        });
    }
}

/// When the next round of probes starts: the next multiple of the interval on the wall
/// clock. Every node of every cluster then probes in the same timer turn, and their
/// answers come back together: a few thread wake-ups per round instead of a few per node
/// (docs/benchmarks.md).
fn aligned_start(interval: std::time::Duration) -> tokio::time::Instant {
    let step = interval.as_millis().max(1);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let wait = u64::try_from(step - now % step).unwrap_or(0);
    tokio::time::Instant::now() + std::time::Duration::from_millis(wait)
}
