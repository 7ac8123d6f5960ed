//! API errors: a status and a JSON body `{error, field?}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use nines_model::api::ApiError;
use nines_store::StoreError;

/// An error answer.
#[derive(Debug)]
pub struct ApiErr {
    pub status: StatusCode,
    pub body: ApiError,
}

impl ApiErr {
    pub fn new(status: StatusCode, msg: impl Into<String>) -> Self {
        Self {
            status,
            body: ApiError {
                error: msg.into(),
                field: None,
            },
        }
    }

    /// 400 naming the request field at fault.
    pub fn field(field: &str, msg: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            body: ApiError {
                error: msg.into(),
                field: Some(field.to_string()),
            },
        }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("{} not found", what.into()))
    }

    pub fn conflict(field: &str, msg: impl Into<String>) -> Self {
        Self {
            status: StatusCode::CONFLICT,
            body: ApiError {
                error: msg.into(),
                field: Some(field.to_string()),
            },
        }
    }
}

impl IntoResponse for ApiErr {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

/// A value refused at the validation boundary: 400 naming its field.
impl From<nines_model::input::InputError> for ApiErr {
    fn from(e: nines_model::input::InputError) -> Self {
        Self::field(&e.field, e.message)
    }
}

impl From<StoreError> for ApiErr {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => Self::new(StatusCode::CONFLICT, m),
            StoreError::NotFound(m) => Self::not_found(m),
            other => {
                tracing::error!(error = %other, "store error");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal store error")
            }
        }
    }
}

pub async fn not_found(uri: axum::http::Uri) -> ApiErr {
    ApiErr::not_found(format!("route {}", uri.path()))
}

/// Makes every error answer JSON: extractors' own rejections (a path segment that is not
/// a number, a malformed query) and bare statuses (405) come as plain text or empty
/// bodies, which clients then have to guess at. Headers such as `Allow` are kept.
pub async fn json_errors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
    // The web UI's pages answer their errors as pages.
    let path = req.uri().path();
    let page = !(path.starts_with("/api/") || path == "/metrics" || path == "/healthz")
        && path != "/"
        && path.len() > 1;
    let res = next.run(req).await;
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let is_html = res
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if page && is_html {
        return res;
    }
    let is_json = res
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return res;
    }
    let (parts, body) = res.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).trim().to_string();
    let msg = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_lowercase()
    } else {
        text
    };
    let mut out = ApiErr::new(status, msg).into_response();
    for (name, value) in parts.headers.iter() {
        if name != CONTENT_TYPE && name != CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}
