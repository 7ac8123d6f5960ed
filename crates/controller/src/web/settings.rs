//! A cluster's settings page: its HA policy (every setting, typed as `nines cluster
//! ha-policy` shows it), its load balancers' pool settings and restart, and deleting the
//! cluster. Changes go through the API's own handlers, so they are checked, recorded as
//! events and audited exactly as from the CLI.

use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::{Extension, Form, Json};
use maud::html;
use nines_model::auth::{Access, allowed};
use serde::Deserialize;

use super::WebUser;
use super::pages::frame;
use crate::api::AppState;

#[derive(Deserialize, Default)]
pub struct SettingsQuery {
    error: Option<String>,
    saved: Option<String>,
}

/// Back to the settings page with a note.
fn back(cluster: &str, key: &str, msg: &str) -> Response {
    super::back_to(
        &format!("/clusters/{}/settings", super::urlencoding(cluster)),
        key,
        msg,
    )
}

/// The settings page.
pub async fn page(
    State(st): State<AppState>,
    Extension(user): Extension<WebUser>,
    Path(name): Path<String>,
    Query(q): Query<SettingsQuery>,
) -> Response {
    let policy = match crate::api::ha_policy::show_ha_policy(State(st.clone()), Path(name.clone()))
        .await
    {
        Ok(Json(p)) => p,
        Err(e) => {
            let body = html! { h1 { "Settings" } p.error role="alert" { (e.body.error) } p { a href="/" { "All clusters" } } };
            return (e.status, Html(frame("Settings", &user, body).into_string())).into_response();
        }
    };
    let lbs = crate::api::balancers::list_lbs(State(st.clone()), Path(name.clone()))
        .await
        .map(|Json(l)| l)
        .unwrap_or_default();
    let may = allowed(user.role, Access::Change);
    // The read-only pool's lag limit and fallback concern replicas only.
    let replication = crate::api::deploy::cluster(&st, &name)
        .await
        .is_ok_and(|c| c.cluster_type == nines_model::ClusterType::Replication);
    let entries: Vec<(String, String)> = policy
        .policy
        .entries()
        .into_iter()
        // The recovery switch has its own button on the cluster's page.
        .filter(|(k, _)| k != "automatic_recovery")
        .collect();
    let body = html! {
        h1 { (name) ": settings" }
        (super::more::tabs(&name, "/settings"))
        @if let Some(e) = &q.error { p.error role="alert" { (e) } }
        @if let Some(m) = &q.saved { p.notice role="status" { (m) } }
        h2 { "HA policy" }
        p.summary {
            "What automatic recovery may do, from " strong { (policy.source) } ". "
            "Durations as " code { "30s" } ", " code { "5m" } "; " code { "none" }
            " for no limit or an empty list; lists comma-separated. The same as "
            code { "nines cluster ha-policy --name " (name) } "."
        }
        form.stack #ha-policy method="post" action={"/clusters/" (name) "/policy"} {
            input type="hidden" name="csrf_token" value=(user.csrf);
            table.list { tbody {
                @for (k, v) in &entries {
                    tr {
                        td { label for={"p-" (k)} { code { (k) } } }
                        td { input id={"p-" (k)} name=(k) value=(v) disabled[!may]; }
                    }
                }
            } }
            @if may { div.actions { button type="submit" { "Save the policy" } } }
        }
        @if may && policy.source != nines_model::api::HA_POLICY_FROM_DEFAULT {
            form.action method="post" action={"/clusters/" (name) "/policy"} data-confirm="Go back to the controller's default policy?" {
                input type="hidden" name="csrf_token" value=(user.csrf);
                input type="hidden" name="reset" value="1";
                button type="submit" { "Back to the default policy" }
            }
        }
        h2 { "Load balancers" }
        @if lbs.is_empty() { p { "None. Add one from the cluster's page." } }
        @for l in &lbs {
            article.node {
                header { strong { "HAProxy " (l.host) } " " span.muted { "rw :" (l.rw_port) " · ro :" (l.ro_port) " · " (l.haproxy) } }
                @if may && replication {
                    form.filters method="post" action={"/clusters/" (name) "/actions"} {
                        input type="hidden" name="csrf_token" value=(user.csrf);
                        input type="hidden" name="action" value="lb_reconfigure";
                        input type="hidden" name="host" value=(l.host);
                        label { "Max replica lag (s) " input name="max_replica_lag" inputmode="numeric" size="5" value=(l.policy.max_replica_lag_seconds); }
                        label { "Primary serves reads when no replica qualifies "
                            select name="ro_fallback" {
                                option value="yes" selected[l.policy.ro_fallback_to_primary] { "yes" }
                                option value="no" selected[!l.policy.ro_fallback_to_primary] { "no" }
                            }
                        }
                        button type="submit" { "Apply" }
                    }
                }
                @if may {
                    form.action method="post" action={"/clusters/" (name) "/actions"} data-confirm={"Restart HAProxy on " (l.host) "? Its connections are cut."} {
                        input type="hidden" name="csrf_token" value=(user.csrf);
                        input type="hidden" name="action" value="lb_restart";
                        input type="hidden" name="host" value=(l.host);
                        button type="submit" { "Restart HAProxy" }
                    }
                } @else if replication {
                    p { "Max replica lag " (l.policy.max_replica_lag_seconds) " s; primary serves reads when no replica qualifies: "
                        (if l.policy.ro_fallback_to_primary { "yes" } else { "no" }) }
                }
            }
        }
        @if may {
            h2 { "Delete the cluster" }
            form.filters method="post" action={"/clusters/" (name) "/actions"} {
                input type="hidden" name="csrf_token" value=(user.csrf);
                input type="hidden" name="action" value="delete";
                label title="also stop its servers and delete their data directories" { input type="checkbox" name="purge"; " also stop the servers and delete their data" }
                input name="confirm" required placeholder={"type " (name) " to delete"} aria-label="type the cluster's name to confirm its deletion";
                button type="submit" { "Delete" }
            }
        }
    };
    Html(frame(&format!("{name}: settings"), &user, body).into_string()).into_response()
}

/// Saves the HA policy form (only the settings whose text changed), or goes back to the
/// default with `reset`.
pub async fn save_policy(
    State(st): State<AppState>,
    Extension(user): Extension<WebUser>,
    Path(name): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let token = fields
        .iter()
        .find(|(k, _)| k == "csrf_token")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    if let Some(r) = super::may_change(&user, token, |why| back(&name, "error", why)) {
        return r;
    }
    let caller = Extension(crate::api::auth::Caller(user.name.clone()));
    if fields.iter().any(|(k, _)| k == "reset") {
        return match crate::api::ha_policy::reset_ha_policy(State(st), caller, Path(name.clone()))
            .await
        {
            Ok(_) => back(&name, "saved", "back to the controller's default policy"),
            Err(e) => back(&name, "error", &e.body.error),
        };
    }
    let current =
        match crate::api::ha_policy::show_ha_policy(State(st.clone()), Path(name.clone())).await {
            Ok(Json(p)) => p.policy,
            Err(e) => return back(&name, "error", &e.body.error),
        };
    let typed: Vec<(String, String)> = fields
        .into_iter()
        .filter(|(k, _)| k != "csrf_token")
        .collect();
    let patch = match current.patch_from_text(&typed) {
        Ok(p) => p,
        Err(e) => return back(&name, "error", &format!("nothing was saved: {e}")),
    };
    if patch.is_empty() {
        return back(&name, "saved", "nothing changed");
    }
    match crate::api::ha_policy::set_ha_policy(
        State(st),
        caller,
        Path(name.clone()),
        crate::api::json::ApiJson(patch),
    )
    .await
    {
        Ok(Json(after)) => {
            let changes = after.policy.changes_from(&current);
            back(&name, "saved", &format!("saved: {}", changes.join("; ")))
        }
        Err(e) => back(
            &name,
            "error",
            &format!("nothing was saved: {}", e.body.error),
        ),
    }
}
