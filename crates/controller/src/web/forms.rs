//! The forms that bring clusters, nodes and load balancers in or take them out: create a
//! cluster, import one, add or remove a node, add or remove a load balancer. Each posts to
//! a handler here that builds the API's own request and calls the API's own handler, so
//! the checks, the refusals (naming the field) and the job are the CLI's.

use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::{Extension, Form, Json};
use maud::html;
use nines_model::auth::{Access, allowed};
use serde::Deserialize;

use super::pages::frame;
use super::{WebUser, redirect};
use crate::api::AppState;
use crate::api::auth::Caller;
use crate::api::json::ApiJson;

#[derive(Deserialize, Default)]
pub struct NewQuery {
    error: Option<String>,
}

/// Host access fields of a form: local, or SSH with a user, a key file and a port.
#[derive(Deserialize, Default, Clone)]
pub struct Access2 {
    access: Option<String>,
    ssh_user: Option<String>,
    ssh_key: Option<String>,
    ssh_port: Option<String>,
}

impl Access2 {
    fn request(&self) -> Result<(Option<nines_model::api::SshAccessRequest>, bool), String> {
        match self.access.as_deref() {
            Some("ssh") => {
                let port = match self
                    .ssh_port
                    .as_deref()
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                {
                    None => None,
                    Some(p) => Some(
                        p.parse::<u16>()
                            .map_err(|_| format!("SSH port `{p}` is not a port"))?,
                    ),
                };
                Ok((
                    Some(nines_model::api::SshAccessRequest {
                        user: self.ssh_user.clone().unwrap_or_default(),
                        key_path: self.ssh_key.clone().filter(|k| !k.trim().is_empty()),
                        port,
                    }),
                    false,
                ))
            }
            Some("none") => Ok((None, false)),
            _ => Ok((None, true)),
        }
    }
}

fn access_fields() -> maud::Markup {
    html! {
        fieldset {
            legend { "Host access" }
            label { input type="radio" name="access" value="local" checked; " local (this machine)" }
            label { input type="radio" name="access" value="ssh"; " SSH" }
            label { "user " input name="ssh_user" placeholder="root"; }
            label { "key file " input name="ssh_key" placeholder="/root/.ssh/id_ed25519"; }
            label { "port " input name="ssh_port" placeholder="22" inputmode="numeric"; }
        }
    }
}

/// The page to create or import a cluster.
pub async fn new_page(Extension(user): Extension<WebUser>, Query(q): Query<NewQuery>) -> Response {
    let body = html! {
        h1 { "Add a cluster" }
        @if let Some(e) = &q.error { p.error role="alert" { (e) } }
        @if !allowed(user.role, Access::Change) {
            p { "Viewers cannot add clusters." }
        } @else {
            div.cards {
                article.node {
                    h2 { "Deploy a new cluster" }
                    form.stack method="post" action="/clusters/new/create" {
                        input type="hidden" name="csrf_token" value=(user.csrf);
                        label { "Name " input name="name" required pattern="[A-Za-z0-9][A-Za-z0-9_-]*"; }
                        label { "Type " select name="type" { option { "galera" } option { "replication" } option { "standalone" } } }
                        label { "Nodes (host[:port], comma-separated) " input name="nodes" required placeholder="10.0.0.11,10.0.0.12,10.0.0.13"; }
                        label { "Data directory template " input name="datadir" placeholder="/var/lib/mysql-nines/{host}_{port}"; }
                        label { "Admin user " input name="db_admin_user" required value="dba"; }
                        label { "Admin password " input name="db_admin_password" type="password" required autocomplete="new-password"; }
                        (access_fields())
                        button type="submit" { "Deploy" }
                    }
                }
                article.node {
                    h2 { "Import an existing cluster" }
                    form.stack method="post" action="/clusters/new/import" {
                        input type="hidden" name="csrf_token" value=(user.csrf);
                        label { "Name " input name="name" required; }
                        label { "Seed node (host[:port]) " input name="seed" required; }
                        label { "Database user " input name="db_user" required; }
                        label { "Password " input name="db_password" type="password" required; }
                        (access_fields())
                        button type="submit" { "Import" }
                    }
                }
            }
        }
    };
    Html(frame("Add a cluster", &user, body).into_string()).into_response()
}

#[derive(Deserialize)]
pub struct NewForm {
    csrf_token: String,
    name: String,
    #[serde(rename = "type")]
    cluster_type: Option<String>,
    nodes: Option<String>,
    datadir: Option<String>,
    db_admin_user: Option<String>,
    db_admin_password: Option<String>,
    seed: Option<String>,
    db_user: Option<String>,
    db_password: Option<String>,
    #[serde(flatten)]
    access: Access2,
}

fn new_error(e: &str) -> Response {
    super::back_to("/clusters/new", "error", e)
}

/// Creates or imports a cluster (a job; its page follows it).
pub async fn new_cluster(
    State(st): State<AppState>,
    Extension(user): Extension<WebUser>,
    Path(op): Path<String>,
    Form(f): Form<NewForm>,
) -> Response {
    if let Some(r) = super::may_change(&user, &f.csrf_token, new_error) {
        return r;
    }
    let (ssh, local) = match f.access.request() {
        Ok(a) => a,
        Err(e) => return new_error(&e),
    };
    let caller = Extension(Caller(user.name.clone()));
    let r = match op.as_str() {
        "create" => {
            let req = nines_model::api::CreateClusterRequest {
                name: f.name.trim().to_string(),
                cluster_type: f.cluster_type.unwrap_or_default(),
                nodes: f
                    .nodes
                    .unwrap_or_default()
                    .split(',')
                    .map(|n| n.trim().to_string())
                    .filter(|n| !n.is_empty())
                    .collect(),
                db_admin_user: f.db_admin_user.unwrap_or_default(),
                db_admin_password: f.db_admin_password.unwrap_or_default(),
                datadir: f.datadir.filter(|d| !d.trim().is_empty()),
                ssh,
                local,
                semi_sync: None,
                config_template: None,
                innodb_buffer_pool_size: None,
            };
            crate::api::deploy::create_cluster(State(st), caller, ApiJson(req)).await
        }
        "import" => {
            let req = nines_model::api::ImportRequest {
                name: f.name.trim().to_string(),
                seed: f.seed.unwrap_or_default(),
                db_user: f.db_user.unwrap_or_default(),
                db_password: f.db_password.unwrap_or_default(),
                ssh,
                local,
            };
            crate::api::clusters::import_cluster(State(st), caller, ApiJson(req)).await
        }
        _ => return new_error("no such form"),
    };
    match r {
        Ok((_, Json(created))) => redirect(&format!("/jobs/{}", created.job_id)),
        Err(e) => new_error(&match &e.body.field {
            Some(field) => format!("{} ({field})", e.body.error),
            None => e.body.error,
        }),
    }
}

#[derive(Deserialize)]
pub struct MemberForm {
    csrf_token: String,
    op: String,
    node: Option<String>,
    source: Option<String>,
    host: Option<String>,
    confirm: Option<String>,
    #[serde(flatten)]
    access: Access2,
}

/// Adds or removes a node or a load balancer of a cluster (a job).
pub async fn member(
    State(st): State<AppState>,
    Extension(user): Extension<WebUser>,
    Path(name): Path<String>,
    Form(f): Form<MemberForm>,
) -> Response {
    if let Some(r) = super::may_change(&user, &f.csrf_token, |why| super::cluster_error(&name, why))
    {
        return r;
    }
    let caller = Extension(Caller(user.name.clone()));
    let s = State(st);
    let r = match f.op.as_str() {
        "node_add" => {
            crate::api::deploy::add_node(
                s,
                caller,
                Path(name.clone()),
                ApiJson(nines_model::api::AddNodeRequest {
                    node: f.node.unwrap_or_default(),
                    source: f.source.filter(|x| !x.trim().is_empty()),
                    from_backup: None,
                }),
            )
            .await
        }
        "node_remove" if f.confirm.as_deref().map(str::trim) != f.node.as_deref() => {
            return super::cluster_error(
                &name,
                "removing a node needs its address typed to confirm it; nothing was done",
            );
        }
        "node_remove" => {
            crate::api::deploy::remove_node(
                s,
                caller,
                Path((name.clone(), f.node.unwrap_or_default())),
                Query(crate::api::deploy::RemoveQuery { mode: None }),
            )
            .await
        }
        "lb_add" => {
            let (ssh, local) = match f.access.request() {
                Ok(a) => a,
                Err(e) => return super::cluster_error(&name, &e),
            };
            crate::api::balancers::add_lb(
                s,
                caller,
                Path(name.clone()),
                Json(nines_model::api::LbAddRequest {
                    host: f.host.unwrap_or_default(),
                    ssh,
                    local,
                    ..Default::default()
                }),
            )
            .await
        }
        "lb_remove" => {
            crate::api::balancers::remove_lb(
                s,
                caller,
                Path((name.clone(), f.host.unwrap_or_default())),
            )
            .await
        }
        _ => return super::cluster_error(&name, "no such form"),
    };
    match r {
        Ok((_, Json(created))) => redirect(&format!("/jobs/{}", created.job_id)),
        Err(e) => super::cluster_error(&name, &e.body.error),
    }
}
