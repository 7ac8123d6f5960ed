//! Cluster, node and event routes, and the import request.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use nines_model::api::{
    ClusterDetail, ClusterSummary, EventView, ImportRequest, JobCreated, NodeStatus,
};
use nines_model::job::{HostAccessSpec, JobSpec};
use nines_model::replication::IoThreadState;
use nines_model::{ClusterState, Endpoint, NodeState};
use nines_store::{ClusterRecord, NodeRecord};
use serde::Deserialize;
use utoipa::IntoParams;

use super::AppState;
use super::auth::Caller;
use super::error::ApiErr;
use super::json::ApiJson;
use crate::monitor::{ClusterObserved, NodeObserved};

/// Every registered cluster with its state.
#[utoipa::path(get, path = "/api/v1/clusters", tag = "clusters",
    responses((status = 200, body = Vec<ClusterSummary>)))]
pub async fn list_clusters(
    State(st): State<AppState>,
) -> Result<Json<Vec<ClusterSummary>>, ApiErr> {
    let records = st.store.list_clusters().await?;
    let nodes = st.store.list_nodes(None).await?;
    Ok(Json(
        records
            .iter()
            .map(|c| {
                let count = nodes.iter().filter(|n| n.cluster_id == c.id).count();
                summary(c, count, st.monitor.cluster(&c.name).as_deref())
            })
            .collect(),
    ))
}

pub fn summary(
    c: &ClusterRecord,
    node_count: usize,
    obs: Option<&ClusterObserved>,
) -> ClusterSummary {
    let (state, reason) = match obs.and_then(|o| o.state.map(|s| (s, o.reason.clone()))) {
        Some(x) => x,
        None => match c.state {
            Some(s) => (s, c.state_reason.clone()),
            None => (ClusterState::Failed, "not observed yet".to_string()),
        },
    };
    let nodes_online = obs
        .map(|o| {
            o.nodes
                .iter()
                .filter(|n| n.state == Some(NodeState::Online))
                .count()
        })
        .unwrap_or(0);
    ClusterSummary {
        id: c.id,
        name: c.name.clone(),
        cluster_type: c.cluster_type,
        state,
        state_reason: reason,
        nodes: node_count,
        nodes_online,
        created_at: c.created_at,
        deploy_state: c.deploy_state,
        auto_recovery: c.auto_recovery,
    }
}

/// One cluster with its nodes and recent events.
#[utoipa::path(get, path = "/api/v1/clusters/{name}", tag = "clusters",
    params(("name" = String, Path, description = "cluster name")),
    responses((status = 200, body = ClusterDetail), (status = 404, body = nines_model::api::ApiError)))]
pub async fn show_cluster(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ClusterDetail>, ApiErr> {
    let c = super::deploy::cluster(&st, &name).await?;
    let nodes = st.store.list_nodes(Some(c.id)).await?;
    let obs = st.monitor.cluster(&name);
    let events = st.store.list_events(Some(&name), 20).await?;
    let maint = st.store.maintenance(c.id, chrono::Utc::now()).await?;
    Ok(Json(ClusterDetail {
        summary: summary(&c, nodes.len(), obs.as_deref()),
        node_list: nodes
            .iter()
            .map(|n| node_status(&c, n, obs.as_deref(), &maint))
            .collect(),
        maintenance: maint
            .iter()
            .map(|m| super::maintenance::view(&c.name, m))
            .collect(),
        host_access: match &c.host_access {
            HostAccessSpec::None => "none".into(),
            HostAccessSpec::Local => "local".into(),
            HostAccessSpec::Ssh { user, port, .. } => format!("ssh {user}@<node>:{port}"),
        },
        events: events.into_iter().map(event_view).collect(),
    }))
}

fn event_view(e: nines_store::EventRecord) -> EventView {
    EventView {
        id: e.id,
        at: e.at,
        cluster: e.cluster,
        node: e.node,
        kind: e.kind,
        message: e.message,
    }
}

/// The role a node is shown with, from the role the monitor saw: a replication node
/// without a source reads as a primary, but only the designated one is (a fenced former
/// primary waits, read-only, for its rejoin, and mid-switchover both can look writable).
/// The node list, the topology drawing and the pages' live feed all use this one answer,
/// so a page never redraws towards a role the drawing would not show.
/// `designated` is the cluster's designated primary ([`ClusterRecord::primary`]).
pub fn shown_role(
    designated: Option<&Endpoint>,
    endpoint: &Endpoint,
    seen: nines_model::Role,
) -> nines_model::Role {
    if seen == nines_model::Role::Primary && designated.is_some_and(|p| p != endpoint) {
        nines_model::Role::Replica
    } else {
        seen
    }
}

/// A node's status from its record and what the monitor saw.
pub fn node_status(
    record: &nines_store::ClusterRecord,
    rec: &NodeRecord,
    obs: Option<&ClusterObserved>,
    maintenance: &[nines_store::MaintenanceRecord],
) -> NodeStatus {
    let address = rec.endpoint.to_string();
    let in_maintenance = maintenance
        .iter()
        .find(|m| m.node.as_deref() == Some(address.as_str()))
        .or_else(|| maintenance.iter().find(|m| m.node.is_none()))
        .map(|m| m.reason.clone());
    let seen: Option<&NodeObserved> =
        obs.and_then(|o| o.nodes.iter().find(|n| n.endpoint == rec.endpoint));
    let sample = seen.and_then(|n| n.sample.as_ref());
    let channel = sample.and_then(|s| s.replication.first());
    let wsrep = sample.and_then(|s| s.wsrep.as_ref());
    let role = shown_role(
        record.primary.as_ref(),
        &rec.endpoint,
        seen.map_or(rec.role, |n| n.role),
    );
    let is_replica = role == nines_model::Role::Replica;
    NodeStatus {
        cluster: record.name.clone(),
        address: rec.endpoint.to_string(),
        role,
        state: seen
            .and_then(|n| n.state)
            .or(rec.state)
            .unwrap_or(NodeState::Offline),
        state_reason: seen.map(|n| n.reason.clone()).unwrap_or_default(),
        read_only: sample.map(|s| s.read_only).unwrap_or(false),
        lag_seconds: if is_replica {
            channel.and_then(|c| c.seconds_behind)
        } else {
            None
        },
        lag_transactions: if is_replica {
            seen.and_then(|n| n.lag_transactions)
        } else {
            None
        },
        error_kind: seen
            .and_then(|n| n.error.as_ref())
            .map(|e| e.kind.as_str().to_string()),
        version: sample.map(|s| s.version.text.clone()),
        server_id: sample.map(|s| s.server_id),
        source: channel.map(|c| format!("{}:{}", c.source_host, c.source_port)),
        io_thread: channel.map(|c| {
            match c.io_state {
                IoThreadState::Running => "running",
                IoThreadState::Connecting => "connecting",
                IoThreadState::Stopped => "stopped",
            }
            .to_string()
        }),
        sql_thread: channel.map(|c| c.sql_running),
        gtid_executed: sample.map(|s| s.gtid_executed.clone()),
        wsrep_state: wsrep.map(|w| w.local_state.clone()),
        wsrep_cluster_status: wsrep.map(|w| w.cluster_status.clone()),
        wsrep_cluster_size: wsrep.map(|w| w.cluster_size),
        last_seen: seen.and_then(|n| n.last_seen),
        rates: seen
            .map(|n| {
                n.rates
                    .iter()
                    .map(|(k, v)| ((*k).to_string(), *v))
                    .collect()
            })
            .unwrap_or_default(),
        host: seen.and_then(|n| n.host.clone()),
        desired: rec.desired,
        maintenance: in_maintenance,
        fenced: rec.fenced.as_ref().map(ToString::to_string),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct NodeQuery {
    /// Only the nodes of this cluster.
    pub cluster: Option<String>,
}

/// Nodes, of one cluster or of all.
#[utoipa::path(get, path = "/api/v1/nodes", tag = "clusters", params(NodeQuery),
    responses((status = 200, body = Vec<NodeStatus>), (status = 404, body = nines_model::api::ApiError)))]
pub async fn list_nodes(
    State(st): State<AppState>,
    Query(q): Query<NodeQuery>,
) -> Result<Json<Vec<NodeStatus>>, ApiErr> {
    let clusters = match &q.cluster {
        Some(name) => vec![
            st.store
                .get_cluster(name)
                .await?
                .ok_or_else(|| ApiErr::not_found(format!("cluster `{name}`")))?,
        ],
        None => st.store.list_clusters().await?,
    };
    // Three reads whatever the number of clusters: clusters, nodes, windows in force.
    let nodes = match &clusters[..] {
        [one] if q.cluster.is_some() => st.store.list_nodes(Some(one.id)).await?,
        _ => st.store.list_nodes(None).await?,
    };
    let mut windows: std::collections::HashMap<i64, Vec<nines_store::MaintenanceRecord>> =
        std::collections::HashMap::new();
    for (id, m) in st.store.all_maintenance(chrono::Utc::now()).await? {
        windows.entry(id).or_default().push(m);
    }
    let mut by_cluster: std::collections::HashMap<i64, Vec<&nines_store::NodeRecord>> =
        std::collections::HashMap::new();
    for n in &nodes {
        by_cluster.entry(n.cluster_id).or_default().push(n);
    }
    let mut out = Vec::with_capacity(nodes.len());
    for c in &clusters {
        let obs = st.monitor.cluster(&c.name);
        let maint = windows.get(&c.id).map(Vec::as_slice).unwrap_or(&[]);
        for n in by_cluster.get(&c.id).into_iter().flatten() {
            out.push(node_status(c, n, obs.as_deref(), maint));
        }
    }
    Ok(Json(out))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct EventQuery {
    pub cluster: Option<String>,
    /// At most this many, newest first (default 100).
    pub limit: Option<i64>,
}

/// Recent events: state changes and decisions, with reasons.
#[utoipa::path(get, path = "/api/v1/events", tag = "clusters", params(EventQuery),
    responses((status = 200, body = Vec<EventView>)))]
pub async fn list_events(
    State(st): State<AppState>,
    Query(q): Query<EventQuery>,
) -> Result<Json<Vec<EventView>>, ApiErr> {
    let limit = q.limit.unwrap_or(100).clamp(1, 10_000);
    let events = st.store.list_events(q.cluster.as_deref(), limit).await?;
    Ok(Json(events.into_iter().map(event_view).collect()))
}

/// Checks a cluster name ([`nines_model::input::ClusterName`]).
pub fn validate_name(field: &str, name: &str) -> Result<(), ApiErr> {
    nines_model::input::ClusterName::parse(field, name)?;
    Ok(())
}

/// Starts an import job: discover the seed's cluster and register it.
#[utoipa::path(post, path = "/api/v1/clusters/import", tag = "clusters", request_body = ImportRequest,
    responses((status = 202, body = JobCreated), (status = 400, body = nines_model::api::ApiError),
              (status = 409, body = nines_model::api::ApiError)))]
pub async fn import_cluster(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(req): ApiJson<ImportRequest>,
) -> Result<(StatusCode, Json<JobCreated>), ApiErr> {
    validate_name("name", &req.name)?;
    let seed: Endpoint = req
        .seed
        .parse()
        .map_err(|e| ApiErr::field("seed", format!("seed: {e}")))?;
    nines_model::input::AccountName::parse("db_user", &req.db_user)?;
    if req.db_password.is_empty() {
        return Err(ApiErr::field(
            "db_password",
            "db_password must not be empty",
        ));
    }
    let host_access = super::deploy::host_access(&req.ssh, req.local)?;
    if st.store.get_cluster(&req.name).await?.is_some() {
        return Err(ApiErr::conflict(
            "name",
            format!("a cluster named `{}` already exists", req.name),
        ));
    }
    if let Some(owner) = st.store.cluster_of_node(&seed).await? {
        return Err(ApiErr::conflict(
            "seed",
            format!("node {seed} is already managed by nines in cluster `{owner}`"),
        ));
    }
    let secret = st.store.put_secret(&req.db_password).await?;
    let spec = JobSpec::ImportCluster {
        name: req.name.clone(),
        seed,
        db_user: req.db_user.clone(),
        db_password_secret: secret,
        host_access,
    };
    let job = match st.jobs.submit(&spec, &caller.0).await {
        Ok(j) => j,
        Err(e) => {
            crate::log_store_error(
                "the removal of an unused secret",
                st.store.delete_secret(secret).await,
            );
            return Err(e.into());
        }
    };
    Ok((StatusCode::ACCEPTED, Json(JobCreated { job_id: job.id })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nines_model::Role;

    #[test]
    fn only_the_designated_primary_is_shown_as_primary() {
        let a: Endpoint = "127.0.0.1:3306".parse().unwrap();
        let b: Endpoint = "127.0.0.2:3306".parse().unwrap();
        let table = [
            // designated, node, seen, shown
            (Some(&a), &a, Role::Primary, Role::Primary),
            (Some(&a), &b, Role::Primary, Role::Replica),
            (Some(&a), &b, Role::Replica, Role::Replica),
            (None, &b, Role::Primary, Role::Primary),
            (Some(&a), &a, Role::Replica, Role::Replica),
            (Some(&a), &b, Role::Galera, Role::Galera),
        ];
        for (designated, node, seen, shown) in table {
            assert_eq!(
                shown_role(designated, node, seen),
                shown,
                "{designated:?} {node} {seen:?}"
            );
        }
    }
}
