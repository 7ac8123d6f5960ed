//! Prometheus text exposition of what the monitor last saw.
//!
//! Label sets are small and fixed (`cluster`, `node`, plus `state` or `role` where a
//! metric is a state set or an info metric); nothing is labelled by error text or job id.
//! Series of a removed node vanish with it, because the text is rendered from the current
//! views at scrape time.

use std::fmt::Write;

use nines_model::{ClusterState, NodeState};

use crate::monitor::ClusterObserved;
use crate::monitor::rates::{COUNTERS, GAUGES};

struct Family {
    name: String,
    kind: &'static str,
    help: String,
    samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

impl Family {
    fn new(name: &str, kind: &'static str, help: &str) -> Self {
        Self {
            name: name.to_string(),
            kind,
            help: help.to_string(),
            samples: Vec::new(),
        }
    }

    fn add(&mut self, labels: Vec<(&'static str, String)>, value: f64) {
        self.samples.push((labels, value));
    }

    fn write(&self, out: &mut String) {
        if self.samples.is_empty() {
            return;
        }
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} {}", self.name, self.kind);
        for (labels, value) in &self.samples {
            out.push_str(&self.name);
            if !labels.is_empty() {
                out.push('{');
                for (i, (k, v)) in labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{k}=\"{}\"", escape(v));
                }
                out.push('}');
            }
            let _ = writeln!(out, " {}", format_value(*value));
        }
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn b(v: bool) -> f64 {
    if v { 1.0 } else { 0.0 }
}

/// Renders every cluster's and node's metrics.
pub fn render(clusters: &[std::sync::Arc<ClusterObserved>]) -> String {
    let mut cluster_state = Family::new(
        "nines_cluster_state",
        "gauge",
        "Cluster state: 1 for the current state, 0 for the others.",
    );
    let mut cluster_nodes = Family::new(
        "nines_cluster_nodes",
        "gauge",
        "Nodes registered in the cluster.",
    );
    let mut up = Family::new(
        "nines_node_up",
        "gauge",
        "1 when the node answered its last probe.",
    );
    let mut node_state = Family::new(
        "nines_node_state",
        "gauge",
        "Node state: 1 for the current state, 0 for the others.",
    );
    let mut info = Family::new("nines_node_info", "gauge", "Node role and server version.");
    let mut read_only = Family::new("nines_node_read_only", "gauge", "1 when read_only is ON.");
    let mut lag = Family::new(
        "nines_node_replication_lag_seconds",
        "gauge",
        "Seconds_Behind_Master of a replica.",
    );
    let mut lag_trx = Family::new(
        "nines_node_replication_lag_transactions",
        "gauge",
        "Transactions a replica lacks compared with its source, by GTID.",
    );
    let mut io = Family::new(
        "nines_node_replication_io_running",
        "gauge",
        "1 when the replica IO thread runs.",
    );
    let mut sql = Family::new(
        "nines_node_replication_sql_running",
        "gauge",
        "1 when the replica SQL thread runs.",
    );
    let mut wsrep_size = Family::new(
        "nines_node_wsrep_cluster_size",
        "gauge",
        "wsrep_cluster_size seen by the node.",
    );
    let mut wsrep_synced = Family::new(
        "nines_node_wsrep_synced",
        "gauge",
        "1 when the Galera node is Synced.",
    );
    let mut wsrep_primary = Family::new(
        "nines_node_wsrep_primary_component",
        "gauge",
        "1 when the Galera node is in a Primary component.",
    );
    let mut uptime = Family::new("nines_node_uptime_seconds", "gauge", "Server uptime.");
    let mut semi_active = Family::new(
        "nines_node_semi_sync_primary_active",
        "gauge",
        "1 while the node's commits wait for a replica's acknowledgement (Rpl_semi_sync_master_status); 0 after a fallback to asynchronous replication.",
    );
    let mut semi_clients = Family::new(
        "nines_node_semi_sync_primary_clients",
        "gauge",
        "Semi-synchronous replicas connected to the node.",
    );
    let mut semi_no_tx = Family::new(
        "nines_node_semi_sync_unacknowledged_commits_total",
        "counter",
        "Commits the node acknowledged to clients without a replica's acknowledgement (Rpl_semi_sync_master_no_tx).",
    );
    let mut counters: Vec<Family> = COUNTERS
        .iter()
        .map(|(var, _)| {
            Family::new(
                &format!("nines_mysql_{}_total", var.to_ascii_lowercase()),
                "counter",
                &format!("SHOW GLOBAL STATUS {var}."),
            )
        })
        .collect();
    let mut gauges: Vec<Family> = GAUGES
        .iter()
        .map(|(var, _)| {
            // Prometheus reserves `_total` for counters: Innodb_buffer_pool_pages_total is a size.
            let name = var.to_ascii_lowercase();
            let name = name.strip_suffix("_total").unwrap_or(&name);
            Family::new(
                &format!("nines_mysql_{name}"),
                "gauge",
                &format!("SHOW GLOBAL STATUS {var}."),
            )
        })
        .collect();
    let mut host_mem = Family::new(
        "nines_host_memory_available_bytes",
        "gauge",
        "MemAvailable of the node's host.",
    );
    let mut host_mem_total = Family::new(
        "nines_host_memory_total_bytes",
        "gauge",
        "MemTotal of the node's host.",
    );
    let mut host_load = Family::new(
        "nines_host_load1",
        "gauge",
        "1-minute load average of the node's host.",
    );
    let mut host_cpu = Family::new(
        "nines_host_cpu_busy_ratio",
        "gauge",
        "CPU busy fraction of the node's host since the previous sample.",
    );
    let mut host_disk_free = Family::new(
        "nines_host_disk_free_bytes",
        "gauge",
        "Free bytes on the node's data disk.",
    );

    for c in clusters {
        let cl = || vec![("cluster", c.name.clone())];
        for s in [
            ClusterState::Healthy,
            ClusterState::Degraded,
            ClusterState::Failed,
        ] {
            let mut l = cl();
            l.push(("state", s.as_str().to_string()));
            cluster_state.add(l, b(c.state == Some(s)));
        }
        cluster_nodes.add(cl(), c.nodes.len() as f64);
        for n in &c.nodes {
            let nl = || {
                vec![
                    ("cluster", c.name.clone()),
                    ("node", n.endpoint.to_string()),
                ]
            };
            up.add(nl(), b(n.error.is_none() && n.sample.is_some()));
            for s in [NodeState::Online, NodeState::Degraded, NodeState::Offline] {
                let mut l = nl();
                l.push(("state", s.as_str().to_string()));
                node_state.add(l, b(n.state == Some(s)));
            }
            let mut l = nl();
            l.push(("role", n.role.as_str().to_string()));
            l.push((
                "version",
                n.sample
                    .as_ref()
                    .map(|s| s.version.text.clone())
                    .unwrap_or_default(),
            ));
            info.add(l, 1.0);
            if let Some(h) = &n.host {
                host_mem.add(nl(), h.mem_available_bytes as f64);
                host_mem_total.add(nl(), h.mem_total_bytes as f64);
                host_load.add(nl(), h.load1);
                if let Some(busy) = h.cpu_busy {
                    host_cpu.add(nl(), busy);
                }
                if let Some(free) = h.disk_free_bytes {
                    host_disk_free.add(nl(), free as f64);
                }
            }
            let Some(s) = &n.sample else { continue };
            if n.error.is_some() {
                continue;
            }
            read_only.add(nl(), b(s.read_only));
            uptime.add(nl(), s.uptime_seconds as f64);
            if let Some(ch) = s.replication.first() {
                if let Some(secs) = ch.seconds_behind {
                    lag.add(nl(), secs as f64);
                }
                io.add(
                    nl(),
                    b(ch.io_state == nines_model::replication::IoThreadState::Running),
                );
                sql.add(nl(), b(ch.sql_running));
            }
            let status = |names: [&str; 2]| names.iter().find_map(|k| s.status.get(*k).copied());
            if let Some(v) = status(["Rpl_semi_sync_master_status", "Rpl_semi_sync_source_status"])
            {
                semi_active.add(nl(), v as f64);
            }
            if let Some(v) = status([
                "Rpl_semi_sync_master_clients",
                "Rpl_semi_sync_source_clients",
            ]) {
                semi_clients.add(nl(), v as f64);
            }
            if let Some(v) = status(["Rpl_semi_sync_master_no_tx", "Rpl_semi_sync_source_no_tx"]) {
                semi_no_tx.add(nl(), v as f64);
            }
            if let Some(t) = n.lag_transactions {
                lag_trx.add(nl(), t as f64);
            }
            if let Some(w) = &s.wsrep {
                wsrep_size.add(nl(), f64::from(w.cluster_size));
                wsrep_synced.add(nl(), b(w.is_synced()));
                wsrep_primary.add(nl(), b(w.is_primary_component()));
            }
            for (fam, (var, _)) in counters.iter_mut().zip(COUNTERS) {
                if let Some(v) = s.status.get(*var) {
                    fam.add(nl(), *v as f64);
                }
            }
            for (fam, (var, _)) in gauges.iter_mut().zip(GAUGES) {
                if let Some(v) = s.status.get(*var) {
                    fam.add(nl(), *v as f64);
                }
            }
        }
    }
    let mut out = String::new();
    for f in [
        &cluster_state,
        &cluster_nodes,
        &up,
        &node_state,
        &info,
        &read_only,
        &uptime,
        &lag,
        &lag_trx,
        &io,
        &sql,
        &wsrep_size,
        &wsrep_synced,
        &wsrep_primary,
        &semi_active,
        &semi_clients,
        &semi_no_tx,
        &host_mem,
        &host_mem_total,
        &host_load,
        &host_cpu,
        &host_disk_free,
    ] {
        f.write(&mut out);
    }
    for f in counters.iter().chain(gauges.iter()) {
        f.write(&mut out);
    }
    out
}

/// Active alarms counted per cluster, kind and severity (`nines_alarms_active`), and how
/// many of them are silenced or acknowledged.
pub fn render_alarms(
    active: &[nines_store::AlarmRecord],
    silenced: impl Fn(&nines_store::AlarmRecord) -> bool,
    out: &mut String,
) {
    use std::collections::BTreeMap;
    let mut counts: BTreeMap<(String, String, &'static str), (u64, u64, u64)> = BTreeMap::new();
    for a in active {
        let e = counts
            .entry((
                a.key.cluster.clone(),
                a.key.kind.as_string(),
                a.severity.as_str(),
            ))
            .or_default();
        e.0 += 1;
        if silenced(a) {
            e.1 += 1;
        }
        if a.acknowledged_by.is_some() {
            e.2 += 1;
        }
    }
    let mut all = Family::new(
        "nines_alarms_active",
        "gauge",
        "Active alarms, per cluster, kind and severity.",
    );
    let mut quiet = Family::new(
        "nines_alarms_silenced",
        "gauge",
        "Active alarms a silence keeps from notifications.",
    );
    let mut acked = Family::new(
        "nines_alarms_acknowledged",
        "gauge",
        "Active alarms a person acknowledged.",
    );
    for ((cluster, kind, severity), (n, s, k)) in counts {
        let labels = vec![
            ("cluster", cluster),
            ("kind", kind),
            ("severity", severity.to_string()),
        ];
        all.add(labels.clone(), n as f64);
        quiet.add(labels.clone(), s as f64);
        acked.add(labels, k as f64);
    }
    all.write(out);
    quiet.write(out);
    acked.write(out);
}

/// Load balancers: HAProxy up, the VIP held, and per backend server whether HAProxy has it
/// up and its sessions (now and in total), as the watcher last saw them.
pub fn render_lbs(
    lbs: &[(
        nines_store::LbRecord,
        Option<crate::balancers::Live>,
        Option<nines_model::lb::Decision>,
    )],
    out: &mut String,
) {
    let mut up = Family::new(
        "nines_lb_up",
        "gauge",
        "1 when the load balancer's HAProxy runs (0: stopped or its host does not answer).",
    );
    let mut vip = Family::new(
        "nines_lb_vip_held",
        "gauge",
        "1 when this load balancer holds its virtual IP.",
    );
    let mut be_up = Family::new(
        "nines_lb_backend_up",
        "gauge",
        "1 when HAProxy has the backend server up (ready or draining) in the pool.",
    );
    let mut sessions = Family::new(
        "nines_lb_backend_sessions",
        "gauge",
        "Sessions through the backend server now.",
    );
    let mut total = Family::new(
        "nines_lb_backend_sessions_total",
        "counter",
        "Sessions through the backend server since HAProxy started.",
    );
    for (lb, live, decision) in lbs {
        // HAProxy's server names back to the nodes' addresses.
        let node_of = |server: &str| {
            decision
                .as_ref()
                .and_then(|d| {
                    d.backends
                        .iter()
                        .find(|b| nines_model::lb::server_name(&b.address) == server)
                })
                .map_or_else(|| server.to_string(), |b| b.address.clone())
        };
        let name = format!("{}:{}", lb.host, lb.rw_port);
        let status = live.as_ref().and_then(|l| l.status.as_ref());
        let labels = vec![("cluster", lb.cluster.clone()), ("lb", name.clone())];
        up.add(
            labels.clone(),
            if status.is_some_and(|s| s.haproxy_running) {
                1.0
            } else {
                0.0
            },
        );
        if let Some(v) = &lb.vip {
            let mut l = labels.clone();
            l.push(("vip", v.address.clone()));
            if let Some(held) = status.and_then(|s| s.holds_vip) {
                vip.add(l, if held { 1.0 } else { 0.0 });
            }
        }
        for sv in status.map(|s| s.servers.as_slice()).unwrap_or_default() {
            let mut l = labels.clone();
            l.push(("pool", sv.pool.as_str().to_string()));
            l.push(("node", node_of(&sv.server)));
            let is_up = matches!(sv.status.as_str(), "UP" | "DRAIN");
            be_up.add(l.clone(), if is_up { 1.0 } else { 0.0 });
            sessions.add(l.clone(), sv.sessions as f64);
            total.add(l, sv.sessions_total as f64);
        }
    }
    for f in [&up, &vip, &be_up, &sessions, &total] {
        f.write(out);
    }
}
