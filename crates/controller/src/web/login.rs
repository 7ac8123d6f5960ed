//! Signing in and out: the login form, its signed CSRF token, the rate limit, sessions.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::Extension;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::header::{HOST, ORIGIN, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use chrono::Utc;
use hmac::{Hmac, Mac};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;
use sha2::Sha256;

use super::{MAX_SECS, SESSION_COOKIE, WebUser, redirect, safe_next};
use crate::api::AppState;

/// How long a login form's token is good for.
const FORM_SECS: i64 = 3600;

/// What the UI keeps in memory: the key that signs login forms (new at each start: a
/// form from before a restart is refused and shown again), failed logins for the rate
/// limit, and whether the listener speaks TLS.
pub struct WebState {
    key: [u8; 32],
    failures: Mutex<HashMap<String, Vec<i64>>>,
    pub tls: bool,
    /// A session unused this many seconds ends.
    pub idle_secs: i64,
    /// The states the open pages follow.
    pub states: super::live::StatesFeed,
}

impl WebState {
    pub fn new(tls: bool, idle: std::time::Duration) -> Self {
        let mut key = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut key);
        Self {
            key,
            failures: Mutex::new(HashMap::new()),
            tls,
            idle_secs: i64::try_from(idle.as_secs()).unwrap_or(i64::MAX).max(1),
            states: Default::default(),
        }
    }

    fn mac(&self, msg: &str) -> String {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        m.update(msg.as_bytes());
        hex::encode(m.finalize().into_bytes())
    }

    /// A login form's token: `time.nonce.mac`.
    pub fn form_token(&self, now: i64) -> String {
        let nonce = hex::encode(rand::random::<[u8; 8]>());
        let msg = format!("{now}.{nonce}");
        format!("{msg}.{}", self.mac(&msg))
    }

    /// Whether a login form's token is ours and recent.
    pub fn check_form_token(&self, token: &str, now: i64) -> bool {
        let mut parts = token.splitn(3, '.');
        let (Some(t), Some(nonce), Some(mac)) = (parts.next(), parts.next(), parts.next()) else {
            return false;
        };
        let Ok(at) = t.parse::<i64>() else {
            return false;
        };
        let want = self.mac(&format!("{t}.{nonce}"));
        // Constant time: the comparison must not tell how much of a forged mac matched.
        let same = want.len() == mac.len()
            && want
                .bytes()
                .zip(mac.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        same && (0..=FORM_SECS).contains(&(now - at))
    }

    fn wait(&self, keys: &[String], now: i64) -> Option<i64> {
        let f = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        keys.iter()
            .filter_map(|k| f.get(k))
            .filter_map(|v| nines_model::auth::login_wait(v, now))
            .max()
    }

    fn failed(&self, keys: &[String], now: i64) {
        let mut f = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for k in keys {
            let v = f.entry(k.clone()).or_default();
            v.push(now);
            v.retain(|t| now - t < nines_model::auth::LOGIN_WINDOW_SECS);
        }
        // Bounded: sources and names that stopped trying are forgotten.
        if f.len() > 10_000 {
            f.retain(|_, v| {
                v.iter()
                    .any(|t| now - t < nines_model::auth::LOGIN_WINDOW_SECS)
            });
        }
    }

    fn succeeded(&self, name_key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(name_key);
    }
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    csrf_token: String,
    next: Option<String>,
}

fn login_page(st: &AppState, error: Option<&str>, next: &str, username: &str) -> Markup {
    let token = st.web.form_token(Utc::now().timestamp());
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Sign in · nines" }
                link rel="stylesheet" href="/ui/nines.css";
            }
            body.login {
                main {
                    h1 { "nines" }
                    form method="post" action="/login" {
                        @if let Some(e) = error {
                            p.error role="alert" { (e) }
                        }
                        input type="hidden" name="csrf_token" value=(token);
                        input type="hidden" name="next" value=(next);
                        label { "User name" input name="username" autocomplete="username" required value=(username); }
                        label { "Password" input name="password" type="password" autocomplete="current-password" required; }
                        button type="submit" { "Sign in" }
                    }
                }
            }
        }
    }
}

/// The login page (the overview when a session is live already).
pub async fn page(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<NextQuery>,
) -> Response {
    let next = safe_next(q.next.as_deref()).to_string();
    if super::session_user(&st, &headers).await.is_some() {
        return redirect(&next);
    }
    Html(login_page(&st, None, &next, "").into_string()).into_response()
}

/// Whether the request comes from a page of this site (no `Origin`: a non-browser
/// client, allowed; the form token still holds).
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest == host)
}

/// Signs in: a session cookie and a redirect; or the form again with the reason.
pub async fn login(
    State(st): State<AppState>,
    Extension(peer): Extension<crate::audit::Peer>,
    slot: Option<Extension<crate::audit::AuditSlot>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let name = form.username.trim().to_string();
    if let Some(Extension(slot)) = &slot {
        slot.fill(&nines_model::input::printable(&name), "ui");
        slot.route("/login");
    }
    let next = safe_next(form.next.as_deref()).to_string();
    let now = Utc::now().timestamp();
    let fail = |status: StatusCode, msg: &str| {
        (
            status,
            Html(login_page(&st, Some(msg), &next, &name).into_string()),
        )
            .into_response()
    };
    if !same_origin(&headers) || !st.web.check_form_token(&form.csrf_token, now) {
        return fail(
            StatusCode::FORBIDDEN,
            "The form expired or did not come from this site; sign in again.",
        );
    }
    let keys = [format!("ip:{}", peer.0.ip()), format!("user:{name}")];
    if let Some(wait) = st.web.wait(&keys, now) {
        return fail(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("Too many failed sign-ins; try again in {wait} s."),
        );
    }
    let Some(user) = crate::users::verify_login(st.store.as_ref(), &name, form.password).await
    else {
        st.web.failed(&keys, now);
        return fail(StatusCode::UNAUTHORIZED, "Wrong user name or password.");
    };
    st.web.succeeded(&keys[1]);
    let id = crate::users::new_secret();
    let csrf = crate::users::new_secret();
    let expires = Utc::now() + chrono::Duration::seconds(MAX_SECS);
    if let Err(e) = st
        .store
        .add_session(
            &crate::api::hash_token(&id),
            &user.name,
            &csrf,
            expires,
            &peer.0.ip().to_string(),
        )
        .await
    {
        tracing::warn!(error = %e, "session not stored");
        return fail(
            StatusCode::SERVICE_UNAVAILABLE,
            "nines could not store the session; try again.",
        );
    }
    let mut r = redirect(&next);
    let cookie = format!(
        "{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax; Max-Age={MAX_SECS}{}",
        if st.web.tls { "; Secure" } else { "" }
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(SET_COOKIE, v);
    }
    r
}

#[derive(Deserialize)]
pub struct LogoutForm {
    csrf_token: String,
}

/// Signs out: the session ends, the cookie goes.
pub async fn logout(
    State(st): State<AppState>,
    Extension(user): Extension<WebUser>,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Response {
    if let Some(r) = super::forged(&user, &form.csrf_token) {
        return r;
    }
    if let Some(id) = super::cookie(&headers, SESSION_COOKIE) {
        let _ = st.store.delete_session(&crate::api::hash_token(&id)).await;
    }
    let mut r = redirect("/login");
    r.headers_mut().insert(
        SET_COOKIE,
        HeaderValue::from_static("nines_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
    );
    r
}
