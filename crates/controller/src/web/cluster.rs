//! A cluster's page: its topology drawn (load balancers in front; primary and replicas
//! with their lag, or Galera members with their state), node cards with their actions,
//! the cluster's actions, active alarms with acknowledgement, recent jobs and events
//! with their reasons. Everything read through the API's own handlers, so the page shows
//! what `nines` and the API show.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use maud::{Markup, html};
use nines_model::api::{AlarmView, JobView, LbView, NodeStatus};
use nines_model::auth::{Access, allowed};
use nines_model::{ClusterType, NodeState, Role};
use serde::Deserialize;

use super::WebUser;
use super::pages::{frame, state_badge};
use crate::api::AppState;

#[derive(Deserialize, Default)]
pub struct PageQuery {
    /// A refused action's reason, shown on top.
    error: Option<String>,
}

fn node_class(s: NodeState) -> &'static str {
    match s {
        NodeState::Online => "ok",
        NodeState::Degraded => "warn",
        _ => "bad",
    }
}

/// A node's state as word and shape.
pub fn node_badge(s: NodeState) -> Markup {
    let shape = match s {
        NodeState::Online => "●",
        NodeState::Degraded => "▲",
        _ => "✖",
    };
    html! { span class={"state " (node_class(s))} data-node-state { span aria-hidden="true" { (shape) } " " (s.as_str()) } }
}

/// A form posting one action of the cluster page (with the session's CSRF token).
fn action(
    user: &WebUser,
    cluster: &str,
    act: &str,
    label: &str,
    node: Option<&str>,
    confirm: Option<&str>,
) -> Markup {
    html! {
        form.action method="post" action={"/clusters/" (cluster) "/actions"}
            data-confirm=[confirm] {
            input type="hidden" name="csrf_token" value=(user.csrf);
            input type="hidden" name="action" value=(act);
            @if let Some(n) = node { input type="hidden" name="node" value=(n); }
            button type="submit" { (label) }
        }
    }
}

/// The button that acknowledges alarm `id` of `cluster`.
pub fn ack_button(user: &WebUser, cluster: &str, id: i64) -> Markup {
    html! {
        form.action method="post" action={"/clusters/" (cluster) "/actions"} {
            input type="hidden" name="csrf_token" value=(user.csrf);
            input type="hidden" name="action" value="ack";
            input type="hidden" name="alarm" value=(id);
            button type="submit" { "Acknowledge" }
        }
    }
}

/// A choice of the replica to promote; the first, empty, lets nines choose.
fn candidates(replicas: &[&str], label: &str) -> Markup {
    html! {
        select name="to" aria-label=(label) {
            option value="" { "most advanced replica" }
            @for r in replicas { option value=(r) { (r) } }
        }
    }
}

fn node_card(
    user: &WebUser,
    cluster: &str,
    n: &NodeStatus,
    kind: ClusterType,
    may: bool,
) -> Markup {
    html! {
        article.node data-address=(n.address) {
            header {
                strong { (n.address) }
                " " span.role { (n.role.as_str()) }
                " " (node_badge(n.state))
            }
            dl {
                @if !n.state_reason.is_empty() { dt { "why" } dd { (n.state_reason) } }
                dt { "read_only" } dd { (if n.read_only { "on" } else { "off" }) }
                @if n.role == Role::Replica {
                    dt { "source" } dd { (n.source.as_deref().unwrap_or("-")) }
                    dt { "lag" } dd {
                        (n.lag_seconds.map_or("unknown".to_string(), |l| format!("{l} s")))
                        @if let Some(t) = n.lag_transactions { " (" (t) " transactions)" }
                    }
                    dt { "IO / SQL" } dd { (n.io_thread.as_deref().unwrap_or("-")) " / " (n.sql_thread.map_or("-", |s| if s { "running" } else { "stopped" })) }
                }
                @if kind == ClusterType::Galera {
                    dt { @if n.state == NodeState::Offline { "wsrep (last seen)" } @else { "wsrep" } } dd { (n.wsrep_state.as_deref().unwrap_or("-")) " in " (n.wsrep_cluster_status.as_deref().unwrap_or("-")) " (size " (n.wsrep_cluster_size.map_or("-".to_string(), |s| s.to_string())) ")" }
                }
                dt { "version" } dd { (n.version.as_deref().unwrap_or("-")) }
                dt { "desired" } dd { (n.desired) }
                @if let Some(m) = &n.maintenance { dt { "maintenance" } dd { (m) } }
                @if let Some(f) = &n.fenced { dt { "fenced" } dd { (f) } }
                @if let Some(t) = n.last_seen { dt { "last seen" } dd { (super::pages::when(t)) } }
            }
            @if may {
                div.actions {
                    (action(user, cluster, "node_restart", "Restart", Some(&n.address), Some(&format!("Restart {}?", n.address))))
                    @if n.desired == nines_model::Desired::Stopped || n.state == NodeState::Offline {
                        (action(user, cluster, "node_start", "Start", Some(&n.address), None))
                    } @else {
                        (action(user, cluster, "node_stop", "Stop", Some(&n.address), Some(&format!("Stop {}?", n.address))))
                    }
                    @if n.maintenance.is_some() {
                        (action(user, cluster, "node_maintenance_off", "End maintenance", Some(&n.address), None))
                    } @else {
                        (action(user, cluster, "node_maintenance_on", "Maintenance", Some(&n.address), None))
                    }
                    @if n.fenced.is_some() {
                        (action(user, cluster, "rejoin", "Rejoin", Some(&n.address), Some(&format!("Rejoin {} to the primary?", n.address))))
                    }
                    form.action method="post" action={"/clusters/" (cluster) "/members"} {
                        input type="hidden" name="csrf_token" value=(user.csrf);
                        input type="hidden" name="op" value="node_remove";
                        input type="hidden" name="node" value=(n.address);
                        input name="confirm" required placeholder={"type " (n.address) " to remove"} aria-label="type the node's address to confirm its removal";
                        button type="submit" { "Remove" }
                    }
                }
            }
        }
    }
}

/// The topology: load balancers, then the primary (or the Galera members), then replicas.
fn topology(cluster: &str, kind: ClusterType, nodes: &[NodeStatus], lbs: &[LbView]) -> Markup {
    let primaries: Vec<&NodeStatus> = nodes.iter().filter(|n| n.role == Role::Primary).collect();
    let replicas: Vec<&NodeStatus> = nodes.iter().filter(|n| n.role == Role::Replica).collect();
    html! {
        div.topology aria-label="topology" data-cluster=(cluster) {
            @if !lbs.is_empty() {
                div.tier {
                    @for l in lbs {
                        div.box.lb {
                            strong { "HAProxy " (l.host) }
                            br; "rw :" (l.rw_port) " · ro :" (l.ro_port)
                            @if let Some(v) = &l.vip { br; "VIP " (v) @if l.vip_held == Some(true) { " (held)" } }
                            br; span class={"state " (if l.haproxy == "running" { "ok" } else { "bad" })} { (l.haproxy) }
                        }
                    }
                }
                div.arrow aria-hidden="true" { "↓" }
            }
            @match kind {
                ClusterType::Galera => {
                    div.tier {
                        @for n in nodes {
                            div class={"box " (node_class(n.state))} data-address=(n.address) data-role=(n.role.as_str()) {
                                strong { (n.address) } br;
                                // An unreachable node's wsrep state is only what it was.
                                @if n.state == NodeState::Offline { (n.state.as_str()) }
                                @else { (n.wsrep_state.as_deref().unwrap_or(n.state.as_str())) }
                                // The node the load balancers send writes to (one writer).
                                @if lbs.iter().any(|l| l.writer.as_deref() == Some(n.address.as_str())) {
                                    " · writer"
                                }
                            }
                        }
                    }
                }
                _ => {
                    div.tier {
                        @for n in &primaries {
                            div class={"box primary " (node_class(n.state))} data-address=(n.address) data-role=(n.role.as_str()) {
                                strong { (n.address) } br; "primary · " (n.state.as_str())
                            }
                        }
                    }
                    @if !replicas.is_empty() {
                        div.arrow aria-hidden="true" { "↓" }
                        div.tier {
                            @for n in &replicas {
                                div class={"box " (node_class(n.state))} data-address=(n.address) data-role=(n.role.as_str()) {
                                    strong { (n.address) } br;
                                    @if n.state == NodeState::Offline { "replica · offline" }
                                    @else { "replica · lag " (n.lag_seconds.map_or("?".to_string(), |l| format!("{l} s"))) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The cluster's page.
pub async fn page(
    State(st): State<AppState>,
    Extension(user): Extension<WebUser>,
    Path(name): Path<String>,
    Query(q): Query<PageQuery>,
) -> Response {
    let detail = match crate::api::clusters::show_cluster(State(st.clone()), Path(name.clone()))
        .await
    {
        Ok(Json(d)) => d,
        Err(e) => {
            let body = html! { h1 { "Cluster" } p.error { (e.body.error) } p { a href="/" { "All clusters" } } };
            return (e.status, Html(frame("Cluster", &user, body).into_string())).into_response();
        }
    };
    let s = &detail.summary;
    let lbs = crate::api::balancers::list_lbs(State(st.clone()), Path(name.clone()))
        .await
        .map(|Json(l)| l)
        .unwrap_or_default();
    let alarms: Vec<AlarmView> = crate::api::alarms::list_alarms(
        State(st.clone()),
        Query(crate::api::alarms::AlarmQuery {
            cluster: Some(name.clone()),
            all: false,
            limit: Some(200),
        }),
    )
    .await
    .map(|Json(a)| a)
    .unwrap_or_default();
    let jobs: Vec<JobView> = crate::api::jobs::list_jobs(
        State(st.clone()),
        Query(crate::api::jobs::JobQuery {
            cluster: Some(name.clone()),
            state: None,
            limit: Some(15),
        }),
    )
    .await
    .map(|Json(j)| j)
    .unwrap_or_default();
    let may = allowed(user.role, Access::Change);
    let replication = s.cluster_type == ClusterType::Replication;
    let replicas: Vec<&str> = detail
        .node_list
        .iter()
        .filter(|n| n.role == Role::Replica)
        .map(|n| n.address.as_str())
        .collect();
    let body = html! {
        @if let Some(e) = &q.error { p.error role="alert" { (e) } }
        h1 { (s.name) " " span data-cluster-state=(s.name) { (state_badge(s.state)) } }
        (super::more::tabs(&s.name, ""))
        p.summary {
            (s.cluster_type.as_str()) " · " (s.nodes_online) " of " (s.nodes) " nodes online · automatic recovery "
            (if s.auto_recovery { "on" } else { "off" })
            @if !s.state_reason.is_empty() { " · " (s.state_reason) }
            " · " span #updated.muted { "as of " (super::pages::when(chrono::Utc::now())) }
        }
        @for m in &detail.maintenance {
            p.notice { "Maintenance " (m.node.as_deref().unwrap_or("of the whole cluster")) ": " (m.reason) }
        }
        @if may {
            section.actions aria-label="cluster actions" {
                (action(&user, &s.name, "rolling_restart", "Rolling restart", None, Some("Restart every node, one at a time?")))
                @if replication {
                    form.action method="post" action={"/clusters/" (s.name) "/actions"} data-confirm="Hand the primary role to this replica?" {
                        input type="hidden" name="csrf_token" value=(user.csrf);
                        input type="hidden" name="action" value="switchover";
                        (candidates(&replicas, "switchover to"))
                        button type="submit" { "Switchover" }
                    }
                    form.action method="post" action={"/clusters/" (s.name) "/actions"} {
                        input type="hidden" name="csrf_token" value=(user.csrf);
                        input type="hidden" name="action" value="failover";
                        (candidates(&replicas, "fail over to"))
                        label title="fail over even when the primary answers (it is fenced first) or the replica lacks transactions" { input type="checkbox" name="force"; " force" }
                        input name="confirm" required placeholder={"type " (s.name) " to fail over"} aria-label="type the cluster's name to confirm the failover";
                        button type="submit" { "Failover" }
                    }
                }
                @if s.cluster_type == ClusterType::Galera {
                    form.action method="post" action={"/clusters/" (s.name) "/actions"} data-confirm="Bootstrap a new Primary component and join the other nodes to it?" {
                        input type="hidden" name="csrf_token" value=(user.csrf);
                        input type="hidden" name="action" value="recover";
                        select name="node" aria-label="bootstrap from" {
                            option value="" { "bootstrap from the most advanced" }
                            @for n in &detail.node_list { option value=(n.address) { (n.address) } }
                        }
                        label title="bootstrap the chosen node although nines would not (a silent node may be alive elsewhere)" { input type="checkbox" name="force"; " force" }
                        input name="confirm" placeholder={"with force: type " (s.name)} aria-label="with force, type the cluster's name to confirm";
                        button type="submit" { "Recover" }
                    }
                }
                (action(&user, &s.name, "cluster_stop", "Stop cluster", None, Some("Stop every node of the cluster? Applications lose their database.")))
                (action(&user, &s.name, "cluster_start", "Start cluster", None, None))
                (action(&user, &s.name, "backup", "Back up now", None, None))
                @if s.auto_recovery {
                    (action(&user, &s.name, "recovery_off", "Turn automatic recovery off", None, Some("nines will not repair this cluster by itself. Go on?")))
                } @else {
                    (action(&user, &s.name, "recovery_on", "Turn automatic recovery on", None, None))
                }
                @if detail.maintenance.iter().any(|m| m.node.is_none()) {
                    (action(&user, &s.name, "maintenance_off", "End maintenance", None, None))
                } @else {
                    (action(&user, &s.name, "maintenance_on", "Maintenance (1 h)", None, None))
                }
            }
        }
        h2 { "Topology" }
        (topology(&s.name, s.cluster_type, &detail.node_list, &lbs))
        h2 { "Nodes" }
        div.cards {
            @for n in &detail.node_list { (node_card(&user, &s.name, n, s.cluster_type, may)) }
        }
        @if may {
            details.forms {
                summary { "Add a node or a load balancer" }
                form.filters method="post" action={"/clusters/" (s.name) "/members"} {
                    input type="hidden" name="csrf_token" value=(user.csrf);
                    input type="hidden" name="op" value="node_add";
                    label { "Node (host[:port]) " input name="node" required; }
                    label { "Copy from " input name="source" placeholder="(chosen by nines)"; }
                    button type="submit" { "Add node" }
                }
                form.filters method="post" action={"/clusters/" (s.name) "/members"} {
                    input type="hidden" name="csrf_token" value=(user.csrf);
                    input type="hidden" name="op" value="lb_add";
                    label { "HAProxy on host " input name="host" required; }
                    label { input type="radio" name="access" value="local" checked; " local" }
                    label { input type="radio" name="access" value="ssh"; " SSH as " input name="ssh_user" placeholder="root" size="8"; }
                    label { "key " input name="ssh_key" placeholder="/root/.ssh/id_ed25519"; }
                    button type="submit" { "Add load balancer" }
                }
                @for l in &lbs {
                    form.filters method="post" action={"/clusters/" (s.name) "/members"} data-confirm={"Remove the load balancer on " (l.host) "?"} {
                        input type="hidden" name="csrf_token" value=(user.csrf);
                        input type="hidden" name="op" value="lb_remove";
                        input type="hidden" name="host" value=(l.host);
                        button type="submit" { "Remove load balancer " (l.host) }
                    }
                }
            }
        }
        h2 { "Active alarms" }
        @if alarms.is_empty() { p { "None." } }
        @else {
            table.list { thead { tr { th { "Severity" } th { "Alarm" } th { "Raised" } th { "Acknowledged" } } } tbody {
                @for a in &alarms {
                    tr {
                        td { span class={"state " (match a.severity { nines_model::alarm::Severity::Critical => "bad", nines_model::alarm::Severity::Warning => "warn", _ => "ok" })} { (a.severity.as_str()) } }
                        td { strong { (a.title) } br; (a.message) }
                        td { (super::pages::when(a.raised_at)) }
                        td {
                            @if let Some(by) = &a.acknowledged_by { (by) }
                            @else if may {
                                (ack_button(&user, &s.name, a.id))
                            } @else { "-" }
                        }
                    }
                }
            } }
        }
        h2 { "Recent jobs" }
        table.list { thead { tr { th { "Job" } th { "Kind" } th { "State" } th { "By" } th { "Created" } } } tbody {
            @for j in &jobs {
                tr {
                    td { a href={"/jobs/" (j.id)} { (j.id) } }
                    td { (j.kind) }
                    td { (format!("{:?}", j.state).to_lowercase()) @if let Some(e) = &j.error { br; span.error { (e) } } }
                    td { (j.requested_by) }
                    td { (super::pages::when(j.created_at)) }
                }
            }
        } }
        h2 { "Events" }
        table.list { thead { tr { th { "Time" } th { "Node" } th { "Kind" } th { "What and why" } } } tbody {
            @for e in &detail.events {
                tr {
                    td { (super::pages::when(e.at)) }
                    td { (e.node.as_deref().unwrap_or("-")) }
                    td { (e.kind) }
                    td { (e.message) }
                }
            }
        } }
    };
    Html(frame(&s.name, &user, body).into_string()).into_response()
}

/// The topology alone, for the page's script to redraw it when roles change.
pub async fn topology_fragment(
    State(st): State<AppState>,
    Extension(_user): Extension<WebUser>,
    Path(name): Path<String>,
) -> Response {
    let detail =
        match crate::api::clusters::show_cluster(State(st.clone()), Path(name.clone())).await {
            Ok(Json(d)) => d,
            Err(e) => return (e.status, e.body.error).into_response(),
        };
    let lbs = crate::api::balancers::list_lbs(State(st.clone()), Path(name.clone()))
        .await
        .map(|Json(l)| l)
        .unwrap_or_default();
    Html(topology(&name, detail.summary.cluster_type, &detail.node_list, &lbs).into_string())
        .into_response()
}
