//! Receivers for notifications in tests: an HTTP server that records every request it
//! gets (a webhook or Slack endpoint; it can be told to fail), and a real SMTP server
//! (aiosmtpd from PyPI, which scripts/deps.sh installs and names in `NINES_AIOSMTPD`)
//! that stores every message in a maildir. Both listen on a free loopback port and stop
//! when dropped.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::process::GroupChild;
use crate::util::{port_is_open, wait_until};

/// One request an [`HttpSink`] received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The status it was answered with.
    pub status: u16,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// An HTTP/1.1 server recording requests; answers 200 unless told to fail.
#[derive(Debug)]
pub struct HttpSink {
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    failing: Arc<Mutex<u16>>,
    task: tokio::task::JoinHandle<()>,
}

impl HttpSink {
    pub async fn start() -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("bind the HTTP sink")?;
        let port = listener.local_addr()?.port();
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let failing = Arc::new(Mutex::new(0u16));
        let (r, f) = (Arc::clone(&received), Arc::clone(&failing));
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let (r, f) = (Arc::clone(&r), Arc::clone(&f));
                tokio::spawn(async move {
                    let _ = serve_one(&mut sock, &r, &f).await;
                });
            }
        });
        Ok(Self {
            port,
            received,
            failing,
            task,
        })
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Answer every request with `status` (0: 200 again).
    pub fn fail_with(&self, status: u16) {
        *lock(&self.failing) = status;
    }

    /// Everything received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.received).clone()
    }
}

impl Drop for HttpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Reads one request (headers, then a Content-Length body), records it, answers.
async fn serve_one(
    sock: &mut tokio::net::TcpStream,
    received: &Mutex<Vec<Received>>,
    failing: &Mutex<u16>,
) -> Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = tokio::time::timeout(Duration::from_secs(10), sock.read(&mut chunk)).await??;
        if n == 0 {
            bail!("closed before the headers ended");
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > 1 << 20 {
            bail!("headers too long");
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split_whitespace();
    let method = first.next().unwrap_or("").to_string();
    let path = first.next().unwrap_or("").to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = tokio::time::timeout(Duration::from_secs(10), sock.read(&mut chunk)).await??;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let status = match *lock(failing) {
        0 => 200,
        s => s,
    };
    lock(received).push(Received {
        method,
        path,
        headers,
        body,
        status,
    });
    let reason = if status == 200 { "OK" } else { "Failing" };
    sock.write_all(
        format!("HTTP/1.1 {status} {reason}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            .as_bytes(),
    )
    .await?;
    sock.shutdown().await?;
    Ok(())
}

/// A real SMTP server (aiosmtpd) storing messages in a maildir.
#[derive(Debug)]
pub struct SmtpSink {
    _child: GroupChild,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl SmtpSink {
    pub async fn start() -> Result<Self> {
        let program = std::env::var("NINES_AIOSMTPD").unwrap_or_else(|_| "aiosmtpd".to_string());
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let dir = tempfile::tempdir().context("maildir")?;
        let maildir = dir.path().join("mail");
        let mut cmd = Command::new(&program);
        cmd.args([
            "-n",
            "-l",
            &format!("127.0.0.1:{port}"),
            "-c",
            "aiosmtpd.handlers.Mailbox",
        ])
        .arg(&maildir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        let mut child = GroupChild::spawn(cmd)
            .with_context(|| format!("start {program} (scripts/deps.sh installs aiosmtpd)"))?;
        wait_until(Duration::from_secs(30), "aiosmtpd to listen", || async {
            Ok(port_is_open("127.0.0.1", port).then_some(()))
        })
        .await?;
        if !child.is_running() {
            bail!("{program} exited at start");
        }
        Ok(Self {
            _child: child,
            port,
            dir,
        })
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Every message delivered so far (raw RFC 5322 text), oldest first.
    pub fn messages(&self) -> Vec<String> {
        let new: PathBuf = self.dir.path().join("mail").join("new");
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&new)
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
            .into_iter()
            .filter_map(|(_, p)| std::fs::read_to_string(p).ok())
            .collect()
    }
}
