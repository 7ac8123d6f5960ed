//! The audit log's middleware: every request that may change something (anything but
//! GET and HEAD), through the API or the web UI, is recorded after its answer — who (the
//! token's or session's user, the name a login tried, or `anonymous`), the route, the
//! path, the client's address, and the answer's status.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use crate::api::AppState;

/// The client's address, put on every request by the listener.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// Where the layers that know the caller write who it is, for the audit line.
#[derive(Debug, Clone, Default)]
pub struct AuditSlot(Arc<Mutex<Filled>>);

#[derive(Debug, Default)]
struct Filled {
    who: Option<(String, &'static str)>,
    route: Option<String>,
}

impl AuditSlot {
    /// Records who made the request and through what (`api` or `ui`).
    pub fn fill(&self, who: &str, via: &'static str) {
        if let Ok(mut s) = self.0.lock() {
            s.who = Some((who.to_string(), via));
        }
    }

    /// Records the route's template (known only once the router matched it).
    pub fn route(&self, route: &str) {
        if let Ok(mut s) = self.0.lock() {
            s.route = Some(route.to_string());
        }
    }

    fn take(&self) -> Filled {
        self.0
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default()
    }
}

/// Records who made `req` (and the route it matched), when it carries an audit slot.
pub fn set_who(req: &Request, who: &str, via: &'static str) {
    if let Some(s) = req.extensions().get::<AuditSlot>() {
        s.fill(who, via);
        if let Some(m) = req.extensions().get::<MatchedPath>() {
            s.route(m.as_str());
        }
    }
}

pub async fn record(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    if req.method() == Method::GET || req.method() == Method::HEAD {
        return next.run(req).await;
    }
    let slot = AuditSlot::default();
    req.extensions_mut().insert(slot.clone());
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let from = req
        .extensions()
        .get::<Peer>()
        .map(|p| p.0.ip().to_string())
        .unwrap_or_else(|| "-".into());
    let response = next.run(req).await;
    // The route's template (`/api/v1/clusters/{name}/failover`) is only known inside
    // the router: the layers there write it into the slot; the path names the target.
    let filled = slot.take();
    let route = filled.route;
    let (who, via) = filled.who.unwrap_or_else(|| {
        (
            "anonymous".to_string(),
            if path.starts_with("/api/") || path == "/metrics" {
                "api"
            } else {
                "ui"
            },
        )
    });
    let status = response.status();
    let line = nines_store::NewAudit {
        who,
        action: format!("{method} {}", route.as_deref().unwrap_or(&path)),
        target: nines_model::input::printable(&path).into_owned(),
        from,
        outcome: format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )
        .trim()
        .to_string(),
        via: via.to_string(),
    };
    crate::log_store_error("an audit line", st.store.add_audit(&line).await);
    response
}
