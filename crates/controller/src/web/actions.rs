//! The pages' actions: one form target per cluster, dispatching to the very handlers of
//! the API (the same checks, the same jobs as the CLI), after the session's CSRF token and
//! the role check. A job goes to its page (live log); anything refused comes back to the
//! cluster's page with the reason.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::{Extension, Form, Json};
use nines_model::auth::{Access, allowed};
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
}

fn back(cluster: &str, error: &str) -> Response {
    let q: String = error
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    redirect(&format!(
        "/clusters/{}?error={q}",
        super::urlencoding(cluster)
    ))
}

/// Runs a cluster page's action.
pub async fn run(
    State(st): State<AppState>,
    Extension(user): Extension<WebUser>,
    Path(name): Path<String>,
    Form(f): Form<ActionForm>,
) -> Response {
    if let Some(r) = super::forged(&user, &f.csrf_token) {
        return r;
    }
    if !allowed(user.role, Access::Change) {
        return back(
            &name,
            &format!("{} is a viewer: viewers change nothing", user.name),
        );
    }
    let caller = Extension(Caller(user.name.clone()));
    let s = State(st.clone());
    let p = Path(name.clone());
    let node = || f.node.clone().unwrap_or_default();
    let np = || Path((name.clone(), node()));
    use crate::api::{alarms, backups, deploy, ha, maintenance};
    let job = match f.action.as_str() {
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
                ApiJson(nines_model::api::SwitchoverRequest { to: None }),
            )
            .await
        }
        "failover" if f.confirm.as_deref().map(str::trim) != Some(name.as_str()) => {
            return back(
                &name,
                "a failover needs the cluster's name typed to confirm it; nothing was done",
            );
        }
        "failover" => {
            ha::failover(
                s,
                caller,
                p,
                ApiJson(nines_model::api::FailoverRequest {
                    to: None,
                    force: false,
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
        "restore" if f.confirm.as_deref().map(str::trim) != Some(name.as_str()) => {
            return back(
                &name,
                "a restore replaces the cluster's data: type the cluster's name to confirm it; nothing was done",
            );
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
                    repo: None,
                    retention: f.retention.clone().filter(|r| !r.trim().is_empty()),
                }),
            )
            .await;
            return match r {
                Ok(_) => redirect(&format!("/clusters/{}/backups", super::urlencoding(&name))),
                Err(e) => back(&name, &e.body.error),
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
