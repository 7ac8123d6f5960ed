//! One connection to one database server, with every connect and query under a timeout,
//! and errors classified the way the monitor and failover need them (refused, timeout, auth).

use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Value};
use nines_model::Endpoint;
use nines_model::snapshot::ProbeErrorKind;

use super::parse::{Row, VarMap};

/// Credentials of a database account. `Debug` hides the password.
#[derive(Clone)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, ***)", self.user)
    }
}

/// Timeouts of a connection.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub query: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(2),
            query: Duration::from_secs(5),
        }
    }
}

/// Why talking to a server failed. Every message names the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("{addr}: connection refused (is the server running?)")]
    Refused { addr: String },
    #[error("{addr}: no answer to {what} within {after:?}")]
    Timeout {
        addr: String,
        what: String,
        after: Duration,
    },
    #[error("{addr}: access denied for user `{user}` (wrong user or password)")]
    Auth { addr: String, user: String },
    #[error("{addr}: cannot connect: {message}")]
    Connect { addr: String, message: String },
    #[error("{addr}: query failed: {message}")]
    Query {
        addr: String,
        code: u16,
        message: String,
    },
}

impl ServerError {
    /// The probe error kind this error maps to.
    pub fn kind(&self) -> ProbeErrorKind {
        match self {
            Self::Refused { .. } => ProbeErrorKind::Refused,
            Self::Timeout { .. } => ProbeErrorKind::Timeout,
            Self::Auth { .. } => ProbeErrorKind::Auth,
            Self::Connect { .. } | Self::Query { .. } => ProbeErrorKind::Other,
        }
    }

    /// True when the connection is unusable after this error.
    pub fn is_connection_lost(&self) -> bool {
        !matches!(self, Self::Query { .. })
    }
}

fn classify(addr: &str, user: &str, e: mysql_async::Error) -> ServerError {
    use mysql_async::{DriverError, Error, IoError};
    match e {
        Error::Io(IoError::Io(io)) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => ServerError::Refused {
                addr: addr.to_string(),
            },
            std::io::ErrorKind::TimedOut => ServerError::Timeout {
                addr: addr.to_string(),
                what: "connect".into(),
                after: Duration::ZERO,
            },
            _ => ServerError::Connect {
                addr: addr.to_string(),
                message: io.to_string(),
            },
        },
        Error::Server(s) if s.code == 1045 || s.code == 1044 || s.code == 1698 => {
            ServerError::Auth {
                addr: addr.to_string(),
                user: user.to_string(),
            }
        }
        Error::Server(s) => ServerError::Query {
            addr: addr.to_string(),
            code: s.code,
            message: s.message,
        },
        Error::Driver(DriverError::ConnectionClosed) => ServerError::Connect {
            addr: addr.to_string(),
            message: "connection closed by the server".into(),
        },
        other => ServerError::Connect {
            addr: addr.to_string(),
            message: other.to_string(),
        },
    }
}

/// An open connection to one server.
pub struct ServerConn {
    addr: String,
    user: String,
    conn: Conn,
    timeouts: Timeouts,
}

impl std::fmt::Debug for ServerConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServerConn({})", self.addr)
    }
}

impl ServerConn {
    /// Connects under the connect timeout.
    pub async fn connect(
        endpoint: &Endpoint,
        creds: &Credentials,
        timeouts: Timeouts,
    ) -> Result<Self, ServerError> {
        let addr = endpoint.to_string();
        let opts = OptsBuilder::default()
            .ip_or_hostname(endpoint.host.clone())
            .tcp_port(endpoint.port)
            .user(Some(creds.user.clone()))
            .pass(Some(creds.password.clone()))
            .prefer_socket(false)
            .tcp_nodelay(true)
            .tcp_keepalive(Some(Duration::from_secs(10)))
            .stmt_cache_size(0);
        let conn = match tokio::time::timeout(timeouts.connect, Conn::new(opts)).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(classify(&addr, &creds.user, e)),
            Err(_) => {
                return Err(ServerError::Timeout {
                    addr,
                    what: "connect".into(),
                    after: timeouts.connect,
                });
            }
        };
        Ok(Self {
            addr,
            user: creds.user.clone(),
            conn,
            timeouts,
        })
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Runs a statement (text protocol) and returns its rows by column name.
    pub async fn query_rows(&mut self, sql: &str) -> Result<Vec<Row>, ServerError> {
        let fut = self.conn.query::<mysql_async::Row, _>(sql);
        let rows = match tokio::time::timeout(self.timeouts.query, fut).await {
            Ok(Ok(rows)) => rows,
            Ok(Err(e)) => return Err(classify(&self.addr, &self.user, e)),
            Err(_) => {
                return Err(ServerError::Timeout {
                    addr: self.addr.clone(),
                    what: short(sql),
                    after: self.timeouts.query,
                });
            }
        };
        Ok(rows.into_iter().map(to_named_row).collect())
    }

    /// Runs a SHOW … STATUS/VARIABLES statement: Variable_name → Value.
    pub async fn query_vars(&mut self, sql: &str) -> Result<VarMap, ServerError> {
        let mut sets = self.query_sets(sql).await?;
        Ok(sets.pop().map(ResultSet::into_vars).unwrap_or_default())
    }

    /// Runs statements separated by `;` in one round trip (text protocol) and returns
    /// their result sets in order: one request instead of one per statement (the monitor
    /// probes every node every second with four).
    pub async fn query_sets(&mut self, sql: &str) -> Result<Vec<ResultSet>, ServerError> {
        let conn = &mut self.conn;
        let fut = async move {
            let mut result = conn.query_iter(sql).await?;
            let mut sets = Vec::new();
            while !result.is_empty() {
                sets.push(ResultSet(result.collect::<mysql_async::Row>().await?));
            }
            Ok::<_, mysql_async::Error>(sets)
        };
        match tokio::time::timeout(self.timeouts.query, fut).await {
            Ok(Ok(sets)) => Ok(sets),
            Ok(Err(e)) => Err(classify(&self.addr, &self.user, e)),
            Err(_) => Err(ServerError::Timeout {
                addr: self.addr.clone(),
                what: short(sql),
                after: self.timeouts.query,
            }),
        }
    }

    /// Runs statements that return no rows.
    pub async fn exec(&mut self, sql: &str) -> Result<(), ServerError> {
        let fut = self.conn.query_drop(sql);
        match tokio::time::timeout(self.timeouts.query, fut).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(classify(&self.addr, &self.user, e)),
            Err(_) => Err(ServerError::Timeout {
                addr: self.addr.clone(),
                what: short(sql),
                after: self.timeouts.query,
            }),
        }
    }

    /// Closes the connection politely, giving up after the query timeout.
    pub async fn close(self) {
        let _ = tokio::time::timeout(self.timeouts.query, self.conn.disconnect()).await;
    }
}

fn short(sql: &str) -> String {
    let s: String = sql.chars().take(60).collect();
    format!("`{s}`")
}

/// The rows of one statement of [`ServerConn::query_sets`].
#[derive(Debug, Default)]
pub struct ResultSet(Vec<mysql_async::Row>);

impl ResultSet {
    /// The rows by column name.
    pub fn into_rows(self) -> Vec<Row> {
        self.0.into_iter().map(to_named_row).collect()
    }

    /// The first column of the first row, as text (None: no row, or NULL).
    pub fn first_cell(self) -> Option<String> {
        let row = self.0.into_iter().next()?;
        row.unwrap_raw()
            .into_iter()
            .next()
            .flatten()
            .and_then(value_text)
    }

    /// A SHOW … STATUS/VARIABLES result (`Variable_name`, `Value`): lower-cased name →
    /// value, read by position without building a row map per variable.
    pub fn into_vars(self) -> VarMap {
        self.0
            .into_iter()
            .filter_map(|row| {
                let mut values = row.unwrap_raw().into_iter();
                let name = values.next().flatten().and_then(value_text)?;
                let value = values
                    .next()
                    .flatten()
                    .and_then(value_text)
                    .unwrap_or_default();
                Some((name.to_ascii_lowercase(), value))
            })
            .collect()
    }
}

/// Converts a driver row into column name → text value (NULL as None).
fn to_named_row(row: mysql_async::Row) -> Row {
    let columns = row.columns();
    let values = row.unwrap_raw();
    columns
        .iter()
        .zip(values)
        .map(|(col, v)| (col.name_str().into_owned(), v.and_then(value_text)))
        .collect()
}

fn value_text(v: Value) -> Option<String> {
    match v {
        Value::NULL => None,
        // Valid UTF-8 (nearly always) keeps its buffer; anything else is repaired.
        Value::Bytes(b) => Some(
            String::from_utf8(b)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        ),
        Value::Int(i) => Some(i.to_string()),
        Value::UInt(u) => Some(u.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Double(d) => Some(d.to_string()),
        other => Some(other.as_sql(true).trim_matches('\'').to_string()),
    }
}
