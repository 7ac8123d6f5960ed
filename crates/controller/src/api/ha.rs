//! Routes that move the primary role of a replication cluster: failover, switchover, and
//! the rejoin of a former primary. Each checks what it can before queuing its job (the
//! cluster, its type, the named nodes); the job plans and checks the rest when it runs,
//! against what the monitor sees then.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use nines_model::api::{FailoverRequest, JobCreated, SwitchoverRequest};
use nines_model::job::JobSpec;
use nines_model::{ClusterType, Endpoint, Role};
use nines_store::ClusterRecord;

use super::AppState;
use super::auth::Caller;
use super::deploy::{Queued, cluster, node_of, queue};
use super::error::ApiErr;
use super::json::ApiJson;

/// 400 unless the cluster is a replication cluster; `what` names the operation.
fn replication_only(c: &ClusterRecord, what: &str) -> Result<(), ApiErr> {
    if c.cluster_type == ClusterType::Replication {
        return Ok(());
    }
    Err(ApiErr::new(
        StatusCode::BAD_REQUEST,
        format!(
            "{what} to replication clusters; cluster `{}` is {}",
            c.name, c.cluster_type
        ),
    ))
}

/// The replica named by the request's `to`, checked to be a node of the cluster and not
/// already its primary; None when the request names none.
async fn target(
    st: &AppState,
    c: &ClusterRecord,
    to: Option<Endpoint>,
) -> Result<Option<Endpoint>, ApiErr> {
    let Some(ep) = to else { return Ok(None) };
    let nodes = st.store.list_nodes(Some(c.id)).await?;
    let Some(rec) = nodes.iter().find(|n| n.endpoint == ep) else {
        let known: Vec<String> = nodes.iter().map(|n| n.endpoint.to_string()).collect();
        return Err(ApiErr::field(
            "to",
            format!(
                "to: {ep} is not a node of cluster `{}` (its nodes: {})",
                c.name,
                known.join(", ")
            ),
        ));
    };
    // The role the monitor sees now, else the one last recorded.
    let role = st
        .monitor
        .cluster(&c.name)
        .and_then(|o| o.nodes.iter().find(|n| n.endpoint == ep).map(|n| n.role))
        .unwrap_or(rec.role);
    if role == Role::Primary {
        return Err(ApiErr::conflict(
            "to",
            format!(
                "to: {ep} is already the primary of cluster `{}`; name a replica, or leave `to` out",
                c.name
            ),
        ));
    }
    Ok(Some(ep))
}

/// Promotes a replica of a replication cluster whose primary is gone (to the one named, or
/// the most advanced eligible one). Refused when the primary answers, unless forced.
#[utoipa::path(post, path = "/api/v1/clusters/{name}/failover", tag = "clusters",
    params(("name" = String, Path)), request_body = FailoverRequest,
    responses((status = 202, body = JobCreated), (status = 400, body = nines_model::api::ApiError),
              (status = 404, body = nines_model::api::ApiError),
              (status = 409, body = nines_model::api::ApiError)))]
pub async fn failover(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<FailoverRequest>,
) -> Result<Queued, ApiErr> {
    let to = req
        .to
        .as_deref()
        .map(|t| nines_model::input::node_address("to", t))
        .transpose()?;
    let c = cluster(&st, &name).await?;
    replication_only(&c, "failover and switchover apply")?;
    let to = target(&st, &c, to).await?;
    queue(
        &st,
        &caller,
        JobSpec::Failover {
            cluster: name,
            to,
            force: req.force,
            automatic: false,
            reasons: Vec::new(),
        },
    )
    .await
}

/// Hands the primary role of a replication cluster to a replica (the one named, or the
/// most advanced eligible one) with zero loss; every check passes before anything changes.
#[utoipa::path(post, path = "/api/v1/clusters/{name}/switchover", tag = "clusters",
    params(("name" = String, Path)), request_body = SwitchoverRequest,
    responses((status = 202, body = JobCreated), (status = 400, body = nines_model::api::ApiError),
              (status = 404, body = nines_model::api::ApiError),
              (status = 409, body = nines_model::api::ApiError)))]
pub async fn switchover(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<SwitchoverRequest>,
) -> Result<Queued, ApiErr> {
    let to = req
        .to
        .as_deref()
        .map(|t| nines_model::input::node_address("to", t))
        .transpose()?;
    let c = cluster(&st, &name).await?;
    replication_only(&c, "failover and switchover apply")?;
    let to = target(&st, &c, to).await?;
    queue(&st, &caller, JobSpec::Switchover { cluster: name, to }).await
}

/// Makes a former primary (or a stray node) a replica of the current primary, once it is
/// proven to hold no transaction the cluster lacks; otherwise it stays fenced.
#[utoipa::path(post, path = "/api/v1/clusters/{name}/nodes/{address}/rejoin", tag = "clusters",
    params(("name" = String, Path), ("address" = String, Path)),
    responses((status = 202, body = JobCreated), (status = 400, body = nines_model::api::ApiError),
              (status = 404, body = nines_model::api::ApiError)))]
pub async fn rejoin(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((name, address)): Path<(String, String)>,
) -> Result<Queued, ApiErr> {
    let (c, node) = node_of(&st, &name, &address).await?;
    replication_only(&c, "rejoin applies")?;
    queue(
        &st,
        &caller,
        JobSpec::Rejoin {
            cluster: name,
            node,
        },
    )
    .await
}
