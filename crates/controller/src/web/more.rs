//! The cluster's other pages — charts, backups, advisors, top queries, failover history —
//! and the pages across clusters: alarms, the audit log, users and tokens. Each reads
//! through the API's own handlers; forms post to the cluster's actions or to the user
//! forms here, with the session's CSRF token.

use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::{Extension, Form, Json};
use maud::{Markup, PreEscaped, html};
use nines_model::auth::{Access, UserRole, allowed};
use serde::Deserialize;

use super::pages::{frame, when, when_opt};
use super::{WebUser, redirect};
use crate::api::AppState;

/// The links between a cluster's pages.
pub fn tabs(cluster: &str, here: &str) -> Markup {
    let links = [
        ("", "Overview"),
        ("/charts", "Charts"),
        ("/backups", "Backups"),
        ("/advisors", "Advisors"),
        ("/queries", "Top queries"),
        ("/failovers", "Failovers"),
        ("/settings", "Settings"),
    ];
    html! {
        nav.tabs aria-label="cluster pages" {
            @for (path, label) in links {
                @if path == here { strong aria-current="page" { (label) } }
                @else { a href={"/clusters/" (cluster) (path)} { (label) } }
            }
        }
    }
}

fn failed(user: &WebUser, title: &str, e: crate::api::ApiErr) -> Response {
    failed_in(user, None, title, e)
}

/// An API refusal shown as the page (with the cluster's links when there is one).
fn failed_in(
    user: &WebUser,
    cluster: Option<(&str, &str)>,
    title: &str,
    e: crate::api::ApiErr,
) -> Response {
    let body = html! {
        h1 { (title) }
        @if let Some((c, here)) = cluster { (tabs(c, here)) }
        p.error role="alert" { (e.body.error) }
        p { a href="/" { "All clusters" } }
    };
    (e.status, Html(frame(title, user, body).into_string())).into_response()
}

#[derive(Deserialize, Default)]
pub struct ChartQuery {
    since: Option<String>,
}

const CHARTS: [&str; 8] = [
    "queries_per_second",
    "threads_connected",
    "threads_running",
    "replication_lag_seconds",
    "wsrep_flow_control_paused",
    "cpu_busy",
    "innodb_buffer_pool_disk_reads_per_second",
    "disk_free_bytes",
];

/// Charts of the key metrics over a window (15m, 1h, 6h, 24h, 7d), drawn by the server.
pub async fn charts(
    State(st): State<AppState>,
    Extension(user): Extension<WebUser>,
    Path(name): Path<String>,
    Query(q): Query<ChartQuery>,
) -> Response {
    let since = match q.since.as_deref() {
        Some(s @ ("15m" | "1h" | "6h" | "24h" | "7d")) => s.to_string(),
        _ => "1h".to_string(),
    };
    let m = crate::api::queries::cluster_metrics(
        State(st.clone()),
        Path(name.clone()),
        Query(crate::api::queries::MetricsParams {
            series: CHARTS.join(","),
            since: Some(since.clone()),
            step: None,
        }),
    )
    .await;
    let m = match m {
        Ok(Json(m)) => m,
        Err(e) => return failed(&user, "Charts", e),
    };
    let body = html! {
        h1 { (name) ": charts" }
        (tabs(&name, "/charts"))
        form.filters method="get" {
            label { "Window "
                select name="since" {
                    @for w in ["15m", "1h", "6h", "24h", "7d"] { option value=(w) selected[w == since] { (w) } }
                }
            }
            button type="submit" { "Show" }
            span.muted { "one point every " (format!("{:.0}", m.step_seconds)) " s; per node" }
        }
        div.charts {
            @for metric in CHARTS {
                @let series: Vec<_> = m.series.iter().filter(|s| s.name == metric && s.node.is_some()).cloned().collect();
                @let unit = series.first().map(|s| s.unit.clone()).unwrap_or_default();
                figure { (PreEscaped(super::charts::svg(metric, &unit, &series, 560, 200))) }
            }
        }
    };
    Html(frame(&format!("{name}: charts"), &user, body).into_string()).into_response()
}

/// Backups, schedules and the restorable window; back up now, verify, restore.
/// A backups page form's refusal or outcome, shown on top.
#[derive(Deserialize, Default)]
pub struct BackupsQuery {
    error: Option<String>,
    done: Option<String>,
}

/// A cluster's backups, schedules and restorable window, and the repositories backups go
/// to (shared by every cluster).
pub async fn backups(
    State(st): State<AppState>,
    Extension(user): Extension<WebUser>,
    Path(name): Path<String>,
    Query(q): Query<BackupsQuery>,
) -> Response {
    let list = match crate::api::backups::list_backups(State(st.clone()), Path(name.clone())).await
    {
        Ok(Json(b)) => b,
        Err(e) => return failed(&user, "Backups", e),
    };
    let window = crate::api::backups::backup_window(State(st.clone()), Path(name.clone()))
        .await
        .ok()
        .map(|Json(w)| w);
    let schedules: Vec<_> = crate::api::backups::list_schedules(State(st.clone()))
        .await
        .map(|Json(s)| s)
        .unwrap_or_default()
        .into_iter()
        .filter(|s| s.cluster == name)
        .collect();
    let repos = crate::api::backups::list_repos(State(st.clone()))
        .await
        .map(|Json(r)| r)
        .unwrap_or_default();
    let may = allowed(user.role, Access::Change);
    // The repository a backup or schedule goes to; `local` (made on first use) by default.
    let repo_select = html! {
        label { "Repository "
            select name="repo" {
                option value="" { "local (the default)" }
                @for r in repos.iter().filter(|r| r.name != crate::jobs::backup::DEFAULT_REPO) {
                    option value=(r.name) { (r.name) }
                }
            }
        }
    };
    let body = html! {
        h1 { (name) ": backups" }
        (tabs(&name, "/backups"))
        @if let Some(e) = &q.error { p.error role="alert" { (e) } }
        @if let Some(d) = &q.done { p.notice { (d) } }
        p.summary {
            "Restorable window: "
            @match &window {
                Some(w) => { (when(w.earliest)) " to " (when(w.latest)) },
                None => "none yet (no completed backup)",
            }
        }
        @if may {
            form.filters #backup-now method="post" action={"/clusters/" (name) "/actions"} {
                input type="hidden" name="csrf_token" value=(user.csrf);
                input type="hidden" name="action" value="backup";
                label { "Method "
                    select name="method" {
                        option value="full" { "full" }
                        option value="incremental" { "incremental" }
                        option value="logical" { "logical dump" }
                    }
                }
                (repo_select)
                button type="submit" { "Back up now" }
            }
        }
        h2 { "Schedules" }
        @if schedules.is_empty() { p { "None yet." } }
        @else {
            table.list { thead { tr { th { "Cron" } th { "Zone" } th { "Method" } th { "Next run" } th { "Last run" } th { "" } } } tbody {
                @for s in &schedules { tr {
                    td { code { (s.cron) } } td { (s.tz) } td { (s.method.as_str()) }
                    td { (when(s.next_run_at)) }
                    td { (when_opt(s.last_run_at)) }
                    td { @if may {
                        form.action method="post" action={"/clusters/" (name) "/actions"} data-confirm="Delete this schedule? Its backups stay." {
                            input type="hidden" name="csrf_token" value=(user.csrf);
                            input type="hidden" name="action" value="schedule_delete";
                            input type="hidden" name="schedule" value=(s.id);
                            button type="submit" { "Delete" }
                        }
                    } }
                } }
            } }
        }
        @if may {
            form.filters method="post" action={"/clusters/" (name) "/actions"} {
                input type="hidden" name="csrf_token" value=(user.csrf);
                input type="hidden" name="action" value="schedule_create";
                label { "Cron " input name="cron" required placeholder="0 3 * * *"; }
                label { "Zone " input name="tz" placeholder="UTC"; }
                label { "Method " select name="method" { option { "full" } option { "incremental" } option { "logical" } } }
                label { "Keep " input name="retention" placeholder="14d"; }
                (repo_select)
                button type="submit" { "Add schedule" }
            }
        }
        h2 { "Backups" }
        table.list { thead { tr { th { "Id" } th { "Method" } th { "State" } th { "Node" } th { "Taken" } th { "Size / stored" } th { "Verified" } th { "" } } } tbody {
            @for b in &list { tr {
                td { (b.id) } td { (b.method.as_str()) }
                td { (b.state.as_str()) @if let Some(e) = &b.error { br; span.error { (e) } } }
                td { (b.node) }
                td { (when(b.started_at)) }
                td { (super::charts::short(b.size_bytes as f64)) "B / " (super::charts::short(b.stored_bytes as f64)) "B" }
                td { (match b.verified { Some(true) => "yes", Some(false) => "FAILED", None => "not yet" }) }
                td { @if may && b.state == nines_model::backup::BackupState::Completed {
                    form.action method="post" action={"/clusters/" (name) "/actions"} {
                        input type="hidden" name="csrf_token" value=(user.csrf);
                        input type="hidden" name="action" value="verify";
                        input type="hidden" name="backup" value=(b.id);
                        button type="submit" { "Verify" }
                    }
                    form.action method="post" action={"/clusters/" (name) "/actions"} {
                        input type="hidden" name="csrf_token" value=(user.csrf);
                        input type="hidden" name="action" value="restore";
                        input type="hidden" name="backup" value=(b.id);
                        input name="until" placeholder="to a time (2026-11-30T10:00:00Z) or GTID, optional" aria-label="restore up to this time or GTID position (optional)";
                        input name="confirm" required placeholder={"type " (name) " to restore"} aria-label="type the cluster's name to confirm the restore";
                        button type="submit" { "Restore" }
                    }
                } }
            } }
            @if list.is_empty() { tr { td colspan="8" { "No backup yet." } } }
        } }
        h2 { "Repositories" }
        p.muted { "Shared by every cluster. Each is encrypted with its own key, which nines keeps; S3 keys are never shown again." }
        table.list { thead { tr { th { "Name" } th { "Kind" } th { "Where" } th { "Added" } } } tbody {
            @for r in &repos { tr {
                td { (r.name) } td { (r.kind) }
                td {
                    @if let Some(p) = &r.path { code { (p) } }
                    @if let (Some(e), Some(b)) = (&r.s3_endpoint, &r.s3_bucket) {
                        code { (e) "/" (b) } " (" (r.s3_region.as_deref().unwrap_or("")) ")"
                    }
                }
                td { (when(r.created_at)) }
            } }
            @if repos.is_empty() { tr { td colspan="4" { "Only " code { "local" } ", made under the controller's data directory on the first backup." } } }
        } }
        @if may {
            details.forms {
                summary { "Add a repository" }
                p.muted { "nines writes, reads back and deletes a probe object before it keeps the repository." }
                form.stack #add-repo method="post" action={"/clusters/" (name) "/actions"} {
                    input type="hidden" name="csrf_token" value=(user.csrf);
                    input type="hidden" name="action" value="repo_add";
                    label { "Name " input name="repo" required placeholder="offsite"; }
                    fieldset {
                        legend { "A directory on the controller" }
                        label { "Path " input name="path" placeholder="/srv/backups"; }
                    }
                    fieldset {
                        legend { "Or an S3-compatible bucket" }
                        label { "Endpoint " input name="s3_endpoint" placeholder="https://s3.example.net"; }
                        label { "Bucket " input name="s3_bucket"; }
                        label { "Region " input name="s3_region" placeholder="us-east-1"; }
                        label { "Access key " input name="s3_access_key" autocomplete="off"; }
                        label { "Secret key " input name="s3_secret_key" type="password" autocomplete="off"; }
                    }
                    button type="submit" { "Add the repository" }
                }
            }
        }
    };
    Html(frame(&format!("{name}: backups"), &user, body).into_string()).into_response()
}

/// Advisor results, worst first; run them now.
pub async fn advisors(
    State(st): State<AppState>,
    Extension(user): Extension<WebUser>,
    Path(name): Path<String>,
) -> Response {
    let mut list =
        match crate::api::advisors::list_advice(State(st.clone()), Path(name.clone())).await {
            Ok(Json(a)) => a,
            Err(e) => return failed(&user, "Advisors", e),
        };
    list.sort_by(|a, b| b.status.cmp(&a.status).then_with(|| a.rule.cmp(&b.rule)));
    let rules = crate::api::advisors::list_user_rules(State(st.clone()), Path(name.clone()))
        .await
        .map(|Json(r)| r)
        .unwrap_or_default();
    let may = allowed(user.role, Access::Change);
    let body = html! {
        h1 { (name) ": advisors" }
        (tabs(&name, "/advisors"))
        @if allowed(user.role, Access::Change) {
            form.action method="post" action={"/clusters/" (name) "/actions"} {
                input type="hidden" name="csrf_token" value=(user.csrf);
                input type="hidden" name="action" value="advisors_run";
                button type="submit" { "Check now" }
            }
        }
        table.list { thead { tr { th { "Result" } th { "Rule" } th { "Node" } th { "Found" } th { "Advice" } } } tbody {
            @for a in &list { tr {
                td { span class={"state " (match format!("{:?}", a.status).to_lowercase().as_str() { "critical" => "bad", "warning" => "warn", _ => "ok" })} { (format!("{:?}", a.status).to_lowercase()) } }
                td { strong { (a.title) } br; code { (a.rule) } }
                td { (a.node.as_deref().unwrap_or("-")) }
                td { (a.message) }
                td { (a.advice) }
            } }
            @if list.is_empty() { tr { td colspan="5" { "No results yet: the advisors run every 30 s." } } }
        } }
        h2 { "Your own rules" }
        p.muted { "A query returning one number, compared with thresholds on the chosen nodes; a failing result raises an alarm like any advisor." }
        table.list #user-rules { thead { tr { th { "Rule" } th { "Query" } th { "Warning / critical" } th { "Every" } th { "Nodes" } th { "" } } } tbody {
            @for r in &rules { tr {
                td { code { (r.name) } br; (r.message) }
                td { code { (r.sql) } }
                td {
                    (r.warning.map_or("-".to_string(), |w| w.to_string())) " / " (r.critical.map_or("-".to_string(), |c| c.to_string()))
                    (if r.direction == nines_model::advisor::user::Direction::Below { " (or below)" } else { " (or above)" })
                }
                td { (nines_model::ha::policy::human_millis(r.every_seconds as i64 * 1000)) }
                td { @match &r.nodes {
                    nines_model::advisor::user::NodeSelector::All => "all",
                    nines_model::advisor::user::NodeSelector::Primary => "primary",
                    nines_model::advisor::user::NodeSelector::Replicas => "replicas",
                    nines_model::advisor::user::NodeSelector::Nodes(n) => (n.join(", ")),
                } }
                td { @if may {
                    form.action method="post" action={"/clusters/" (name) "/actions"} data-confirm={"Delete the rule " (r.name) "?"} {
                        input type="hidden" name="csrf_token" value=(user.csrf);
                        input type="hidden" name="action" value="rule_delete";
                        input type="hidden" name="rule" value=(r.name);
                        button type="submit" { "Delete" }
                    }
                } }
            } }
            @if rules.is_empty() { tr { td colspan="6" { "None." } } }
        } }
        @if may {
            details.forms {
                summary { "Add a rule" }
                form.stack method="post" action={"/clusters/" (name) "/actions"} {
                    input type="hidden" name="csrf_token" value=(user.csrf);
                    input type="hidden" name="action" value="rule_add";
                    label { "Name " input name="rule" required placeholder="queue_length"; }
                    label { "Query (one number) " input name="sql" required placeholder="SELECT COUNT(*) FROM app.queue"; }
                    label { "Warning at " input name="warning" inputmode="decimal"; }
                    label { "Critical at " input name="critical" inputmode="decimal"; }
                    label { input type="checkbox" name="below"; " the value goes wrong downward" }
                    label { "Message ({value} is the number) " input name="message" required placeholder="{value} jobs waiting"; }
                    label { "Every " input name="every" value="60s"; }
                    label { "Nodes (all, primary, replicas or host:port,…) " input name="nodes" value="all"; }
                    button type="submit" { "Add the rule" }
                }
            }
        }
    };
    Html(frame(&format!("{name}: advisors"), &user, body).into_string()).into_response()
}

/// The statement digests that took the most time.
pub async fn queries(
    State(st): State<AppState>,
    Extension(user): Extension<WebUser>,
    Path(name): Path<String>,
    Query(q): Query<ChartQuery>,
) -> Response {
    let since = q.since.clone().unwrap_or_else(|| "1h".into());
    let list = match crate::api::queries::top_queries(
        State(st.clone()),
        Path(name.clone()),
        Query(crate::api::queries::TopQueryParams {
            node: None,
            since: Some(since.clone()),
            limit: Some(50),
        }),
    )
    .await
    {
        Ok(Json(l)) => l,
        Err(e) => {
            return failed_in(
                &user,
                Some((&name, "/queries")),
                &format!("{name}: top queries"),
                e,
            );
        }
    };
    let total: f64 = list.iter().map(|t| t.total_time_ms).sum();
    let body = html! {
        h1 { (name) ": top queries" }
        (tabs(&name, "/queries"))
        p.summary { "Since " (since) ", by total time, summed over the nodes." }
        table.list { thead { tr { th { "Statement" } th { "Schema" } th { "Calls" } th { "Total" } th { "Share" } th { "Avg" } th { "Max" } th { "Rows examined / sent" } } } tbody {
            @for t in &list { tr {
                td { code { (t.digest_text) } }
                td { (t.schema) }
                td { (t.count) }
                td { (format!("{:.1} ms", t.total_time_ms)) }
                td { (format!("{:.0}%", if total > 0.0 { t.total_time_ms / total * 100.0 } else { 0.0 })) }
                td { (format!("{:.2} ms", t.avg_time_ms)) }
                td { (format!("{:.2} ms", t.max_time_ms)) }
                td { (t.rows_examined) " / " (t.rows_sent) }
            } }
            @if list.is_empty() { tr { td colspan="8" { "No statements recorded in this window." } } }
        } }
    };
    Html(frame(&format!("{name}: top queries"), &user, body).into_string()).into_response()
}

/// Failovers and switchovers of a replication cluster, newest first.
pub async fn failovers(
    State(st): State<AppState>,
    Extension(user): Extension<WebUser>,
    Path(name): Path<String>,
) -> Response {
    let list = match crate::api::failovers::list_failovers(
        State(st.clone()),
        Path(name.clone()),
        Query(crate::api::failovers::FailoverQuery {
            since: Some("365d".into()),
        }),
    )
    .await
    {
        Ok(Json(l)) => l,
        Err(e) => return failed(&user, "Failovers", e),
    };
    let unacknowledged = list.iter().filter(|f| !f.acknowledged).count();
    let body = html! {
        h1 { (name) ": failovers" }
        (tabs(&name, "/failovers"))
        @if unacknowledged > 0 && allowed(user.role, Access::Change) {
            form.action method="post" action={"/clusters/" (name) "/actions"} {
                input type="hidden" name="csrf_token" value=(user.csrf);
                input type="hidden" name="action" value="failovers_ack";
                button type="submit" { "Acknowledge " (unacknowledged) " (nines may fail over automatically again)" }
            }
        }
        table.list { thead { tr { th { "When" } th { "Kind" } th { "From" } th { "To" } th { "Promoted at" } th { "Job" } th { "Acknowledged" } } } tbody {
            @for f in &list { tr {
                td { (when(f.at)) }
                td { (f.kind) (if f.automatic { " (automatic)" } else { "" }) }
                td { (f.old_primary) } td { (f.new_primary) } td { code { (f.promoted_at) } }
                td { @if let Some(j) = f.job_id { a href={"/jobs/" (j)} { (j) } } @else { "-" } }
                td { (if f.acknowledged { "yes" } else { "no" }) }
            } }
            @if list.is_empty() { tr { td colspan="7" { "None in the last year." } } }
        } }
    };
    Html(frame(&format!("{name}: failovers"), &user, body).into_string()).into_response()
}

#[derive(Deserialize, Default)]
pub struct AlarmsQuery {
    all: Option<bool>,
    error: Option<String>,
    /// A channel test's outcome.
    tested: Option<String>,
}

/// Alarms of every cluster: the active ones, or all with `?all=true`.
pub async fn alarms(
    State(st): State<AppState>,
    Extension(user): Extension<WebUser>,
    Query(q): Query<AlarmsQuery>,
) -> Response {
    let all = q.all.unwrap_or(false);
    let list = crate::api::alarms::list_alarms(
        State(st.clone()),
        Query(crate::api::alarms::AlarmQuery {
            cluster: None,
            all,
            limit: Some(500),
        }),
    )
    .await
    .map(|Json(a)| a)
    .unwrap_or_default();
    let silences = crate::api::alarms::list_silences(State(st.clone()))
        .await
        .map(|Json(s)| s)
        .unwrap_or_default();
    let channels = crate::api::alarms::list_channels(State(st.clone()))
        .await
        .map(|Json(c)| c)
        .unwrap_or_default();
    let may = allowed(user.role, Access::Change);
    let body = html! {
        h1 { "Alarms" }
        @if let Some(e) = &q.error { p.error role="alert" { (e) } }
        @if let Some(t) = &q.tested { p.notice { (t) } }
        p { @if all { a href="/alarms" { "Active only" } } @else { a href="/alarms?all=true" { "With cleared ones" } } }
        table.list { thead { tr { th { "Severity" } th { "Cluster" } th { "Alarm" } th { "Raised" } th { "Cleared" } th { "Acknowledged" } } } tbody {
            @for a in &list { tr {
                td { (a.severity.as_str()) @if a.silenced { " (silenced)" } }
                td { a href={"/clusters/" (a.cluster)} { (a.cluster) } }
                td { strong { (a.title) } br; (a.message) }
                td { (when(a.raised_at)) }
                td { (when_opt(a.cleared_at)) }
                td {
                    @if let Some(by) = &a.acknowledged_by { (by) }
                    @else if a.cleared_at.is_none() && allowed(user.role, Access::Change) {
                        (super::cluster::ack_button(&user, &a.cluster, a.id))
                    } @else { "-" }
                }
            } }
            @if list.is_empty() { tr { td colspan="6" { "No alarm." } } }
        } }
        h2 { "Silences" }
        p.muted { "A silenced kind is still raised and listed; no notification is sent for it." }
        table.list { thead { tr { th { "Kind" } th { "Cluster" } th { "Until" } th { "By" } th { "Note" } th { "" } } } tbody {
            @for x in &silences { tr {
                td { code { (x.kind) } } td { (x.cluster.as_deref().unwrap_or("all")) }
                td { (when(x.until)) } td { (x.created_by) } td { (x.note) }
                td { @if may {
                    form.action method="post" action="/alarms/silences" {
                        input type="hidden" name="csrf_token" value=(user.csrf);
                        input type="hidden" name="end" value=(x.id);
                        button type="submit" { "End" }
                    }
                } }
            } }
            @if silences.is_empty() { tr { td colspan="6" { "None." } } }
        } }
        @if may {
            form.filters method="post" action="/alarms/silences" {
                input type="hidden" name="csrf_token" value=(user.csrf);
                label { "Kind " input name="kind" required placeholder="node_down"; }
                label { "Cluster " input name="cluster" placeholder="(all)"; }
                label { "For " input name="duration" required value="2h"; }
                label { "Note " input name="note"; }
                button type="submit" { "Silence" }
            }
        }
        h2 { "Notification channels" }
        table.list { thead { tr { th { "Name" } th { "Kind" } th { "To" } th { "Minimum" } th { "Cluster" } th { "Last delivery" } th { "" } } } tbody {
            @for c in &channels { tr {
                td { (c.name) } td { (format!("{:?}", c.kind).to_lowercase()) } td { (c.target) }
                td { (c.min_severity.as_str()) } td { (c.cluster.as_deref().unwrap_or("all")) }
                td { (c.last_state.map_or("-", |s| s.as_str())) @if let Some(e) = &c.last_error { br; span.error { (e) } } }
                td { @if may {
                    form.action method="post" action="/alarms/channels" {
                        input type="hidden" name="csrf_token" value=(user.csrf);
                        input type="hidden" name="test" value=(c.name);
                        button type="submit" { "Send a test" }
                    }
                    form.action method="post" action="/alarms/channels" data-confirm={"Delete the channel " (c.name) "?"} {
                        input type="hidden" name="csrf_token" value=(user.csrf);
                        input type="hidden" name="delete" value=(c.name);
                        button type="submit" { "Delete" }
                    }
                } }
            } }
            @if channels.is_empty() { tr { td colspan="7" { "None yet." } } }
        } }
        @if may {
            details.forms {
                summary { "Add a channel" }
                form.stack #add-channel method="post" action="/alarms/channels" {
                    input type="hidden" name="csrf_token" value=(user.csrf);
                    label { "Name " input name="name" required placeholder="oncall"; }
                    label { "Kind "
                        select name="kind" {
                            option value="webhook" { "webhook (JSON POST)" }
                            option value="slack" { "Slack incoming webhook" }
                            option value="email" { "e-mail" }
                        }
                    }
                    label { "To (URL, or the e-mail address) " input name="target" required; }
                    label { "SMTP server host:port (e-mail) " input name="smtp" placeholder="127.0.0.1:25"; }
                    label { "From (e-mail) " input name="from" placeholder="nines@example.net"; }
                    label { "HMAC key (webhook; signs each body) " input name="hmac_key" type="password" autocomplete="off"; }
                    label { "Lowest severity "
                        select name="min_severity" { option { "warning" } option { "critical" } option { "info" } }
                    }
                    label { "Only cluster " input name="cluster" placeholder="(all)"; }
                    button type="submit" { "Add the channel" }
                }
            }
        }
    };
    Html(frame("Alarms", &user, body).into_string()).into_response()
}

#[derive(Deserialize)]
pub struct SilenceForm {
    csrf_token: String,
    end: Option<i64>,
    kind: Option<String>,
    cluster: Option<String>,
    duration: Option<String>,
    note: Option<String>,
    test: Option<String>,
    /// A channel to delete, or the fields of a new one.
    delete: Option<String>,
    name: Option<String>,
    target: Option<String>,
    smtp: Option<String>,
    from: Option<String>,
    hmac_key: Option<String>,
    min_severity: Option<String>,
}

fn alarms_back(key: &str, msg: &str) -> Response {
    super::back_to("/alarms", key, msg)
}

/// Silences a kind, ends a silence, or sends a channel a test notice.
pub async fn alarm_form(
    State(st): State<AppState>,
    Extension(user): Extension<WebUser>,
    Path(op): Path<String>,
    Form(f): Form<SilenceForm>,
) -> Response {
    if let Some(r) = super::may_change(&user, &f.csrf_token, |why| alarms_back("error", why)) {
        return r;
    }
    let caller = Extension(crate::api::auth::Caller(user.name.clone()));
    match (op.as_str(), f.end, f.test) {
        ("silences", Some(id), _) => {
            match crate::api::alarms::delete_silence(State(st), Path(id)).await {
                Ok(_) => redirect("/alarms"),
                Err(e) => alarms_back("error", &e.body.error),
            }
        }
        ("silences", None, _) => {
            let req = nines_model::api::SilenceRequest {
                kind: f.kind.unwrap_or_default(),
                cluster: f.cluster.filter(|c| !c.trim().is_empty()),
                duration: f.duration.unwrap_or_default(),
                note: f.note.filter(|n| !n.trim().is_empty()),
            };
            match crate::api::alarms::add_silence(State(st), caller, Json(req)).await {
                Ok(_) => redirect("/alarms"),
                Err(e) => alarms_back("error", &e.body.error),
            }
        }
        ("channels", _, Some(name)) => {
            match crate::api::alarms::test_channel(State(st), Path(name.clone())).await {
                Ok(Json(r)) if r.sent => {
                    alarms_back("tested", &format!("a test notice went to {name}"))
                }
                Ok(Json(r)) => alarms_back(
                    "error",
                    &format!(
                        "the test notice to {name} failed: {}",
                        r.error.unwrap_or_default()
                    ),
                ),
                Err(e) => alarms_back("error", &e.body.error),
            }
        }
        ("channels", _, None) if f.delete.is_some() => {
            let name = f.delete.unwrap_or_default();
            match crate::api::alarms::delete_channel(State(st), Path(name)).await {
                Ok(_) => redirect("/alarms"),
                Err(e) => alarms_back("error", &e.body.error),
            }
        }
        ("channels", _, None) => {
            let blank = |v: Option<String>| v.filter(|t| !t.trim().is_empty());
            let target = blank(f.target);
            let min_severity = match blank(f.min_severity) {
                None => None,
                Some(s) => match s.parse::<nines_model::alarm::Severity>() {
                    Ok(s) => Some(s),
                    Err(e) => return alarms_back("error", &format!("min severity: {e}")),
                },
            };
            let kind = f.kind.unwrap_or_default();
            let req = nines_model::api::ChannelAddRequest {
                name: f.name.unwrap_or_default(),
                webhook: target.clone().filter(|_| kind == "webhook"),
                slack: target.clone().filter(|_| kind == "slack"),
                email: target.filter(|_| kind == "email"),
                smtp: blank(f.smtp),
                from: blank(f.from),
                hmac_key: blank(f.hmac_key),
                min_severity,
                cluster: blank(f.cluster),
            };
            match crate::api::alarms::add_channel(State(st), Json(req)).await {
                Ok(_) => redirect("/alarms"),
                Err(e) => alarms_back("error", &e.body.error),
            }
        }
        _ => alarms_back("error", "no such form"),
    }
}

/// The audit log.
pub async fn audit(State(st): State<AppState>, Extension(user): Extension<WebUser>) -> Response {
    let lines = crate::api::users::list_audit(
        State(st.clone()),
        Query(nines_model::api::AuditQuery {
            since: Some("30d".into()),
            limit: Some(500),
        }),
    )
    .await
    .map(|Json(a)| a)
    .unwrap_or_default();
    let body = html! {
        h1 { "Audit log" }
        p.summary { "Every change through the API or these pages, and every sign-in, newest first (30 days, 500 lines; " code { "nines audit list" } " for more)." }
        table.list { thead { tr { th { "When" } th { "Who" } th { "Action" } th { "Target" } th { "From" } th { "Outcome" } th { "Via" } } } tbody {
            @for l in &lines { tr {
                td { (when(l.at)) } td { (l.who) } td { code { (l.action) } }
                td { (l.target) } td { (l.from) } td { (l.outcome) } td { (l.via) }
            } }
        } }
    };
    Html(frame("Audit log", &user, body).into_string()).into_response()
}

/// Users and their tokens (an admin adds, deletes, creates and revokes; others read).
pub async fn users(
    State(st): State<AppState>,
    Extension(user): Extension<WebUser>,
    Query(q): Query<UsersNote>,
) -> Response {
    users_page(&st, &user, q.error.as_deref(), q.note.as_deref(), None).await
}

/// The users page, with an error to show or a new token to show once (in the answer to
/// the form's POST, never in a URL: it would stay in the browser's history).
async fn users_page(
    st: &AppState,
    user: &WebUser,
    error: Option<&str>,
    note: Option<&str>,
    token: Option<&str>,
) -> Response {
    let list = crate::api::users::list_users(State(st.clone()))
        .await
        .map(|Json(u)| u)
        .unwrap_or_default();
    let tokens = crate::api::users::list_tokens(
        State(st.clone()),
        Query(nines_model::api::TokenQuery::default()),
    )
    .await
    .map(|Json(t)| t)
    .unwrap_or_default();
    let admin = user.role == UserRole::Admin;
    let body = html! {
        h1 { "Users" }
        @if let Some(e) = error { p.error role="alert" { (e) } }
        @if let Some(n) = note { p.notice role="status" { (n) } }
        @if let Some(t) = token { p.notice { "The new token, shown this once: " code #new-token { (t) } } }
        table.list { thead { tr { th { "Name" } th { "Role" } th { "Since" } th { "" } } } tbody {
            @for u in &list { tr {
                td { (u.name) } td { (u.role.as_str()) } td { (u.created_at.format("%Y-%m-%d")) }
                td { @if admin && u.name != user.name {
                    form.action method="post" action="/users/delete" data-confirm={"Delete " (u.name) " with their tokens?"} {
                        input type="hidden" name="csrf_token" value=(user.csrf);
                        input type="hidden" name="name" value=(u.name);
                        button type="submit" { "Delete" }
                    }
                } }
            } }
        } }
        h2 { "Change a password" }
        form.filters #set-password method="post" action="/users/password" {
            input type="hidden" name="csrf_token" value=(user.csrf);
            @if admin {
                label { "User " select name="name" { @for u in &list { option selected[u.name == user.name] { (u.name) } } } }
            } @else {
                input type="hidden" name="name" value=(user.name);
                span { "Yours (" (user.name) ")" }
            }
            label { "New password " input name="password" type="password" required minlength="12" autocomplete="new-password"; }
            button type="submit" { "Change" }
        }
        @if admin {
            h2 { "Add a user" }
            form.filters method="post" action="/users/add" {
                input type="hidden" name="csrf_token" value=(user.csrf);
                label { "Name " input name="name" required; }
                label { "Role " select name="role" { option { "viewer" } option { "operator" } option { "admin" } } }
                label { "Password " input name="password" type="password" required minlength="12" autocomplete="new-password"; }
                button type="submit" { "Add" }
            }
        }
        h2 { "API tokens" }
        table.list { thead { tr { th { "Id" } th { "Name" } th { "User" } th { "Role" } th { "Last used" } th { "" } } } tbody {
            @for t in &tokens { tr {
                td { (t.id) } td { (t.name) } td { (t.user.as_deref().unwrap_or("(bootstrap)")) } td { (t.role.as_str()) }
                td { (when_opt(t.last_used_at)) }
                td { @if admin && t.user.is_some() {
                    form.action method="post" action="/users/revoke" {
                        input type="hidden" name="csrf_token" value=(user.csrf);
                        input type="hidden" name="id" value=(t.id);
                        button type="submit" { "Revoke" }
                    }
                } }
            } }
        } }
        @if admin {
            form.filters method="post" action="/users/token" {
                input type="hidden" name="csrf_token" value=(user.csrf);
                label { "User " select name="user" { @for u in &list { option { (u.name) } } } }
                label { "Name " input name="name" required placeholder="e.g. grafana"; }
                button type="submit" { "Create token" }
            }
        }
    };
    Html(frame("Users", user, body).into_string()).into_response()
}

#[derive(Deserialize, Default)]
pub struct UsersNote {
    error: Option<String>,
    note: Option<String>,
}

#[derive(Deserialize)]
pub struct UserForm {
    csrf_token: String,
    name: Option<String>,
    role: Option<String>,
    password: Option<String>,
    user: Option<String>,
    id: Option<i64>,
}

fn users_error(e: &str) -> Response {
    super::back_to("/users", "error", e)
}

/// The users page's forms: add, delete, token, revoke (admin only).
pub async fn user_form(
    State(st): State<AppState>,
    Extension(user): Extension<WebUser>,
    Path(op): Path<String>,
    Form(f): Form<UserForm>,
) -> Response {
    if let Some(r) = super::forged(&user, &f.csrf_token) {
        return r;
    }
    // Anyone may change their own password; an admin anybody's.
    let own_password = op == "password" && f.name.as_deref() == Some(user.name.as_str());
    if user.role != UserRole::Admin && !own_password {
        return users_error("only an admin manages users and tokens");
    }
    match op.as_str() {
        "password" => {
            let r = crate::api::users::set_password(
                State(st),
                Path(f.name.clone().unwrap_or_default()),
                Json(nines_model::api::PasswordRequest {
                    password: f.password.unwrap_or_default(),
                }),
            )
            .await;
            match r {
                // A new password ends the user's sessions, this one too.
                Ok(Json(u)) if u.name == user.name => redirect("/login"),
                Ok(Json(u)) => super::back_to(
                    "/users",
                    "note",
                    &format!("the password of {} was changed", u.name),
                ),
                Err(e) => users_error(&e.body.error),
            }
        }
        "add" => {
            let role = match f.role.as_deref().unwrap_or("").parse::<UserRole>() {
                Ok(r) => r,
                Err(e) => return users_error(&e),
            };
            let r = crate::api::users::add_user(
                State(st),
                Json(nines_model::api::UserAddRequest {
                    name: f.name.unwrap_or_default(),
                    role,
                    password: f.password.unwrap_or_default(),
                }),
            )
            .await;
            match r {
                Ok(_) => redirect("/users"),
                Err(e) => users_error(&e.body.error),
            }
        }
        "delete" => {
            match crate::api::users::delete_user(State(st), Path(f.name.unwrap_or_default())).await
            {
                Ok(_) => redirect("/users"),
                Err(e) => users_error(&e.body.error),
            }
        }
        "token" => {
            let r = crate::api::users::create_token(
                State(st.clone()),
                Json(nines_model::api::TokenCreateRequest {
                    user: f.user.unwrap_or_default(),
                    name: f.name.unwrap_or_default(),
                }),
            )
            .await;
            match r {
                Ok((_, Json(t))) => users_page(&st, &user, None, None, Some(&t.token)).await,
                Err(e) => users_error(&e.body.error),
            }
        }
        "revoke" => match crate::api::users::delete_token(State(st), Path(f.id.unwrap_or(0))).await
        {
            Ok(_) => redirect("/users"),
            Err(e) => users_error(&e.body.error),
        },
        _ => users_error("no such form"),
    }
}
