//! A simulated fleet for the monitoring benchmark (bench/monitor.sh --simulated N): N
//! lightweight fake MariaDB servers on loopback ports, each speaking enough of the MySQL
//! protocol (opensrv-mysql) to answer what the monitor's probe and an import ask: the
//! version, the variables and status counters it names (taken from a real MariaDB 10.11's
//! recorded output, filtered as the server would filter them), an empty replica status,
//! the process list. Every server is a standalone primary with its own server_id.
//!
//! Writes one seed per line to the file given as first argument (`SEED USER
//! PASSWORD_FILE`, the password file beside it) and runs until interrupted.
//!
//! Usage: bench_sim_fleet OUT N

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, LazyLock};
use std::time::Instant;

use opensrv_mysql::{
    AsyncMysqlIntermediary, AsyncMysqlShim, Column, ColumnFlags, ColumnType, OkResponse,
    ParamParser, QueryResultWriter, StatementMetaWriter,
};
use tokio::io::AsyncWrite;
use tokio::net::TcpListener;

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

fn column(name: &str) -> Column {
    Column {
        table: String::new(),
        column: name.to_string(),
        coltype: ColumnType::MYSQL_TYPE_VAR_STRING,
        colflags: ColumnFlags::empty(),
    }
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
    fn answer(&self, q: &str) -> Option<(&'static [Column], Vec<Vec<String>>)> {
        let pairs = |v: Vec<(String, String)>| -> Vec<Vec<String>> {
            v.into_iter().map(|(n, v)| vec![n, v]).collect()
        };
        if q.starts_with("SELECT VERSION()") {
            Some((
                &VERSION_COLUMNS,
                vec![vec![
                    "10.11.19-MariaDB-simulated".into(),
                    "nines simulated server".into(),
                ]],
            ))
        } else if q.starts_with("SHOW GLOBAL STATUS") {
            Some((&VAR_COLUMNS, pairs(self.filtered(q, &self.fleet.status))))
        } else if q.starts_with("SHOW GLOBAL VARIABLES") {
            Some((&VAR_COLUMNS, pairs(self.filtered(q, &self.fleet.variables))))
        } else if q.contains("PROCESSLIST") {
            Some((
                &PROCESS_COLUMNS,
                vec![
                    vec!["1".into(), "localhost".into(), "Daemon".into()],
                    vec!["8".into(), "127.0.0.1:40000".into(), "Query".into()],
                ],
            ))
        } else if q.starts_with("SHOW") || q.starts_with("SELECT") {
            // SHOW ALL SLAVES STATUS, SHOW SLAVE HOSTS, anything else read: nothing.
            Some((&EMPTY_COLUMNS, Vec::new()))
        } else {
            None
        }
    }
}

fn columns(names: &[&str]) -> Vec<Column> {
    names.iter().map(|c| column(c)).collect()
}

static VERSION_COLUMNS: LazyLock<Vec<Column>> = LazyLock::new(|| columns(&["v", "c"]));
static VAR_COLUMNS: LazyLock<Vec<Column>> = LazyLock::new(|| columns(&["Variable_name", "Value"]));
static PROCESS_COLUMNS: LazyLock<Vec<Column>> =
    LazyLock::new(|| columns(&["Id", "Host", "Command"]));
static EMPTY_COLUMNS: LazyLock<Vec<Column>> = LazyLock::new(|| columns(&["v"]));

#[async_trait::async_trait]
impl<W: AsyncWrite + Send + Unpin> AsyncMysqlShim<W> for Server {
    type Error = std::io::Error;

    fn version(&self) -> String {
        "10.11.19-MariaDB-simulated".to_string()
    }

    async fn on_prepare<'a>(
        &'a mut self,
        _: &'a str,
        info: StatementMetaWriter<'a, W>,
    ) -> std::io::Result<()> {
        info.reply(1, &[], &[]).await
    }

    async fn on_execute<'a>(
        &'a mut self,
        _: u32,
        _: ParamParser<'a>,
        results: QueryResultWriter<'a, W>,
    ) -> std::io::Result<()> {
        results.completed(OkResponse::default()).await
    }

    async fn on_close(&mut self, _: u32) {}

    async fn on_query<'a>(
        &'a mut self,
        query: &'a str,
        results: QueryResultWriter<'a, W>,
    ) -> std::io::Result<()> {
        // Several statements in one request (the probe sends its four at once): one
        // result set each.
        let statements: Vec<&str> = query
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let mut w = results;
        for (i, q) in statements.iter().enumerate() {
            let last = i + 1 == statements.len();
            match self.answer(q) {
                Some((cols, rows)) => {
                    let mut rw = w.start(cols).await?;
                    for row in &rows {
                        rw.write_row(row.iter().map(String::as_str)).await?;
                    }
                    if last {
                        return rw.finish().await;
                    }
                    w = rw.finish_one().await?;
                }
                None if last => return w.completed(OkResponse::default()).await,
                None => w = w.complete_one(OkResponse::default()).await?,
            }
        }
        w.completed(OkResponse::default()).await
    }
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
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let server = Server {
                    fleet: Arc::clone(&fleet),
                    server_id: 1000 + i,
                    port,
                };
                tokio::spawn(async move {
                    let (r, w) = stream.into_split();
                    let _ = AsyncMysqlIntermediary::run_on(server, r, w).await;
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
