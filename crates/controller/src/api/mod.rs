//! The HTTP API: JSON over axum, bearer-token auth on everything but `GET /healthz`, and
//! an OpenAPI document generated from the same route declarations (`GET /api/openapi.json`),
//! so the document cannot drift from the routes.

pub(crate) mod advisors;
pub(crate) mod alarms;
pub(crate) mod auth;
pub(crate) mod backups;
pub(crate) mod balancers;
pub(crate) mod clusters;
pub(crate) mod deploy;
mod error;
pub(crate) mod failovers;
pub(crate) mod galera;
pub(crate) mod ha;
pub(crate) mod ha_policy;
pub(crate) mod jobs;
pub(crate) mod json;
pub(crate) mod maintenance;
pub(crate) mod metrics;
pub(crate) mod queries;
pub(crate) mod users;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use nines_store::Store;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use auth::{TokenCache, hash_token};
pub use error::ApiErr;

use crate::jobs::JobRunner;
use crate::monitor::Monitor;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub monitor: Arc<Monitor>,
    pub alarms: Arc<crate::alarms::Alarms>,
    pub advisors: Arc<crate::advisors::Advisors>,
    pub jobs: Arc<JobRunner>,
    pub tokens: Arc<TokenCache>,
    pub web: Arc<crate::web::login::WebState>,
}

pub use clusters::summary as cluster_summary;

#[derive(OpenApi)]
#[openapi(
    info(title = "nines", description = "Database-cluster control plane API"),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The API routes and their OpenAPI document, from one declaration.
pub fn api_routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(clusters::list_clusters, deploy::create_cluster))
        .routes(routes!(clusters::import_cluster))
        .routes(routes!(clusters::show_cluster, deploy::delete_cluster))
        .routes(routes!(deploy::stop_cluster))
        .routes(routes!(deploy::start_cluster))
        .routes(routes!(deploy::rolling_restart))
        .routes(routes!(deploy::add_node))
        .routes(routes!(deploy::remove_node))
        .routes(routes!(deploy::stop_node))
        .routes(routes!(deploy::start_node))
        .routes(routes!(deploy::restart_node))
        .routes(routes!(ha::failover))
        .routes(routes!(ha::switchover))
        .routes(routes!(ha::rejoin))
        .routes(routes!(galera::recover))
        .routes(routes!(failovers::list_failovers))
        .routes(routes!(failovers::acknowledge_failovers))
        .routes(routes!(
            maintenance::start_maintenance,
            maintenance::end_maintenance
        ))
        .routes(routes!(maintenance::set_recovery))
        .routes(routes!(
            ha_policy::show_ha_policy,
            ha_policy::set_ha_policy,
            ha_policy::reset_ha_policy
        ))
        .routes(routes!(backups::list_repos, backups::add_repo))
        .routes(routes!(backups::list_backups, backups::create_backup))
        .routes(routes!(backups::show_backup))
        .routes(routes!(backups::verify_backup))
        .routes(routes!(backups::restore_backup))
        .routes(routes!(backups::backup_window))
        .routes(routes!(backups::create_schedule))
        .routes(routes!(backups::list_schedules))
        .routes(routes!(backups::delete_schedule))
        .routes(routes!(alarms::list_alarms))
        .routes(routes!(alarms::ack_alarm))
        .routes(routes!(alarms::list_silences, alarms::add_silence))
        .routes(routes!(alarms::delete_silence))
        .routes(routes!(alarms::list_channels, alarms::add_channel))
        .routes(routes!(alarms::delete_channel))
        .routes(routes!(alarms::test_channel))
        .routes(routes!(alarms::list_deliveries))
        .routes(routes!(advisors::list_advice))
        .routes(routes!(advisors::run_advisors))
        .routes(routes!(advisors::advice_history))
        .routes(routes!(advisors::list_user_rules, advisors::add_user_rule))
        .routes(routes!(advisors::delete_user_rule))
        .routes(routes!(queries::top_queries))
        .routes(routes!(queries::cluster_metrics))
        .routes(routes!(balancers::list_lbs, balancers::add_lb))
        .routes(routes!(balancers::remove_lb, balancers::reconfigure_lb))
        .routes(routes!(balancers::restart_lb))
        .routes(routes!(clusters::list_nodes))
        .routes(routes!(clusters::list_events))
        .routes(routes!(jobs::list_jobs))
        .routes(routes!(jobs::show_job))
        .routes(routes!(jobs::job_logs))
        .routes(routes!(jobs::cancel_job))
        .routes(routes!(metrics::node_metrics))
        .routes(routes!(metrics::prometheus))
        .routes(routes!(users::list_users, users::add_user))
        .routes(routes!(users::delete_user))
        .routes(routes!(users::set_password))
        .routes(routes!(users::list_tokens, users::create_token))
        .routes(routes!(users::delete_token))
        .routes(routes!(users::list_audit))
        .routes(routes!(openapi_json))
        .split_for_parts()
}

/// The whole router: API, /metrics and /healthz, with auth and limits.
pub fn router(state: AppState) -> Router {
    let (api, doc) = api_routes();
    let doc = Arc::new(doc);
    let protected =
        api.layer(axum::Extension(doc))
            .route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                auth::require_token,
            ));
    Router::new()
        .route("/healthz", get(healthz))
        .merge(protected)
        .merge(crate::web::routes(state.clone()))
        .fallback(error::not_found)
        .layer(axum::middleware::from_fn(error::json_errors))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::audit::record,
        ))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(1 << 20))
        // A request (body included) is answered within a minute or dropped with 408.
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            std::time::Duration::from_secs(60),
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

async fn healthz() -> axum::Json<nines_model::api::Health> {
    axum::Json(nines_model::api::Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

/// This API's OpenAPI 3 document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "meta",
    responses((status = 200, description = "OpenAPI document", body = Object)))]
async fn openapi_json(
    axum::Extension(doc): axum::Extension<Arc<utoipa::openapi::OpenApi>>,
) -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json((*doc).clone())
}
