//! The web UI, served by `nines serve` on the API's listener: server-rendered pages
//! (maud), a little of nines's own JavaScript for live updates, browser sessions.
//!
//! - `GET /login`, `POST /login`, `POST /logout`: sign in and out. The login form carries
//!   a signed, time-limited `csrf_token` (no cookie is needed before the session); a
//!   cross-site `Origin` is refused; failures are rate limited per source address and per
//!   user name (`nines_model::auth::login_wait`).
//! - Every other page needs a session (`nines_session` cookie: HttpOnly, SameSite=Lax,
//!   Secure over TLS; ends after `--session-idle` unused, default 1 h, and 12 h at most). A page asked for without one redirects to
//!   `/login`. Forms that change something carry the session's CSRF token.
//! - Roles are checked as for the API (`nines_model::auth::allowed`).

mod actions;
mod charts;
mod cluster;
mod forms;
mod live;
pub mod login;
pub(crate) mod more;
mod pages;
mod settings;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header::{COOKIE, LOCATION};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use nines_model::auth::UserRole;

use crate::api::AppState;

/// The session cookie.
pub const SESSION_COOKIE: &str = "nines_session";
/// A session ends this long after the login, used or not.
pub const MAX_SECS: i64 = 12 * 3600;

/// The person behind a page request.
#[derive(Debug, Clone)]
pub struct WebUser {
    pub name: String,
    pub role: UserRole,
    /// The forms' token.
    pub csrf: String,
}

/// The UI's routes (state: the API's).
pub fn routes(state: AppState) -> Router<AppState> {
    let pages = Router::new()
        .route("/", get(pages::overview))
        .route("/clusters/new", get(forms::new_page))
        .route("/clusters/new/{op}", post(forms::new_cluster))
        .route("/clusters/{name}", get(cluster::page))
        .route("/clusters/{name}/members", post(forms::member))
        .route("/clusters/{name}/actions", post(actions::run))
        .route("/clusters/{name}/topology", get(cluster::topology_fragment))
        .route("/clusters/{name}/charts", get(more::charts))
        .route("/clusters/{name}/backups", get(more::backups))
        .route("/clusters/{name}/advisors", get(more::advisors))
        .route("/clusters/{name}/queries", get(more::queries))
        .route("/clusters/{name}/failovers", get(more::failovers))
        .route("/clusters/{name}/settings", get(settings::page))
        .route("/clusters/{name}/policy", post(settings::save_policy))
        .route("/alarms", get(more::alarms))
        .route("/alarms/{op}", post(more::alarm_form))
        .route("/audit", get(more::audit))
        .route("/users", get(more::users))
        .route("/users/{op}", post(more::user_form))
        .route("/jobs/{id}", get(live::job_page))
        .route("/jobs/{id}/cancel", post(live::cancel_job))
        .route("/ui/jobs/{id}/events", get(live::job_events))
        .route("/ui/stream", get(live::stream))
        .route("/logout", post(login::logout))
        .route_layer(axum::middleware::from_fn_with_state(state, require_session));
    Router::new()
        .route("/login", get(login::page).post(login::login))
        .route("/ui/nines.css", get(pages::css))
        .route("/ui/nines.js", get(pages::js))
        .merge(pages)
}

/// The value of cookie `name` in the request's headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The session's user, when the request carries a live session.
pub async fn session_user(st: &AppState, headers: &HeaderMap) -> Option<WebUser> {
    let id = cookie(headers, SESSION_COOKIE)?;
    if id.len() != 64 || !id.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let s = st
        .store
        .session(&crate::api::hash_token(&id), Utc::now(), st.web.idle_secs)
        .await
        .ok()??;
    Some(WebUser {
        name: s.user,
        role: s.role,
        csrf: s.csrf,
    })
}

/// Pages need a session: without one, a GET goes to the login page (and comes back
/// after), anything else is refused.
async fn require_session(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    match session_user(&st, req.headers()).await {
        Some(u) => {
            crate::audit::set_who(&req, &u.name, "ui");
            req.extensions_mut().insert(u);
            next.run(req).await
        }
        None if req.method() == Method::GET || req.method() == Method::HEAD => {
            let next_path = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            let to = if next_path == "/" {
                "/login".to_string()
            } else {
                format!("/login?next={}", urlencoding(next_path))
            };
            redirect(&to)
        }
        None => (StatusCode::FORBIDDEN, "sign in first: /login").into_response(),
    }
}

/// The 403 for a form whose CSRF token is not the session's (a stale page, or a form
/// posted from elsewhere); None when it is.
pub fn forged(user: &WebUser, token: &str) -> Option<Response> {
    (token != user.csrf).then(|| {
        (
            StatusCode::FORBIDDEN,
            "the form's token does not match the session; reload the page",
        )
            .into_response()
    })
}

/// The check every changing form passes first: the session's own CSRF token (else 403),
/// then a role that may change things (else `refused`, given the reason to show).
pub fn may_change(
    user: &WebUser,
    token: &str,
    refused: impl FnOnce(&str) -> Response,
) -> Option<Response> {
    if let Some(r) = forged(user, token) {
        return Some(r);
    }
    (!nines_model::auth::allowed(user.role, nines_model::auth::Access::Change)).then(|| {
        refused(&format!(
            "{} is a viewer: viewers change nothing",
            user.name
        ))
    })
}

/// 303 back to page `to` with `key=msg` in its query: a form's refusal (`error`) or
/// outcome, shown on top of the page.
pub fn back_to(to: &str, key: &str, msg: &str) -> Response {
    redirect(&format!("{to}?{key}={}", urlencoding(msg)))
}

/// Back to a cluster's page with an error on top.
pub fn cluster_error(cluster: &str, msg: &str) -> Response {
    back_to(&format!("/clusters/{}", urlencoding(cluster)), "error", msg)
}

/// 303 to `to`.
pub fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(LOCATION, v);
    }
    r
}

pub(crate) fn urlencoding(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Where a login may send the browser afterwards: a path of this site only.
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control) =>
        {
            n
        }
        _ => "/",
    }
}

/// Whether the UI is served over TLS (cookies get `Secure`).
#[derive(Debug, Clone, Copy)]
pub struct Tls(pub bool);
