//! Load balancers of a cluster: add, restart, reconfigure and remove (jobs), and list
//! them with their backends, as last applied and last seen.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use nines_model::api::{LbAddRequest, LbBackendView, LbReconfigureRequest, LbView};
use nines_model::job::{HostAccessSpec, JobSpec};
use nines_model::lb::LbPolicy;

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
    let vip = match (&req.vip, req.keepalived) {
        (None, false) => None,
        (None, true) => {
            return Err(ApiErr::field("vip", "keepalived needs a virtual IP (vip)"));
        }
        (Some(_), false) => {
            return Err(ApiErr::field(
                "keepalived",
                "a virtual IP is kept by Keepalived: set keepalived too",
            ));
        }
        (Some(v), true) => Some(check_vip(v, &host)?),
    };
    let policy = policy(
        &LbPolicy::default(),
        req.max_replica_lag_seconds,
        req.ro_fallback_to_primary,
    )?;
    let c = cluster(&st, &name).await?;
    let all = st.store.lbs(None).await?;
    if let Some(v) = &vip
        && let Some(other) = all
            .iter()
            .find(|l| l.cluster != c.name && l.vip.as_ref().is_some_and(|x| &x.address == v))
    {
        return Err(ApiErr::conflict(
            "vip",
            format!(
                "the virtual IP {v} belongs to cluster `{}`'s load balancers",
                other.cluster
            ),
        ));
    }
    let taken = all.into_iter().any(|l| {
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
        vip,
        policy,
    };
    queue(&st, &caller, spec).await
}

/// A VIP as a request gives it: an IPv4 address, not the host's own, not loopback.
fn check_vip(v: &str, host: &str) -> Result<String, ApiErr> {
    let ip: std::net::Ipv4Addr = v.parse().map_err(|_| {
        ApiErr::field(
            "vip",
            format!(
                "`{}` is not an IPv4 address (a virtual IP has no prefix or port)",
                nines_model::input::printable(v)
            ),
        )
    })?;
    if ip.is_loopback() || ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast() {
        return Err(ApiErr::field(
            "vip",
            format!(
                "{ip} cannot be a virtual IP (VRRP needs a real network: not loopback, multicast or broadcast)"
            ),
        ));
    }
    if ip.to_string() == host {
        return Err(ApiErr::field(
            "vip",
            "the virtual IP must differ from the load balancer's own address",
        ));
    }
    Ok(ip.to_string())
}

/// A policy from `base` with the request's changes.
fn policy(
    base: &LbPolicy,
    max_lag: Option<u64>,
    fallback: Option<bool>,
) -> Result<LbPolicy, ApiErr> {
    let mut p = *base;
    if let Some(l) = max_lag {
        if l == 0 || l > 86_400 {
            return Err(ApiErr::field(
                "max_replica_lag_seconds",
                "max_replica_lag_seconds must be 1-86400",
            ));
        }
        p.max_replica_lag_seconds = l;
    }
    if let Some(f) = fallback {
        p.ro_fallback_to_primary = f;
    }
    Ok(p)
}

/// Restarts the cluster's load balancer on a host: HAProxy (and Keepalived) stopped and
/// started (a job).
#[utoipa::path(post, path = "/api/v1/clusters/{name}/load-balancers/{host}/restart", tag = "load-balancers",
    params(("name" = String, Path), ("host" = String, Path)),
    responses((status = 202, body = nines_model::api::JobCreated), (status = 404, body = nines_model::api::ApiError)))]
pub async fn restart_lb(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((name, host)): Path<(String, String)>,
) -> Result<Queued, ApiErr> {
    let (c, _) = existing(&st, &name, &host).await?;
    let spec = JobSpec::RestartLoadBalancer {
        cluster: c,
        host: crate::balancers::check_host(&host)?,
    };
    queue(&st, &caller, spec).await
}

/// Changes the cluster's load balancer's policy on a host (a job; the backends follow
/// without a reload).
#[utoipa::path(put, path = "/api/v1/clusters/{name}/load-balancers/{host}", tag = "load-balancers",
    params(("name" = String, Path), ("host" = String, Path)), request_body = LbReconfigureRequest,
    responses((status = 202, body = nines_model::api::JobCreated), (status = 400, body = nines_model::api::ApiError),
              (status = 404, body = nines_model::api::ApiError)))]
pub async fn reconfigure_lb(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((name, host)): Path<(String, String)>,
    Json(req): Json<LbReconfigureRequest>,
) -> Result<Queued, ApiErr> {
    let (c, lb) = existing(&st, &name, &host).await?;
    let policy = policy(
        &lb.policy,
        req.max_replica_lag_seconds,
        req.ro_fallback_to_primary,
    )?;
    let spec = JobSpec::ReconfigureLoadBalancer {
        cluster: c,
        host: lb.host,
        policy,
    };
    queue(&st, &caller, spec).await
}

/// The cluster's name and its load balancer on `host`, or the 400/404 to answer.
async fn existing(
    st: &AppState,
    name: &str,
    host: &str,
) -> Result<(String, nines_store::LbRecord), ApiErr> {
    let host = crate::balancers::check_host(host)?;
    let c = cluster(st, name).await?;
    let lb = st
        .store
        .lbs(Some(&c.name))
        .await?
        .into_iter()
        .find(|l| l.host == host)
        .ok_or_else(|| ApiErr::not_found(format!("a load balancer of `{}` on {host}", c.name)))?;
    Ok((c.name, lb))
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
            let live = applied.live(l.id);
            let status = live.as_ref().and_then(|x| x.status.clone());
            let stat = |address: &str, pool| {
                status.as_ref().and_then(|s| {
                    s.servers
                        .iter()
                        .find(|x| {
                            x.pool == pool && x.server == nines_model::lb::server_name(address)
                        })
                        .cloned()
                })
            };
            LbView {
                haproxy: match (&live, &status) {
                    (None, _) => "unknown",
                    (Some(_), None) => "unknown",
                    (Some(_), Some(s)) if s.haproxy_running => "running",
                    (Some(_), Some(_)) => "stopped",
                }
                .to_string(),
                vip: l.vip.as_ref().map(|v| v.address.clone()),
                vip_held: status.as_ref().and_then(|s| s.holds_vip),
                keepalived: status
                    .as_ref()
                    .and_then(|s| s.keepalived_running)
                    .map(|k| if k { "running" } else { "stopped" }.to_string()),
                policy: l.policy,
                id: l.id,
                lb_type: l.kind.clone(),
                host: l.host.clone(),
                rw_port: l.rw_port,
                ro_port: l.ro_port,
                stats_port: l.stats_port,
                state: l.state,
                error: l.error.clone(),
                writer: d.as_ref().and_then(|d| d.writer.clone()),
                backends: d
                    .map(|d| {
                        d.backends
                            .into_iter()
                            .map(|b| {
                                let st = stat(&b.address, b.pool);
                                LbBackendView {
                                    haproxy_status: st.as_ref().map(|x| x.status.clone()),
                                    sessions: st.map(|x| x.sessions),
                                    address: b.address,
                                    pool: b.pool,
                                    state: b.state,
                                    reason: b.reason,
                                    backup: b.backup,
                                }
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
