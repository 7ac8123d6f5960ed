//! Routes that change clusters: create, stop/start/rolling restart, delete, add and
//! remove nodes, node stop/start/restart. Each validates its input, then queues a job.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use nines_model::api::{AddNodeRequest, CreateClusterRequest, JobCreated, parse_size};
use nines_model::deploy::{DEFAULT_DATADIR_TEMPLATE, NodeLayout};
use nines_model::job::{ClusterAction, HostAccessSpec, JobSpec, NodeAction, RemoveMode};
use nines_model::{ClusterType, Endpoint};
use nines_store::ClusterRecord;
use serde::Deserialize;
use utoipa::IntoParams;

use super::AppState;
use super::auth::Caller;
use super::clusters::validate_name;
use super::error::ApiErr;
use super::json::ApiJson;

/// The answer of a route that queued a job: 202 and the job's id.
pub(super) type Queued = (StatusCode, Json<JobCreated>);

/// Queues `spec` as requested by the caller.
pub(super) async fn queue(st: &AppState, caller: &Caller, spec: JobSpec) -> Result<Queued, ApiErr> {
    let job = st.jobs.submit(&spec, &caller.0).await?;
    Ok((StatusCode::ACCEPTED, Json(JobCreated { job_id: job.id })))
}

/// The cluster named, or 400 for a name no cluster can have, or 404.
pub(crate) async fn cluster(st: &AppState, name: &str) -> Result<ClusterRecord, ApiErr> {
    validate_name("name", name)?;
    st.store
        .get_cluster(name)
        .await?
        .ok_or_else(|| ApiErr::not_found(format!("cluster `{name}`")))
}

/// Host access from the request's ssh settings or local flag, each field checked.
pub(super) fn host_access(
    ssh: &Option<nines_model::api::SshAccessRequest>,
    local: bool,
) -> Result<HostAccessSpec, ApiErr> {
    match (ssh, local) {
        (Some(_), true) => Err(ApiErr::field(
            "local",
            "choose ssh or local host access, not both",
        )),
        (Some(ssh), false) => {
            nines_model::input::ssh_user("ssh.user", &ssh.user)?;
            if ssh.port == Some(0) {
                return Err(ApiErr::field("ssh.port", "ssh.port must be 1-65535"));
            }
            if let Some(k) = &ssh.key_path {
                nines_model::input::controller_path("ssh.key_path", k)?;
            }
            if let Some(k) = &ssh.key_path
                && !std::path::Path::new(k).is_file()
            {
                return Err(ApiErr::field(
                    "ssh.key_path",
                    format!("ssh.key_path `{k}` is not a readable file on the controller"),
                ));
            }
            Ok(HostAccessSpec::Ssh {
                user: ssh.user.clone(),
                key_path: ssh.key_path.clone(),
                port: ssh.port.unwrap_or(22),
            })
        }
        (None, true) => Ok(HostAccessSpec::Local),
        (None, false) => Ok(HostAccessSpec::None),
    }
}

/// Deploys a new cluster onto hosts: pre-flight checks, packages, configuration, servers, accounts.
#[utoipa::path(post, path = "/api/v1/clusters", tag = "clusters", request_body = CreateClusterRequest,
    responses((status = 202, body = JobCreated), (status = 400, body = nines_model::api::ApiError),
              (status = 409, body = nines_model::api::ApiError)))]
pub async fn create_cluster(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(req): ApiJson<CreateClusterRequest>,
) -> Result<Queued, ApiErr> {
    validate_name("name", &req.name)?;
    let cluster_type: ClusterType = req
        .cluster_type
        .parse()
        .map_err(|e| ApiErr::field("type", format!("type: {e}")))?;
    let nodes: Vec<Endpoint> = nines_model::input::node_list("nodes", &req.nodes)?;
    let (min, max) = match cluster_type {
        ClusterType::Galera => (3, usize::MAX),
        ClusterType::Replication => (2, usize::MAX),
        ClusterType::Standalone => (1, 1),
    };
    if nodes.len() < min || nodes.len() > max {
        let why = match cluster_type {
            ClusterType::Galera => format!(
                "a Galera cluster needs at least 3 nodes to keep a majority when one fails (got {})",
                nodes.len()
            ),
            ClusterType::Replication => format!(
                "a replication cluster needs a primary and at least one replica (got {} nodes)",
                nodes.len()
            ),
            ClusterType::Standalone => {
                format!(
                    "a standalone server has exactly one node (got {})",
                    nodes.len()
                )
            }
        };
        return Err(ApiErr::field("nodes", why));
    }
    let template = req
        .datadir
        .clone()
        .unwrap_or_else(|| DEFAULT_DATADIR_TEMPLATE.to_string());
    NodeLayout::for_nodes(&template, &nodes)
        .map_err(|e| ApiErr::field("datadir", e.to_string()))?;
    nines_model::input::AccountName::new_account("db_admin_user", &req.db_admin_user)?;
    if req.db_admin_password.is_empty() {
        return Err(ApiErr::field(
            "db_admin_password",
            "db_admin_password must not be empty",
        ));
    }
    if req.db_admin_password.contains(['\'', '\\', '\n', '\0']) {
        return Err(ApiErr::field(
            "db_admin_password",
            "db_admin_password must not contain quotes, backslashes, newlines or NUL",
        ));
    }
    if req.semi_sync == Some(true) && cluster_type != ClusterType::Replication {
        return Err(ApiErr::field(
            "semi_sync",
            "semi_sync applies to replication clusters only",
        ));
    }
    let host_access = host_access(&req.ssh, req.local)?;
    if host_access == HostAccessSpec::None {
        return Err(ApiErr::field(
            "ssh",
            "deploying needs host access: give ssh settings (--ssh-user) or local (--local)",
        ));
    }
    let innodb_buffer_pool_size = req
        .innodb_buffer_pool_size
        .as_deref()
        .map(|s| parse_size(s).map_err(|e| ApiErr::field("innodb_buffer_pool_size", e)))
        .transpose()?;
    if let Some(t) = &req.config_template {
        let probe = nines_model::deploy::ConfigInput::new(
            &req.name,
            cluster_type,
            &nodes[0],
            &NodeLayout::from_template(&template, &nodes[0])
                .map_err(|e| ApiErr::field("datadir", e.to_string()))?,
            &nines_model::deploy::size_for(nines_model::deploy::HostShare {
                memory_bytes: 1 << 30,
                cpus: 1,
                nodes_on_host: 1,
            }),
            1,
        );
        // Bounded (fuel, output), and off the request workers all the same.
        let t = t.clone();
        tokio::task::spawn_blocking(move || nines_model::deploy::render_config(Some(&t), &probe))
            .await
            .map_err(|e| ApiErr::field("config_template", format!("config_template: {e}")))?
            .map_err(|e| ApiErr::field("config_template", e.to_string()))?;
    }
    if let Some(existing) = st.store.get_cluster(&req.name).await? {
        // A deploy that failed may be retried under the same name; anything else is a conflict.
        if existing.deploy_state != Some(nines_model::DeployState::Failed) {
            return Err(ApiErr::conflict(
                "name",
                format!("a cluster named `{}` already exists", req.name),
            ));
        }
    }
    for ep in &nodes {
        if let Some(owner) = st.store.cluster_of_node(ep).await?
            && owner != req.name
        {
            return Err(ApiErr::conflict(
                "nodes",
                format!("node {ep} is already managed by nines in cluster `{owner}`"),
            ));
        }
    }
    let secret = st.store.put_secret(&req.db_admin_password).await?;
    let spec = JobSpec::CreateCluster {
        name: req.name.clone(),
        cluster_type,
        nodes,
        datadir_template: template,
        admin_user: req.db_admin_user.clone(),
        admin_password_secret: secret,
        host_access,
        // Replication is semi-synchronous unless asked otherwise.
        semi_sync: cluster_type == ClusterType::Replication && req.semi_sync.unwrap_or(true),
        config_template: req.config_template.clone(),
        innodb_buffer_pool_size,
    };
    match queue(&st, &caller, spec).await {
        Ok(q) => Ok(q),
        Err(e) => {
            crate::log_store_error(
                "the removal of an unused secret",
                st.store.delete_secret(secret).await,
            );
            Err(e)
        }
    }
}

async fn cluster_action(
    st: AppState,
    caller: Caller,
    name: String,
    action: ClusterAction,
) -> Result<Queued, ApiErr> {
    let c = cluster(&st, &name).await?;
    if c.host_access == HostAccessSpec::None {
        return Err(ApiErr::new(
            StatusCode::BAD_REQUEST,
            format!("cluster `{name}` has no host access: nines cannot stop or start its servers"),
        ));
    }
    queue(
        &st,
        &caller,
        JobSpec::ClusterAction {
            cluster: name,
            action,
        },
    )
    .await
}

/// Stops every node of a cluster (replicas first, Galera in reverse join order).
#[utoipa::path(post, path = "/api/v1/clusters/{name}/stop", tag = "clusters",
    params(("name" = String, Path)), responses((status = 202, body = JobCreated), (status = 404, body = nines_model::api::ApiError)))]
pub async fn stop_cluster(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Queued, ApiErr> {
    cluster_action(st, caller, name, ClusterAction::Stop).await
}

/// Starts a stopped cluster; Galera bootstraps from the node with the highest committed seqno.
#[utoipa::path(post, path = "/api/v1/clusters/{name}/start", tag = "clusters",
    params(("name" = String, Path)), responses((status = 202, body = JobCreated), (status = 404, body = nines_model::api::ApiError)))]
pub async fn start_cluster(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Queued, ApiErr> {
    cluster_action(st, caller, name, ClusterAction::Start).await
}

/// Restarts nodes one at a time, each healthy again before the next.
#[utoipa::path(post, path = "/api/v1/clusters/{name}/rolling-restart", tag = "clusters",
    params(("name" = String, Path)), responses((status = 202, body = JobCreated), (status = 404, body = nines_model::api::ApiError)))]
pub async fn rolling_restart(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Queued, ApiErr> {
    cluster_action(st, caller, name, ClusterAction::RollingRestart).await
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct DeleteQuery {
    /// Also stop the servers and delete their data and files.
    #[serde(default)]
    pub purge: bool,
}

/// Unregisters a cluster; with purge, stops its servers and deletes their files.
#[utoipa::path(delete, path = "/api/v1/clusters/{name}", tag = "clusters",
    params(("name" = String, Path), DeleteQuery),
    responses((status = 202, body = JobCreated), (status = 404, body = nines_model::api::ApiError)))]
pub async fn delete_cluster(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> Result<Queued, ApiErr> {
    let c = cluster(&st, &name).await?;
    if q.purge && c.host_access == HostAccessSpec::None {
        return Err(ApiErr::field(
            "purge",
            format!("cluster `{name}` has no host access: nines cannot purge its nodes"),
        ));
    }
    queue(
        &st,
        &caller,
        JobSpec::DeleteCluster {
            cluster: name,
            purge: q.purge,
        },
    )
    .await
}

/// The cluster named and one of its nodes, parsed from `address`: 404 for either unknown.
pub(super) async fn node_of(
    st: &AppState,
    name: &str,
    address: &str,
) -> Result<(ClusterRecord, Endpoint), ApiErr> {
    let c = cluster(st, name).await?;
    let ep: Endpoint = address
        .parse()
        .map_err(|e| ApiErr::field("node", format!("node: {e}")))?;
    let nodes = st.store.list_nodes(Some(c.id)).await?;
    if !nodes.iter().any(|n| n.endpoint == ep) {
        return Err(ApiErr::not_found(format!("node {ep} in cluster `{name}`")));
    }
    Ok((c, ep))
}

/// Adds a node: a Galera joiner (IST or SST), or a replica provisioned from a backup stream.
#[utoipa::path(post, path = "/api/v1/clusters/{name}/nodes", tag = "clusters",
    params(("name" = String, Path)), request_body = AddNodeRequest,
    responses((status = 202, body = JobCreated), (status = 400, body = nines_model::api::ApiError),
              (status = 409, body = nines_model::api::ApiError)))]
pub async fn add_node(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<AddNodeRequest>,
) -> Result<Queued, ApiErr> {
    // The request's own values first, then what the cluster allows.
    let ep = nines_model::input::node_address("node", &req.node)?;
    let source = req
        .source
        .as_deref()
        .map(|s| nines_model::input::node_address("source", s))
        .transpose()?;
    let c = cluster(&st, &name).await?;
    if c.settings.is_none() {
        return Err(ApiErr::new(
            StatusCode::BAD_REQUEST,
            format!(
                "cluster `{name}` was imported, not deployed by nines: it cannot add nodes to it yet"
            ),
        ));
    }
    if c.cluster_type == ClusterType::Standalone {
        return Err(ApiErr::field("node", "a standalone cluster has one node"));
    }
    if let Some(owner) = st.store.cluster_of_node(&ep).await? {
        return Err(ApiErr::conflict(
            "node",
            format!("node {ep} is already managed by nines in cluster `{owner}`"),
        ));
    }
    let source = match source {
        None => None,
        Some(src) => {
            let nodes = st.store.list_nodes(Some(c.id)).await?;
            if !nodes.iter().any(|n| n.endpoint == src) {
                return Err(ApiErr::field(
                    "source",
                    format!("source {src} is not a node of cluster `{name}`"),
                ));
            }
            Some(src)
        }
    };
    if let Some(id) = req.from_backup {
        if c.cluster_type != ClusterType::Replication {
            return Err(ApiErr::field(
                "from_backup",
                "a node is provisioned from a backup in replication clusters (Galera joiners take a state transfer)",
            ));
        }
        let b = st
            .store
            .backup(id)
            .await?
            .ok_or_else(|| ApiErr::field("from_backup", format!("backup {id} not found")))?;
        if b.cluster != name
            || !b.method.is_physical()
            || b.state != nines_model::backup::BackupState::Completed
        {
            return Err(ApiErr::field(
                "from_backup",
                format!(
                    "backup {id} is a {} {} backup of `{}`: a new replica needs a completed full or incremental backup of `{name}`",
                    b.state, b.method, b.cluster
                ),
            ));
        }
    }
    queue(
        &st,
        &caller,
        JobSpec::AddNode {
            cluster: name,
            node: ep,
            source,
            from_backup: req.from_backup,
        },
    )
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct RemoveQuery {
    /// unregister (leave it running), stop (stop, keep data; default) or purge (stop, delete data).
    pub mode: Option<String>,
}

/// Removes a node from a cluster.
#[utoipa::path(delete, path = "/api/v1/clusters/{name}/nodes/{address}", tag = "clusters",
    params(("name" = String, Path), ("address" = String, Path), RemoveQuery),
    responses((status = 202, body = JobCreated), (status = 404, body = nines_model::api::ApiError)))]
pub async fn remove_node(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((name, address)): Path<(String, String)>,
    Query(q): Query<RemoveQuery>,
) -> Result<Queued, ApiErr> {
    let (c, ep) = node_of(&st, &name, &address).await?;
    let mode = match q.mode.as_deref().unwrap_or("stop") {
        "unregister" => RemoveMode::Unregister,
        "stop" => RemoveMode::Stop,
        "purge" => RemoveMode::Purge,
        other => {
            return Err(ApiErr::field(
                "mode",
                format!("mode `{other}` is not one of: unregister, stop, purge"),
            ));
        }
    };
    if mode != RemoveMode::Unregister && c.host_access == HostAccessSpec::None {
        return Err(ApiErr::field(
            "mode",
            format!("cluster `{name}` has no host access: only mode=unregister is possible"),
        ));
    }
    queue(
        &st,
        &caller,
        JobSpec::RemoveNode {
            cluster: name,
            node: ep,
            mode,
        },
    )
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ForceQuery {
    /// Stop even the last node of a Galera Primary component, or a primary with replicas.
    #[serde(default)]
    pub force: bool,
}

async fn node_action(
    st: AppState,
    caller: Caller,
    name: String,
    address: String,
    action: NodeAction,
    force: bool,
) -> Result<Queued, ApiErr> {
    let (c, node) = node_of(&st, &name, &address).await?;
    if c.host_access == HostAccessSpec::None {
        return Err(ApiErr::new(
            StatusCode::BAD_REQUEST,
            format!("cluster `{name}` has no host access: nines cannot control its servers"),
        ));
    }
    queue(
        &st,
        &caller,
        JobSpec::NodeAction {
            cluster: name,
            node,
            action,
            force,
        },
    )
    .await
}

/// Stops one node (refused for the last Galera node or a primary with replicas unless forced).
#[utoipa::path(post, path = "/api/v1/clusters/{name}/nodes/{address}/stop", tag = "clusters",
    params(("name" = String, Path), ("address" = String, Path), ForceQuery),
    responses((status = 202, body = JobCreated), (status = 404, body = nines_model::api::ApiError)))]
pub async fn stop_node(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((name, address)): Path<(String, String)>,
    Query(q): Query<ForceQuery>,
) -> Result<Queued, ApiErr> {
    node_action(st, caller, name, address, NodeAction::Stop, q.force).await
}

/// Starts one node and waits until it serves (Galera: Synced).
#[utoipa::path(post, path = "/api/v1/clusters/{name}/nodes/{address}/start", tag = "clusters",
    params(("name" = String, Path), ("address" = String, Path)),
    responses((status = 202, body = JobCreated), (status = 404, body = nines_model::api::ApiError)))]
pub async fn start_node(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((name, address)): Path<(String, String)>,
) -> Result<Queued, ApiErr> {
    node_action(st, caller, name, address, NodeAction::Start, false).await
}

/// Restarts one node and waits until it serves again.
#[utoipa::path(post, path = "/api/v1/clusters/{name}/nodes/{address}/restart", tag = "clusters",
    params(("name" = String, Path), ("address" = String, Path), ForceQuery),
    responses((status = 202, body = JobCreated), (status = 404, body = nines_model::api::ApiError)))]
pub async fn restart_node(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((name, address)): Path<(String, String)>,
    Query(q): Query<ForceQuery>,
) -> Result<Queued, ApiErr> {
    node_action(st, caller, name, address, NodeAction::Restart, q.force).await
}
