//! Live updates by server-sent events: the state of every cluster and node every two
//! seconds (the overview and cluster pages update their badges in place), and a job's
//! new log lines and progress as they come (the job page). Each stream sends a
//! keep-alive comment and `X-Accel-Buffering: no` so proxies do not hold it back.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::HeaderValue;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use futures::Stream;
use maud::html;
use serde_json::json;

use super::WebUser;
use super::pages::frame;
use crate::api::AppState;

fn unbuffered(mut r: Response) -> Response {
    r.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    r
}

/// The states of every cluster and node, as JSON.
async fn states(st: &AppState) -> serde_json::Value {
    let records = st.store.list_clusters().await.unwrap_or_default();
    let nodes = st.store.list_nodes(None).await.unwrap_or_default();
    let mut clusters = Vec::new();
    let mut node_states = Vec::new();
    for c in &records {
        let obs = st.monitor.cluster(&c.name);
        let s = crate::api::cluster_summary(
            c,
            nodes.iter().filter(|n| n.cluster_id == c.id).count(),
            obs.as_deref(),
        );
        clusters.push(json!({"name": c.name, "state": s.state.as_str(), "online": s.nodes_online, "nodes": s.nodes}));
        if let Some(o) = obs {
            for n in &o.nodes {
                node_states.push(json!({
                    "address": n.endpoint.to_string(),
                    "state": n.state.map(|s| s.as_str()).unwrap_or("unknown"),
                    "role": crate::api::clusters::shown_role(c.primary.as_ref(), &n.endpoint, n.role).as_str(),
                }));
            }
        }
    }
    json!({"clusters": clusters, "nodes": node_states, "at": chrono::Utc::now()})
}

/// What changed from `before` to `now` (both as [`states`] makes them): the clusters and
/// nodes whose entry differs or is new, and the time. With no `before`, all of `now`.
pub fn states_changed(
    before: Option<&serde_json::Value>,
    now: &serde_json::Value,
) -> serde_json::Value {
    let Some(before) = before else {
        return now.clone();
    };
    // Entries are matched by their key (a cluster's name, a node's address): one map per
    // list, not a scan of the old list for every entry.
    let changed = |list: &str, key: &str| -> Vec<serde_json::Value> {
        let old: std::collections::HashMap<&str, &serde_json::Value> = before[list]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| Some((i[key].as_str()?, i)))
                    .collect()
            })
            .unwrap_or_default();
        now[list]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter(|i| {
                        i[key]
                            .as_str()
                            .and_then(|k| old.get(k))
                            .is_none_or(|was| *was != *i)
                    })
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    };
    json!({"clusters": changed("clusters", "name"), "nodes": changed("nodes", "address"), "at": now["at"]})
}

/// The one producer of the states every open page listens to: started by the first page
/// that asks, it reads the store and the monitor every two seconds whatever the number
/// of pages (a page polling on its own would multiply that by the tabs and wall screens
/// left open).
pub struct StatesFeed {
    tx: tokio::sync::watch::Sender<Option<Arc<serde_json::Value>>>,
    started: AtomicBool,
}

impl Default for StatesFeed {
    fn default() -> Self {
        Self {
            tx: tokio::sync::watch::channel(None).0,
            started: AtomicBool::new(false),
        }
    }
}

impl StatesFeed {
    /// A receiver of the latest states, starting the producer the first time.
    fn subscribe(
        &self,
        st: &AppState,
    ) -> tokio::sync::watch::Receiver<Option<Arc<serde_json::Value>>> {
        if !self.started.swap(true, Ordering::SeqCst) {
            let (st, tx) = (st.clone(), self.tx.clone());
            tokio::spawn(async move {
                loop {
                    tx.send_replace(Some(Arc::new(states(&st).await)));
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            });
        }
        self.tx.subscribe()
    }
}

/// Every cluster's and node's state (event `states`): all of them first, then, as the
/// feed moves every two seconds, the ones that changed (an idle fleet of hundreds of
/// clusters costs a page a few bytes, not its whole list, every two seconds).
pub async fn stream(State(st): State<AppState>, Extension(_user): Extension<WebUser>) -> Response {
    let rx = st.web.states.subscribe(&st);
    let s = futures::stream::unfold((rx, None), |(mut rx, last)| async move {
        loop {
            let now: Option<Arc<serde_json::Value>> = rx.borrow_and_update().clone();
            if let Some(now) = now
                && last.as_ref().is_none_or(|l| !Arc::ptr_eq(l, &now))
            {
                let data = states_changed(last.as_deref(), &now).to_string();
                return Some((
                    Ok::<Event, Infallible>(Event::default().event("states").data(data)),
                    (rx, Some(now)),
                ));
            }
            rx.changed().await.ok()?;
        }
    });
    unbuffered(
        Sse::new(s)
            .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
            .into_response(),
    )
}

/// A job's new log lines (event `line`) and its state (event `job`), until it ends.
pub fn job_stream(
    st: AppState,
    id: i64,
    after: i64,
) -> impl Stream<Item = Result<Event, Infallible>> {
    futures::stream::unfold((st, after, false), move |(st, after, ended)| async move {
        if ended {
            return None;
        }
        loop {
            let lines = st.store.job_logs(id, after).await.unwrap_or_default();
            let job = st.store.get_job(id).await.ok().flatten();
            let finished = job.as_ref().is_none_or(|j| j.finished_at.is_some());
            if !lines.is_empty() || finished {
                let last = lines.last().map_or(after, |l| l.seq);
                let mut data = json!({
                    "lines": lines.iter().map(|l| json!({
                        "seq": l.seq, "at": l.at, "level": format!("{:?}", l.level).to_lowercase(), "message": l.message,
                    })).collect::<Vec<_>>(),
                });
                if let Some(j) = job {
                    let v = crate::api::jobs::job_view(j);
                    data["job"] = json!({"state": v.state, "phase": v.phase, "percent": v.percent, "error": v.error});
                }
                let ev = Event::default()
                    .event("job")
                    .id(last.to_string())
                    .data(data.to_string());
                return Some((Ok(ev), (st, last, finished)));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
}

#[derive(serde::Deserialize)]
pub struct After {
    after: Option<i64>,
}

pub async fn job_events(
    State(st): State<AppState>,
    Extension(_user): Extension<WebUser>,
    Path(id): Path<i64>,
    axum::extract::Query(q): axum::extract::Query<After>,
) -> Response {
    unbuffered(
        Sse::new(job_stream(st, id, q.after.unwrap_or(0)))
            .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
            .into_response(),
    )
}

/// A job's page: what it is, its progress and its log, following it live.
pub async fn job_page(
    State(st): State<AppState>,
    Extension(user): Extension<WebUser>,
    Path(id): Path<i64>,
) -> Response {
    let job = match crate::api::jobs::show_job(State(st.clone()), Path(id)).await {
        Ok(axum::Json(j)) => j,
        Err(e) => {
            let body = html! { h1 { "Job " (id) } p.error { (e.body.error) } };
            return (e.status, Html(frame("Job", &user, body).into_string())).into_response();
        }
    };
    let lines = st.store.job_logs(id, 0).await.unwrap_or_default();
    let state = format!("{:?}", job.state).to_lowercase();
    let body = html! {
        h1 { "Job " (job.id) ": " (job.kind) }
        p.summary {
            "cluster " a href={"/clusters/" (job.cluster)} { (job.cluster) }
            " · asked by " (job.requested_by)
            " · " span #job-state { (state) }
            " · " span #job-phase { (job.phase) } " "
            progress #job-progress max="100" value=(job.percent) { (job.percent) "%" }
        }
        @if let Some(e) = &job.error { p.error #job-error { (e) } } @else { p.error #job-error hidden {} }
        @if job.finished_at.is_none() && nines_model::auth::allowed(user.role, nines_model::auth::Access::Change) {
            form.action #job-cancel method="post" action={"/jobs/" (job.id) "/cancel"} data-confirm="Cancel this job? It stops at its next safe point." {
                input type="hidden" name="csrf_token" value=(user.csrf);
                button type="submit" { "Cancel the job" }
            }
        }
        pre #job-log data-job=(job.id) data-after=(lines.last().map_or(0, |l| l.seq)) data-live=(job.finished_at.is_none()) {
            @for l in &lines {
                (l.at.format("%H:%M:%S")) " " (format!("{:?}", l.level).to_lowercase()) "  " (l.message) "\n"
            }
        }
    };
    Html(frame(&format!("Job {id}"), &user, body).into_string()).into_response()
}

#[derive(serde::Deserialize)]
pub struct CancelForm {
    csrf_token: String,
}

/// Cancels a job (as `nines job cancel`), back to its page.
pub async fn cancel_job(
    State(st): State<AppState>,
    Extension(user): Extension<WebUser>,
    Path(id): Path<i64>,
    axum::Form(f): axum::Form<CancelForm>,
) -> Response {
    if let Some(r) = super::may_change(&user, &f.csrf_token, |why| {
        (axum::http::StatusCode::FORBIDDEN, why.to_string()).into_response()
    }) {
        return r;
    }
    match crate::api::jobs::cancel_job(State(st), Path(id)).await {
        Ok(_) => super::redirect(&format!("/jobs/{id}")),
        Err(e) => (e.status, e.body.error).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_changed_is_sent_after_the_first_event() {
        let a = json!({"clusters": [{"name": "a", "state": "healthy"}, {"name": "b", "state": "healthy"}],
                       "nodes": [{"address": "x:1", "state": "online", "role": "primary"}], "at": 1});
        let b = json!({"clusters": [{"name": "a", "state": "healthy"}, {"name": "b", "state": "degraded"}, {"name": "c", "state": "healthy"}],
                       "nodes": [{"address": "x:1", "state": "online", "role": "replica"}], "at": 2});
        let cases = [
            (None, a.clone(), a.clone()),
            (
                Some(a.clone()),
                a.clone(),
                json!({"clusters": [], "nodes": [], "at": 1}),
            ),
            (
                Some(a.clone()),
                b.clone(),
                json!({"clusters": [{"name": "b", "state": "degraded"}, {"name": "c", "state": "healthy"}],
                       "nodes": [{"address": "x:1", "state": "online", "role": "replica"}], "at": 2}),
            ),
        ];
        for (before, now, want) in cases {
            assert_eq!(
                states_changed(before.as_ref(), &now),
                want,
                "{before:?} → {now}"
            );
        }
    }
}
