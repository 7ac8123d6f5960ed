//! Topology discovery for `cluster import`: from one seed node, find every node of its
//! cluster and the role of each.
//!
//! Galera members come from `wsrep_incoming_addresses` (checked against
//! `wsrep_cluster_size`). Replication is walked in both directions: upstream through each
//! node's replica status (its source), downstream through `SHOW SLAVE HOSTS` and the binlog
//! dump threads in the processlist, each candidate confirmed by its own replica status
//! pointing back. Multi-level chains fall out of the walk.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use nines_access::server::parse::Row;
use nines_access::server::{Credentials, ServerConn, ServerError, Timeouts};
use nines_model::replication::{Flavor, ServerVersion};
use nines_model::snapshot::ServerSample;
use nines_model::{ClusterType, Endpoint, Role};

use crate::{OpError, Reporter};

/// One node found by discovery.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundNode {
    pub endpoint: Endpoint,
    pub role: Role,
    /// False when a neighbour named the node but it could not be reached.
    pub reachable: bool,
    pub server_id: Option<u32>,
    pub version: Option<String>,
}

/// The discovered cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    pub cluster_type: ClusterType,
    pub nodes: Vec<FoundNode>,
}

/// Limits the walk so that a misconfigured neighbour list cannot make it run away.
const MAX_NODES: usize = 64;

/// Discovers the cluster the seed belongs to. The seed must be reachable with the
/// credentials; other nodes that neighbours name but that cannot be reached are kept,
/// marked unreachable, with a warning in the log.
pub async fn discover(
    seed: &Endpoint,
    creds: &Credentials,
    timeouts: Timeouts,
    reporter: &dyn Reporter,
) -> Result<Topology, OpError> {
    reporter
        .info(&format!("connecting to seed {seed} as `{}`", creds.user))
        .await;
    let seed_obs = observe(seed, creds, timeouts).await.map_err(|e| match e {
        ServerError::Auth { .. } => OpError::Invalid(format!(
            "seed {seed}: access denied for user `{}`: check --db-user and the password file",
            creds.user
        )),
        ServerError::Refused { .. } => OpError::Invalid(format!(
            "seed {seed} is unreachable: connection refused (is the server running and is the address right?)"
        )),
        ServerError::Timeout { .. } => OpError::Invalid(format!(
            "seed {seed} is unreachable: no answer within {:?}",
            timeouts.connect
        )),
        other => OpError::Invalid(format!("seed {seed}: {other}")),
    })?;

    let galera = seed_obs.sample.wsrep.as_ref().is_some_and(|w| w.enabled);
    if galera {
        return discover_galera(seed, seed_obs, creds, timeouts, reporter).await;
    }
    discover_replication(seed, seed_obs, creds, timeouts, reporter).await
}

/// What one visit to a node read.
struct Observed {
    sample: ServerSample,
    /// (host, port) of replicas this node reports (SHOW SLAVE HOSTS) and its binlog dump clients.
    replica_hosts: Vec<(String, Option<u16>)>,
    /// Why the node would not list its replicas (the account lacks the privilege): the
    /// walk then relies on the binlog dump clients, whose addresses may not be the
    /// replicas' own.
    hosts_refused: Option<String>,
}

async fn observe(
    ep: &Endpoint,
    creds: &Credentials,
    timeouts: Timeouts,
) -> Result<Observed, ServerError> {
    let mut prober = nines_access::server::Prober::new(ep.clone(), creds.clone(), timeouts);
    let sample = prober.sample().await?;
    prober.disconnect().await;
    let mut conn = ServerConn::connect(ep, creds, timeouts).await?;
    let hosts_sql = match sample.version.flavor {
        Flavor::MySql if at_least(&sample.version, 8, 0, 22) => "SHOW REPLICAS",
        _ => "SHOW SLAVE HOSTS",
    };
    let (rows, hosts_refused) = match conn.query_rows(hosts_sql).await {
        Ok(rows) => (rows, None),
        Err(e) => (Vec::new(), Some(format!("{hosts_sql} failed: {e}"))),
    };
    conn.close().await;
    let mut replica_hosts: Vec<(String, Option<u16>)> =
        rows.iter().filter_map(slave_host).collect();
    for client in &sample.binlog_dump_clients {
        if !replica_hosts.iter().any(|(h, _)| h == client) {
            replica_hosts.push((client.clone(), None));
        }
    }
    Ok(Observed {
        sample,
        replica_hosts,
        hosts_refused,
    })
}

fn at_least(v: &ServerVersion, major: u32, minor: u32, patch: u32) -> bool {
    (v.major, v.minor, v.patch) >= (major, minor, patch)
}

fn slave_host(row: &Row) -> Option<(String, Option<u16>)> {
    let get = |k: &str| row.get(k).cloned().flatten().filter(|v| !v.is_empty());
    let host = get("Host")?;
    let port = get("Port")
        .and_then(|p| p.parse::<u16>().ok())
        .filter(|p| *p > 0);
    Some((host, port))
}

async fn discover_galera(
    seed: &Endpoint,
    seed_obs: Observed,
    creds: &Credentials,
    timeouts: Timeouts,
    reporter: &dyn Reporter,
) -> Result<Topology, OpError> {
    let Some(w) = seed_obs.sample.wsrep.clone() else {
        return Err(OpError::Invalid(format!("seed {seed} has no wsrep status")));
    };
    reporter
        .info(&format!(
            "seed {seed} is a Galera node: state {}, cluster {} of size {}, members {}",
            w.local_state,
            w.cluster_status,
            w.cluster_size,
            w.incoming_addresses.join(",")
        ))
        .await;
    let mut members: BTreeSet<Endpoint> = BTreeSet::new();
    members.insert(seed.clone());
    for a in &w.incoming_addresses {
        match a.parse::<Endpoint>() {
            Ok(ep) => {
                members.insert(ep);
            }
            Err(e) => {
                reporter
                    .warn(&format!(
                        "ignoring member address `{a}` listed by {seed}: {e}"
                    ))
                    .await;
            }
        }
    }
    if members.len() != w.cluster_size as usize {
        reporter
            .warn(&format!(
                "wsrep_cluster_size is {} but {} member addresses are known",
                w.cluster_size,
                members.len()
            ))
            .await;
    }
    let mut nodes = Vec::new();
    let total = members.len();
    for (i, ep) in members.into_iter().enumerate() {
        reporter.cancellation_check()?;
        reporter.progress("discover", percent(i + 1, total)).await;
        let (reachable, server_id, version) = if &ep == seed {
            (
                true,
                Some(seed_obs.sample.server_id),
                Some(seed_obs.sample.version.text.clone()),
            )
        } else {
            match observe(&ep, creds, timeouts).await {
                Ok(o) => {
                    let uuid = o
                        .sample
                        .wsrep
                        .as_ref()
                        .map(|w| w.cluster_state_uuid.clone());
                    if uuid.as_deref() != Some(w.cluster_state_uuid.as_str()) {
                        return Err(OpError::Invalid(format!(
                            "{ep} is listed as a member of {seed}'s cluster but reports cluster UUID {}",
                            uuid.unwrap_or_else(|| "none".into())
                        )));
                    }
                    (true, Some(o.sample.server_id), Some(o.sample.version.text))
                }
                Err(e) => {
                    reporter
                        .warn(&format!("member {ep} not reachable: {e}"))
                        .await;
                    (false, None, None)
                }
            }
        };
        reporter.info(&format!("found Galera member {ep}")).await;
        nodes.push(FoundNode {
            endpoint: ep,
            role: Role::Galera,
            reachable,
            server_id,
            version,
        });
    }
    Ok(Topology {
        cluster_type: ClusterType::Galera,
        nodes,
    })
}

async fn discover_replication(
    seed: &Endpoint,
    seed_obs: Observed,
    creds: &Credentials,
    timeouts: Timeouts,
    reporter: &dyn Reporter,
) -> Result<Topology, OpError> {
    let mut visited: BTreeMap<Endpoint, Option<Observed>> = BTreeMap::new();
    let mut queue: VecDeque<(Endpoint, Option<Endpoint>)> = VecDeque::new();
    // Seed first, then walk both ways.
    enqueue_neighbours(seed, &seed_obs, &mut queue);
    visited.insert(seed.clone(), Some(seed_obs));
    let mut server_ids: BTreeMap<u32, Endpoint> = BTreeMap::new();
    if let Some(Some(o)) = visited.get(seed) {
        server_ids.insert(o.sample.server_id, seed.clone());
    }

    while let Some((ep, downstream_of)) = queue.pop_front() {
        reporter.cancellation_check()?;
        if visited.contains_key(&ep) {
            continue;
        }
        if visited.len() >= MAX_NODES {
            return Err(OpError::Invalid(format!(
                "topology walk from {seed} found more than {MAX_NODES} nodes; refusing"
            )));
        }
        match observe(&ep, creds, timeouts).await {
            Ok(obs) => {
                if let Some(why) = &obs.hosts_refused {
                    reporter
                        .warn(&format!(
                            "{ep} does not list its replicas to this account ({why}): replicas may be missed; grant it REPLICATION MASTER ADMIN (MariaDB 10.5.2 and later) or REPLICATION SLAVE"
                        ))
                        .await;
                }
                // A candidate found downstream must really replicate from the node that named it.
                if let Some(src) = &downstream_of {
                    let points_back = obs
                        .sample
                        .replication
                        .iter()
                        .any(|c| same_endpoint(&c.source_host, c.source_port, src));
                    if !points_back {
                        reporter
                            .warn(&format!(
                                "{ep} was named as a replica of {src} but does not replicate from it; skipped"
                            ))
                            .await;
                        continue;
                    }
                }
                if let Some(other) = server_ids.get(&obs.sample.server_id) {
                    reporter
                        .warn(&format!(
                            "{ep} has server_id {} like {other}: the same server under two addresses? skipped",
                            obs.sample.server_id
                        ))
                        .await;
                    continue;
                }
                server_ids.insert(obs.sample.server_id, ep.clone());
                enqueue_neighbours(&ep, &obs, &mut queue);
                visited.insert(ep, Some(obs));
            }
            Err(e) => {
                if downstream_of.is_some() {
                    // A client host we guessed the port of: not evidence enough to register it.
                    reporter
                        .warn(&format!(
                            "possible replica {ep} not reachable ({e}); not registered"
                        ))
                        .await;
                    visited.insert(ep, None);
                    continue;
                }
                reporter
                    .warn(&format!(
                        "source {ep} is named by a replica but is not reachable: {e}"
                    ))
                    .await;
                visited.insert(ep, None);
            }
        }
        reporter
            .progress(
                "discover",
                percent(visited.len(), visited.len() + queue.len()),
            )
            .await;
    }

    let mut nodes = Vec::new();
    for (ep, obs) in &visited {
        let Some(obs) = obs else {
            // Unreachable: kept only when a reachable node replicates from it.
            let is_source = visited.values().flatten().any(|o| {
                o.sample
                    .replication
                    .iter()
                    .any(|c| same_endpoint(&c.source_host, c.source_port, ep))
            });
            if is_source {
                nodes.push(FoundNode {
                    endpoint: ep.clone(),
                    role: Role::Primary,
                    reachable: false,
                    server_id: None,
                    version: None,
                });
            }
            continue;
        };
        let role = if obs
            .sample
            .replication
            .iter()
            .any(|c| !c.source_host.is_empty())
        {
            Role::Replica
        } else {
            Role::Primary
        };
        nodes.push(FoundNode {
            endpoint: ep.clone(),
            role,
            reachable: true,
            server_id: Some(obs.sample.server_id),
            version: Some(obs.sample.version.text.clone()),
        });
    }
    let cluster_type = if nodes.len() > 1 {
        ClusterType::Replication
    } else {
        ClusterType::Standalone
    };
    if cluster_type == ClusterType::Standalone {
        for n in &mut nodes {
            n.role = Role::Standalone;
        }
    }
    for n in &nodes {
        reporter
            .info(&format!(
                "found {} {}{}",
                n.role,
                n.endpoint,
                if n.reachable { "" } else { " (unreachable)" }
            ))
            .await;
    }
    Ok(Topology {
        cluster_type,
        nodes,
    })
}

fn enqueue_neighbours(
    ep: &Endpoint,
    obs: &Observed,
    queue: &mut VecDeque<(Endpoint, Option<Endpoint>)>,
) {
    for ch in &obs.sample.replication {
        if !ch.source_host.is_empty() {
            queue.push_back((Endpoint::new(ch.source_host.clone(), ch.source_port), None));
        }
    }
    for (host, port) in &obs.replica_hosts {
        let port = port.unwrap_or(ep.port);
        queue.push_back((Endpoint::new(host.clone(), port), Some(ep.clone())));
    }
}

fn same_endpoint(host: &str, port: u16, ep: &Endpoint) -> bool {
    port == ep.port && host.eq_ignore_ascii_case(&ep.host)
}

fn percent(done: usize, total: usize) -> u8 {
    if total == 0 {
        return 100;
    }
    u8::try_from((done * 100 / total).min(100)).unwrap_or(100)
}

/// Cancellation as an error, for `?` in loops.
trait CancelCheck {
    fn cancellation_check(&self) -> Result<(), OpError>;
}

impl<T: Reporter + ?Sized> CancelCheck for T {
    fn cancellation_check(&self) -> Result<(), OpError> {
        if self.cancellation().is_cancelled() {
            Err(OpError::Cancelled)
        } else {
            Ok(())
        }
    }
}
