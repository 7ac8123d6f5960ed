//! The pages: the frame (header, navigation, who is signed in) and the overview of every
//! cluster. Styles and script are nines's own (`nines.css`, `nines.js`), served from the
//! binary.

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{Html, IntoResponse};
use maud::{DOCTYPE, Markup, html};
use nines_model::ClusterState;
use serde::Deserialize;

use super::WebUser;
use crate::api::AppState;

const CSS: &str = include_str!("nines.css");
const JS: &str = include_str!("nines.js");

pub async fn css() -> impl IntoResponse {
    ([(CONTENT_TYPE, "text/css; charset=utf-8")], CSS)
}

pub async fn js() -> impl IntoResponse {
    ([(CONTENT_TYPE, "text/javascript; charset=utf-8")], JS)
}

/// The frame around every page.
pub fn frame(title: &str, user: &WebUser, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · nines" }
                link rel="stylesheet" href="/ui/nines.css";
                script src="/ui/nines.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/" { "nines" }
                    nav {
                        a href="/" { "Clusters" }
                        a href="/alarms" { "Alarms" }
                        a href="/audit" { "Audit" }
                        a href="/users" { "Users" }
                    }
                    div.who {
                        span { (user.name) " (" (user.role.as_str()) ")" }
                        form method="post" action="/logout" {
                            input type="hidden" name="csrf_token" value=(user.csrf);
                            button.link type="submit" { "Sign out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// A moment, written in UTC by the server; the page's script shows it in the browser's
/// time zone (or UTC, as the reader chooses), the UTC time staying in its title.
pub fn when(t: chrono::DateTime<chrono::Utc>) -> Markup {
    html! { time datetime=(t.to_rfc3339()) title=(t.format("%Y-%m-%d %H:%M:%S UTC")) { (t.format("%Y-%m-%d %H:%M:%S UTC")) } }
}

/// [`when`], or `-` for never.
pub fn when_opt(t: Option<chrono::DateTime<chrono::Utc>>) -> Markup {
    match t {
        Some(t) => when(t),
        None => html! { "-" },
    }
}

/// The state as a word, a shape and a colour (never colour alone).
pub fn state_badge(state: ClusterState) -> Markup {
    let (shape, class) = match state {
        ClusterState::Healthy => ("●", "ok"),
        ClusterState::Degraded => ("▲", "warn"),
        ClusterState::Failed => ("✖", "bad"),
    };
    html! { span class={"state " (class)} { span aria-hidden="true" { (shape) } " " (state.as_str()) } }
}

#[derive(Deserialize, Default)]
pub struct OverviewQuery {
    /// Only clusters whose name contains this.
    q: Option<String>,
    /// Only clusters in this state.
    state: Option<String>,
    /// Only clusters of this type.
    kind: Option<String>,
    /// Only clusters with active alarms.
    alarmed: Option<String>,
}

/// One row of the overview.
struct Row {
    name: String,
    kind: String,
    state: ClusterState,
    reason: String,
    nodes: usize,
    online: usize,
    alarms: usize,
    critical: usize,
    last_backup: Option<chrono::DateTime<chrono::Utc>>,
    lbs: usize,
}

/// Every cluster at a glance: state, type, nodes, active alarms, last backup, load
/// balancers; filtered by name and state.
pub async fn overview(
    State(st): State<AppState>,
    Extension(user): Extension<WebUser>,
    Query(q): Query<OverviewQuery>,
) -> Html<String> {
    let records = st.store.list_clusters().await.unwrap_or_default();
    let nodes = st.store.list_nodes(None).await.unwrap_or_default();
    let alarms = st.alarms.active();
    let last_backups: std::collections::HashMap<String, chrono::DateTime<chrono::Utc>> =
        nines_store::BackupStore::last_backups(st.store.as_ref())
            .await
            .unwrap_or_default()
            .into_iter()
            .collect();
    let lbs = nines_store::BalancerStore::lbs(st.store.as_ref(), None)
        .await
        .unwrap_or_default();
    let mut rows: Vec<Row> = records
        .iter()
        .map(|c| {
            let s = crate::api::cluster_summary(
                c,
                nodes.iter().filter(|n| n.cluster_id == c.id).count(),
                st.monitor.cluster(&c.name).as_deref(),
            );
            let mine: Vec<_> = alarms.iter().filter(|a| a.key.cluster == c.name).collect();
            Row {
                name: c.name.clone(),
                kind: c.cluster_type.as_str().to_string(),
                state: s.state,
                reason: s.state_reason,
                nodes: s.nodes,
                online: s.nodes_online,
                alarms: mine.len(),
                critical: mine
                    .iter()
                    .filter(|a| a.severity == nines_model::alarm::Severity::Critical)
                    .count(),
                last_backup: last_backups.get(&c.name).copied(),
                lbs: lbs.iter().filter(|l| l.cluster == c.name).count(),
            }
        })
        .collect();
    let counts = (
        rows.len(),
        rows.iter()
            .filter(|r| r.state == ClusterState::Healthy)
            .count(),
        rows.iter()
            .filter(|r| r.state == ClusterState::Degraded)
            .count(),
        rows.iter()
            .filter(|r| r.state == ClusterState::Failed)
            .count(),
    );
    let needle = q.q.as_deref().map(str::to_lowercase).unwrap_or_default();
    rows.retain(|r| {
        r.name.to_lowercase().contains(&needle)
            && q.state
                .as_deref()
                .is_none_or(|s| s.is_empty() || r.state.as_str() == s)
            && q.kind
                .as_deref()
                .is_none_or(|k| k.is_empty() || r.kind == k)
            && (q.alarmed.is_none() || r.alarms > 0)
    });
    // The worst first, then by name.
    rows.sort_by(|a, b| {
        let rank = |s: ClusterState| match s {
            ClusterState::Failed => 0,
            ClusterState::Degraded => 1,
            ClusterState::Healthy => 2,
        };
        rank(a.state)
            .cmp(&rank(b.state))
            .then_with(|| a.name.cmp(&b.name))
    });
    let body = html! {
        h1 { "Clusters" }
        @if nines_model::auth::allowed(user.role, nines_model::auth::Access::Change) {
            p { a href="/clusters/new" { "Add a cluster (deploy or import)" } }
        }
        p.summary {
            (counts.0) " clusters: "
            (state_badge(ClusterState::Healthy)) " " (counts.1) ", "
            (state_badge(ClusterState::Degraded)) " " (counts.2) ", "
            (state_badge(ClusterState::Failed)) " " (counts.3)
            " · " span #updated.muted { "as of " (when(chrono::Utc::now())) }
        }
        form.filters method="get" action="/" role="search" {
            label { "Name " input type="search" name="q" value=[q.q.as_deref()] placeholder="filter" data-filter="clusters"; }
            label { "State "
                select name="state" {
                    option value="" { "any" }
                    @for s in ["healthy", "degraded", "failed"] {
                        option value=(s) selected[q.state.as_deref() == Some(s)] { (s) }
                    }
                }
            }
            label { "Type "
                select name="kind" {
                    option value="" { "any" }
                    @for k in ["replication", "galera", "standalone"] {
                        option value=(k) selected[q.kind.as_deref() == Some(k)] { (k) }
                    }
                }
            }
            label { input type="checkbox" name="alarmed" value="1" checked[q.alarmed.is_some()]; " with active alarms" }
            button type="submit" { "Filter" }
        }
        table #clusters.list {
            thead { tr {
                th { "Cluster" } th { "State" } th { "Type" } th { "Nodes online" }
                th { "Active alarms" } th { "Last backup" } th { "Load balancers" }
            } }
            tbody {
                @for r in &rows {
                    tr data-name=(r.name) {
                        td { a href={"/clusters/" (r.name)} { (r.name) } }
                        td title=(r.reason) data-cluster-state=(r.name) { (state_badge(r.state)) }
                        td { (r.kind) }
                        td { (r.online) " / " (r.nodes) }
                        td {
                            @if r.alarms == 0 { "none" }
                            @else { (r.alarms) @if r.critical > 0 { " (" (r.critical) " critical)" } }
                        }
                        td {
                            @match r.last_backup {
                                Some(t) => (when(t)),
                                None => "never",
                            }
                        }
                        td { (r.lbs) }
                    }
                }
                @if rows.is_empty() {
                    tr { td colspan="7" { "No cluster matches." } }
                }
            }
        }
    };
    Html(frame("Clusters", &user, body).into_string())
}
