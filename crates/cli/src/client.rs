//! A small HTTP client of the controller's API, with errors that say what went wrong.

use anyhow::{Context, anyhow};
use nines_model::api::ApiError;
use reqwest::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Talks to one controller.
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    pub fn new(base: &str, token: Option<String>) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            token,
            http,
        })
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.send(self.req(reqwest::Method::GET, path)).await
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        self.send(self.req(reqwest::Method::POST, path).json(body))
            .await
    }

    pub async fn put<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        self.send(self.req(reqwest::Method::PUT, path).json(body))
            .await
    }

    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.send(self.req(reqwest::Method::DELETE, path)).await
    }

    async fn send<T: DeserializeOwned>(&self, r: reqwest::RequestBuilder) -> anyhow::Result<T> {
        let resp = r
            .send()
            .await
            .map_err(|e| anyhow!("cannot reach the nines controller at {}: {e}", self.base))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .context("reading the controller's answer")?;
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .context("the controller's answer is not the expected JSON");
        }
        if let Ok(e) = serde_json::from_slice::<ApiError>(&bytes) {
            let field = e
                .field
                .map(|f| format!(" (field `{f}`)"))
                .unwrap_or_default();
            if status == StatusCode::UNAUTHORIZED {
                return Err(anyhow!(
                    "{}{field}: pass --token or NINES_TOKEN, or run where the data directory's admin.token is",
                    e.error
                ));
            }
            return Err(anyhow!("{}{field}", e.error));
        }
        Err(anyhow!(
            "controller answered {status}: {}",
            String::from_utf8_lossy(&bytes)
        ))
    }
}
