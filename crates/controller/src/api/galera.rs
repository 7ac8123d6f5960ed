//! The route that brings back a Galera cluster's Primary component by hand:
//! `POST /api/v1/clusters/{name}/recover`. It checks the cluster's type and the named node
//! before queuing a `galera_recovery` job; the job plans from what the monitor and the
//! hosts say when it runs (and refuses beside a Primary component, even when forced).

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use nines_model::ClusterType;
use nines_model::api::{JobCreated, RecoverRequest};
use nines_model::job::JobSpec;

use super::AppState;
use super::auth::Caller;
use super::deploy::{Queued, cluster, queue};
use super::error::ApiErr;
use super::json::ApiJson;

/// Recovers a Galera cluster without a Primary component: bootstraps the most advanced
/// node (or, with `force`, the node named in `bootstrap_from`), then joins the others.
#[utoipa::path(post, path = "/api/v1/clusters/{name}/recover", tag = "clusters",
    params(("name" = String, Path)), request_body = RecoverRequest,
    responses((status = 202, body = JobCreated), (status = 400, body = nines_model::api::ApiError),
              (status = 404, body = nines_model::api::ApiError)))]
pub async fn recover(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<RecoverRequest>,
) -> Result<Queued, ApiErr> {
    let bootstrap_from = req
        .bootstrap_from
        .as_deref()
        .map(|t| nines_model::input::node_address("bootstrap_from", t))
        .transpose()?;
    let c = cluster(&st, &name).await?;
    if c.cluster_type != ClusterType::Galera {
        return Err(ApiErr::new(
            StatusCode::BAD_REQUEST,
            format!(
                "recovery by bootstrap applies to Galera clusters; cluster `{name}` is {}",
                c.cluster_type
            ),
        ));
    }
    let from = match bootstrap_from {
        None if req.force => {
            return Err(ApiErr::field(
                "bootstrap_from",
                "force needs bootstrap_from: name the node to bootstrap from",
            ));
        }
        None => None,
        Some(ep) => {
            let nodes = st.store.list_nodes(Some(c.id)).await?;
            if !nodes.iter().any(|n| n.endpoint == ep) {
                let known: Vec<String> = nodes.iter().map(|n| n.endpoint.to_string()).collect();
                return Err(ApiErr::field(
                    "bootstrap_from",
                    format!(
                        "bootstrap_from: {ep} is not a node of cluster `{name}` (its nodes: {})",
                        known.join(", ")
                    ),
                ));
            }
            Some(ep)
        }
    };
    queue(
        &st,
        &caller,
        JobSpec::GaleraRecovery {
            cluster: name,
            bootstrap_from: from,
            force: req.force,
            automatic: false,
            reasons: Vec::new(),
        },
    )
    .await
}
