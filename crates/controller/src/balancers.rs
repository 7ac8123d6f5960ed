//! Load balancers: deploying, restarting, reconfiguring and removing HAProxy (and
//! Keepalived for a shared virtual IP) in front of a cluster (the jobs); the follower that
//! keeps every running load balancer's backends where the decision
//! (`nines_model::lb::decide`) says, through HAProxy's runtime API, four times a second;
//! and the watcher that looks at each load balancer's host every two seconds (HAProxy
//! alive, VIP held, servers' sessions and checks) for lists, metrics and the load
//! balancer alarms, and starts a HAProxy found dead again.

use nines_model::event::EventKind;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use nines_model::alarm::{AlarmKey, Source};
use nines_model::ha::maintenance::window_for;
use nines_model::job::HostAccessSpec;
use nines_model::lb::{self, Backend, Decision, HaproxyConfig, LbNode, LbPolicy};
use nines_model::{ClusterType, Endpoint};
use nines_ops::lb::{Haproxy, Keepalived, LbStatus};
use nines_store::{LbRecord, LbState, NewLb, Store, StoreError, Vip};
use tokio_util::sync::CancellationToken;

use crate::monitor::Monitor;

/// How often the follower looks.
const FOLLOW_EVERY: Duration = Duration::from_millis(250);
/// How often the watcher looks at each load balancer's host.
const WATCH_EVERY: Duration = Duration::from_secs(2);
/// A load balancer condition is raised when two looks in a row find it (a VRRP move
/// leaves the VIP nowhere for a moment; one look can miss).
const ALARM_AFTER: Duration = Duration::from_secs(2);
/// A HAProxy found dead by two looks in a row is started again (with a VIP, Keepalived
/// may have moved it meanwhile; with `nopreempt` it stays there); no more often than
/// [`RESTART_EVERY`].
const RESTART_AFTER: Duration = Duration::from_secs(2);
const RESTART_EVERY: Duration = Duration::from_secs(30);

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
        vip: lb.vip.as_ref().map(|v| v.address.clone()),
        decision,
    }
}

/// Keepalived's configuration for a load balancer with a VIP, among `peers` (every load
/// balancer of the cluster sharing the VIP, itself included).
pub fn keepalived_config(
    lb: &LbRecord,
    vip: &Vip,
    peers: &[LbRecord],
    prefix: u8,
) -> lb::KeepalivedConfig {
    let ha_pid = format!("{}/haproxy.pid", lb.dir);
    lb::KeepalivedConfig {
        cluster: lb.cluster.clone(),
        interface: vip.interface.clone(),
        vip: lb::vip_with_prefix(&vip.address, &lb.host, prefix),
        virtual_router_id: vip.router_id,
        priority: vip.priority,
        source: lb.host.clone(),
        peers: peers
            .iter()
            .filter(|p| p.id != lb.id)
            .map(|p| p.host.clone())
            .collect(),
        haproxy_pid_file: ha_pid,
    }
}

/// The load balancers of the cluster sharing `vip` (deploying or running).
async fn vip_peers(
    store: &Arc<dyn Store>,
    cluster: &str,
    vip: &str,
) -> Result<Vec<LbRecord>, String> {
    Ok(store
        .lbs(Some(cluster))
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|l| l.state != LbState::Failed && l.vip.as_ref().is_some_and(|v| v.address == vip))
        .collect())
}

/// Writes and (re)loads Keepalived on every peer of a VIP, so each knows the others.
async fn configure_vip_peers(
    env: &crate::jobs::JobEnv,
    cluster: &str,
    vip: &str,
) -> Result<(), String> {
    let peers = vip_peers(&env.store, cluster, vip).await?;
    for p in &peers {
        let Some(v) = &p.vip else { continue };
        let host =
            crate::hosts::host_access(&p.host_access, &p.host, env.settings.ssh_config.as_deref())
                .ok_or_else(|| format!("no host access for the load balancer on {}", p.host))?;
        let (_, prefix) = nines_ops::lb::interface_of(host.as_ref(), &p.host)
            .await
            .map_err(|e| e.to_string())?;
        let ka = Keepalived::new(host, p.dir.clone());
        ka.write_config(&lb::render_keepalived(&keepalived_config(
            p, v, &peers, prefix,
        )))
        .await
        .map_err(|e| e.to_string())?;
        ka.start_or_reload().await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// What the follower last applied to each load balancer, and what the watcher last saw.
#[derive(Default)]
pub struct Applied {
    map: std::sync::Mutex<HashMap<i64, Decision>>,
    live: std::sync::Mutex<HashMap<i64, Live>>,
    /// (cluster, node address): primaries a switchover is about to make read-only, kept
    /// out of the read-write pool until it ends.
    held: std::sync::Mutex<Vec<(String, String)>>,
    /// Held by the follower while it decides and applies for a load balancer, and by a
    /// hold while it takes a primary out: a decision made before a hold can never be
    /// applied after it (it would put the primary back for one tick).
    applying: tokio::sync::Mutex<()>,
}

/// A primary held out of every read-write pool of its cluster while it lives.
pub struct WriterHold {
    applied: Arc<Applied>,
    key: (String, String),
}

impl Drop for WriterHold {
    fn drop(&mut self) {
        let mut held = self
            .applied
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(i) = held.iter().position(|k| *k == self.key) {
            held.remove(i);
        }
    }
}

/// Takes the primary out of the read-write pool of every running load balancer of the
/// cluster now (its sessions shut down), before a switchover makes it read-only: no new
/// connection reaches it while it is read-only and no client keeps writing to it. The
/// follower keeps it out while the hold lives; after that the decision follows the
/// topology again (the new primary, or the old one if the switchover rolled back).
pub async fn hold_writer_out(
    env: &crate::jobs::JobEnv,
    cluster: &str,
    address: &Endpoint,
) -> WriterHold {
    let key = (cluster.to_string(), address.to_string());
    let _applying = env.balancers.applying.lock().await;
    env.balancers
        .held
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(key.clone());
    let lbs = env.store.lbs(Some(cluster)).await.unwrap_or_default();
    for lb in lbs.iter().filter(|l| l.state == LbState::Running) {
        let Some(ha) = haproxy(lb, env.settings.ssh_config.as_deref()) else {
            continue;
        };
        let server = format!(
            "{}/{}",
            lb::backend_name(lb::Pool::Rw),
            lb::server_name(&key.1)
        );
        match ha
            .command(&format!(
                "set server {server} state maint;shutdown sessions server {server}"
            ))
            .await
        {
            Ok(_) => {
                tracing::info!(lb = lb.id, primary = %key.1, "primary taken out of the read-write pool for a switchover")
            }
            Err(e) => {
                tracing::warn!(lb = lb.id, error = %e, "could not take the primary out of the read-write pool before the switchover")
            }
        }
    }
    WriterHold {
        applied: Arc::clone(&env.balancers),
        key,
    }
}

/// The watcher's last look at one load balancer.
#[derive(Debug, Clone)]
pub struct Live {
    /// None: the host did not answer.
    pub status: Option<LbStatus>,
    /// Since when HAProxy has been seen dead (or its host silent).
    pub down_since: Option<tokio::time::Instant>,
    pub last_restart: Option<tokio::time::Instant>,
    /// Check downs per (pool, server): (unix seconds, counter), oldest first.
    pub downs: HashMap<(lb::Pool, String), Vec<(i64, u64)>>,
}

impl Applied {
    /// The watcher's last look at a load balancer.
    pub fn live(&self, id: i64) -> Option<Live> {
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&id)
            .cloned()
    }

    /// Every load balancer's last look, by id.
    pub fn all_live(&self) -> HashMap<i64, Live> {
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set_live(&self, id: i64, l: Live) {
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id, l);
    }

    pub fn get(&self, id: i64) -> Option<Decision> {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&id)
            .cloned()
    }

    fn is_held(&self, cluster: &str, address: &str) -> bool {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .any(|(c, a)| c == cluster && a == address)
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
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|id, _| keep.contains(id));
    }

    /// Forgets what was applied, so that the follower sets every server again (after a
    /// restart of HAProxy, which starts from its configuration file).
    fn reset(&self, id: i64) {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&id);
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
            let _applying = applied.applying.lock().await;
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
    // A primary a switchover is about to demote is read-only as far as the pools go.
    for n in nodes.iter_mut() {
        if applied.is_held(&lb.cluster, &n.address) {
            n.read_only = Some(true);
        }
    }
    let decision = lb::decide(
        kind,
        &nodes,
        before.as_ref().and_then(|d| d.writer.as_deref()),
        lb.policy,
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
                    EventKind::LbBackends,
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
    // $1: the packages (and the commands they bring).
    let packages = if new.vip.is_some() {
        "haproxy socat keepalived"
    } else {
        "haproxy socat"
    };
    let out = host
        .run(
            &nines_access::host::HostCommand::shell(
                "missing=0; for c in $1; do command -v \"$c\" >/dev/null || missing=1; done; \
                 [ $missing = 0 ] && exit 0; \
                 if command -v apt-get >/dev/null; then DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $1; \
                 elif command -v dnf >/dev/null; then dnf install -y $1; \
                 else yum install -y $1; fi",
            )
            .arg(packages)
            .sudo(true),
            Duration::from_secs(900),
        )
        .await
        .map_err(|e| e.to_string())?;
    if !out.success() {
        return Err(format!(
            "{}: installing {packages} failed: {}",
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
    let mut new = new;
    if let Some(v) = new.vip.as_mut() {
        ctx.progress("interface", 25).await;
        let (interface, _) = nines_ops::lb::interface_of(host.as_ref(), &new.host)
            .await
            .map_err(|e| e.to_string())?;
        v.interface = interface;
        let all = env.store.lbs(None).await.map_err(|e| e.to_string())?;
        let peers: Vec<&LbRecord> = all
            .iter()
            .filter(|l| {
                l.cluster == new.cluster && l.vip.as_ref().is_some_and(|x| x.address == v.address)
            })
            .collect();
        if let Some(other) = all.iter().find(|l| {
            l.cluster != new.cluster && l.vip.as_ref().is_some_and(|x| x.address == v.address)
        }) {
            return Err(format!(
                "the virtual IP {} belongs to cluster `{}`'s load balancers",
                v.address, other.cluster
            ));
        }
        v.router_id = match peers.iter().find_map(|p| p.vip.as_ref()) {
            Some(x) => x.router_id,
            None => {
                let used: Vec<u8> = all
                    .iter()
                    .filter_map(|l| l.vip.as_ref().map(|x| x.router_id))
                    .collect();
                lb::free_router_id(&used).ok_or("every VRRP router id (1-255) is in use")?
            }
        };
        v.priority = lb::vrrp_priority(peers.len());
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
        if let Some(v) = &rec.vip {
            ctx.progress("keepalived", 85).await;
            configure_vip_peers(env, &rec.cluster, &v.address).await?;
        }
        Ok::<(), String>(())
    }
    .await;
    match result {
        Ok(()) => {
            env.store
                .set_lb_state(rec.id, LbState::Running, None)
                .await
                .map_err(|e| e.to_string())?;
            let mut msg = format!(
                "load balancer on {}: read-write {}:{}, read-only {}:{}, metrics http://{}:{}/metrics",
                rec.host, rec.host, rec.rw_port, rec.host, rec.ro_port, rec.host, rec.stats_port
            );
            if let Some(v) = &rec.vip {
                msg.push_str(&format!(
                    "; virtual IP {} on {} (VRRP router {}, priority {})",
                    v.address, v.interface, v.router_id, v.priority
                ));
            }
            ctx.info(&msg).await;
            env.store
                .add_event(&rec.cluster, None, EventKind::LbAdded, &msg)
                .await
                .map_err(|e| e.to_string())?;
            Ok(())
        }
        Err(e) => {
            if rec.vip.is_some() {
                let _ = Keepalived::new(ha.host.clone(), rec.dir.clone())
                    .stop()
                    .await;
            }
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
            if lb.vip.is_some() {
                Keepalived::new(ha.host.clone(), lb.dir.clone())
                    .stop()
                    .await
                    .map_err(|e| e.to_string())?;
            }
            ha.purge().await.map_err(|e| e.to_string())?;
        }
        env.store
            .delete_lb(lb.id)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(v) = &lb.vip {
            configure_vip_peers(env, cluster, &v.address).await?;
        }
        let msg = format!("load balancer on {}:{} removed", lb.host, lb.rw_port);
        ctx.info(&msg).await;
        env.store
            .add_event(cluster, None, EventKind::LbRemoved, &msg)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The cluster's load balancer on `host`.
async fn find(env: &crate::jobs::JobEnv, cluster: &str, host: &str) -> Result<LbRecord, String> {
    env.store
        .lbs(Some(cluster))
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|l| l.host == host)
        .ok_or_else(|| format!("cluster `{cluster}` has no load balancer on {host}"))
}

/// Restarts a load balancer's HAProxy (a full stop and start: new settings of the file
/// take effect, sessions end) and Keepalived (the `lb_restart` job).
pub async fn restart(
    ctx: &crate::jobs::JobContext,
    env: &crate::jobs::JobEnv,
    cluster: &str,
    host: &str,
) -> Result<(), String> {
    use nines_ops::Reporter;
    let lb = find(env, cluster, host).await?;
    let ha = haproxy(&lb, env.settings.ssh_config.as_deref()).ok_or("no host access")?;
    ctx.progress("haproxy", 30).await;
    ha.stop().await.map_err(|e| e.to_string())?;
    ha.start_or_reload().await.map_err(|e| e.to_string())?;
    env.balancers.reset(lb.id);
    if lb.vip.is_some() {
        ctx.progress("keepalived", 70).await;
        let ka = Keepalived::new(ha.host.clone(), lb.dir.clone());
        ka.stop().await.map_err(|e| e.to_string())?;
        ka.start_or_reload().await.map_err(|e| e.to_string())?;
    }
    env.store
        .set_lb_state(lb.id, LbState::Running, None)
        .await
        .map_err(|e| e.to_string())?;
    let msg = format!("load balancer on {}:{} restarted", lb.host, lb.rw_port);
    ctx.info(&msg).await;
    env.store
        .add_event(cluster, None, EventKind::LbRestarted, &msg)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Changes a load balancer's policy (the `lb_reconfigure` job): stored, then the follower
/// applies the new decision through the runtime API and the file.
pub async fn reconfigure(
    ctx: &crate::jobs::JobContext,
    env: &crate::jobs::JobEnv,
    cluster: &str,
    host: &str,
    policy: LbPolicy,
) -> Result<(), String> {
    use nines_ops::Reporter;
    let lb = find(env, cluster, host).await?;
    env.store
        .set_lb_policy(lb.id, &policy)
        .await
        .map_err(|e| e.to_string())?;
    // The follower compares with what it applied: forgetting it makes it set everything.
    env.balancers.reset(lb.id);
    let msg = format!(
        "load balancer on {}:{}: replicas more than {} s behind leave the read pool; the primary {} reads when no replica qualifies",
        lb.host,
        lb.rw_port,
        policy.max_replica_lag_seconds,
        if policy.ro_fallback_to_primary {
            "serves"
        } else {
            "does not serve"
        }
    );
    ctx.info(&msg).await;
    env.store
        .add_event(cluster, None, EventKind::LbReconfigured, &msg)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Runs until `shutdown`: looks at every running load balancer's host every two seconds
/// (what lists and metrics show), raises and clears the load balancer alarms, and starts
/// a HAProxy found dead again.
pub async fn watch(
    store: Arc<dyn Store>,
    applied: Arc<Applied>,
    alarms: Arc<crate::alarms::Alarms>,
    ssh_config: Option<std::path::PathBuf>,
    shutdown: CancellationToken,
) {
    let mut first_seen: HashMap<AlarmKey, tokio::time::Instant> = HashMap::new();
    let mut clusters_with_lbs: Vec<String> = Vec::new();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(WATCH_EVERY) => {}
        }
        let lbs = match store.lbs(None).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "load balancers: cannot list them");
                continue;
            }
        };
        let running: Vec<&LbRecord> = lbs.iter().filter(|l| l.state == LbState::Running).collect();
        let looks = futures::future::join_all(running.iter().map(|lb| {
            let applied = Arc::clone(&applied);
            let store = Arc::clone(&store);
            let ssh = ssh_config.clone();
            async move { watch_one(&store, &applied, lb, ssh.as_deref()).await }
        }))
        .await;
        let mut by_cluster: HashMap<String, Vec<lb::LbLook>> = HashMap::new();
        for (lb, look) in running.iter().zip(looks) {
            by_cluster.entry(lb.cluster.clone()).or_default().push(look);
        }
        // Clusters that had load balancers and have none running now get their alarms
        // cleared.
        for c in clusters_with_lbs.drain(..) {
            by_cluster.entry(c).or_default();
        }
        let now = tokio::time::Instant::now();
        for (cluster, looks) in by_cluster {
            let found = lb::conditions(&cluster, &looks);
            let keys: Vec<AlarmKey> = found.iter().map(|c| c.key.clone()).collect();
            first_seen.retain(|k, _| k.cluster != cluster || keys.contains(k));
            let settled: Vec<_> = found
                .into_iter()
                .filter(|c| {
                    let since = *first_seen.entry(c.key.clone()).or_insert(now);
                    now.duration_since(since) >= ALARM_AFTER
                        || alarms.is_active(&c.key.cluster, c.key.node.as_deref(), &c.key.kind)
                })
                .collect();
            if let Err(e) = alarms.sync(&cluster, Source::Balancer, settled).await {
                tracing::warn!(error = %e, cluster, "load balancer alarms not written");
            }
            if !looks.is_empty() {
                clusters_with_lbs.push(cluster);
            }
        }
    }
}

/// One look at a load balancer; starts its HAProxy again when it has been dead a while.
async fn watch_one(
    store: &Arc<dyn Store>,
    applied: &Applied,
    lb: &LbRecord,
    ssh_config: Option<&std::path::Path>,
) -> lb::LbLook {
    let vip = lb.vip.as_ref().map(|v| v.address.clone());
    let ha = haproxy(lb, ssh_config);
    let status = match &ha {
        Some(ha) => ha.look(vip.as_deref()).await.ok(),
        None => None,
    };
    let now = tokio::time::Instant::now();
    let secs = Utc::now().timestamp();
    let mut live = applied.live(lb.id).unwrap_or(Live {
        status: None,
        down_since: None,
        last_restart: None,
        downs: HashMap::new(),
    });
    let alive = status.as_ref().is_some_and(|s| s.haproxy_running);
    live.down_since = if alive {
        None
    } else {
        Some(live.down_since.unwrap_or(now))
    };
    if let Some(s) = &status {
        for sv in &s.servers {
            let h = live.downs.entry((sv.pool, sv.server.clone())).or_default();
            h.push((secs, sv.check_downs));
            h.retain(|(t, _)| secs - t <= lb::FLAP_WINDOW_SECS);
        }
    }
    let flapping: Vec<(lb::Pool, String, u64)> = live
        .downs
        .iter()
        .filter_map(|((pool, server), h)| {
            let n = lb::downs_within(h, secs, lb::FLAP_WINDOW_SECS);
            (n >= lb::FLAP_DOWNS).then(|| {
                let address = applied
                    .get(lb.id)
                    .and_then(|d| {
                        d.backends
                            .into_iter()
                            .find(|b| lb::server_name(&b.address) == *server)
                    })
                    .map_or_else(|| server.clone(), |b| b.address);
                (*pool, address, n)
            })
        })
        .collect();
    let look = lb::LbLook {
        name: format!("{}:{}", lb.host, lb.rw_port),
        vip,
        haproxy_running: status.as_ref().map(|s| s.haproxy_running),
        holds_vip: status.as_ref().and_then(|s| s.holds_vip),
        flapping,
    };
    // HAProxy dead (its host answering) for a while: start it again.
    if let (Some(ha), Some(s)) = (&ha, &status)
        && !s.haproxy_running
        && live
            .down_since
            .is_some_and(|t| now.duration_since(t) >= RESTART_AFTER)
        && live
            .last_restart
            .is_none_or(|t| now.duration_since(t) >= RESTART_EVERY)
    {
        live.last_restart = Some(now);
        let outcome = ha.start_or_reload().await;
        applied.reset(lb.id);
        let msg = match &outcome {
            Ok(()) => format!(
                "HAProxy of the load balancer on {}:{} was not running; started it again",
                lb.host, lb.rw_port
            ),
            Err(e) => format!(
                "HAProxy of the load balancer on {}:{} is not running and did not start: {e}",
                lb.host, lb.rw_port
            ),
        };
        tracing::warn!(cluster = %lb.cluster, "{msg}");
        crate::log_store_error(
            "a load balancer restart event",
            store
                .add_event(&lb.cluster, None, EventKind::LbRestarted, &msg)
                .await,
        );
    }
    live.status = status;
    applied.set_live(lb.id, live);
    look
}

/// A load balancer's host as a request gives it: an address without a port.
pub fn check_host(host: &str) -> Result<String, nines_model::input::InputError> {
    Ok(nines_model::input::node_address("host", host)?.host)
}
