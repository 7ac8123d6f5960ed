//! A GTID primary with asynchronous replicas.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use futures::future::try_join_all;
use mysql_async::Row;

use crate::lease::lease_addresses;
use crate::mariadb::{MARIADB_PORT, MariaDbServer, ServerOptions, sql_quote};
use crate::util::{random_password, wait_until};

/// How long replicas get to report both replication threads running.
const REPLICATING_TIMEOUT: Duration = Duration::from_secs(60);

/// The replication account created on every node.
const REPL_USER: &str = "repl";

/// A GTID primary and `n` replicas (`read_only=ON`), all real servers.
///
/// Every replica replicates from the primary with `MASTER_USE_GTID=slave_pos`,
/// `MASTER_HEARTBEAT_PERIOD=1` and `slave_net_timeout=4` (a dead primary is
/// noticed within seconds). With `chained`, the last replica replicates from
/// the first replica instead (`primary -> r1 -> r2`). The replication account
/// exists on every node (created with `sql_log_bin=0`, so no node has GTIDs
/// of its own), which lets tests re-point replicas and promote one.
///
/// All nodes share the admin password. Dropping the topology kills all nodes.
#[derive(Debug)]
pub struct ReplicationTopology {
    /// `nodes[0]` is the primary, then the replicas in order.
    nodes: Vec<MariaDbServer>,
    /// For each replica (by replica index), the node index it replicates from.
    sources: Vec<usize>,
    repl_password: String,
}

impl ReplicationTopology {
    /// Starts a primary and `replicas` replicas (in parallel) and waits until
    /// every replica's IO and SQL threads run. `chained` (needs at least two
    /// replicas; ignored otherwise) makes the last replica replicate from the
    /// first one.
    pub async fn start(replicas: usize, chained: bool) -> Result<ReplicationTopology> {
        let leases = tokio::task::spawn_blocking(move || lease_addresses(replicas + 1))
            .await
            .context("join lease task")??;
        let password = random_password(20);
        let starts = leases.into_iter().enumerate().map(|(i, lease)| {
            let opts = ServerOptions::new()
                .lease(lease)
                .password(password.clone())
                .read_only(i > 0);
            MariaDbServer::start(opts)
        });
        let nodes = try_join_all(starts).await?;
        let sources: Vec<usize> = (1..=replicas)
            .map(|r| {
                if chained && replicas >= 2 && r == replicas {
                    1
                } else {
                    0
                }
            })
            .collect();
        let topo = ReplicationTopology {
            nodes,
            sources,
            repl_password: random_password(20),
        };
        let create_repl = format!(
            "SET sql_log_bin=0; \
             CREATE USER IF NOT EXISTS '{REPL_USER}'@'%' IDENTIFIED BY {pw}; \
             GRANT REPLICATION SLAVE, REPLICATION SLAVE ADMIN, BINLOG MONITOR ON *.* TO '{REPL_USER}'@'%'; \
             SET sql_log_bin=1",
            pw = sql_quote(&topo.repl_password)
        );
        try_join_all(topo.nodes.iter().map(|n| n.exec(&create_repl))).await?;
        for (r, &source) in topo.sources.iter().enumerate() {
            topo.point_replica_at(&topo.nodes[r + 1], &topo.nodes[source])
                .await?;
        }
        topo.wait_replicating(REPLICATING_TIMEOUT).await?;
        Ok(topo)
    }

    /// The primary.
    pub fn primary(&self) -> &MariaDbServer {
        &self.nodes[0]
    }

    /// The replicas, in order.
    pub fn replicas(&self) -> &[MariaDbServer] {
        &self.nodes[1..]
    }

    /// Replica `i` (0-based).
    pub fn replica(&self, i: usize) -> &MariaDbServer {
        &self.nodes[i + 1]
    }

    /// All nodes: the primary first, then the replicas.
    pub fn nodes(&self) -> &[MariaDbServer] {
        &self.nodes
    }

    /// The node replica `i` was set up to replicate from.
    pub fn source_of(&self, i: usize) -> &MariaDbServer {
        &self.nodes[self.sources[i]]
    }

    /// The replication user (`repl`), present on every node.
    pub fn repl_user(&self) -> &str {
        REPL_USER
    }

    /// The replication user's password.
    pub fn repl_password(&self) -> &str {
        &self.repl_password
    }

    /// Makes `replica` replicate from `source` (GTID `slave_pos`, heartbeat
    /// 1 s, connect retry 1 s) and starts replication. Does not wait.
    pub async fn point_replica_at(
        &self,
        replica: &MariaDbServer,
        source: &MariaDbServer,
    ) -> Result<()> {
        let sql = format!(
            "STOP SLAVE; \
             CHANGE MASTER TO MASTER_HOST={host}, MASTER_PORT={MARIADB_PORT}, \
             MASTER_USER='{REPL_USER}', MASTER_PASSWORD={pw}, \
             MASTER_USE_GTID=slave_pos, MASTER_HEARTBEAT_PERIOD=1, MASTER_CONNECT_RETRY=1; \
             START SLAVE",
            host = sql_quote(&source.address()),
            pw = sql_quote(&self.repl_password),
        );
        replica
            .exec(&sql)
            .await
            .with_context(|| format!("pointing {} at {}", replica.endpoint(), source.endpoint()))
    }

    /// Waits until every replica reports `Slave_IO_Running=Yes` and
    /// `Slave_SQL_Running=Yes`.
    pub async fn wait_replicating(&self, timeout: Duration) -> Result<()> {
        for replica in self.replicas() {
            wait_until(
                timeout,
                &format!("replication threads on {}", replica.endpoint()),
                || async move {
                    let status = slave_status(replica).await?;
                    if status.io_running == "Yes" && status.sql_running == "Yes" {
                        Ok(Some(()))
                    } else {
                        Err(anyhow!(
                            "Slave_IO_Running={} Slave_SQL_Running={} Last_IO_Error={:?} Last_SQL_Error={:?}",
                            status.io_running,
                            status.sql_running,
                            status.last_io_error,
                            status.last_sql_error
                        ))
                    }
                },
            )
            .await?;
        }
        Ok(())
    }

    /// Waits until every replica has applied everything the primary had
    /// written when this was called (`MASTER_GTID_WAIT` on its GTID position).
    pub async fn sync_replicas(&self, timeout: Duration) -> Result<()> {
        let pos = self
            .primary()
            .global_variable("gtid_binlog_pos")
            .await?
            .unwrap_or_default();
        let secs = timeout.as_secs_f64();
        for replica in self.replicas() {
            let res: Option<i64> = replica
                .query_first(&format!(
                    "SELECT MASTER_GTID_WAIT({}, {secs})",
                    sql_quote(&pos)
                ))
                .await?;
            if res != Some(0) {
                bail!(
                    "{} did not reach GTID {pos:?} within {timeout:?}",
                    replica.endpoint()
                );
            }
        }
        Ok(())
    }
}

struct SlaveStatus {
    io_running: String,
    sql_running: String,
    last_io_error: String,
    last_sql_error: String,
}

async fn slave_status(replica: &MariaDbServer) -> Result<SlaveStatus> {
    let row: Row = replica
        .query_first("SHOW SLAVE STATUS")
        .await?
        .ok_or_else(|| anyhow!("{} has no replication configured", replica.endpoint()))?;
    let get = |name: &str| -> String {
        row.get_opt::<Option<String>, _>(name)
            .and_then(Result::ok)
            .flatten()
            .unwrap_or_default()
    };
    Ok(SlaveStatus {
        io_running: get("Slave_IO_Running"),
        sql_running: get("Slave_SQL_Running"),
        last_io_error: get("Last_IO_Error"),
        last_sql_error: get("Last_SQL_Error"),
    })
}
