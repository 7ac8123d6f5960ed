//! Host metrics of the machines a cluster runs on: CPU, memory, load and the datadir's
//! disk, read every `host_interval` over the cluster's host transport (SSH or local),
//! one task per distinct host.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use nines_access::host::{CpuTimes, HostAccess, cpu_usage, host_metrics};
use nines_store::{ClusterRecord, NodeRecord};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::{HostView, Monitor, Update};

/// Per host, the data directories to measure (learnt from the nodes' @@datadir).
pub(super) type DiskPaths = std::collections::HashMap<String, watch::Sender<Vec<String>>>;

/// Starts one metrics task per distinct host of the cluster's nodes; returns the senders
/// through which the cluster task tells each host task which data directories to measure.
pub(super) fn spawn_host_watches(
    monitor: &Arc<Monitor>,
    record: &ClusterRecord,
    nodes: &[NodeRecord],
    tx: mpsc::Sender<Update>,
    cancel: CancellationToken,
) -> DiskPaths {
    let mut paths = DiskPaths::new();
    let mut hosts: Vec<String> = nodes.iter().map(|n| n.endpoint.host.clone()).collect();
    hosts.sort();
    hosts.dedup();
    let interval = monitor.config().host_interval;
    for host in hosts {
        let Some(access) = crate::hosts::host_access(
            &record.host_access,
            &host,
            monitor.config().ssh_config.as_deref(),
        ) else {
            return paths;
        };
        let (disk_tx, disk_rx) = watch::channel(vec!["/".to_string()]);
        paths.insert(host.clone(), disk_tx);
        let tx = tx.clone();
        let cancel = cancel.clone();
        let cluster = record.name.clone();
        monitor.tasks.spawn(async move {
            watch_host(cluster, host, access, interval, disk_rx, tx, cancel).await;
        });
    }
    paths
}

async fn watch_host(
    cluster: String,
    host: String,
    access: Arc<dyn HostAccess>,
    interval: Duration,
    disks: watch::Receiver<Vec<String>>,
    tx: mpsc::Sender<Update>,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut prev: Option<CpuTimes> = None;
    let mut warned = false;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tick.tick() => {}
        }
        let timeout = interval.max(Duration::from_secs(5));
        let paths = disks.borrow().clone();
        let result = tokio::select! {
            _ = cancel.cancelled() => break,
            r = host_metrics(access.as_ref(), &paths, timeout) => r,
        };
        match result {
            Ok(m) => {
                warned = false;
                let usage = prev.as_ref().map(|p| cpu_usage(p, &m.cpu));
                prev = Some(m.cpu);
                let disk = m.disks.first();
                let view = HostView {
                    at: Utc::now(),
                    cpu_count: m.cpu_count,
                    cpu_busy: usage.as_ref().map(|u| u.busy),
                    cpu_iowait: usage.as_ref().map(|u| u.iowait),
                    mem_total_bytes: m.memory.total_bytes,
                    mem_available_bytes: m.memory.available_bytes,
                    load1: m.load.one,
                    disk_free_bytes: disk.map(|d| d.available_bytes),
                    disk_total_bytes: disk.map(|d| d.total_bytes),
                };
                if tx.send(Update::Host(host.clone(), view)).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                if !warned {
                    tracing::warn!(cluster = %cluster, host = %host, error = %e, "host metrics unavailable");
                    warned = true;
                }
            }
        }
    }
}
