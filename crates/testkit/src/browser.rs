//! A real headless Chromium for the web UI's tests: the system's `chromedriver` (W3C
//! WebDriver) on a free loopback port; the test drives it with a WebDriver client and
//! asks for `--headless=new` in its capabilities (see [`Chromedriver::capabilities`]).

use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::process::GroupChild;
use crate::util::{port_is_open, run_dir};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A running chromedriver; dropping it ends it and every browser it started.
#[derive(Debug)]
pub struct Chromedriver {
    port: u16,
    _child: GroupChild,
}

impl Chromedriver {
    pub async fn start() -> Result<Chromedriver> {
        if !std::path::Path::new(CHROMEDRIVER).exists() {
            bail!(
                "{CHROMEDRIVER} is missing: install chromium and chromium-driver (scripts/deps.sh does)"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = run_dir()?.join(format!("chromedriver-{}-{port}.log", std::process::id()));
        let mut cmd = Command::new(CHROMEDRIVER);
        cmd.arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = GroupChild::spawn(cmd).context("starting chromedriver")?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !port_is_open("127.0.0.1", port) {
            if tokio::time::Instant::now() >= deadline {
                bail!("chromedriver did not listen on 127.0.0.1:{port} within 20 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Chromedriver {
            port,
            _child: child,
        })
    }

    /// The WebDriver URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Capabilities for a headless Chromium that runs as root in a container, with a
    /// window of `width`×`height`.
    pub fn capabilities(width: u32, height: u32) -> serde_json::Map<String, serde_json::Value> {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    format!("--window-size={width},{height}"),
                ],
            }),
        );
        caps
    }
}
