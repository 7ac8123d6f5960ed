//! The HA policy of a cluster: read it, change some of its fields, or go back to the
//! controller's default. A change is merged onto the effective policy, validated
//! (`HaPolicy::validate`: bounds, candidates that are nodes of the cluster), stored whole
//! and recorded as an `ha_policy` event saying what changed and who changed it. The
//! reconciler and the HA jobs read the stored policy through `jobs::ha::cluster_policy`.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use nines_model::Endpoint;
use nines_model::api::{HA_POLICY_FROM_CLUSTER, HA_POLICY_FROM_DEFAULT, HaPolicyView};
use nines_model::event::EventKind;
use nines_model::ha::HaPolicy;
use nines_store::ClusterRecord;
use serde_json::{Map, Value};

use super::AppState;
use super::auth::Caller;
use super::deploy::cluster;
use super::error::ApiErr;
use super::json::ApiJson;
use crate::jobs::ha::cluster_policy;

/// The event kind of every change of a cluster's HA policy.
const EVENT: EventKind = EventKind::HaPolicy;

/// The policy of clusters without their own: the controller's (`Config::ha`, which
/// `nines serve` leaves at `HaPolicy::default()`).
fn controller_default() -> HaPolicy {
    HaPolicy::default()
}

/// Whether the cluster was deployed with semi-sync (its policy then requires it).
fn deployed_semi_sync(c: &ClusterRecord) -> bool {
    c.settings.as_ref().is_some_and(|s| s.semi_sync)
}

/// The effective policy of a cluster and where it comes from.
fn view(c: &ClusterRecord) -> HaPolicyView {
    HaPolicyView {
        policy: cluster_policy(&controller_default(), c),
        source: if c.ha_policy.is_some() {
            HA_POLICY_FROM_CLUSTER
        } else {
            HA_POLICY_FROM_DEFAULT
        }
        .to_string(),
    }
}

/// The changes as an event says them: `a: 1 → 2; b: …`, or `nothing changed`.
fn changes_text(after: &HaPolicy, before: &HaPolicy) -> String {
    let changes = after.changes_from(before);
    if changes.is_empty() {
        "nothing changed".to_string()
    } else {
        changes.join("; ")
    }
}

/// 400 naming `field`, when there is one.
fn refused(field: &str, msg: String) -> ApiErr {
    if field.is_empty() {
        ApiErr::new(axum::http::StatusCode::BAD_REQUEST, msg)
    } else {
        ApiErr::field(field, msg)
    }
}

/// The policy `patch` asks for on cluster `c` with `nodes`, validated; the error names
/// the field at fault.
fn requested(
    c: &ClusterRecord,
    nodes: &[Endpoint],
    patch: &Map<String, Value>,
) -> Result<HaPolicy, ApiErr> {
    if patch.contains_key("automatic_recovery") {
        return Err(ApiErr::field(
            "automatic_recovery",
            format!(
                "automatic_recovery is the cluster's recovery switch: use `nines cluster recovery enable|disable --name {}` (PUT /api/v1/clusters/{}/recovery)",
                c.name, c.name
            ),
        ));
    }
    let before = cluster_policy(&controller_default(), c);
    let after = before
        .patched(patch)
        .map_err(|e| refused(&e.field, e.to_string()))?;
    if !after.require_semi_sync_ack && deployed_semi_sync(c) {
        return Err(ApiErr::field(
            "require_semi_sync_ack",
            format!(
                "require_semi_sync_ack: cluster `{}` was deployed with semi-sync, which promises that acknowledged commits survive a failover: it stays on",
                c.name
            ),
        ));
    }
    if let Err(errors) = after.validate(nodes) {
        let field = errors.first().map(|e| e.field.clone()).unwrap_or_default();
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        return Err(refused(&field, text.join("; ")));
    }
    Ok(after)
}

/// The HA policy a cluster's automatic recovery follows, and whether it was set for the
/// cluster or is the controller's default.
#[utoipa::path(get, path = "/api/v1/clusters/{name}/ha-policy", tag = "clusters",
    params(("name" = String, Path)),
    responses((status = 200, body = HaPolicyView), (status = 404, body = nines_model::api::ApiError)))]
pub async fn show_ha_policy(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<HaPolicyView>, ApiErr> {
    let c = cluster(&st, &name).await?;
    Ok(Json(view(&c)))
}

/// Changes some fields of a cluster's HA policy: the body is a JSON object with any of
/// the policy's fields (durations in milliseconds, nested `max_candidate_lag` fields
/// alone too), merged onto the effective policy, validated, stored and recorded as an
/// event. Unknown fields and values out of bounds are refused naming the field.
#[utoipa::path(put, path = "/api/v1/clusters/{name}/ha-policy", tag = "clusters",
    params(("name" = String, Path)), request_body = Object,
    responses((status = 200, body = HaPolicyView), (status = 400, body = nines_model::api::ApiError),
              (status = 404, body = nines_model::api::ApiError)))]
pub async fn set_ha_policy(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    ApiJson(patch): ApiJson<Map<String, Value>>,
) -> Result<Json<HaPolicyView>, ApiErr> {
    let c = cluster(&st, &name).await?;
    let nodes: Vec<Endpoint> = st
        .store
        .list_nodes(Some(c.id))
        .await?
        .into_iter()
        .map(|n| n.endpoint)
        .collect();
    let after = requested(&c, &nodes, &patch)?;
    let before = cluster_policy(&controller_default(), &c);
    st.store.set_ha_policy(c.id, Some(&after)).await?;
    let msg = format!(
        "HA policy of cluster `{name}` set by {}: {}",
        caller.0,
        changes_text(&after, &before)
    );
    st.store.add_event(&name, None, EVENT, &msg).await?;
    let c = cluster(&st, &name).await?;
    Ok(Json(view(&c)))
}

/// Puts a cluster back on the controller's default HA policy (recorded as an event).
#[utoipa::path(delete, path = "/api/v1/clusters/{name}/ha-policy", tag = "clusters",
    params(("name" = String, Path)),
    responses((status = 200, body = HaPolicyView), (status = 404, body = nines_model::api::ApiError)))]
pub async fn reset_ha_policy(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<HaPolicyView>, ApiErr> {
    let c = cluster(&st, &name).await?;
    let before = view(&c);
    st.store.set_ha_policy(c.id, None).await?;
    let c = cluster(&st, &name).await?;
    let after = view(&c);
    let what = if before.source == HA_POLICY_FROM_DEFAULT {
        "it had no policy of its own".to_string()
    } else {
        changes_text(&after.policy, &before.policy)
    };
    let msg = format!(
        "HA policy of cluster `{name}` reset to the controller default by {}: {what}",
        caller.0
    );
    st.store.add_event(&name, None, EVENT, &msg).await?;
    Ok(Json(after))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use nines_model::ClusterType;
    use nines_model::deploy::ClusterSettings;
    use nines_model::job::HostAccessSpec;

    fn record(ha_policy: Option<HaPolicy>, semi_sync: Option<bool>) -> ClusterRecord {
        ClusterRecord {
            id: 1,
            name: "shop".into(),
            cluster_type: ClusterType::Replication,
            host_access: HostAccessSpec::Local,
            db_user: "u".into(),
            db_password_secret: 1,
            state: None,
            state_reason: String::new(),
            created_at: Utc::now(),
            settings: semi_sync.map(|semi_sync| ClusterSettings {
                datadir_template: "/srv/{host}_{port}".into(),
                semi_sync,
                config_template: None,
                innodb_buffer_pool_size: None,
            }),
            deploy_state: None,
            auto_recovery: false,
            primary: None,
            ha_policy,
        }
    }

    fn nodes() -> Vec<Endpoint> {
        ["10.0.0.1:3306", "10.0.0.2:3306"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect()
    }

    fn patch(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            other => panic!("{other}"),
        }
    }

    #[test]
    fn the_effective_policy_is_the_clusters_with_its_switch_and_semi_sync() {
        let v = view(&record(None, None));
        assert_eq!(v.source, HA_POLICY_FROM_DEFAULT);
        assert_eq!(
            v.policy,
            HaPolicy {
                automatic_recovery: false,
                ..HaPolicy::default()
            },
            "the recovery switch wins"
        );
        let own = HaPolicy {
            daily_failover_budget: 7,
            automatic_recovery: true,
            require_semi_sync_ack: false,
            ..HaPolicy::default()
        };
        let v = view(&record(Some(own.clone()), Some(true)));
        assert_eq!(v.source, HA_POLICY_FROM_CLUSTER);
        assert_eq!(v.policy.daily_failover_budget, 7);
        assert!(
            !v.policy.automatic_recovery,
            "the switch, not the stored value"
        );
        assert!(v.policy.require_semi_sync_ack, "deployed with semi-sync");
        let v = view(&record(Some(own), Some(false)));
        assert!(!v.policy.require_semi_sync_ack);
    }

    #[test]
    fn a_change_is_merged_validated_and_refused_naming_the_field() {
        let c = record(None, Some(true));
        let p = requested(
            &c,
            &nodes(),
            &patch(serde_json::json!({"daily_failover_budget": 5, "excluded_candidates": ["10.0.0.2"]})),
        )
        .unwrap();
        assert_eq!(p.daily_failover_budget, 5);
        assert!(p.require_semi_sync_ack);
        for (body, field) in [
            (
                serde_json::json!({"daily_failover_budget": 0}),
                "daily_failover_budget",
            ),
            (
                serde_json::json!({"excluded_candidates": ["10.0.0.9:3306"]}),
                "excluded_candidates",
            ),
            (serde_json::json!({"colour": 1}), "colour"),
            (
                serde_json::json!({"automatic_recovery": true}),
                "automatic_recovery",
            ),
            (
                serde_json::json!({"require_semi_sync_ack": false}),
                "require_semi_sync_ack",
            ),
        ] {
            let e = requested(&c, &nodes(), &patch(body.clone())).unwrap_err();
            assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(e.body.field.as_deref(), Some(field), "{body}: {e:?}");
            assert!(e.body.error.contains(field), "{body}: {e:?}");
        }
        // Without semi-sync at deploy, it may be switched off.
        let p = requested(
            &record(None, Some(false)),
            &nodes(),
            &patch(serde_json::json!({"require_semi_sync_ack": false})),
        )
        .unwrap();
        assert!(!p.require_semi_sync_ack);
    }

    #[test]
    fn events_say_what_changed() {
        let before = HaPolicy::default();
        assert_eq!(changes_text(&before, &before), "nothing changed");
        let after = HaPolicy {
            daily_failover_budget: 5,
            restart_grace: chrono::Duration::seconds(10),
            ..before.clone()
        };
        assert_eq!(
            changes_text(&after, &before),
            "daily_failover_budget: 3 → 5; restart_grace: 5s → 10s"
        );
    }
}
