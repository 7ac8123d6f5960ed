//! Load balancers of a cluster: add (a job), list with their backends, remove (a job).

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use nines_model::api::{LbAddRequest, LbBackendView, LbView};
use nines_model::job::{HostAccessSpec, JobSpec};

use super::AppState;
use super::auth::Caller;
use super::deploy::{Queued, cluster, host_access, queue};
use super::error::ApiErr;

/// Adds HAProxy in front of the cluster on a host (a job: packages, configuration, start).
#[utoipa::path(post, path = "/api/v1/clusters/{name}/load-balancers", tag = "load-balancers",
    params(("name" = String, Path)), request_body = LbAddRequest,
    responses((status = 202, body = nines_model::api::JobCreated), (status = 400, body = nines_model::api::ApiError),
              (status = 404, body = nines_model::api::ApiError), (status = 409, body = nines_model::api::ApiError)))]
pub async fn add_lb(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Json(req): Json<LbAddRequest>,
) -> Result<Queued, ApiErr> {
    match req.lb_type.as_deref() {
        None | Some("haproxy") => {}
        Some(other) => {
            return Err(ApiErr::field(
                "type",
                format!(
                    "type `{}` is not a load balancer nines deploys: haproxy",
                    nines_model::input::printable(other)
                ),
            ));
        }
    }
    let host = crate::balancers::check_host(&req.host)?;
    let rw_port = req.rw_port.unwrap_or(3306);
    let ro_port = req.ro_port.unwrap_or(3307);
    let stats_port = req.stats_port.unwrap_or(9101);
    for (field, p) in [
        ("rw_port", rw_port),
        ("ro_port", ro_port),
        ("stats_port", stats_port),
    ] {
        if p == 0 {
            return Err(ApiErr::field(field, format!("{field} must be 1-65535")));
        }
    }
    if rw_port == ro_port || rw_port == stats_port || ro_port == stats_port {
        return Err(ApiErr::field(
            "ro_port",
            "the read-write, read-only and stats ports must differ",
        ));
    }
    let access = host_access(&req.ssh, req.local)?;
    if access == HostAccessSpec::None {
        return Err(ApiErr::field(
            "local",
            "a load balancer needs host access: local or ssh",
        ));
    }
    let c = cluster(&st, &name).await?;
    let taken = st.store.lbs(None).await?.into_iter().any(|l| {
        l.host == host
            && [l.rw_port, l.ro_port, l.stats_port]
                .iter()
                .any(|p| [rw_port, ro_port, stats_port].contains(p))
    });
    if taken {
        return Err(ApiErr::conflict(
            "host",
            format!("a load balancer nines manages already uses one of these ports on {host}"),
        ));
    }
    let spec = JobSpec::AddLoadBalancer {
        cluster: c.name.clone(),
        host,
        rw_port,
        ro_port,
        stats_port,
        host_access: access,
    };
    queue(&st, &caller, spec).await
}

/// The cluster's load balancers with their backends' states.
#[utoipa::path(get, path = "/api/v1/clusters/{name}/load-balancers", tag = "load-balancers",
    params(("name" = String, Path)),
    responses((status = 200, body = Vec<LbView>), (status = 404, body = nines_model::api::ApiError)))]
pub async fn list_lbs(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Vec<LbView>>, ApiErr> {
    let c = cluster(&st, &name).await?;
    let applied = st.jobs.balancers();
    let out = st
        .store
        .lbs(Some(&c.name))
        .await?
        .into_iter()
        .map(|l| {
            let d = applied.get(l.id);
            LbView {
                id: l.id,
                lb_type: l.kind.clone(),
                host: l.host.clone(),
                rw_port: l.rw_port,
                ro_port: l.ro_port,
                stats_port: l.stats_port,
                state: l.state.as_str().to_string(),
                error: l.error.clone(),
                writer: d.as_ref().and_then(|d| d.writer.clone()),
                backends: d
                    .map(|d| {
                        d.backends
                            .into_iter()
                            .map(|b| LbBackendView {
                                address: b.address,
                                pool: b.pool,
                                state: b.state,
                                reason: b.reason,
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        })
        .collect();
    Ok(Json(out))
}

/// Stops and removes the cluster's load balancer on a host (a job).
#[utoipa::path(delete, path = "/api/v1/clusters/{name}/load-balancers/{host}", tag = "load-balancers",
    params(("name" = String, Path), ("host" = String, Path)),
    responses((status = 202, body = nines_model::api::JobCreated), (status = 404, body = nines_model::api::ApiError)))]
pub async fn remove_lb(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((name, host)): Path<(String, String)>,
) -> Result<Queued, ApiErr> {
    let host = crate::balancers::check_host(&host)?;
    let c = cluster(&st, &name).await?;
    if !st
        .store
        .lbs(Some(&c.name))
        .await?
        .iter()
        .any(|l| l.host == host)
    {
        return Err(ApiErr::not_found(format!(
            "a load balancer of `{}` on {host}",
            c.name
        )));
    }
    let spec = JobSpec::RemoveLoadBalancer {
        cluster: c.name.clone(),
        host,
    };
    queue(&st, &caller, spec).await
}
