//! Load balancers: deploying and removing HAProxy in front of a cluster (the jobs), and
//! the follower that keeps every running load balancer's backends where the decision
//! (`nines_model::lb::decide`) says, through HAProxy's runtime API, four times a second.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use nines_model::ha::maintenance::window_for;
use nines_model::job::HostAccessSpec;
use nines_model::lb::{self, Backend, Decision, HaproxyConfig, LbNode, LbPolicy};
use nines_model::{ClusterType, Endpoint};
use nines_ops::lb::Haproxy;
use nines_store::{LbRecord, LbState, NewLb, Store, StoreError};
use tokio_util::sync::CancellationToken;

use crate::monitor::Monitor;

/// How often the follower looks.
const FOLLOW_EVERY: Duration = Duration::from_millis(250);

/// The load balancer's HAProxy.
pub fn haproxy(lb: &LbRecord, ssh_config: Option<&std::path::Path>) -> Option<Haproxy> {
    let host = crate::hosts::host_access(&lb.host_access, &lb.host, ssh_config)?;
    Some(Haproxy::new(host, lb.dir.clone()))
}

/// Where a load balancer keeps its files on its host.
pub fn lb_dir(cluster: &str, host: &str, rw_port: u16) -> String {
    let safe: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("/var/lib/nines-lb/{cluster}-{safe}-{rw_port}")
}

/// The nodes of a cluster as the load balancer decisions see them.
pub async fn inputs(
    store: &Arc<dyn Store>,
    monitor: &Monitor,
    cluster: &str,
) -> Result<Option<(ClusterType, Vec<LbNode>)>, StoreError> {
    let Some(record) = store.get_cluster(cluster).await? else {
        return Ok(None);
    };
    let Some(observed) = monitor.cluster(cluster) else {
        return Ok(None);
    };
    let records = store.list_nodes(Some(record.id)).await?;
    let now = Utc::now();
    let windows = crate::haview::maintenance(store, record.id, now).await?;
    let nodes = observed
        .nodes
        .iter()
        .map(|n| {
            let rec = records.iter().find(|r| r.endpoint == n.endpoint);
            let sample = n.sample.as_deref().filter(|_| n.probe.is_reachable());
            LbNode {
                address: n.endpoint.to_string(),
                role: n.role,
                state: n.state,
                read_only: sample.map(|s| s.read_only),
                lag_seconds: sample.and_then(|s| {
                    s.replication
                        .iter()
                        .map(|r| r.seconds_behind)
                        .max()
                        .flatten()
                }),
                synced: sample
                    .and_then(|s| s.wsrep.as_ref())
                    .is_some_and(|w| w.is_synced() && w.is_primary_component()),
                in_maintenance: window_for(&windows, &n.endpoint, now).is_some(),
                fenced: rec.is_some_and(|r| r.fenced.is_some()),
                designated_primary: record.primary.as_ref() == Some(&n.endpoint),
            }
        })
        .collect();
    Ok(Some((record.cluster_type, nodes)))
}

/// HAProxy's configuration for a load balancer and a decision.
pub fn config(lb: &LbRecord, ha: &Haproxy, decision: Decision) -> HaproxyConfig {
    HaproxyConfig {
        cluster: lb.cluster.clone(),
        host: lb.host.clone(),
        rw_port: lb.rw_port,
        ro_port: lb.ro_port,
        stats_port: lb.stats_port,
        socket: ha.socket(),
        pid_file: ha.pid_file(),
        decision,
    }
}

/// What the follower last applied to each load balancer.
#[derive(Default)]
pub struct Applied {
    map: std::sync::Mutex<HashMap<i64, Decision>>,
}

impl Applied {
    pub fn get(&self, id: i64) -> Option<Decision> {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&id)
            .cloned()
    }

    fn set(&self, id: i64, d: Decision) {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id, d);
    }

    fn forget(&self, keep: &[i64]) {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|id, _| keep.contains(id));
    }
}

/// Runs until `shutdown`: keeps every running load balancer's backends as decided.
pub async fn follow(
    store: Arc<dyn Store>,
    monitor: Arc<Monitor>,
    applied: Arc<Applied>,
    ssh_config: Option<std::path::PathBuf>,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(FOLLOW_EVERY) => {}
        }
        let lbs = match store.lbs(None).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "load balancers: cannot list them");
                continue;
            }
        };
        applied.forget(&lbs.iter().map(|l| l.id).collect::<Vec<_>>());
        for lb in lbs.iter().filter(|l| l.state == LbState::Running) {
            if let Err(e) = follow_one(&store, &monitor, &applied, lb, ssh_config.as_deref()).await
            {
                tracing::warn!(lb = lb.id, host = %lb.host, error = %e, "load balancer not updated; trying again");
            }
        }
    }
}

async fn follow_one(
    store: &Arc<dyn Store>,
    monitor: &Monitor,
    applied: &Applied,
    lb: &LbRecord,
    ssh_config: Option<&std::path::Path>,
) -> Result<(), String> {
    let Some((kind, nodes)) = inputs(store, monitor, &lb.cluster)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(());
    };
    let before = applied.get(lb.id);
    let mut nodes = nodes;
    // A primary just designated (a failover or switchover finished) was made writable
    // before it was designated, but the monitor's sample may be a probe older: ask it now
    // rather than wait for the next probe (never trusting a read-only answer).
    if let Some(n) = nodes
        .iter_mut()
        .find(|n| n.designated_primary && n.read_only == Some(true) && !n.fenced)
        && read_only_now(store, &lb.cluster, &n.address).await == Some(false)
    {
        n.read_only = Some(false);
    }
    let decision = lb::decide(
        kind,
        &nodes,
        before.as_ref().and_then(|d| d.writer.as_deref()),
        LbPolicy::default(),
    );
    if before.as_ref() == Some(&decision) {
        return Ok(());
    }
    let ha = haproxy(lb, ssh_config).ok_or("the load balancer has no host access")?;
    let old: Vec<Backend> = before.map(|d| d.backends).unwrap_or_default();
    ha.apply(&decision.backends, &old)
        .await
        .map_err(|e| e.to_string())?;
    let changed: Vec<String> = decision
        .backends
        .iter()
        .filter(|b| {
            !old.iter()
                .any(|o| o.address == b.address && o.pool == b.pool && o.state == b.state)
        })
        .map(|b| format!("{} {} {}", b.pool, b.address, b.state))
        .collect();
    applied.set(lb.id, decision.clone());
    if !old.is_empty() {
        crate::log_store_error(
            "a load balancer event",
            store
                .add_event(
                    &lb.cluster,
                    None,
                    "lb_backends",
                    &format!(
                        "load balancer {}:{}: {}",
                        lb.host,
                        lb.rw_port,
                        changed.join(", ")
                    ),
                )
                .await,
        );
    }
    // The file follows, so that a restart starts from here.
    ha.write_config(&lb::render(&config(lb, &ha, decision)))
        .await
        .map_err(|e| e.to_string())
}

/// The node's read_only now, asked with the monitor's account (None: no answer).
async fn read_only_now(store: &Arc<dyn Store>, cluster: &str, address: &str) -> Option<bool> {
    let record = store.get_cluster(cluster).await.ok()??;
    let password = store.get_secret(record.db_password_secret).await.ok()?;
    let creds = nines_access::server::Credentials {
        user: record.db_user.clone(),
        password: password.expose().to_string(),
    };
    let ep: Endpoint = address.parse().ok()?;
    let timeouts = nines_access::server::Timeouts {
        connect: Duration::from_millis(500),
        query: Duration::from_millis(500),
    };
    let mut conn = nines_access::server::ServerConn::connect(&ep, &creds, timeouts)
        .await
        .ok()?;
    let v = conn
        .query_sets("SELECT @@read_only")
        .await
        .ok()
        .and_then(|s| s.into_iter().next())
        .and_then(|s| s.first_cell());
    conn.close().await;
    v.map(|v| v != "0" && !v.eq_ignore_ascii_case("OFF"))
}

/// Deploys HAProxy for a cluster (the `lb_add` job).
pub async fn add(
    ctx: &crate::jobs::JobContext,
    env: &crate::jobs::JobEnv,
    applied: &Applied,
    new: NewLb,
) -> Result<(), String> {
    use nines_ops::Reporter;
    let ssh = env.settings.ssh_config.clone();
    if new.host_access == HostAccessSpec::None {
        return Err("a load balancer needs host access: --local or --ssh-user".into());
    }
    let host = crate::hosts::host_access(&new.host_access, &new.host, ssh.as_deref())
        .ok_or("no host access for the load balancer's host")?;
    ctx.progress("packages", 10).await;
    let out = host
        .run(
            &nines_access::host::HostCommand::shell(
                "command -v haproxy >/dev/null && command -v socat >/dev/null && exit 0; \
                 if command -v apt-get >/dev/null; then DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy socat; \
                 elif command -v dnf >/dev/null; then dnf install -y haproxy socat; \
                 else yum install -y haproxy socat; fi",
            )
            .sudo(true),
            Duration::from_secs(900),
        )
        .await
        .map_err(|e| e.to_string())?;
    if !out.success() {
        return Err(format!(
            "{}: installing haproxy failed: {}",
            new.host,
            out.stderr_text().trim()
        ));
    }
    ctx.progress("ports", 20).await;
    let listening = nines_access::host::ports::listening(host.as_ref(), Duration::from_secs(30))
        .await
        .map_err(|e| e.to_string())?;
    for port in [new.rw_port, new.ro_port, new.stats_port] {
        if let Some(who) = nines_access::host::ports::port_taken(&listening, &new.host, port) {
            return Err(format!("{}:{port} is taken ({who})", new.host));
        }
    }
    let rec = env.store.add_lb(&new).await.map_err(|e| e.to_string())?;
    let ha = Haproxy::new(host, rec.dir.clone());
    let result = async {
        let (kind, nodes) = inputs(&env.store, &env.monitor, &rec.cluster)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the cluster is not watched")?;
        let decision = lb::decide(kind, &nodes, None, LbPolicy::default());
        ctx.progress("configure", 50).await;
        ha.write_config(&lb::render(&config(&rec, &ha, decision.clone())))
            .await
            .map_err(|e| e.to_string())?;
        ctx.progress("start", 70).await;
        ha.start_or_reload().await.map_err(|e| e.to_string())?;
        applied.set(rec.id, decision);
        Ok::<(), String>(())
    }
    .await;
    match result {
        Ok(()) => {
            env.store
                .set_lb_state(rec.id, LbState::Running, None)
                .await
                .map_err(|e| e.to_string())?;
            let msg = format!(
                "load balancer on {}: read-write {}:{}, read-only {}:{}, metrics http://{}:{}/metrics",
                rec.host, rec.host, rec.rw_port, rec.host, rec.ro_port, rec.host, rec.stats_port
            );
            ctx.info(&msg).await;
            env.store
                .add_event(&rec.cluster, None, "lb_added", &msg)
                .await
                .map_err(|e| e.to_string())?;
            Ok(())
        }
        Err(e) => {
            let _ = ha.stop().await;
            crate::log_store_error(
                "a failed load balancer",
                env.store
                    .set_lb_state(rec.id, LbState::Failed, Some(&e))
                    .await,
            );
            Err(e)
        }
    }
}

/// Stops and removes a load balancer (the `lb_remove` job).
pub async fn remove(
    ctx: &crate::jobs::JobContext,
    env: &crate::jobs::JobEnv,
    cluster: &str,
    host: &str,
) -> Result<(), String> {
    use nines_ops::Reporter;
    let lbs = env
        .store
        .lbs(Some(cluster))
        .await
        .map_err(|e| e.to_string())?;
    let gone: Vec<&LbRecord> = lbs.iter().filter(|l| l.host == host).collect();
    if gone.is_empty() {
        return Err(format!(
            "cluster `{cluster}` has no load balancer on {host}"
        ));
    }
    for lb in gone {
        if let Some(ha) = haproxy(lb, env.settings.ssh_config.as_deref()) {
            ha.purge().await.map_err(|e| e.to_string())?;
        }
        env.store
            .delete_lb(lb.id)
            .await
            .map_err(|e| e.to_string())?;
        let msg = format!("load balancer on {}:{} removed", lb.host, lb.rw_port);
        ctx.info(&msg).await;
        env.store
            .add_event(cluster, None, "lb_removed", &msg)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// A load balancer's host as a request gives it: an address without a port.
pub fn check_host(host: &str) -> Result<String, nines_model::input::InputError> {
    Ok(nines_model::input::node_address("host", host)?.host)
}
