//! Host metrics of the machines a cluster runs on: CPU, memory, load and the datadir's
//! disk, read every `host_interval` over the cluster's host transport (SSH or local),
//! one task per distinct host.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use nines_access::host::{
    CpuTimes, HostAccess, LocalHost, SshHost, SshTarget, cpu_usage, host_metrics,
};
use nines_model::job::HostAccessSpec;
use nines_store::{ClusterRecord, NodeRecord};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{HostView, Monitor, Update};

/// Starts one metrics task per distinct host of the cluster's nodes.
pub(super) fn spawn_host_watches(
    monitor: &Arc<Monitor>,
    record: &ClusterRecord,
    nodes: &[NodeRecord],
    tx: mpsc::Sender<Update>,
    cancel: CancellationToken,
) {
    let mut hosts: Vec<String> = nodes.iter().map(|n| n.endpoint.host.clone()).collect();
    hosts.sort();
    hosts.dedup();
    let interval = monitor.config().host_interval;
    for host in hosts {
        let access: Arc<dyn HostAccess> = match &record.host_access {
            HostAccessSpec::None => return,
            HostAccessSpec::Local => Arc::new(LocalHost::new()),
            HostAccessSpec::Ssh {
                user,
                key_path,
                port,
            } => {
                let mut t = SshTarget::new(host.clone(), user.clone());
                t.port = *port;
                t.key_path = key_path.as_ref().map(Into::into);
                t.config_file = monitor.config().ssh_config.clone();
                t.connect_timeout = Duration::from_secs(5);
                Arc::new(SshHost::new(t))
            }
        };
        let tx = tx.clone();
        let cancel = cancel.clone();
        let cluster = record.name.clone();
        monitor.tasks.spawn(async move {
            watch_host(cluster, host, access, interval, tx, cancel).await;
        });
    }
}

async fn watch_host(
    cluster: String,
    host: String,
    access: Arc<dyn HostAccess>,
    interval: Duration,
    tx: mpsc::Sender<Update>,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut prev: Option<CpuTimes> = None;
    let mut warned = false;
    let disks = vec!["/var/lib/mysql".to_string(), "/".to_string()];
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tick.tick() => {}
        }
        let timeout = interval.max(Duration::from_secs(5));
        let result = tokio::select! {
            _ = cancel.cancelled() => break,
            r = host_metrics(access.as_ref(), &disks, timeout) => r,
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
