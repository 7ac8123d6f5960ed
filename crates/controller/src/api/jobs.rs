//! Job routes: list, show, logs, cancel.

use axum::Json;
use axum::extract::{Path, Query, State};
use nines_model::api::{JobLogLine, JobView};
use nines_model::job::JobState;
use nines_store::{JobFilter, JobRecord};
use serde::Deserialize;
use utoipa::IntoParams;

use super::AppState;
use super::error::ApiErr;

pub fn job_view(j: JobRecord) -> JobView {
    JobView {
        id: j.id,
        kind: j.kind,
        cluster: j.cluster_name,
        state: j.state,
        requested_by: j.requested_by,
        phase: j.progress.phase,
        percent: j.progress.percent,
        error: j.error,
        failure: j.failure,
        retryable: j.failure.map(|f| f.retryable()),
        created_at: j.created_at,
        started_at: j.started_at,
        finished_at: j.finished_at,
        spec: serde_json::to_value(&j.spec).unwrap_or_default(),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct JobQuery {
    pub cluster: Option<String>,
    /// queued, running, succeeded, failed or cancelled.
    pub state: Option<String>,
    /// At most this many, newest first (default 100).
    pub limit: Option<i64>,
}

/// Jobs, newest first.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs", params(JobQuery),
    responses((status = 200, body = Vec<JobView>), (status = 400, body = nines_model::api::ApiError)))]
pub async fn list_jobs(
    State(st): State<AppState>,
    Query(q): Query<JobQuery>,
) -> Result<Json<Vec<JobView>>, ApiErr> {
    let state = q
        .state
        .as_deref()
        .map(|s| s.parse::<JobState>().map_err(|e| ApiErr::field("state", e)))
        .transpose()?;
    let jobs = st
        .store
        .list_jobs(&JobFilter {
            cluster: q.cluster,
            state,
            limit: Some(q.limit.unwrap_or(100).clamp(1, 10_000)),
        })
        .await?;
    Ok(Json(jobs.into_iter().map(job_view).collect()))
}

async fn load(st: &AppState, id: i64) -> Result<JobRecord, ApiErr> {
    st.store
        .get_job(id)
        .await?
        .ok_or_else(|| ApiErr::not_found(format!("job {id}")))
}

/// One job.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs",
    params(("id" = i64, Path, description = "job id")),
    responses((status = 200, body = JobView), (status = 404, body = nines_model::api::ApiError)))]
pub async fn show_job(
    State(st): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<JobView>, ApiErr> {
    Ok(Json(job_view(load(&st, id).await?)))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct LogQuery {
    /// Only lines after this sequence number (for following a running job).
    pub after: Option<i64>,
}

/// A job's log lines, in order.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/logs", tag = "jobs",
    params(("id" = i64, Path, description = "job id"), LogQuery),
    responses((status = 200, body = Vec<JobLogLine>), (status = 404, body = nines_model::api::ApiError)))]
pub async fn job_logs(
    State(st): State<AppState>,
    Path(id): Path<i64>,
    Query(q): Query<LogQuery>,
) -> Result<Json<Vec<JobLogLine>>, ApiErr> {
    load(&st, id).await?;
    let lines = st.store.job_logs(id, q.after.unwrap_or(0)).await?;
    Ok(Json(
        lines
            .into_iter()
            .map(|l| JobLogLine {
                seq: l.seq,
                at: l.at,
                level: l.level,
                message: l.message,
            })
            .collect(),
    ))
}

/// Cancels a job: a queued one at once, a running one at its next step.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/cancel", tag = "jobs",
    params(("id" = i64, Path, description = "job id")),
    responses((status = 200, body = JobView), (status = 404, body = nines_model::api::ApiError)))]
pub async fn cancel_job(
    State(st): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<JobView>, ApiErr> {
    load(&st, id).await?;
    st.jobs.cancel(id).await?;
    Ok(Json(job_view(load(&st, id).await?)))
}
