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
    /// A client of the controller at `base`; `ca_cert`: a PEM file of the CA (or the
    /// self-signed certificate) an HTTPS controller's certificate is checked against,
    /// besides the system's roots.
    pub fn new(
        base: &str,
        token: Option<String>,
        ca_cert: Option<&std::path::Path>,
    ) -> anyhow::Result<Self> {
        let mut builder = reqwest::Client::builder().timeout(std::time::Duration::from_secs(30));
        if let Some(path) = ca_cert {
            let pem = std::fs::read(path)
                .with_context(|| format!("--ca-cert {}: cannot read", path.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("--ca-cert {}: not PEM certificates", path.display()))?;
            if certs.is_empty() {
                return Err(anyhow!(
                    "--ca-cert {}: no certificate in it",
                    path.display()
                ));
            }
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        let http = builder.build().context("building the HTTP client")?;
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
        let resp = r.send().await.map_err(|e| {
            // reqwest's own message hides the cause (refused, TLS, certificate).
            let mut why = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                why.push_str(": ");
                why.push_str(&s.to_string());
                source = s.source();
            }
            anyhow!("cannot reach the nines controller at {}: {why}", self.base)
        })?;
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
