//! The query monitor's top queries and the charts' metric series of a cluster.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{Duration, TimeDelta, Utc};
use nines_model::api::{ChartSeries, ClusterMetrics, SeriesPoint, parse_duration};
use nines_model::query::TopQuery;
use nines_model::series;
use serde::Deserialize;
use utoipa::IntoParams;

use super::AppState;
use super::deploy::cluster;
use super::error::ApiErr;

fn span(field: &str, text: &str, max: TimeDelta) -> Result<TimeDelta, ApiErr> {
    parse_duration(text)
        .ok()
        .and_then(|d| TimeDelta::from_std(d).ok())
        .filter(|d| *d > TimeDelta::zero() && *d <= max)
        .ok_or_else(|| {
            ApiErr::field(
                field,
                format!(
                    "{field} `{}` must be a span such as 15m, 1h or 7d (at most {} days)",
                    nines_model::input::printable(text),
                    max.num_days()
                ),
            )
        })
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct TopQueryParams {
    /// One node (ADDR[:PORT]); the whole cluster when absent.
    pub node: Option<String>,
    /// How far back, e.g. `1h` (default), `24h` (at most 7 days).
    pub since: Option<String>,
    /// At most this many (default 20, at most 500).
    pub limit: Option<i64>,
}

/// The statement digests that took the most time, from performance_schema's digest
/// summary read as deltas every advisor run; of one node or summed over the cluster.
#[utoipa::path(get, path = "/api/v1/clusters/{name}/queries/top", tag = "advisors",
    params(("name" = String, Path), TopQueryParams),
    responses((status = 200, body = Vec<TopQuery>), (status = 400, body = nines_model::api::ApiError),
              (status = 404, body = nines_model::api::ApiError), (status = 409, body = nines_model::api::ApiError)))]
pub async fn top_queries(
    State(st): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<TopQueryParams>,
) -> Result<Json<Vec<TopQuery>>, ApiErr> {
    let c = cluster(&st, &name).await?;
    let since = span(
        "since",
        q.since.as_deref().unwrap_or("1h"),
        TimeDelta::days(7),
    )?;
    let limit = q.limit.unwrap_or(20);
    if !(1..=500).contains(&limit) {
        return Err(ApiErr::field("limit", "limit must be 1-500"));
    }
    let nodes = st.store.list_nodes(Some(c.id)).await?;
    let node = match q.node.as_deref() {
        Some(n) => {
            let ep = nines_model::input::node_address("node", n)?;
            if !nodes.iter().any(|r| r.endpoint == ep) {
                return Err(ApiErr::not_found(format!("node {ep} in cluster `{name}`")));
            }
            Some(ep.to_string())
        }
        None => None,
    };
    // What ran since the last advisor run counts too.
    if let Err(e) = st.advisors.refresh_queries(&c.name).await {
        tracing::debug!(cluster = %c.name, error = %e, "cannot read statement digests now");
    }
    // A server without performance_schema has no digests to show: say so, not [].
    let scope: Vec<String> = match &node {
        Some(n) => vec![n.clone()],
        None => nodes.iter().map(|r| r.endpoint.to_string()).collect(),
    };
    let mut off = Vec::new();
    let mut on = 0;
    for n in &scope {
        match st.advisors.performance_schema(&c.name, n).await {
            Some(true) => on += 1,
            Some(false) => off.push(n.clone()),
            None => {}
        }
    }
    if on == 0 && !off.is_empty() {
        return Err(ApiErr::new(
            StatusCode::CONFLICT,
            format!(
                "performance_schema is off on {}: the query monitor reads statement digests from it. Set performance_schema=ON in the server's configuration and restart it (nines deploys it on)",
                off.join(", ")
            ),
        ));
    }
    let list = st
        .store
        .top_queries(&c.name, node.as_deref(), Utc::now() - since, limit)
        .await?;
    Ok(Json(list))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct MetricsParams {
    /// Metric names, comma-separated (docs/monitoring.md lists them).
    pub series: String,
    /// How far back, e.g. `15m`, `6h` (default `1h`, at most the rollup retention).
    pub since: Option<String>,
    /// The step between points, e.g. `10s`, `1m` (default: about 120 points).
    pub step: Option<String>,
}

/// Most points one series may have.
const MAX_POINTS: usize = 2000;

/// Time series for charts: each metric of each node and of the cluster, averaged per step,
/// from the raw window (every probe) and the per-minute rollups before it.
#[utoipa::path(get, path = "/api/v1/clusters/{name}/metrics", tag = "metrics",
    params(("name" = String, Path), MetricsParams),
    responses((status = 200, body = ClusterMetrics), (status = 400, body = nines_model::api::ApiError),
              (status = 404, body = nines_model::api::ApiError)))]
pub async fn cluster_metrics(
    State(st): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<MetricsParams>,
) -> Result<Json<ClusterMetrics>, ApiErr> {
    let obs = st
        .monitor
        .cluster(&name)
        .ok_or_else(|| ApiErr::not_found(format!("cluster `{name}`")))?;
    let history = st.monitor.history();
    let retention =
        TimeDelta::from_std(history.config().rollup_retention).unwrap_or(TimeDelta::days(7));
    let since_span = span("since", q.since.as_deref().unwrap_or("1h"), retention)?;
    let names: Vec<&str> = q
        .series
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if names.is_empty() || names.len() > 20 {
        return Err(ApiErr::field("series", "series must name 1-20 metrics"));
    }
    let mut metrics = Vec::new();
    for n in &names {
        metrics.push(series::metric(n).ok_or_else(|| {
            ApiErr::field(
                "series",
                format!(
                    "series `{}` is not a metric; known: {}",
                    nines_model::input::printable(n),
                    series::METRICS
                        .iter()
                        .map(|m| m.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?);
    }
    let until = Utc::now();
    let since = until - since_span;
    let step = match q.step.as_deref() {
        Some(s) => span("step", s, since_span)?,
        None => {
            let ms = (since_span.num_milliseconds() / 120).max(1000);
            Duration::milliseconds(ms)
        }
    };
    let starts = series::steps(since, until, step);
    if starts.len() > MAX_POINTS {
        return Err(ApiErr::field(
            "step",
            format!(
                "step gives {} points over {}; at most {MAX_POINTS}: choose a longer step",
                starts.len(),
                q.since.as_deref().unwrap_or("1h")
            ),
        ));
    }
    let raw_start =
        until - TimeDelta::from_std(history.config().raw_window).unwrap_or(TimeDelta::minutes(15));
    let mut out = Vec::new();
    for m in metrics {
        let mut per_node = Vec::new();
        for n in &obs.nodes {
            let node = n.endpoint.to_string();
            let mut points: Vec<(chrono::DateTime<Utc>, f64)> = Vec::new();
            if since < raw_start {
                for r in st.store.rollups(&node, m.name, since).await? {
                    if r.minute < raw_start {
                        points.push((r.minute, r.avg));
                    }
                }
            }
            points.extend(history.raw(&node, m.name, since.max(raw_start)));
            let values = series::bucket(&points, &starts, step);
            out.push(ChartSeries {
                name: m.name.to_string(),
                unit: m.unit.to_string(),
                node: Some(node),
                points: to_points(&starts, &values),
            });
            per_node.push(values);
        }
        out.push(ChartSeries {
            name: m.name.to_string(),
            unit: m.unit.to_string(),
            node: None,
            points: to_points(&starts, &series::combine(&per_node, m.combine)),
        });
    }
    Ok(Json(ClusterMetrics {
        cluster: obs.name.clone(),
        since,
        until,
        step_seconds: step.num_milliseconds() as f64 / 1000.0,
        series: out,
    }))
}

fn to_points(starts: &[chrono::DateTime<Utc>], values: &[Option<f64>]) -> Vec<SeriesPoint> {
    starts
        .iter()
        .zip(values)
        .map(|(at, value)| SeriesPoint {
            at: *at,
            value: *value,
        })
        .collect()
}
