//! A simulated fleet for the monitoring benchmark (bench/monitor.sh, its SIMULATED
//! part): N lightweight fake MariaDB servers on loopback ports, each speaking just enough
//! of the MySQL client/server protocol (handshake, any password accepted, COM_QUERY with
//! several statements and one text result set each, COM_PING, COM_QUIT) to answer what
//! the monitor's probe and an import ask: the version, the variables and status counters
//! named (taken from a real MariaDB 10.11's recorded output, filtered as the server
//! filters them), an empty replica status, the process list. Every server is a standalone
//! primary with its own server_id, GTID position and moving uptime.
//!
//! Writes one seed per line to the file given as first argument (`SEED USER
//! PASSWORD_FILE`, the password file beside it) and runs until interrupted.
//!
//! Usage: bench_sim_fleet OUT N

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const STATUS: &str =
    include_str!("../../access/tests/fixtures/mariadb-10.11/show_global_status_primary.txt");
const VARIABLES: &str = include_str!(
    "../../access/tests/fixtures/mariadb-10.11/show_global_variables_replica_selected.txt"
);

/// `name: value` rows of a `\G` listing of SHOW GLOBAL STATUS / VARIABLES.
fn vertical(text: &str) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    let mut name = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(v) = line.strip_prefix("Variable_name:") {
            name = Some(v.trim().to_string());
        } else if let (Some(v), Some(n)) = (line.strip_prefix("Value:"), name.take()) {
            rows.push((n, v.trim().to_string()));
        }
    }
    rows
}

/// What every fake server answers from.
struct Fleet {
    status: Vec<(String, String)>,
    variables: Vec<(String, String)>,
    started: Instant,
}

/// One fake server.
struct Server {
    fleet: Arc<Fleet>,
    server_id: u32,
    port: u16,
}

/// The quoted names of a `WHERE LOWER(Variable_name) IN ('a', 'b')` clause.
fn named(query: &str) -> Vec<String> {
    let Some(start) = query.find(" IN (") else {
        return Vec::new();
    };
    let rest = &query[start + 5..];
    let list = rest.split(')').next().unwrap_or("");
    list.split(',')
        .map(|s| s.trim().trim_matches('\'').to_ascii_lowercase())
        .collect()
}

impl Server {
    /// The rows a real server would return for a filtered SHOW GLOBAL STATUS/VARIABLES.
    fn filtered(&self, query: &str, rows: &[(String, String)]) -> Vec<(String, String)> {
        let names = named(query);
        let wsrep = query.contains("LIKE 'wsrep");
        let mut out: BTreeMap<String, String> = rows
            .iter()
            .filter(|(n, _)| {
                let lower = n.to_ascii_lowercase();
                names.contains(&lower) || (wsrep && lower.starts_with("wsrep_"))
            })
            .cloned()
            .collect();
        // What makes this server itself: its id, its port, its GTID position, a moving
        // uptime and query counter.
        let secs = self.fleet.started.elapsed().as_secs() + 1000;
        let gtid = format!("0-{}-{}", self.server_id, 100 + secs);
        for (name, value) in [
            ("server_id", self.server_id.to_string()),
            ("port", self.port.to_string()),
            ("read_only", "OFF".to_string()),
            ("gtid_current_pos", gtid.clone()),
            ("gtid_binlog_pos", gtid),
            ("Uptime", secs.to_string()),
            ("Questions", (secs * 7).to_string()),
        ] {
            if let Some(v) = out.get_mut(name) {
                *v = value;
            }
        }
        out.into_iter().collect()
    }

    /// The columns and rows a statement returns; None: an OK packet.
    fn answer(&self, q: &str) -> Option<(&'static [&'static str], Vec<Vec<String>>)> {
        let pairs = |v: Vec<(String, String)>| -> Vec<Vec<String>> {
            v.into_iter().map(|(n, v)| vec![n, v]).collect()
        };
        const VARS: &[&str] = &["Variable_name", "Value"];
        if q.starts_with("SELECT VERSION()") {
            Some((
                &["v", "c"],
                vec![vec![VERSION.into(), "nines simulated server".into()]],
            ))
        } else if q.starts_with("SHOW GLOBAL STATUS") {
            Some((VARS, pairs(self.filtered(q, &self.fleet.status))))
        } else if q.starts_with("SHOW GLOBAL VARIABLES") {
            Some((VARS, pairs(self.filtered(q, &self.fleet.variables))))
        } else if q.contains("PROCESSLIST") {
            Some((
                &["Id", "Host", "Command"],
                vec![
                    vec!["1".into(), "localhost".into(), "Daemon".into()],
                    vec!["8".into(), "127.0.0.1:40000".into(), "Query".into()],
                ],
            ))
        } else if q.starts_with("SHOW") || q.starts_with("SELECT") {
            // SHOW ALL SLAVES STATUS, SHOW SLAVE HOSTS, anything else read: nothing.
            Some((&["v"], Vec::new()))
        } else {
            None
        }
    }

    /// Serves one client connection until it quits or goes away.
    async fn serve(&self, mut stream: TcpStream) -> std::io::Result<()> {
        stream.set_nodelay(true)?;
        let mut out = Packets::default();
        out.handshake(self.server_id);
        stream.write_all(&out.take()).await?;
        // The client's handshake response (any account and password are welcome).
        let (seq, _) = read_packet(&mut stream).await?;
        out.seq = seq.wrapping_add(1);
        out.ok(false);
        stream.write_all(&out.take()).await?;
        loop {
            let (_, payload) = read_packet(&mut stream).await?;
            out.seq = 1;
            match payload.first() {
                Some(0x03) => {
                    let sql = String::from_utf8_lossy(&payload[1..]);
                    // Several statements in one request (the probe sends its four at
                    // once): one result set each, all but the last saying more follow.
                    let statements: Vec<&str> = sql
                        .split(';')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .collect();
                    if statements.is_empty() {
                        out.ok(false);
                    }
                    for (i, q) in statements.iter().enumerate() {
                        let more = i + 1 < statements.len();
                        match self.answer(q) {
                            Some((columns, rows)) => out.result_set(columns, &rows, more),
                            None => out.ok(more),
                        }
                    }
                }
                Some(0x01) | None => return Ok(()),
                // COM_PING, COM_INIT_DB, anything else: fine.
                Some(_) => out.ok(false),
            }
            stream.write_all(&out.take()).await?;
        }
    }
}

const VERSION: &str = "10.11.19-MariaDB-simulated";
/// SERVER_STATUS_AUTOCOMMIT.
const AUTOCOMMIT: u16 = 0x0002;
/// SERVER_MORE_RESULTS_EXISTS.
const MORE_RESULTS: u16 = 0x0008;

/// Reads one packet: its sequence id and payload.
async fn read_packet(stream: &mut TcpStream) -> std::io::Result<(u8, Vec<u8>)> {
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).await?;
    let len = usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16;
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).await?;
    Ok((header[3], payload))
}

/// Packets being written, with their sequence ids.
#[derive(Default)]
struct Packets {
    buf: Vec<u8>,
    seq: u8,
}

impl Packets {
    fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }

    fn packet(&mut self, payload: &[u8]) {
        let len = payload.len();
        self.buf
            .extend_from_slice(&[len as u8, (len >> 8) as u8, (len >> 16) as u8, self.seq]);
        self.buf.extend_from_slice(payload);
        self.seq = self.seq.wrapping_add(1);
    }

    /// Protocol::HandshakeV10 offering mysql_native_password, multi-statements and
    /// multi-results, and classic EOF packets (no CLIENT_DEPRECATE_EOF).
    fn handshake(&mut self, connection_id: u32) {
        const CAPS: u32 = 0x0000_0001 // CLIENT_LONG_PASSWORD
            | 0x0000_0004 // CLIENT_LONG_FLAG
            | 0x0000_0008 // CLIENT_CONNECT_WITH_DB
            | 0x0000_0200 // CLIENT_PROTOCOL_41
            | 0x0000_2000 // CLIENT_TRANSACTIONS
            | 0x0000_8000 // CLIENT_SECURE_CONNECTION
            | 0x0001_0000 // CLIENT_MULTI_STATEMENTS
            | 0x0002_0000 // CLIENT_MULTI_RESULTS
            | 0x0008_0000; // CLIENT_PLUGIN_AUTH
        let mut p = vec![0x0a];
        p.extend_from_slice(VERSION.as_bytes());
        p.push(0);
        p.extend_from_slice(&connection_id.to_le_bytes());
        p.extend_from_slice(b"abcdefgh");
        p.push(0);
        p.extend_from_slice(&(CAPS as u16).to_le_bytes());
        p.push(0x21); // utf8_general_ci
        p.extend_from_slice(&AUTOCOMMIT.to_le_bytes());
        p.extend_from_slice(&((CAPS >> 16) as u16).to_le_bytes());
        p.push(21); // length of the auth plugin data
        p.extend_from_slice(&[0; 10]);
        p.extend_from_slice(b"ijklmnopqrst");
        p.push(0);
        p.extend_from_slice(b"mysql_native_password\0");
        self.seq = 0;
        self.packet(&p);
    }

    fn ok(&mut self, more: bool) {
        let status = AUTOCOMMIT | if more { MORE_RESULTS } else { 0 };
        let mut p = vec![0x00, 0, 0];
        p.extend_from_slice(&status.to_le_bytes());
        p.extend_from_slice(&[0, 0]);
        self.packet(&p);
    }

    fn eof(&mut self, more: bool) {
        let status = AUTOCOMMIT | if more { MORE_RESULTS } else { 0 };
        let mut p = vec![0xfe, 0, 0];
        p.extend_from_slice(&status.to_le_bytes());
        self.packet(&p);
    }

    /// A text result set: column count, definitions, EOF, rows, EOF.
    fn result_set(&mut self, columns: &[&str], rows: &[Vec<String>], more: bool) {
        self.packet(&[columns.len() as u8]);
        for name in columns {
            let mut p = Vec::new();
            for s in ["def", "", "", ""] {
                lenenc_str(&mut p, s);
            }
            lenenc_str(&mut p, name);
            lenenc_str(&mut p, name);
            p.push(0x0c);
            p.extend_from_slice(&0x21u16.to_le_bytes());
            p.extend_from_slice(&1024u32.to_le_bytes());
            p.push(0xfd); // VAR_STRING
            p.extend_from_slice(&0u16.to_le_bytes());
            p.push(0);
            p.extend_from_slice(&[0, 0]);
            self.packet(&p);
        }
        self.eof(false);
        for row in rows {
            let mut p = Vec::new();
            for v in row {
                lenenc_str(&mut p, v);
            }
            self.packet(&p);
        }
        self.eof(more);
    }
}

/// A length-encoded string (lengths under 2^16 are all this server writes).
fn lenenc_str(p: &mut Vec<u8>, s: &str) {
    let len = s.len();
    if len < 251 {
        p.push(len as u8);
    } else {
        p.push(0xfc);
        p.extend_from_slice(&(len as u16).to_le_bytes());
    }
    p.extend_from_slice(s.as_bytes());
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let out = args.next().unwrap_or_else(|| "fleet.txt".to_string());
    let n: u32 = args.next().unwrap_or_else(|| "1000".into()).parse()?;
    let mut variables = vertical(VARIABLES);
    // What the recorded replica's listing lacks of what the probe asks.
    for (n, v) in [
        ("gtid_current_pos", ""),
        ("gtid_binlog_pos", ""),
        ("wsrep_on", "OFF"),
        ("datadir", "/var/lib/mysql/"),
    ] {
        variables.push((n.to_string(), v.to_string()));
    }
    let fleet = Arc::new(Fleet {
        status: vertical(STATUS),
        variables,
        started: Instant::now(),
    });
    let pw_file = format!("{out}.pw");
    std::fs::write(&pw_file, "simulated\n")?;
    let mut lines = Vec::new();
    for i in 0..n {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        lines.push(format!("127.0.0.1:{port} nines {pw_file}"));
        let fleet = Arc::clone(&fleet);
        let server = Arc::new(Server {
            fleet: Arc::clone(&fleet),
            server_id: 1000 + i,
            port,
        });
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let server = Arc::clone(&server);
                tokio::spawn(async move {
                    // A client that goes away ends its connection; nothing to report.
                    let _ = server.serve(stream).await;
                });
            }
        });
    }
    let tmp = format!("{out}.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    writeln!(f, "{}", lines.join("\n"))?;
    drop(f);
    std::fs::rename(&tmp, &out)?;
    eprintln!("simulated fleet ready: {n} servers");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
