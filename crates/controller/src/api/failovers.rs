//! The failover history of a cluster: the failovers and switchovers the store recorded,
//! and their acknowledgement. An unacknowledged automatic failover blocks further
//! automatic failovers of its cluster for the block window (`nines_model::ha`), so
//! operators list them and acknowledge them here.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, Query, State};
use chrono::{DateTime, TimeDelta, Utc};
use nines_model::api::{FailoverView, FailoversAcknowledged, parse_duration};
use nines_model::event::EventKind;
use nines_store::FailoverRecord;
use serde::Deserialize;
use utoipa::IntoParams;

use super::AppState;
use super::auth::Caller;
use super::deploy::cluster;
use super::error::ApiErr;

/// How far back the history goes when the request does not say.
const DEFAULT_SINCE: &str = "30d";

/// The API's view of a stored failover record.
fn view(f: &FailoverRecord) -> FailoverView {
    FailoverView {
        at: f.at,
        kind: f.kind,
        automatic: f.automatic,
        old_primary: f.old_primary.to_string(),
        new_primary: f.new_primary.to_string(),
        promoted_at: f.promoted_at.clone(),
        job_id: f.job_id,
        acknowledged: f.acknowledged,
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct FailoverQuery {
    /// How far back, e.g. `24h`, `7d` (default `30d`).
    pub since: Option<String>,
}

/// The start of the history asked for: `since` before `now`; a span reaching before the
/// Unix epoch means everything.
fn start(since: Option<&str>, now: DateTime<Utc>) -> Result<DateTime<Utc>, ApiErr> {
    let text = since.unwrap_or(DEFAULT_SINCE);
    let span = parse_duration(text).map_err(|e| ApiErr::field("since", format!("since: {e}")))?;
    Ok(TimeDelta::from_std(span)
        .ok()
        .and_then(|d| now.checked_sub_signed(d))
        .filter(|t| *t > DateTime::UNIX_EPOCH)
        .unwrap_or(DateTime::UNIX_EPOCH))
}

/// Lists the failovers and switchovers of a cluster, newest first.
#[utoipa::path(get, path = "/api/v1/clusters/{name}/failovers", tag = "clusters",
    params(("name" = String, Path), FailoverQuery),
    responses((status = 200, body = Vec<FailoverView>), (status = 400, body = nines_model::api::ApiError),
              (status = 404, body = nines_model::api::ApiError)))]
pub async fn list_failovers(
    State(st): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<FailoverQuery>,
) -> Result<Json<Vec<FailoverView>>, ApiErr> {
    let c = cluster(&st, &name).await?;
    let since = start(q.since.as_deref(), Utc::now())?;
    let mut records = st.store.failovers(c.id, since).await?;
    records.sort_by(|a, b| b.at.cmp(&a.at).then(b.id.cmp(&a.id)));
    Ok(Json(records.iter().map(view).collect()))
}

/// Acknowledges every unacknowledged failover and switchover of a cluster, which lifts the
/// block an automatic failover puts on the next one (recorded as an event with who).
#[utoipa::path(post, path = "/api/v1/clusters/{name}/failovers/acknowledge", tag = "clusters",
    params(("name" = String, Path)),
    responses((status = 200, body = FailoversAcknowledged), (status = 404, body = nines_model::api::ApiError)))]
pub async fn acknowledge_failovers(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<FailoversAcknowledged>, ApiErr> {
    let c = cluster(&st, &name).await?;
    let n = st.store.acknowledge_failovers(c.id).await?;
    let msg = format!(
        "acknowledged {n} failover(s) of cluster `{name}` by {}",
        caller.0
    );
    st.store
        .add_event(&name, None, EventKind::FailoverAcknowledged, &msg)
        .await?;
    Ok(Json(FailoversAcknowledged { acknowledged: n }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_defaults_to_thirty_days_and_names_itself_when_wrong() {
        let now = Utc::now();
        assert_eq!(start(None, now).unwrap(), now - TimeDelta::days(30));
        assert_eq!(start(Some("7d"), now).unwrap(), now - TimeDelta::days(7));
        let e = start(Some("soon"), now).unwrap_err();
        assert_eq!(e.body.field.as_deref(), Some("since"));
        assert!(e.body.error.contains("since"), "{}", e.body.error);
        assert!(start(Some("0s"), now).is_err());
        // Further back than anything: everything.
        assert_eq!(
            start(Some("100000000000d"), now).unwrap(),
            DateTime::UNIX_EPOCH
        );
    }
}
