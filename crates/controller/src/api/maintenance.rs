//! Maintenance windows: while one is in force for a cluster or a node, nines takes no
//! automatic action there (restarts, failover, recovery). Setting and ending one is
//! recorded as an event with who and why.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, Query, State};
use nines_model::Endpoint;
use nines_model::api::{MaintenanceRequest, MaintenanceView, parse_duration};
use nines_model::event::EventKind;
use nines_model::input::Text;
use nines_store::MaintenanceRecord;
use serde::Deserialize;
use utoipa::IntoParams;

use super::AppState;
use super::auth::Caller;
use super::error::ApiErr;
use super::json::ApiJson;

/// Shortest maintenance window: one that ends before it is recorded protects nothing.
const MIN_WINDOW: std::time::Duration = std::time::Duration::from_secs(1);
/// Longest maintenance window (a forgotten one silences automatic recovery).
const MAX_WINDOW: std::time::Duration = std::time::Duration::from_secs(366 * 86_400);

pub fn view(cluster: &str, m: &MaintenanceRecord) -> MaintenanceView {
    MaintenanceView {
        cluster: cluster.to_string(),
        node: m.node.clone(),
        reason: m.reason.clone(),
        set_by: m.set_by.clone(),
        since: m.since,
        until: m.until,
    }
}

/// Checks that `node` (when given) is a node of the cluster; returns its canonical address.
async fn node_of(
    st: &AppState,
    cluster_id: i64,
    name: &str,
    node: Option<&str>,
) -> Result<Option<String>, ApiErr> {
    let Some(n) = node else { return Ok(None) };
    let ep: Endpoint = n
        .parse()
        .map_err(|e| ApiErr::field("node", format!("node: {e}")))?;
    let nodes = st.store.list_nodes(Some(cluster_id)).await?;
    if !nodes.iter().any(|x| x.endpoint == ep) {
        return Err(ApiErr::not_found(format!("node {ep} in cluster `{name}`")));
    }
    Ok(Some(ep.to_string()))
}

/// Starts (or replaces) a maintenance window of a cluster or one of its nodes.
#[utoipa::path(put, path = "/api/v1/clusters/{name}/maintenance", tag = "clusters",
    params(("name" = String, Path)), request_body = MaintenanceRequest,
    responses((status = 200, body = MaintenanceView), (status = 400, body = nines_model::api::ApiError),
              (status = 404, body = nines_model::api::ApiError)))]
pub async fn start_maintenance(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<MaintenanceRequest>,
) -> Result<Json<MaintenanceView>, ApiErr> {
    let c = super::deploy::cluster(&st, &name).await?;
    let node = node_of(&st, c.id, &name, req.node.as_deref()).await?;
    // Everything is checked before anything is written.
    let reason = Text::parse("reason", &req.reason)?;
    let reason = reason.as_str();
    let now = chrono::Utc::now();
    let until = match &req.duration {
        None => None,
        Some(d) => {
            let d = parse_duration(d).map_err(|e| ApiErr::field("duration", e))?;
            if d < MIN_WINDOW {
                return Err(ApiErr::field(
                    "duration",
                    format!(
                        "duration is too short ({}s): a window lasts at least 1s",
                        d.as_secs_f64()
                    ),
                ));
            }
            if d > MAX_WINDOW {
                return Err(ApiErr::field(
                    "duration",
                    "duration is too long: a window lasts at most 366d (end it by hand sooner)",
                ));
            }
            let until = chrono::TimeDelta::from_std(d)
                .ok()
                .and_then(|d| now.checked_add_signed(d))
                .ok_or_else(|| ApiErr::field("duration", "duration is too long"))?;
            Some(until)
        }
    };
    st.store
        .set_maintenance(c.id, node.as_deref(), reason, &caller.0, until)
        .await?;
    let scope = node.clone().unwrap_or_else(|| format!("cluster `{name}`"));
    let msg = format!(
        "maintenance on for {scope} by {}{}: {reason}",
        caller.0,
        until
            .map(|u| format!(" until {}", u.format("%Y-%m-%d %H:%M:%S UTC")))
            .unwrap_or_default()
    );
    st.store
        .add_event(&name, node.as_deref(), EventKind::MaintenanceOn, &msg)
        .await?;
    let record = st
        .store
        .maintenance(c.id, now)
        .await?
        .into_iter()
        .find(|m| m.node == node)
        .ok_or_else(|| {
            ApiErr::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "the maintenance window was recorded but cannot be read back",
            )
        })?;
    Ok(Json(view(&name, &record)))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct EndQuery {
    /// `host:port` of the node whose window ends; absent for the cluster's.
    pub node: Option<String>,
    /// Why it ends (recorded in the event).
    pub reason: Option<String>,
}

/// Ends a maintenance window.
#[utoipa::path(delete, path = "/api/v1/clusters/{name}/maintenance", tag = "clusters",
    params(("name" = String, Path), EndQuery),
    responses((status = 200, body = Vec<MaintenanceView>), (status = 404, body = nines_model::api::ApiError)))]
pub async fn end_maintenance(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Query(q): Query<EndQuery>,
) -> Result<Json<Vec<MaintenanceView>>, ApiErr> {
    let c = super::deploy::cluster(&st, &name).await?;
    let node = node_of(&st, c.id, &name, q.node.as_deref()).await?;
    let why = q
        .reason
        .as_deref()
        .map(|r| Text::parse("reason", r).map(|t| format!(": {t}")))
        .transpose()?
        .unwrap_or_default();
    let scope = node.clone().unwrap_or_else(|| format!("cluster `{name}`"));
    if !st.store.clear_maintenance(c.id, node.as_deref()).await? {
        return Err(ApiErr::not_found(format!(
            "a maintenance window for {scope}"
        )));
    }
    let msg = format!("maintenance off for {scope} by {}{why}", caller.0);
    st.store
        .add_event(&name, node.as_deref(), EventKind::MaintenanceOff, &msg)
        .await?;
    let left = st.store.maintenance(c.id, chrono::Utc::now()).await?;
    Ok(Json(left.iter().map(|m| view(&name, m)).collect()))
}

/// Turns automatic recovery of a cluster on or off (recorded as an event).
#[utoipa::path(put, path = "/api/v1/clusters/{name}/recovery", tag = "clusters",
    params(("name" = String, Path)), request_body = nines_model::api::RecoveryRequest,
    responses((status = 200, body = nines_model::api::ClusterSummary), (status = 404, body = nines_model::api::ApiError)))]
pub async fn set_recovery(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<nines_model::api::RecoveryRequest>,
) -> Result<Json<nines_model::api::ClusterSummary>, ApiErr> {
    let c = super::deploy::cluster(&st, &name).await?;
    st.store.set_auto_recovery(c.id, req.enabled).await?;
    let msg = format!(
        "automatic recovery {} by {}",
        if req.enabled { "enabled" } else { "disabled" },
        caller.0
    );
    st.store
        .add_event(&name, None, EventKind::Recovery, &msg)
        .await?;
    let c = super::deploy::cluster(&st, &name).await?;
    let nodes = st.store.list_nodes(Some(c.id)).await?;
    Ok(Json(super::clusters::summary(
        &c,
        nodes.len(),
        st.monitor.cluster(&name).as_deref(),
    )))
}
