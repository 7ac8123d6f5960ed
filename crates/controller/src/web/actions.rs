//! The pages' actions: one form target per cluster, dispatching to the very handlers of
//! the API (the same checks, the same jobs as the CLI), after the session's CSRF token and
//! the role check. A job goes to its page (live log); anything refused comes back to the
//! cluster's page with the reason.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::{Extension, Form, Json};
use serde::Deserialize;

use super::{WebUser, redirect};
use crate::api::AppState;
use crate::api::auth::Caller;
use crate::api::json::ApiJson;

#[derive(Deserialize)]
pub struct ActionForm {
    csrf_token: String,
    action: String,
    node: Option<String>,
    alarm: Option<i64>,
    /// The cluster's name, typed, for irreversible actions (failover, restore).
    confirm: Option<String>,
    /// A backup's method (`full`, `incremental`, `logical`).
    method: Option<String>,
    /// The backup to verify or restore.
    backup: Option<i64>,
    /// A restore's point in time (RFC 3339) or GTID position.
    until: Option<String>,
    /// A schedule's cron expression, time zone and retention; its id to delete.
    cron: Option<String>,
    tz: Option<String>,
    retention: Option<String>,
    schedule: Option<i64>,
    /// The node a switchover or failover promotes; empty: nines chooses.
    to: Option<String>,
    /// A checkbox: `--force` (Galera recovery from a node nines would not choose).
    force: Option<String>,
    /// A checkbox: deleting a cluster also stops its servers and deletes their files.
    purge: Option<String>,
    /// A load balancer's host, and its settings.
    host: Option<String>,
    max_replica_lag: Option<String>,
    ro_fallback: Option<String>,
    /// A user advisor rule.
    rule: Option<String>,
    sql: Option<String>,
    warning: Option<String>,
    critical: Option<String>,
    below: Option<String>,
    message: Option<String>,
    every: Option<String>,
    nodes: Option<String>,
    /// The repository a backup or schedule goes to; a new repository's name and place.
    repo: Option<String>,
    path: Option<String>,
    s3_endpoint: Option<String>,
    s3_bucket: Option<String>,
    s3_region: Option<String>,
    s3_access_key: Option<String>,
    s3_secret_key: Option<String>,
}

/// A text field: None when absent or blank.
fn text(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

/// A number typed into field `field`; None when blank.
fn number<T: std::str::FromStr>(field: &str, v: &Option<String>) -> Result<Option<T>, String> {
    match text(v) {
        None => Ok(None),
        Some(t) => t.parse().map(Some).map_err(|_| {
            format!(
                "{field}: `{}` is not a number",
                nines_model::input::printable(&t)
            )
        }),
    }
}

/// Whether an action needs the cluster's name typed to confirm it (it cannot be undone,
/// or it overrides nines's own safety checks), and what the refusal says.
pub fn needs_typed_name(action: &str, force: bool) -> Option<&'static str> {
    match action {
        "failover" => Some("a failover needs the cluster's name typed to confirm it"),
        "restore" => {
            Some("a restore replaces the cluster's data: type the cluster's name to confirm it")
        }
        "delete" => Some("deleting a cluster needs its name typed to confirm it"),
        "recover" if force => Some(
            "a forced recovery overrides nines's checks: type the cluster's name to confirm it",
        ),
        _ => None,
    }
}

fn back(cluster: &str, error: &str) -> Response {
    super::cluster_error(cluster, error)
}

/// Back to a cluster's backups page with `key=msg` on top.
fn backups_back(cluster: &str, key: &str, msg: &str) -> Response {
    super::back_to(
        &format!("/clusters/{}/backups", super::urlencoding(cluster)),
        key,
        msg,
    )
}

/// What an action asked for, for the audit line: its name and the fields that say what
/// it acts on (never a password, key or SQL text).
fn audit_detail(f: &ActionForm) -> String {
    let mut d = f.action.clone();
    for (label, v) in [
        ("node", text(&f.node)),
        ("to", text(&f.to)),
        ("host", text(&f.host)),
        ("method", text(&f.method)),
        ("repo", text(&f.repo)),
        ("rule", text(&f.rule)),
        ("backup", f.backup.map(|b| b.to_string())),
        ("schedule", f.schedule.map(|b| b.to_string())),
        ("alarm", f.alarm.map(|b| b.to_string())),
        ("until", text(&f.until)),
    ] {
        if let Some(v) = v {
            d.push_str(&format!(" {label} {v}"));
        }
    }
    if f.force.is_some() {
        d.push_str(" forced");
    }
    if f.purge.is_some() {
        d.push_str(" purge");
    }
    d
}

/// Runs a cluster page's action.
pub async fn run(
    State(st): State<AppState>,
    Extension(user): Extension<WebUser>,
    Path(name): Path<String>,
    audit: Option<Extension<crate::audit::AuditSlot>>,
    Form(f): Form<ActionForm>,
) -> Response {
    if let Some(Extension(slot)) = &audit {
        slot.detail(&audit_detail(&f));
    }
    if let Some(r) = super::may_change(&user, &f.csrf_token, |why| back(&name, why)) {
        return r;
    }
    let caller = Extension(Caller(user.name.clone()));
    let s = State(st.clone());
    let p = Path(name.clone());
    let node = || f.node.clone().unwrap_or_default();
    let np = || Path((name.clone(), node()));
    use crate::api::{alarms, backups, deploy, ha, maintenance};
    let force = f.force.is_some();
    if let Some(why) = needs_typed_name(&f.action, force)
        && f.confirm.as_deref().map(str::trim) != Some(name.as_str())
    {
        return back(&name, &format!("{why}; nothing was done"));
    }
    let job = match f.action.as_str() {
        "cluster_stop" => deploy::stop_cluster(s, caller, p).await,
        "cluster_start" => deploy::start_cluster(s, caller, p).await,
        "recover" => {
            crate::api::galera::recover(
                s,
                caller,
                p,
                ApiJson(nines_model::api::RecoverRequest {
                    bootstrap_from: text(&f.node),
                    force,
                }),
            )
            .await
        }
        "delete" => {
            deploy::delete_cluster(
                s,
                caller,
                p,
                Query(deploy::DeleteQuery {
                    purge: f.purge.is_some(),
                }),
            )
            .await
        }
        "failovers_ack" => {
            let r = crate::api::failovers::acknowledge_failovers(s, caller, p).await;
            return match r {
                Ok(_) => redirect(&format!(
                    "/clusters/{}/failovers",
                    super::urlencoding(&name)
                )),
                Err(e) => back(&name, &e.body.error),
            };
        }
        "lb_restart" => {
            let host = text(&f.host).unwrap_or_default();
            crate::api::balancers::restart_lb(s, caller, Path((name.clone(), host))).await
        }
        "lb_reconfigure" => {
            let max_replica_lag_seconds = match number::<u64>("max replica lag", &f.max_replica_lag)
            {
                Ok(v) => v,
                Err(e) => return back(&name, &e),
            };
            let ro_fallback_to_primary = match text(&f.ro_fallback).as_deref() {
                None => None,
                Some("yes") => Some(true),
                Some("no") => Some(false),
                Some(_) => return back(&name, "read-only fallback: yes or no"),
            };
            let host = text(&f.host).unwrap_or_default();
            crate::api::balancers::reconfigure_lb(
                s,
                caller,
                Path((name.clone(), host)),
                Json(nines_model::api::LbReconfigureRequest {
                    max_replica_lag_seconds,
                    ro_fallback_to_primary,
                }),
            )
            .await
        }
        "rule_add" => {
            let (warning, critical) = match (
                number::<f64>("warning", &f.warning),
                number::<f64>("critical", &f.critical),
            ) {
                (Ok(w), Ok(c)) => (w, c),
                (Err(e), _) | (_, Err(e)) => return back(&name, &e),
            };
            let r = crate::api::advisors::add_user_rule(
                s,
                p,
                Json(nines_model::api::UserRuleRequest {
                    name: text(&f.rule).unwrap_or_default(),
                    sql: text(&f.sql).unwrap_or_default(),
                    warning,
                    critical,
                    below: f.below.is_some(),
                    message: text(&f.message).unwrap_or_default(),
                    every: text(&f.every),
                    nodes: text(&f.nodes),
                }),
            )
            .await;
            return match r {
                Ok(_) => redirect(&format!("/clusters/{}/advisors", super::urlencoding(&name))),
                Err(e) => back(&name, &e.body.error),
            };
        }
        "rule_delete" => {
            let rule = text(&f.rule).unwrap_or_default();
            let r = crate::api::advisors::delete_user_rule(s, Path((name.clone(), rule))).await;
            return match r {
                Ok(_) => redirect(&format!("/clusters/{}/advisors", super::urlencoding(&name))),
                Err(e) => back(&name, &e.body.error),
            };
        }
        "node_stop" => {
            deploy::stop_node(s, caller, np(), Query(deploy::ForceQuery { force: false })).await
        }
        "node_start" => deploy::start_node(s, caller, np()).await,
        "node_restart" => {
            deploy::restart_node(s, caller, np(), Query(deploy::ForceQuery { force: false })).await
        }
        "rejoin" => ha::rejoin(s, caller, np()).await,
        "rolling_restart" => deploy::rolling_restart(s, caller, p).await,
        "switchover" => {
            ha::switchover(
                s,
                caller,
                p,
                ApiJson(nines_model::api::SwitchoverRequest { to: text(&f.to) }),
            )
            .await
        }
        "failover" => {
            ha::failover(
                s,
                caller,
                p,
                ApiJson(nines_model::api::FailoverRequest {
                    to: text(&f.to),
                    force,
                }),
            )
            .await
        }
        "backup" => {
            backups::create_backup(
                s,
                caller,
                p,
                ApiJson(nines_model::api::BackupCreateRequest {
                    method: f.method.clone(),
                    repo: text(&f.repo),
                    ..Default::default()
                }),
            )
            .await
        }
        "verify" => {
            let Some(id) = f.backup else {
                return back(&name, "which backup?");
            };
            backups::verify_backup(s, caller, Path(id.to_string())).await
        }
        "restore" => {
            let Some(id) = f.backup else {
                return back(&name, "which backup?");
            };
            // The typed name is the operator's "yes, over a serving cluster" (--force).
            backups::restore_backup(
                s,
                caller,
                Path(id.to_string()),
                ApiJson(nines_model::api::RestoreRequest {
                    cluster: name.clone(),
                    force: true,
                    // A GTID position has dashes and no `T`; a time has a `T`.
                    until: f
                        .until
                        .clone()
                        .filter(|u| !u.trim().is_empty() && u.contains('T')),
                    until_gtid: f
                        .until
                        .clone()
                        .filter(|u| !u.trim().is_empty() && !u.contains('T')),
                }),
            )
            .await
        }
        "schedule_create" => {
            let r = backups::create_schedule(
                s,
                caller,
                p,
                ApiJson(nines_model::api::ScheduleCreateRequest {
                    cron: f.cron.clone().unwrap_or_default(),
                    tz: f.tz.clone().filter(|t| !t.trim().is_empty()),
                    method: f.method.clone().filter(|m| !m.trim().is_empty()),
                    repo: text(&f.repo),
                    retention: f.retention.clone().filter(|r| !r.trim().is_empty()),
                }),
            )
            .await;
            return match r {
                Ok(_) => redirect(&format!("/clusters/{}/backups", super::urlencoding(&name))),
                Err(e) => backups_back(&name, "error", &e.body.error),
            };
        }
        "repo_add" => {
            let req = nines_model::api::RepoAddRequest {
                name: text(&f.repo).unwrap_or_default(),
                path: text(&f.path),
                s3_endpoint: text(&f.s3_endpoint),
                s3_bucket: text(&f.s3_bucket),
                s3_region: text(&f.s3_region),
                s3_access_key: text(&f.s3_access_key),
                s3_secret_key: text(&f.s3_secret_key),
            };
            return match backups::add_repo(s, ApiJson(req)).await {
                Ok((_, Json(r))) => backups_back(
                    &name,
                    "done",
                    &format!("repository `{}` added ({})", r.name, r.kind),
                ),
                Err(e) => backups_back(
                    &name,
                    "error",
                    &format!("nothing was added: {}", e.body.error),
                ),
            };
        }
        "schedule_delete" => {
            let r = backups::delete_schedule(s, caller, Path(f.schedule.unwrap_or(0).to_string()))
                .await;
            return match r {
                Ok(_) => redirect(&format!("/clusters/{}/backups", super::urlencoding(&name))),
                Err(e) => back(&name, &e.body.error),
            };
        }
        "advisors_run" => {
            let r = crate::api::advisors::run_advisors(s, p).await;
            return match r {
                Ok(_) => redirect(&format!("/clusters/{}/advisors", super::urlencoding(&name))),
                Err(e) => back(&name, &e.body.error),
            };
        }
        "recovery_on" | "recovery_off" => {
            let r = maintenance::set_recovery(
                s,
                caller,
                p,
                ApiJson(nines_model::api::RecoveryRequest {
                    enabled: f.action == "recovery_on",
                }),
            )
            .await;
            return done(&name, r.map(|_| ()));
        }
        "maintenance_on" | "node_maintenance_on" => {
            let r = maintenance::start_maintenance(
                s,
                caller,
                p,
                ApiJson(nines_model::api::MaintenanceRequest {
                    node: f.node.clone().filter(|_| f.action.starts_with("node_")),
                    reason: format!("set from the web UI by {}", user.name),
                    duration: Some("1h".into()),
                }),
            )
            .await;
            return done(&name, r.map(|_| ()));
        }
        "maintenance_off" | "node_maintenance_off" => {
            let r = maintenance::end_maintenance(
                s,
                caller,
                p,
                Query(maintenance::EndQuery {
                    node: f.node.clone().filter(|_| f.action.starts_with("node_")),
                    reason: Some(format!("ended from the web UI by {}", user.name)),
                }),
            )
            .await;
            return done(&name, r.map(|_| ()));
        }
        "ack" => {
            let Some(id) = f.alarm else {
                return back(&name, "which alarm?");
            };
            let r = alarms::ack_alarm(
                s,
                caller,
                Path(id),
                Some(Json(nines_model::api::AckRequest { note: None })),
            )
            .await;
            return done(&name, r.map(|_| ()));
        }
        other => {
            return back(
                &name,
                &format!(
                    "`{}` is not an action",
                    nines_model::input::printable(other)
                ),
            );
        }
    };
    match job {
        Ok((_, Json(created))) => redirect(&format!("/jobs/{}", created.job_id)),
        Err(e) => back(&name, &e.body.error),
    }
}

fn done(cluster: &str, r: Result<(), crate::api::ApiErr>) -> Response {
    match r {
        Ok(()) => redirect(&format!("/clusters/{}", super::urlencoding(cluster))),
        Err(e) => back(cluster, &e.body.error),
    }
}
