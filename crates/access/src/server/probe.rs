//! The monitor's probe of one server: a handful of cheap queries that together fill a
//! [`ServerSample`], in the dialect of the server's flavor (MariaDB or MySQL).
//!
//! A [`Prober`] keeps its connection between probes (reconnecting when it is lost), so
//! that a probe costs a few round trips rather than a handshake.

use std::time::Instant;

use chrono::Utc;
use nines_model::Endpoint;
use nines_model::replication::{Flavor, ServerVersion};
use nines_model::snapshot::{NodeSnapshot, ProbeError, ServerSample};

use super::conn::{Credentials, ResultSet, ServerConn, ServerError, Timeouts};

/// The connections that feed replicas (the primary side of replication).
const DUMPS_SQL: &str = "SELECT ID AS Id, HOST AS Host, COMMAND AS Command FROM information_schema.PROCESSLIST \
     WHERE COMMAND LIKE 'Binlog Dump%'";
use super::parse;

/// SHOW GLOBAL STATUS counters and gauges the monitor keeps (wsrep_% comes along too).
pub const STATUS_VARIABLES: &[&str] = &[
    "Uptime",
    "Questions",
    "Queries",
    "Com_select",
    "Com_insert",
    "Com_update",
    "Com_delete",
    "Com_commit",
    "Connections",
    "Aborted_connects",
    "Aborted_clients",
    "Threads_connected",
    "Threads_running",
    "Slow_queries",
    "Bytes_received",
    "Bytes_sent",
    "Innodb_rows_read",
    "Innodb_rows_inserted",
    "Innodb_rows_updated",
    "Innodb_rows_deleted",
    "Innodb_buffer_pool_read_requests",
    "Innodb_buffer_pool_reads",
    "Innodb_buffer_pool_pages_total",
    "Innodb_buffer_pool_pages_free",
    "Innodb_buffer_pool_pages_dirty",
    "Innodb_data_read",
    "Innodb_data_written",
    "Innodb_os_log_written",
    "Innodb_row_lock_waits",
    "Created_tmp_disk_tables",
    "Select_full_join",
    // Semi-synchronous replication, primary side (MariaDB and MySQL < 8.0.26 spelling,
    // then MySQL's newer one). The *_status ones are ON/OFF, kept as 1/0.
    "Rpl_semi_sync_master_status",
    "Rpl_semi_sync_master_clients",
    "Rpl_semi_sync_master_yes_tx",
    "Rpl_semi_sync_master_no_tx",
    "Rpl_semi_sync_source_status",
    "Rpl_semi_sync_source_clients",
    "Rpl_semi_sync_source_yes_tx",
    "Rpl_semi_sync_source_no_tx",
    "Rpl_semi_sync_slave_status",
    "Rpl_semi_sync_replica_status",
];

/// The wsrep status the probe reads (`parse::parse_wsrep`).
const WSREP_STATUS: &[&str] = &[
    "wsrep_provider_name",
    "wsrep_ready",
    "wsrep_connected",
    "wsrep_local_state_comment",
    "wsrep_cluster_status",
    "wsrep_cluster_size",
    "wsrep_cluster_state_uuid",
    "wsrep_last_committed",
    "wsrep_incoming_addresses",
    "wsrep_local_recv_queue",
    "wsrep_flow_control_paused",
];

const VARIABLES: &[&str] = &[
    "server_id",
    "read_only",
    "super_read_only",
    "log_bin",
    "log_slave_updates",
    "log_replica_updates",
    "hostname",
    "port",
    "report_host",
    "gtid_current_pos",
    "gtid_binlog_pos",
    "gtid_executed",
    "wsrep_on",
    "wsrep_provider",
    "wsrep_cluster_name",
    "wsrep_node_address",
    "datadir",
];

fn in_list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("'{}'", n.to_ascii_lowercase()))
        .collect::<Vec<_>>()
        .join(",")
}

/// Probes one server, keeping a connection and the server's version between probes.
#[derive(Debug)]
pub struct Prober {
    endpoint: Endpoint,
    creds: Credentials,
    timeouts: Timeouts,
    conn: Option<ServerConn>,
    version: Option<ServerVersion>,
    status_sql: String,
    variables_sql: String,
}

impl Prober {
    pub fn new(endpoint: Endpoint, creds: Credentials, timeouts: Timeouts) -> Self {
        Self {
            endpoint,
            creds,
            timeouts,
            conn: None,
            version: None,
            // Named, not `LIKE 'wsrep\_%'`: a Galera node has some seventy wsrep
            // counters, and the probe reads these every second.
            status_sql: format!(
                "SHOW GLOBAL STATUS WHERE LOWER(Variable_name) IN ({},{})",
                in_list(STATUS_VARIABLES),
                in_list(WSREP_STATUS)
            ),
            variables_sql: format!(
                "SHOW GLOBAL VARIABLES WHERE LOWER(Variable_name) IN ({})",
                in_list(VARIABLES)
            ),
        }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// One probe: a snapshot with a sample or a classified error. Never panics, never hangs.
    pub async fn probe(&mut self) -> NodeSnapshot {
        let started = Instant::now();
        let at = Utc::now();
        let result = match self.sample().await {
            Ok(s) => Ok(s),
            // `sample` already dropped a lost connection (without a polite close: the peer may be gone).
            Err(e) => Err(ProbeError {
                kind: e.kind(),
                message: e.to_string(),
            }),
        };
        NodeSnapshot {
            endpoint: self.endpoint.clone(),
            at,
            latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            result,
        }
    }

    /// Takes a sample, reconnecting first when needed. Errors leave the prober ready to retry.
    pub async fn sample(&mut self) -> Result<ServerSample, ServerError> {
        let reused = self.conn.is_some();
        match self.sample_once().await {
            // The kept connection broke (server restarted or killed): find out at once what
            // a fresh connection says, so a dead server reads as "refused" on this probe.
            Err(ServerError::Connect { .. }) if reused => self.sample_once().await,
            other => other,
        }
    }

    async fn sample_once(&mut self) -> Result<ServerSample, ServerError> {
        if self.conn.is_none() {
            let conn = ServerConn::connect(&self.endpoint, &self.creds, self.timeouts).await?;
            self.conn = Some(conn);
            // A new connection may reach a restarted (perhaps upgraded) server.
            self.version = None;
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(ServerError::Connect {
                addr: self.endpoint.to_string(),
                message: "no connection".into(),
            });
        };
        let result = read_sample(
            conn,
            &mut self.version,
            &self.status_sql,
            &self.variables_sql,
        )
        .await;
        // Any failure drops the connection: besides a lost one, a connection opened
        // between an account's creation and its GRANT keeps the global privileges it
        // had when it connected (MariaDB applies them at connect), so only a new one
        // sees the grant.
        if result.is_err()
            && let Some(conn) = self.conn.take()
            && !result.as_ref().is_err_and(ServerError::is_connection_lost)
        {
            conn.close().await;
        }
        result
    }

    /// Drops the connection (the next probe reconnects).
    pub async fn disconnect(&mut self) {
        if let Some(c) = self.conn.take() {
            c.close().await;
        }
    }
}

async fn read_sample(
    conn: &mut ServerConn,
    version_cache: &mut Option<ServerVersion>,
    status_sql: &str,
    variables_sql: &str,
) -> Result<ServerSample, ServerError> {
    let version = match version_cache {
        Some(v) => v.clone(),
        None => {
            let rows = conn
                .query_rows("SELECT VERSION() AS v, @@version_comment AS c")
                .await?;
            let row = rows.into_iter().next().unwrap_or_default();
            let v = parse::parse_version(
                row.get("v").cloned().flatten().as_deref().unwrap_or(""),
                row.get("c").cloned().flatten().as_deref().unwrap_or(""),
            );
            *version_cache = Some(v.clone());
            v
        }
    };
    // The four statements in one round trip.
    let replica_sql = replica_status_sql(&version);
    let batch = format!("{variables_sql}; {status_sql}; {replica_sql}; {DUMPS_SQL}");
    let sets = conn.query_sets(&batch).await?;
    let [vars, status, replicas, dumps]: [ResultSet; 4] =
        sets.try_into()
            .map_err(|sets: Vec<ResultSet>| ServerError::Query {
                addr: conn.addr().to_string(),
                code: 0,
                message: format!(
                    "the probe's four statements returned {} result sets",
                    sets.len()
                ),
            })?;
    let (vars, status) = (vars.into_vars(), status.into_vars());
    let replica_rows = replicas.into_rows();
    let replication =
        parse::parse_replica_status(&replica_rows).map_err(|e| ServerError::Query {
            addr: conn.addr().to_string(),
            code: 0,
            message: format!("cannot read {replica_sql}: {e}"),
        })?;
    let binlog_dump_clients = parse::parse_processlist_binlog_dumps(&dumps.into_rows());

    let wsrep_vars_on = parse::var_bool(&vars, "wsrep_on").unwrap_or(false);
    let wsrep = if wsrep_vars_on {
        Some(parse::parse_wsrep(&status, &vars))
    } else {
        None
    };
    let gtid_executed = match version.flavor {
        Flavor::MariaDb => vars.get("gtid_current_pos").cloned().unwrap_or_default(),
        Flavor::MySql => vars.get("gtid_executed").cloned().unwrap_or_default(),
    };
    let gtid_binlog_pos = match version.flavor {
        Flavor::MariaDb => vars.get("gtid_binlog_pos").cloned().unwrap_or_default(),
        Flavor::MySql => gtid_executed.clone(),
    };
    let counters = STATUS_VARIABLES
        .iter()
        .filter_map(|n| {
            parse::status_counter(&status, n)
                .or_else(|| parse::var_bool(&status, n).map(u64::from))
                .map(|v| ((*n).to_string(), v))
        })
        .collect();
    let hostname = vars
        .get("report_host")
        .filter(|h| !h.is_empty())
        .or_else(|| vars.get("hostname"))
        .cloned()
        .unwrap_or_default();
    Ok(ServerSample {
        server_id: vars
            .get("server_id")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        read_only: parse::var_bool(&vars, "read_only").unwrap_or(false),
        super_read_only: parse::var_bool(&vars, "super_read_only"),
        log_bin: parse::var_bool(&vars, "log_bin").unwrap_or(false),
        log_slave_updates: parse::var_bool(&vars, "log_slave_updates")
            .or_else(|| parse::var_bool(&vars, "log_replica_updates"))
            .unwrap_or(false),
        gtid_executed: one_line(&gtid_executed),
        gtid_binlog_pos: one_line(&gtid_binlog_pos),
        replication,
        wsrep,
        binlog_dump_clients,
        uptime_seconds: parse::status_counter(&status, "Uptime").unwrap_or(0),
        status: counters,
        hostname,
        port: vars.get("port").and_then(|v| v.parse().ok()).unwrap_or(0),
        datadir: vars.get("datadir").cloned().unwrap_or_default(),
        version,
    })
}

/// The statement that lists a server's replication channels, by flavor and version.
pub fn replica_status_sql(version: &ServerVersion) -> &'static str {
    match version.flavor {
        Flavor::MariaDb => "SHOW ALL SLAVES STATUS",
        Flavor::MySql if (version.major, version.minor, version.patch) >= (8, 0, 22) => {
            "SHOW REPLICA STATUS"
        }
        Flavor::MySql => "SHOW SLAVE STATUS",
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join("")
}
