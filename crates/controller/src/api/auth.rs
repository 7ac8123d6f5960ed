//! Bearer-token authentication. Tokens are stored as SHA-256 hashes; a small in-memory
//! cache of known hashes keeps the store off the hot path of every request.

use std::collections::HashMap;
use std::sync::RwLock;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};

use super::AppState;
use super::error::ApiErr;

/// SHA-256 hex of a token.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Token hashes known to be valid, with the token's name (who asked).
#[derive(Default)]
pub struct TokenCache {
    known: RwLock<HashMap<String, String>>,
}

/// The caller, as the auth layer identified it; handlers read it from request extensions.
#[derive(Debug, Clone)]
pub struct Caller(pub String);

impl TokenCache {
    fn get(&self, hash: &str) -> Option<String> {
        self.known.read().ok()?.get(hash).cloned()
    }

    fn put(&self, hash: String, name: String) {
        if let Ok(mut k) = self.known.write() {
            k.insert(hash, name);
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
    let Some(token) = header
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
    else {
        return Err(ApiErr::new(
            StatusCode::UNAUTHORIZED,
            "missing bearer token: send `Authorization: Bearer <token>` (see <data-dir>/admin.token)",
        ));
    };
    let hash = hash_token(token);
    let name = match state.tokens.get(&hash) {
        Some(n) => n,
        None => match state.store.find_token(&hash).await? {
            Some(t) => {
                state.tokens.put(hash, t.name.clone());
                t.name
            }
            None => {
                return Err(ApiErr::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid bearer token",
                ));
            }
        },
    };
    req.extensions_mut().insert(Caller(name));
    Ok(next.run(req).await)
}
