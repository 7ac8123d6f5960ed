//! Replication failover, switchover and rejoin as steps on live servers.
//!
//! The decisions (which replica, is it safe) are `nines_model::ha`'s; this module carries
//! them out over plain SQL connections with nines's administration account, so that it
//! works the same on deployed and imported clusters and costs milliseconds, not the
//! seconds of a round trip through a host's shell. Every step reports to the job log
//! with what it did and how long it took; the caller records the outcome.
//!
//! Steps and their SQL, by flavor (MariaDB first; MySQL 8 in brackets):
//! * fence: `SET GLOBAL read_only=ON` [`super_read_only=ON`], then kill every client
//!   session but nines's own and the server's threads. MariaDB 10.11 has no
//!   super_read_only: accounts with READ ONLY ADMIN (SUPER) can still write to a fenced
//!   server, which is why applications must not use such accounts (docs/ha.md);
//! * stop the replicas' IO threads, so that nothing more arrives from a half-dead primary;
//! * wait for the candidate to apply what it received: `MASTER_GTID_WAIT`
//!   [`WAIT_FOR_EXECUTED_GTID_SET`], bounded;
//! * promote: `STOP SLAVE; RESET SLAVE ALL` [`STOP REPLICA; RESET REPLICA ALL`];
//! * repoint: `CHANGE MASTER TO … MASTER_USE_GTID=slave_pos` [`SOURCE_AUTO_POSITION=1`];
//! * semi-sync master side on the new primary once a replica follows it, then
//!   `read_only=OFF`, then a verifying write into `nines.heartbeat`.

use std::time::{Duration, Instant};

use futures::future::join_all;
use nines_access::server::replication::{Dialect, sql_str};
use nines_access::server::{Credentials, ServerConn, ServerError, Timeouts};
use nines_model::Endpoint;
use nines_model::gtid::GtidSet;
use nines_model::replication::Flavor;

use crate::{OpError, Reporter};

mod failover;
mod rejoin;
mod switchover;

pub use failover::failover;
pub use rejoin::{rejoin, roll_back};
pub use switchover::switchover;

/// What the steps need to reach the servers.
#[derive(Clone)]
pub struct ReplicationAccess {
    pub flavor: Flavor,
    /// nines's administration account (all privileges).
    pub admin: Credentials,
    /// The account replicas connect to their source with; None for an imported cluster
    /// whose replication password nines does not know (a repointed replica keeps the
    /// account it had).
    pub replication: Option<Credentials>,
    /// Timeouts of the steps' connections: short, since a failover waits on them.
    pub timeouts: Timeouts,
    /// Whether the cluster uses semi-synchronous replication.
    pub semi_sync: bool,
}

impl std::fmt::Debug for ReplicationAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReplicationAccess({:?})", self.flavor)
    }
}

/// What a failover or switchover did, for the journal and the store.
#[derive(Debug, Clone)]
pub struct PromotionOutcome {
    pub new_primary: Endpoint,
    /// The new primary's executed set when it was promoted (before any new write): the
    /// rejoin check of the old primary compares against it.
    pub promoted_at: String,
    /// Replicas repointed to the new primary.
    pub repointed: Vec<Endpoint>,
    /// Replicas that could not be repointed, with why.
    pub not_repointed: Vec<(Endpoint, String)>,
    /// Whether semi-sync is on at the new primary (false: no replica follows it yet).
    pub semi_sync_active: bool,
    /// Milliseconds from the start of the operation until the new primary accepted the
    /// verifying write.
    pub elapsed_ms: u64,
    /// Steps after the promotion that failed (it stands: the new primary is the primary,
    /// but a person must look).
    pub problems: Vec<String>,
}

impl ReplicationAccess {
    async fn connect(&self, ep: &Endpoint) -> Result<ServerConn, ServerError> {
        ServerConn::connect(ep, &self.admin, self.timeouts).await
    }

    async fn connect_patient(
        &self,
        ep: &Endpoint,
        query: Duration,
    ) -> Result<ServerConn, ServerError> {
        let t = Timeouts {
            connect: self.timeouts.connect,
            query,
        };
        ServerConn::connect(ep, &self.admin, t).await
    }

    /// The flavor's statements.
    pub fn sql(&self) -> Dialect {
        Dialect(self.flavor)
    }

    /// The statements that make a server replicate from `source` with the cluster's
    /// replication account (see [`Dialect::change_source`]).
    pub fn change_source_sql(&self, source: &Endpoint, own_history: bool) -> String {
        self.sql()
            .change_source(source, self.replication.as_ref(), own_history)
    }

    /// The server's executed GTID set.
    pub async fn executed(&self, conn: &mut ServerConn) -> Result<String, ServerError> {
        value(conn, &format!("SELECT {} AS v", self.sql().executed_var())).await
    }

    /// Makes a server read-only and ends every client session on it but ours (and, with
    /// `keep_replicas`, the binlog dump threads that feed replicas).
    pub async fn fence(
        &self,
        conn: &mut ServerConn,
        keep_replicas: bool,
    ) -> Result<usize, ServerError> {
        conn.exec(self.sql().fence()).await?;
        let mut sql = "SELECT ID AS id FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() \
             AND USER NOT IN ('system user', 'event_scheduler') AND COMMAND NOT IN ('Daemon', 'Killed')"
            .to_string();
        if keep_replicas {
            sql.push_str(" AND COMMAND NOT LIKE 'Binlog Dump%'");
        }
        let rows = conn.query_rows(&sql).await?;
        let mut killed = 0;
        for id in rows
            .into_iter()
            .filter_map(|mut r| r.remove("id").flatten())
        {
            if id.chars().all(|c| c.is_ascii_digit()) {
                match conn.exec(&format!("KILL CONNECTION {id}")).await {
                    Ok(()) => killed += 1,
                    // 1094: unknown thread id, it ended by itself meanwhile.
                    Err(ServerError::Query { code: 1094, .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(killed)
    }

    /// Waits until the server has applied `set`, at most `timeout`; false on timeout.
    pub async fn wait_applied(
        &self,
        ep: &Endpoint,
        set: &str,
        timeout: Duration,
    ) -> Result<bool, ServerError> {
        if set.is_empty() {
            return Ok(true);
        }
        let mut conn = self
            .connect_patient(ep, timeout + Duration::from_secs(5))
            .await?;
        let secs = timeout.as_secs_f64().max(0.001);
        let r = value(&mut conn, &self.sql().wait_applied(set, secs)).await;
        conn.close().await;
        Ok(r? == "0")
    }

    /// Writes one row on the primary: proof that it takes writes (and, with semi-sync,
    /// that a replica acknowledges them).
    pub async fn verify_write(&self, conn: &mut ServerConn, what: &str) -> Result<(), ServerError> {
        conn.exec(
            "CREATE DATABASE IF NOT EXISTS nines; \
             CREATE TABLE IF NOT EXISTS nines.heartbeat (id TINYINT PRIMARY KEY, at DATETIME(6) NOT NULL, \
             origin VARCHAR(255) NOT NULL, what VARCHAR(64) NOT NULL) ENGINE=InnoDB",
        )
        .await?;
        conn.exec(&format!(
            "REPLACE INTO nines.heartbeat VALUES (1, NOW(6), @@hostname, {})",
            sql_str(what)
        ))
        .await
    }
}

/// The first column of the first row of `sql` (aliased `v`), whitespace removed; empty
/// when there is none.
async fn value(conn: &mut ServerConn, sql: &str) -> Result<String, ServerError> {
    let rows = conn.query_rows(sql).await?;
    Ok(rows
        .into_iter()
        .next()
        .and_then(|mut r| r.remove("v").flatten())
        .map(|s| s.split_whitespace().collect::<String>())
        .unwrap_or_default())
}

fn ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Stops the IO threads of `replicas` in parallel; returns those it could not reach.
async fn stop_io_threads(
    access: &ReplicationAccess,
    replicas: &[Endpoint],
    reporter: &dyn Reporter,
) -> Vec<(Endpoint, String)> {
    let results = join_all(replicas.iter().map(|r| async move {
        let res = async {
            let mut c = access.connect(r).await?;
            c.exec(access.sql().stop_io()).await?;
            c.close().await;
            Ok::<(), ServerError>(())
        }
        .await;
        (r.clone(), res)
    }))
    .await;
    let mut failed = Vec::new();
    for (r, res) in results {
        match res {
            Ok(()) => reporter.info(&format!("{r}: IO thread stopped")).await,
            Err(e) => {
                reporter
                    .warn(&format!("{r}: cannot stop its IO thread: {e}"))
                    .await;
                failed.push((r, e.to_string()));
            }
        }
    }
    failed
}

/// Repoints `replicas` to `source` in parallel.
async fn repoint(
    access: &ReplicationAccess,
    replicas: &[(Endpoint, bool)],
    source: &Endpoint,
    reporter: &dyn Reporter,
) -> (Vec<Endpoint>, Vec<(Endpoint, String)>) {
    let results = join_all(replicas.iter().map(|(r, own_history)| async move {
        let res = async {
            let mut c = access.connect(r).await?;
            c.exec(access.sql().fence()).await?;
            if access.semi_sync {
                c.exec(&access.sql().semi_sync_primary(false)).await?;
            }
            c.exec(&access.change_source_sql(source, *own_history))
                .await?;
            c.close().await;
            Ok::<(), ServerError>(())
        }
        .await;
        (r.clone(), res)
    }))
    .await;
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for (r, res) in results {
        match res {
            Ok(()) => {
                reporter
                    .info(&format!(
                        "{r}: now replicates from {source} (GTID auto-position)"
                    ))
                    .await;
                ok.push(r);
            }
            Err(e) => {
                reporter
                    .warn(&format!("{r}: cannot repoint it to {source}: {e}"))
                    .await;
                failed.push((r, e.to_string()));
            }
        }
    }
    (ok, failed)
}

/// Turns semi-sync on at the new primary when a replica follows it, then makes it
/// writable and verifies a write. Returns whether semi-sync is on; a step that fails is
/// added to `problems` (the promotion has happened: the caller must still record it).
async fn open_for_writes(
    access: &ReplicationAccess,
    conn: &mut ServerConn,
    followers: usize,
    what: &str,
    reporter: &dyn Reporter,
    problems: &mut Vec<String>,
) -> bool {
    let ep = conn.addr().to_string();
    let mut semi = access.semi_sync && followers > 0;
    if access.semi_sync {
        match conn.exec(&access.sql().semi_sync_primary(semi)).await {
            Ok(()) if semi => {
                reporter
                    .info(&format!("{ep}: semi-synchronous replication on (commits wait for a replica's acknowledgement)"))
                    .await
            }
            Ok(()) => {
                reporter
                    .warn(&format!("{ep}: no replica follows the new primary, so semi-sync stays off: commits are not protected until one rejoins"))
                    .await
            }
            Err(e) => {
                semi = false;
                problems.push(format!("{ep}: cannot switch semi-sync: {e}"));
            }
        }
    }
    if let Err(e) = conn.exec(access.sql().writable()).await {
        problems.push(format!("{ep}: promoted but cannot be made writable: {e}"));
        return semi;
    }
    match access.verify_write(conn, what).await {
        Ok(()) => {
            reporter
                .info(&format!(
                    "{ep}: writable; a verifying write into nines.heartbeat succeeded"
                ))
                .await
        }
        Err(e) => problems.push(format!(
            "{ep}: writable, but the verifying write into nines.heartbeat failed: {e}"
        )),
    }
    semi
}

/// Everything after `RESET SLAVE ALL` on the new primary: read the promotion position,
/// repoint `followers` (with whether each has its own history, see
/// [`ReplicationAccess::change_source_sql`]), open for writes. The promotion stands
/// whatever fails from here on: failures go to the outcome's `problems`, never `Err`, so
/// the caller always records the new primary.
#[allow(clippy::too_many_arguments)]
async fn after_promotion(
    access: &ReplicationAccess,
    mut conn: ServerConn,
    new_primary: &Endpoint,
    followers: &[(Endpoint, bool)],
    mut not_repointed: Vec<(Endpoint, String)>,
    what: &str,
    started: Instant,
    reporter: &dyn Reporter,
) -> PromotionOutcome {
    let mut problems = Vec::new();
    let promoted_at = match access.executed(&mut conn).await {
        Ok(p) => p,
        Err(e) => {
            problems.push(format!("cannot read the promotion position: {e}"));
            String::new()
        }
    };
    reporter
        .info(&format!(
            "{new_primary}: replication stopped and reset; promoted at {promoted_at}"
        ))
        .await;
    reporter.progress("repoint replicas", 75).await;
    let (repointed, failed) = repoint(access, followers, new_primary, reporter).await;
    not_repointed.extend(failed);
    reporter.progress("open for writes", 90).await;
    let semi = open_for_writes(
        access,
        &mut conn,
        repointed.len(),
        what,
        reporter,
        &mut problems,
    )
    .await;
    conn.close().await;
    PromotionOutcome {
        new_primary: new_primary.clone(),
        promoted_at,
        repointed,
        not_repointed,
        semi_sync_active: semi,
        elapsed_ms: ms(started),
        problems,
    }
}

/// What a replica has received (relay log) and executed, as one set: MariaDB Gtid_IO_Pos
/// merged with gtid_current_pos; MySQL Retrieved_Gtid_Set with gtid_executed.
pub async fn received_now(access: &ReplicationAccess, ep: &Endpoint) -> Result<GtidSet, OpError> {
    let mut c = access.connect(ep).await?;
    let rows = c
        .query_rows(match access.flavor {
            Flavor::MariaDb => "SHOW ALL SLAVES STATUS",
            Flavor::MySql => "SHOW REPLICA STATUS",
        })
        .await?;
    let executed = access.executed(&mut c).await?;
    c.close().await;
    let bad = |what: &str, s: &str, e: nines_model::gtid::GtidError| {
        OpError::Invalid(format!("{ep}: cannot read its {what} `{s}`: {e}"))
    };
    let mut set =
        GtidSet::parse(access.flavor, &executed).map_err(|e| bad("executed set", &executed, e))?;
    let channels = nines_access::server::parse::parse_replica_status(&rows)
        .map_err(|e| OpError::Invalid(format!("{ep}: cannot read its replica status: {e}")))?;
    for ch in channels {
        let r = ch.received_gtids.split_whitespace().collect::<String>();
        if r.is_empty() {
            continue;
        }
        let got = GtidSet::parse(access.flavor, &r).map_err(|e| bad("received set", &r, e))?;
        set = set.union(&got).map_err(|e| bad("received set", &r, e))?;
    }
    Ok(set)
}

/// A MariaDB server's replication position (`@@gtid_slave_pos`: the last GTID per domain
/// its replica threads applied), parsed.
pub async fn slave_position(access: &ReplicationAccess, ep: &Endpoint) -> Result<GtidSet, OpError> {
    let mut c = access.connect(ep).await?;
    let s = value(&mut c, "SELECT @@GLOBAL.gtid_slave_pos AS v").await;
    c.close().await;
    let s = s?;
    GtidSet::parse(access.flavor, &s).map_err(|e| {
        OpError::Invalid(format!(
            "{ep}: cannot read its replication position `{s}`: {e}"
        ))
    })
}

/// Switches the semi-sync master side on at `primary` (a replica follows it again).
pub async fn semi_sync_on(access: &ReplicationAccess, primary: &Endpoint) -> Result<(), OpError> {
    let mut c = access.connect(primary).await?;
    let r = c.exec(&access.sql().semi_sync_primary(true)).await;
    c.close().await;
    Ok(r?)
}

/// The executed GTID set of a server, parsed.
pub async fn executed_set(access: &ReplicationAccess, ep: &Endpoint) -> Result<GtidSet, OpError> {
    let mut c = access.connect(ep).await?;
    let s = access.executed(&mut c).await?;
    c.close().await;
    GtidSet::parse(access.flavor, &s)
        .map_err(|e| OpError::Invalid(format!("{ep}: cannot read its GTID set `{s}`: {e}")))
}

/// Age in seconds of the oldest open InnoDB transaction on a server.
pub async fn longest_transaction_secs(
    access: &ReplicationAccess,
    ep: &Endpoint,
) -> Result<u64, OpError> {
    let mut c = access.connect(ep).await?;
    let s = value(
        &mut c,
        "SELECT COALESCE(MAX(TIMESTAMPDIFF(SECOND, trx_started, NOW())), 0) AS v FROM information_schema.INNODB_TRX",
    )
    .await;
    c.close().await;
    Ok(s?.parse().unwrap_or(0))
}
