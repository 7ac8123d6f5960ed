//! A real S3-compatible server for tests: moto in server mode (`moto_server`, from PyPI;
//! scripts/deps.sh installs it in a virtualenv and exports `NINES_MOTO_SERVER`), on a
//! free loopback port, with one bucket made, killed when dropped.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::process::GroupChild;
use crate::util::{port_is_open, wait_until};

/// A running moto server with one bucket.
#[derive(Debug)]
pub struct S3Server {
    child: GroupChild,
    pub port: u16,
    pub bucket: String,
    /// moto accepts any credentials; these are what tests hand to nines.
    pub access_key: String,
    pub secret_key: String,
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("bind a free port")?;
    Ok(l.local_addr()?.port())
}

/// One plain HTTP/1.1 request (moto takes unsigned requests); the status code.
fn http(port: u16, method: &str, path: &str) -> Result<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    out.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("no HTTP status")
}

impl S3Server {
    /// Starts moto and creates `bucket`.
    pub async fn start(bucket: &str) -> Result<Self> {
        let program =
            std::env::var("NINES_MOTO_SERVER").unwrap_or_else(|_| "moto_server".to_string());
        let port = free_port()?;
        let mut cmd = Command::new(&program);
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = GroupChild::spawn(cmd)
            .with_context(|| format!("start {program} (scripts/deps.sh installs moto[server])"))?;
        let mut me = Self {
            child,
            port,
            bucket: bucket.to_string(),
            access_key: "testing-access".into(),
            secret_key: "testing-secret".into(),
        };
        wait_until(Duration::from_secs(30), "moto to listen", || async {
            Ok(port_is_open("127.0.0.1", port).then_some(()))
        })
        .await?;
        if !me.child.is_running() {
            bail!("{program} exited at start");
        }
        let status = http(port, "PUT", &format!("/{bucket}"))?;
        if status != 200 {
            bail!("creating bucket {bucket} answered {status}");
        }
        Ok(me)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}
