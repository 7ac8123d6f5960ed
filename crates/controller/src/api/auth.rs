//! Who is asking, and whether their role lets them: a bearer token (stored as its SHA-256
//! hash; a small in-memory cache of known hashes keeps the store off the hot path) or a
//! web session's cookie (a change then needs the session's `X-CSRF-Token`), and the role
//! check of `nines_model::auth` on every route. The caller's name goes into the audit
//! slot.

use std::collections::HashMap;
use std::sync::RwLock;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use nines_model::auth::UserRole;
use sha2::{Digest, Sha256};

use super::AppState;
use super::error::ApiErr;

/// SHA-256 hex of a token.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Token hashes known to be valid, with who they act for and the role.
#[derive(Default)]
pub struct TokenCache {
    known: RwLock<HashMap<String, (String, UserRole)>>,
}

/// The caller, as the auth layer identified it; handlers read it from request extensions.
#[derive(Debug, Clone)]
pub struct Caller(pub String);

impl TokenCache {
    fn get(&self, hash: &str) -> Option<(String, UserRole)> {
        self.known.read().ok()?.get(hash).cloned()
    }

    fn put(&self, hash: String, who: (String, UserRole)) {
        if let Ok(mut k) = self.known.write() {
            k.insert(hash, who);
        }
    }

    /// Forgets every token (a user or token was deleted, a role may have changed).
    pub fn clear(&self) {
        if let Ok(mut k) = self.known.write() {
            k.clear();
        }
    }
}

pub async fn require_token(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiErr> {
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let bearer = header
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    let (name, role, via) = match bearer {
        Some(token) => {
            let hash = hash_token(&token);
            match state.tokens.get(&hash) {
                Some((n, r)) => (n, r, "api"),
                None => match state.store.token_by_hash(&hash).await? {
                    Some(t) => {
                        let who = t.user.clone().unwrap_or(t.name.clone());
                        crate::log_store_error(
                            "a token's last use",
                            state.store.touch_token(t.id, chrono::Utc::now()).await,
                        );
                        state.tokens.put(hash, (who.clone(), t.role));
                        (who, t.role, "api")
                    }
                    None => {
                        return Err(ApiErr::new(
                            StatusCode::UNAUTHORIZED,
                            "invalid bearer token",
                        ));
                    }
                },
            }
        }
        None => match crate::web::session_user(&state, req.headers()).await {
            // The pages' own script calls the API with the session; a change needs the
            // session's CSRF token in a header a cross-site form cannot set.
            Some(u) => {
                let reads = req.method() == Method::GET || req.method() == Method::HEAD;
                let token_ok = req
                    .headers()
                    .get("x-csrf-token")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|t| t == u.csrf);
                if !reads && !token_ok {
                    return Err(ApiErr::new(
                        StatusCode::FORBIDDEN,
                        "a change with a browser session needs its X-CSRF-Token header",
                    ));
                }
                (u.name, u.role, "ui")
            }
            None => {
                return Err(ApiErr::new(
                    StatusCode::UNAUTHORIZED,
                    "missing bearer token: send `Authorization: Bearer <token>` (see <data-dir>/admin.token)",
                ));
            }
        },
    };
    crate::audit::set_who(&req, &name, via);
    let access = nines_model::auth::access(req.method().as_str(), req.uri().path());
    if !nines_model::auth::allowed(role, access) {
        return Err(ApiErr::new(
            StatusCode::FORBIDDEN,
            match access {
                nines_model::auth::Access::Users => format!(
                    "`{name}` has the role {}: only an admin manages users and tokens",
                    role.as_str()
                ),
                _ => format!(
                    "`{name}` is a viewer: viewers read, they change nothing (an operator or admin can)"
                ),
            },
        ));
    }
    req.extensions_mut().insert(Caller(name));
    req.extensions_mut().insert(role);
    Ok(next.run(req).await)
}
