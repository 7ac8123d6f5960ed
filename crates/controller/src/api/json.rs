//! A JSON body extractor whose rejections are [`ApiErr`]s naming the field at fault.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::error::ApiErr;

/// Like `axum::Json`, with errors in the API's own shape.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiErr;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(rejection) => Err(rejection_to_error(rejection)),
        }
    }
}

fn rejection_to_error(r: JsonRejection) -> ApiErr {
    let text = r.body_text();
    match r {
        JsonRejection::MissingJsonContentType(_) => ApiErr::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected a JSON body with Content-Type: application/json",
        ),
        JsonRejection::JsonSyntaxError(_) => ApiErr::new(
            StatusCode::BAD_REQUEST,
            format!("malformed JSON: {}", inner(&text)),
        ),
        JsonRejection::JsonDataError(_) => {
            let msg = inner(&text);
            match field_in(&msg) {
                Some(f) => ApiErr::field(&f, msg),
                None => ApiErr::new(StatusCode::BAD_REQUEST, msg),
            }
        }
        _ => ApiErr::new(StatusCode::BAD_REQUEST, text),
    }
}

/// axum prefixes serde's message with its own words; keep serde's part.
fn inner(text: &str) -> String {
    text.split_once(": ")
        .map(|(_, rest)| rest.to_string())
        .unwrap_or_else(|| text.to_string())
}

/// The field a serde message is about: "missing field `seed`", "unknown field `x`",
/// or a path prefix "ssh.user: invalid type…".
fn field_in(msg: &str) -> Option<String> {
    for marker in ["missing field `", "unknown field `"] {
        if let Some(rest) = msg.split(marker).nth(1) {
            return rest.split('`').next().map(str::to_string);
        }
    }
    let (path, _) = msg.split_once(": ")?;
    (!path.contains(' ') && !path.is_empty()).then(|| path.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_fields() {
        assert_eq!(
            field_in("missing field `seed` at line 1 column 2").as_deref(),
            Some("seed")
        );
        assert_eq!(
            field_in("unknown field `sed`, expected one of …").as_deref(),
            Some("sed")
        );
        assert_eq!(
            field_in("ssh.port: invalid type: string \"x\", expected u16").as_deref(),
            Some("ssh.port")
        );
        assert_eq!(field_in("invalid type: map"), None);
    }
}
