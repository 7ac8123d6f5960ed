//! Advisors: a cluster's rule results (and a run on demand), their history, and the
//! cluster's user rules.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{TimeDelta, Utc};
use nines_model::advisor::rules::RULES;
use nines_model::advisor::user::{Direction, NodeSelector, UserRule};
use nines_model::api::{AdviceChangeView, AdviceView, UserRuleRequest, parse_duration};
use nines_store::AdviceRecord;
use serde::Deserialize;
use utoipa::IntoParams;

use super::AppState;
use super::deploy::cluster;
use super::error::ApiErr;

fn title(rule: &str) -> String {
    RULES
        .iter()
        .find(|r| r.id == rule)
        .map(|r| r.title.to_string())
        .unwrap_or_else(|| match rule.strip_prefix("user_") {
            Some(n) => format!("user rule {n}"),
            None => rule.to_string(),
        })
}

fn view(a: AdviceRecord) -> AdviceView {
    AdviceView {
        title: title(&a.result.rule),
        rule: a.result.rule,
        node: a.result.node,
        status: a.result.status,
        message: a.result.message,
        advice: a.result.advice,
        checked_at: a.checked_at,
    }
}

/// The cluster's advisor results: every rule checked, worst first.
#[utoipa::path(get, path = "/api/v1/clusters/{name}/advisors", tag = "advisors",
    params(("name" = String, Path)),
    responses((status = 200, body = Vec<AdviceView>), (status = 404, body = nines_model::api::ApiError)))]
pub async fn list_advice(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Vec<AdviceView>>, ApiErr> {
    let c = cluster(&st, &name).await?;
    let mut list: Vec<AdviceView> = st
        .store
        .advice(&c.name)
        .await?
        .into_iter()
        .map(view)
        .collect();
    list.sort_by(|a, b| b.status.cmp(&a.status).then(a.rule.cmp(&b.rule)));
    Ok(Json(list))
}

/// Runs every advisor rule of the cluster now (user rules too) and answers the results.
#[utoipa::path(post, path = "/api/v1/clusters/{name}/advisors/run", tag = "advisors",
    params(("name" = String, Path)),
    responses((status = 200, body = Vec<AdviceView>), (status = 404, body = nines_model::api::ApiError)))]
pub async fn run_advisors(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Vec<AdviceView>>, ApiErr> {
    let c = cluster(&st, &name).await?;
    st.advisors
        .check(&c.name, true)
        .await
        .map_err(|e| ApiErr::new(StatusCode::SERVICE_UNAVAILABLE, e))?;
    list_advice(State(st), Path(name)).await
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct HistoryQuery {
    /// How far back, e.g. `24h` (default `7d`).
    pub since: Option<String>,
    /// At most this many (default 200, at most 5000).
    pub limit: Option<i64>,
}

/// The changes of the cluster's rule verdicts, newest first.
#[utoipa::path(get, path = "/api/v1/clusters/{name}/advisors/history", tag = "advisors",
    params(("name" = String, Path), HistoryQuery),
    responses((status = 200, body = Vec<AdviceChangeView>), (status = 400, body = nines_model::api::ApiError),
              (status = 404, body = nines_model::api::ApiError)))]
pub async fn advice_history(
    State(st): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<Vec<AdviceChangeView>>, ApiErr> {
    let c = cluster(&st, &name).await?;
    let span = parse_duration(q.since.as_deref().unwrap_or("7d"))
        .ok()
        .and_then(|d| TimeDelta::from_std(d).ok())
        .filter(|d| *d <= TimeDelta::days(3650))
        .ok_or_else(|| ApiErr::field("since", "since must be a span such as 24h or 7d"))?;
    let limit = q.limit.unwrap_or(200);
    if !(1..=5000).contains(&limit) {
        return Err(ApiErr::field("limit", "limit must be 1-5000"));
    }
    let list = st
        .store
        .advice_history(&c.name, Utc::now() - span, limit)
        .await?;
    Ok(Json(
        list.into_iter()
            .map(|h| AdviceChangeView {
                rule: h.rule,
                status: h.status,
                message: h.message,
                at: h.at,
            })
            .collect(),
    ))
}

/// The cluster's user rules.
#[utoipa::path(get, path = "/api/v1/clusters/{name}/advisor-rules", tag = "advisors",
    params(("name" = String, Path)),
    responses((status = 200, body = Vec<UserRule>), (status = 404, body = nines_model::api::ApiError)))]
pub async fn list_user_rules(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Vec<UserRule>>, ApiErr> {
    let c = cluster(&st, &name).await?;
    let rules = st.store.user_rules(Some(&c.name)).await?;
    Ok(Json(rules.into_iter().map(|(_, r)| r).collect()))
}

/// Adds a user rule: a query returning one number, compared with thresholds.
#[utoipa::path(post, path = "/api/v1/clusters/{name}/advisor-rules", tag = "advisors",
    params(("name" = String, Path)), request_body = UserRuleRequest,
    responses((status = 201, body = UserRule), (status = 400, body = nines_model::api::ApiError),
              (status = 404, body = nines_model::api::ApiError), (status = 409, body = nines_model::api::ApiError)))]
pub async fn add_user_rule(
    State(st): State<AppState>,
    Path(name): Path<String>,
    Json(req): Json<UserRuleRequest>,
) -> Result<(StatusCode, Json<UserRule>), ApiErr> {
    let c = cluster(&st, &name).await?;
    let every = match req.every.as_deref() {
        None => 60,
        Some(e) => parse_duration(e)
            .map(|d| d.as_secs())
            .map_err(|err| ApiErr::field("every", format!("every: {err}")))?,
    };
    let nodes = match req.nodes.as_deref().map(str::trim) {
        None | Some("all") => NodeSelector::All,
        Some("primary") => NodeSelector::Primary,
        Some("replicas") => NodeSelector::Replicas,
        Some(list) => NodeSelector::Nodes(
            nines_model::input::node_list(
                "nodes",
                &list.split(',').map(str::trim).collect::<Vec<_>>(),
            )?
            .into_iter()
            .map(|e| e.to_string())
            .collect(),
        ),
    };
    let rule = UserRule {
        name: req.name,
        sql: req.sql,
        direction: if req.below {
            Direction::Below
        } else {
            Direction::Above
        },
        warning: req.warning,
        critical: req.critical,
        message: req.message,
        every_seconds: every,
        nodes,
    };
    rule.validate()?;
    st.store.add_user_rule(&c.name, &rule).await?;
    Ok((StatusCode::CREATED, Json(rule)))
}

/// Removes a user rule, its results and its alarm.
#[utoipa::path(delete, path = "/api/v1/clusters/{name}/advisor-rules/{rule}", tag = "advisors",
    params(("name" = String, Path), ("rule" = String, Path)),
    responses((status = 200, body = UserRule), (status = 404, body = nines_model::api::ApiError)))]
pub async fn delete_user_rule(
    State(st): State<AppState>,
    Path((name, rule)): Path<(String, String)>,
) -> Result<Json<UserRule>, ApiErr> {
    let c = cluster(&st, &name).await?;
    let found = st
        .store
        .user_rules(Some(&c.name))
        .await?
        .into_iter()
        .map(|(_, r)| r)
        .find(|r| r.name == rule)
        .ok_or_else(|| ApiErr::not_found(format!("advisor rule `{rule}` of `{}`", c.name)))?;
    st.store.delete_user_rule(&c.name, &found.name).await?;
    st.store.drop_rule_results(&c.name, &found.id()).await?;
    st.advisors
        .resync(&c.name)
        .await
        .map_err(|e| ApiErr::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(found))
}
