//! Metrics routes: a node's history for dashboards, and every node's current values in
//! Prometheus text format (GET /metrics).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use nines_model::api::{MetricPoint, MetricSeries};
use serde::Deserialize;
use utoipa::IntoParams;

use super::AppState;
use super::error::ApiErr;

#[derive(Debug, Deserialize, IntoParams)]
pub struct SeriesQuery {
    /// Metric name, e.g. `queries_per_second`; omit to list the node's metrics.
    pub metric: Option<String>,
    /// Start of the series (RFC 3339); default: the raw window.
    pub since: Option<DateTime<Utc>>,
}

/// A node's metric history: raw points within the raw window, per-minute rollups before it.
#[utoipa::path(get, path = "/api/v1/clusters/{name}/nodes/{address}/metrics", tag = "metrics",
    params(("name" = String, Path), ("address" = String, Path, description = "host:port"), SeriesQuery),
    responses((status = 200, body = Vec<MetricSeries>), (status = 404, body = nines_model::api::ApiError)))]
pub async fn node_metrics(
    State(st): State<AppState>,
    Path((name, address)): Path<(String, String)>,
    Query(q): Query<SeriesQuery>,
) -> Result<Json<Vec<MetricSeries>>, ApiErr> {
    let obs = st
        .monitor
        .cluster(&name)
        .ok_or_else(|| ApiErr::not_found(format!("cluster `{name}`")))?;
    if !obs.nodes.iter().any(|n| n.endpoint.to_string() == address) {
        return Err(ApiErr::not_found(format!(
            "node {address} in cluster `{name}`"
        )));
    }
    let history = st.monitor.history();
    let now = Utc::now();
    let raw_window = chrono::TimeDelta::from_std(history.config().raw_window).unwrap_or_default();
    let since = q.since.unwrap_or(now - raw_window);
    let metrics = match q.metric {
        Some(m) => vec![m],
        None => history.metric_names(&address),
    };
    let mut out = Vec::new();
    for metric in metrics {
        let raw_start = now - raw_window;
        if since < raw_start {
            let rollups = st.store.rollups(&address, &metric, since).await?;
            out.push(MetricSeries {
                node: address.clone(),
                metric: metric.clone(),
                resolution: "1m".into(),
                points: rollups
                    .into_iter()
                    .map(|r| MetricPoint {
                        at: r.minute,
                        value: r.avg,
                        min: Some(r.min),
                        max: Some(r.max),
                    })
                    .collect(),
            });
        }
        out.push(MetricSeries {
            node: address.clone(),
            metric: metric.clone(),
            resolution: "raw".into(),
            points: history
                .raw(&address, &metric, since)
                .into_iter()
                .map(|(at, value)| MetricPoint {
                    at,
                    value,
                    min: None,
                    max: None,
                })
                .collect(),
        });
    }
    Ok(Json(out))
}

/// Every node's current metrics in Prometheus text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "metrics",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
pub async fn prometheus(State(st): State<AppState>) -> impl IntoResponse {
    let mut body = crate::prom::render(&st.monitor.clusters());
    crate::prom::render_alarms(
        &st.alarms.active(),
        |a| st.alarms.is_silenced(&a.key),
        &mut body,
    );
    if let Ok(lbs) = st.store.lbs(None).await {
        let applied = st.jobs.balancers();
        let live = applied.all_live();
        let with: Vec<_> = lbs
            .into_iter()
            .map(|l| {
                let x = live.get(&l.id).cloned();
                let d = applied.get(l.id);
                (l, x, d)
            })
            .collect();
        crate::prom::render_lbs(&with, &mut body);
    }
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        body,
    )
}
