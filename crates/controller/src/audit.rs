//! The audit log's middleware: every request that may change something (anything but
//! GET and HEAD), through the API or the web UI, is recorded after its answer — who (the
//! token's or session's user, the name a login tried, or `anonymous`), the route, the
//! path, the client's address, and the answer's status. A web form's answer is a redirect,
//! so the line also says where it went: the job it started, or the refusal it showed
//! ([`outcome`]); and the web action names what was asked (`switchover to …`), since every
//! cluster page form posts to the same route.

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
    detail: Option<String>,
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

    /// What a form asked for, when its route alone does not say (the cluster page's
    /// actions all post to one route). Never a secret: callers pick the fields.
    pub fn detail(&self, what: &str) {
        if let Ok(mut s) = self.0.lock() {
            let text: String = nines_model::input::printable(what)
                .chars()
                .take(200)
                .collect();
            s.detail = Some(text);
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
    let location = response
        .headers()
        .get(axum::http::header::LOCATION)
        .and_then(|l| l.to_str().ok());
    let mut action = format!("{method} {}", route.as_deref().unwrap_or(&path));
    if let Some(d) = filled.detail {
        action = format!("{action}: {d}");
    }
    let line = nines_store::NewAudit {
        who,
        action,
        target: nines_model::input::printable(&path).into_owned(),
        from,
        outcome: outcome(status, location),
        via: via.to_string(),
    };
    crate::log_store_error("an audit line", st.store.add_audit(&line).await);
    response
}

/// The outcome an audit line shows: the status, and for a redirect where it went when that
/// says how the request ended (a web form answers 303 either way): `job N` for a job it
/// started, `refused: …` with the message the page showed.
pub fn outcome(status: axum::http::StatusCode, location: Option<&str>) -> String {
    let mut out = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
    .trim()
    .to_string();
    if !status.is_redirection() {
        return out;
    }
    let Some(location) = location else {
        return out;
    };
    let Ok(uri) = location.parse::<axum::http::Uri>() else {
        return out;
    };
    let query =
        axum::extract::Query::<std::collections::HashMap<String, String>>::try_from_uri(&uri)
            .map(|q| q.0)
            .unwrap_or_default();
    if let Some(id) = uri.path().strip_prefix("/jobs/")
        && !id.is_empty()
        && id.bytes().all(|b| b.is_ascii_digit())
    {
        out.push_str(&format!(": job {id}"));
    } else if let Some(msg) = query.get("error") {
        let msg: String = nines_model::input::printable(msg)
            .chars()
            .take(300)
            .collect();
        out.push_str(&format!(": refused: {msg}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn a_redirect_says_how_the_form_ended() {
        let table = [
            (StatusCode::CREATED, None, "201 Created"),
            (StatusCode::FORBIDDEN, None, "403 Forbidden"),
            (StatusCode::SEE_OTHER, Some("/"), "303 See Other"),
            (
                StatusCode::SEE_OTHER,
                Some("/jobs/42"),
                "303 See Other: job 42",
            ),
            (StatusCode::SEE_OTHER, Some("/jobs/new"), "303 See Other"),
            (
                StatusCode::SEE_OTHER,
                Some(
                    "/clusters/shop?error=node+127.0.0.9%3A3306+is+not+part+of+cluster+%60shop%60",
                ),
                "303 See Other: refused: node 127.0.0.9:3306 is not part of cluster `shop`",
            ),
            (
                StatusCode::SEE_OTHER,
                Some("/clusters/shop/backups?done=repository+added"),
                "303 See Other",
            ),
            // A bad escape is kept, a terminal escape is not printed raw.
            (
                StatusCode::SEE_OTHER,
                Some("/alarms?error=100%+sure%1b%5b2J"),
                "303 See Other: refused: 100% sure\\u{1b}[2J",
            ),
        ];
        for (status, location, want) in table {
            assert_eq!(outcome(status, location), want, "{location:?}");
        }
    }
}
