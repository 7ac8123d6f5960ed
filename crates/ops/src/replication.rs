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
use nines_access::server::{Credentials, ServerConn, ServerError, Timeouts};
use nines_model::Endpoint;
use nines_model::gtid::GtidSet;
use nines_model::ha::FailoverPlan;
use nines_model::replication::Flavor;

use crate::{OpError, Reporter};

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

    fn executed_var(&self) -> &'static str {
        match self.flavor {
            Flavor::MariaDb => "@@GLOBAL.gtid_current_pos",
            Flavor::MySql => "@@GLOBAL.gtid_executed",
        }
    }

    fn fence_sql(&self) -> &'static str {
        match self.flavor {
            Flavor::MariaDb => "SET GLOBAL read_only=ON",
            Flavor::MySql => "SET GLOBAL super_read_only=ON",
        }
    }

    fn writable_sql(&self) -> &'static str {
        match self.flavor {
            Flavor::MariaDb => "SET GLOBAL read_only=OFF",
            Flavor::MySql => "SET GLOBAL super_read_only=OFF; SET GLOBAL read_only=OFF",
        }
    }

    fn stop_io_sql(&self) -> &'static str {
        match self.flavor {
            Flavor::MariaDb => "STOP SLAVE IO_THREAD",
            Flavor::MySql => "STOP REPLICA IO_THREAD",
        }
    }

    fn start_replica_sql(&self) -> &'static str {
        match self.flavor {
            Flavor::MariaDb => "START SLAVE",
            Flavor::MySql => "START REPLICA",
        }
    }

    fn reset_replica_sql(&self) -> &'static str {
        match self.flavor {
            Flavor::MariaDb => "STOP SLAVE; RESET SLAVE ALL",
            Flavor::MySql => "STOP REPLICA; RESET REPLICA ALL",
        }
    }

    fn semi_sync_master_sql(&self, on: bool) -> String {
        let v = if on { "ON" } else { "OFF" };
        match self.flavor {
            Flavor::MariaDb => format!("SET GLOBAL rpl_semi_sync_master_enabled={v}"),
            Flavor::MySql => format!("SET GLOBAL rpl_semi_sync_source_enabled={v}"),
        }
    }

    /// The statements that make a server replicate from `source` by GTID. `own_history`:
    /// the server was a primary (its own binlog holds history its slave position lacks),
    /// so MariaDB must start from its current position.
    pub fn change_source_sql(&self, source: &Endpoint, own_history: bool) -> String {
        let account = |user: &str, password: &str| match &self.replication {
            Some(c) => format!(
                "{user}={}, {password}={}, ",
                sql_str(&c.user),
                sql_str(&c.password)
            ),
            None => String::new(),
        };
        match self.flavor {
            Flavor::MariaDb => format!(
                "STOP SLAVE; {}CHANGE MASTER TO MASTER_HOST={}, MASTER_PORT={}, {}\
                 MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, \
                 MASTER_HEARTBEAT_PERIOD=1; START SLAVE",
                if own_history {
                    "SET GLOBAL gtid_slave_pos=@@GLOBAL.gtid_current_pos; "
                } else {
                    ""
                },
                sql_str(&source.host),
                source.port,
                account("MASTER_USER", "MASTER_PASSWORD")
            ),
            Flavor::MySql => format!(
                "STOP REPLICA; CHANGE REPLICATION SOURCE TO SOURCE_HOST={}, SOURCE_PORT={}, \
                 {}SOURCE_AUTO_POSITION=1, SOURCE_CONNECT_RETRY=1, SOURCE_HEARTBEAT_PERIOD=1, \
                 GET_SOURCE_PUBLIC_KEY=1; START REPLICA",
                sql_str(&source.host),
                source.port,
                account("SOURCE_USER", "SOURCE_PASSWORD")
            ),
        }
    }

    /// The server's executed GTID set.
    pub async fn executed(&self, conn: &mut ServerConn) -> Result<String, ServerError> {
        value(conn, &format!("SELECT {} AS v", self.executed_var())).await
    }

    /// Makes a server read-only and ends every client session on it but ours (and, with
    /// `keep_replicas`, the binlog dump threads that feed replicas).
    pub async fn fence(
        &self,
        conn: &mut ServerConn,
        keep_replicas: bool,
    ) -> Result<usize, ServerError> {
        conn.exec(self.fence_sql()).await?;
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
        // Both answer 0 once applied (MariaDB -1, MySQL 1 on timeout).
        let function = match self.flavor {
            Flavor::MariaDb => "MASTER_GTID_WAIT",
            Flavor::MySql => "WAIT_FOR_EXECUTED_GTID_SET",
        };
        let r = value(
            &mut conn,
            &format!("SELECT {function}({}, {secs:.3}) AS v", sql_str(set)),
        )
        .await;
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

/// A SQL string literal.
pub fn sql_str(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
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
            c.exec(access.stop_io_sql()).await?;
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
            c.exec(access.fence_sql()).await?;
            if access.semi_sync {
                c.exec(&access.semi_sync_master_sql(false)).await?;
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
        match conn.exec(&access.semi_sync_master_sql(semi)).await {
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
    if let Err(e) = conn.exec(access.writable_sql()).await {
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

/// Carries out a failover plan (the caller runs the pre-failover hook first).
///
/// The plan was made from the monitor's last samples; between them and the IO threads'
/// stop, replicas may have received a little more. So once nothing more can arrive, the
/// received sets are read again: the candidate waits for its own final set, and if
/// another replica received something the candidate lacks, the one whose set contains
/// every other's is promoted instead (or nothing, when histories diverged).
pub async fn failover(
    access: &ReplicationAccess,
    plan: &FailoverPlan,
    relay_log_timeout: Duration,
    reporter: &dyn Reporter,
) -> Result<PromotionOutcome, OpError> {
    let started = Instant::now();
    let old = &plan.old_primary;
    let cand = &plan.candidate;
    // 1. Fence the old primary where it can be reached (it may only be frozen or cut off).
    if plan.fence_old_primary {
        reporter.progress("fence the old primary", 10).await;
        match access.connect(old).await {
            Ok(mut c) => match access.fence(&mut c, false).await {
                Ok(killed) => {
                    reporter
                        .info(&format!("{old}: fenced (read-only, {killed} session(s) killed)"))
                        .await;
                    c.close().await;
                }
                Err(e) => reporter.warn(&format!("{old}: cannot fence it: {e}")).await,
            },
            Err(e) => {
                reporter
                    .info(&format!("{old}: unreachable, cannot be fenced now ({e}); it will come back read-only and stay fenced until its GTIDs are proven"))
                    .await
            }
        }
    } else {
        reporter
            .info(&format!("{old}: refuses connections, nothing to fence"))
            .await;
    }
    // 2. Nothing more from the old primary.
    reporter.progress("stop IO threads", 25).await;
    let mut all = vec![cand.clone()];
    all.extend(plan.others.iter().cloned());
    let failed = stop_io_threads(access, &all, reporter).await;
    if let Some((_, e)) = failed.iter().find(|(r, _)| r == cand) {
        return Err(OpError::Invalid(format!(
            "the candidate {cand} cannot be reached to stop its IO thread: {e}; nothing was promoted"
        )));
    }
    crate::crash_point("failover_after_io_stop");
    // 3. Final received sets; the candidate applies everything it received.
    reporter.progress("apply the relay log", 40).await;
    let reachable: Vec<Endpoint> = all
        .iter()
        .filter(|r| !failed.iter().any(|(f, _)| f == *r))
        .cloned()
        .collect();
    let sets = join_all(reachable.iter().map(|r| received_now(access, r))).await;
    let mut received = Vec::new();
    for (r, set) in reachable.iter().zip(sets) {
        match set {
            Ok(s) => received.push((r.clone(), s)),
            Err(e) if r == cand => return Err(e),
            Err(e) => {
                reporter
                    .warn(&format!("{r}: cannot read what it received: {e}"))
                    .await
            }
        }
    }
    let cand_set = received
        .iter()
        .find(|(r, _)| r == cand)
        .map(|(_, s)| s.clone())
        .ok_or_else(|| OpError::Invalid(format!("{cand}: its received set is unknown")))?;
    let mut cand = cand;
    let mut until_set = cand_set.clone();
    let behind: Vec<&(Endpoint, GtidSet)> = received
        .iter()
        .filter(|(_, s)| !cand_set.contains(s).unwrap_or(false))
        .collect();
    if !behind.is_empty() {
        let better = received
            .iter()
            .find(|(_, a)| received.iter().all(|(_, b)| a.contains(b).unwrap_or(false)));
        match better {
            Some((r, s)) => {
                reporter
                    .warn(&format!(
                        "{r} received more than {cand} after the last samples ({s} against {cand_set}): promoting {r} instead"
                    ))
                    .await;
                cand = r;
                until_set = s.clone();
            }
            None => {
                return Err(OpError::Invalid(format!(
                    "after the IO threads stopped, no replica holds everything the others received ({}): histories diverged, nothing promoted; a person must decide",
                    received
                        .iter()
                        .map(|(r, s)| format!("{r}: {s}"))
                        .collect::<Vec<_>>()
                        .join("; ")
                )));
            }
        }
    }
    let until = until_set.to_string();
    let t = Instant::now();
    if !access.wait_applied(cand, &until, relay_log_timeout).await? {
        return Err(OpError::Invalid(format!(
            "{cand} did not apply its relay log up to {until} within {relay_log_timeout:?}: not promoted (it would lose transactions it received); its IO thread is stopped, a person must decide"
        )));
    }
    reporter
        .info(&format!(
            "{cand}: applied everything it received ({until}) in {} ms",
            ms(t)
        ))
        .await;
    // 4. Promote.
    reporter.progress("promote", 60).await;
    let mut conn = access.connect(cand).await?;
    conn.exec(access.reset_replica_sql()).await?;
    // 5. Repoint the others, open for writes.
    let others: Vec<(Endpoint, bool)> = all
        .iter()
        .filter(|e| *e != cand)
        .map(|e| (e.clone(), false))
        .collect();
    let unreachable: Vec<(Endpoint, String)> = plan
        .unreachable
        .iter()
        .map(|u| (u.clone(), "unreachable during the failover".to_string()))
        .collect();
    Ok(after_promotion(
        access,
        conn,
        cand,
        &others,
        unreachable,
        "failover",
        started,
        reporter,
    )
    .await)
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

/// A planned switchover from `old` to `candidate`; `others` are the other replicas.
/// On a timeout before promotion, the old primary is made writable again.
pub async fn switchover(
    access: &ReplicationAccess,
    old: &Endpoint,
    candidate: &Endpoint,
    others: &[Endpoint],
    catch_up_timeout: Duration,
    reporter: &dyn Reporter,
) -> Result<PromotionOutcome, OpError> {
    let started = Instant::now();
    let mut old_conn = access.connect(old).await?;
    // 1. Demote: read-only, end client sessions (keep the dump threads: the candidate must
    //    receive the last transactions), then read the final position until it is stable.
    reporter.progress("demote the primary", 20).await;
    let killed = access.fence(&mut old_conn, true).await?;
    reporter
        .info(&format!(
            "{old}: read-only, {killed} client session(s) ended"
        ))
        .await;
    let mut last = access.executed(&mut old_conn).await?;
    let final_set = loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = access.executed(&mut old_conn).await?;
        if now == last {
            break now;
        }
        if started.elapsed() > catch_up_timeout {
            restore_writes(access, &mut old_conn, old, reporter).await;
            return Err(OpError::Invalid(format!(
                "{old}: its GTID position kept moving after it became read-only (a session with READ ONLY ADMIN?); switchover abandoned and writes restored"
            )));
        }
        last = now;
    };
    reporter
        .info(&format!("{old}: final position {final_set}"))
        .await;
    // 2. The candidate catches up.
    reporter.progress("wait for the candidate", 40).await;
    let remaining = catch_up_timeout.saturating_sub(started.elapsed());
    let caught_up = match access.wait_applied(candidate, &final_set, remaining).await {
        Ok(ok) => ok,
        Err(e) => {
            restore_writes(access, &mut old_conn, old, reporter).await;
            return Err(OpError::Invalid(format!(
                "{candidate}: cannot wait for it to catch up: {e}; switchover abandoned, {old} writable again"
            )));
        }
    };
    if !caught_up {
        restore_writes(access, &mut old_conn, old, reporter).await;
        return Err(OpError::Invalid(format!(
            "{candidate} did not reach {final_set} within {catch_up_timeout:?}: switchover abandoned, {old} is writable again"
        )));
    }
    reporter
        .info(&format!("{candidate}: caught up with {final_set}"))
        .await;
    // 3. Promote.
    reporter.progress("promote", 60).await;
    let mut conn = match access.connect(candidate).await {
        Ok(c) => c,
        Err(e) => {
            restore_writes(access, &mut old_conn, old, reporter).await;
            return Err(e.into());
        }
    };
    if let Err(e) = conn.exec(access.reset_replica_sql()).await {
        restore_writes(access, &mut old_conn, old, reporter).await;
        return Err(e.into());
    }
    // 4. Everyone follows it, the old primary too.
    old_conn.close().await;
    let mut followers: Vec<(Endpoint, bool)> = others.iter().map(|e| (e.clone(), false)).collect();
    followers.push((old.clone(), true));
    Ok(after_promotion(
        access,
        conn,
        candidate,
        &followers,
        Vec::new(),
        "switchover",
        started,
        reporter,
    )
    .await)
}

async fn restore_writes(
    access: &ReplicationAccess,
    conn: &mut ServerConn,
    old: &Endpoint,
    reporter: &dyn Reporter,
) {
    match conn.exec(access.writable_sql()).await {
        Ok(()) => reporter.warn(&format!("{old}: writable again")).await,
        Err(e) => reporter
            .warn(&format!(
                "{old}: cannot make it writable again: {e}; it stays read-only, a person must act"
            ))
            .await,
    }
}

/// Makes `node` (a former primary, proven to hold nothing the cluster lacks) a read-only
/// replica of `primary`, and waits until it replicates.
pub async fn rejoin(
    access: &ReplicationAccess,
    node: &Endpoint,
    primary: &Endpoint,
    timeout: Duration,
    reporter: &dyn Reporter,
) -> Result<(), OpError> {
    let mut c = access.connect(node).await?;
    c.exec(access.fence_sql()).await?;
    if access.semi_sync {
        c.exec(&access.semi_sync_master_sql(false)).await?;
    }
    c.exec(&access.change_source_sql(primary, true)).await?;
    let deadline = Instant::now() + timeout;
    loop {
        let rows = c
            .query_rows(match access.flavor {
                Flavor::MariaDb => "SHOW SLAVE STATUS",
                Flavor::MySql => "SHOW REPLICA STATUS",
            })
            .await?;
        let row = rows.into_iter().next().unwrap_or_default();
        let get = |k: &str| row.get(k).cloned().flatten().unwrap_or_default();
        let io = [get("Slave_IO_Running"), get("Replica_IO_Running")].concat();
        let sql = [get("Slave_SQL_Running"), get("Replica_SQL_Running")].concat();
        if io == "Yes" && sql == "Yes" {
            break;
        }
        let errors = [get("Last_IO_Error"), get("Last_SQL_Error")].concat();
        if Instant::now() >= deadline {
            return Err(OpError::Invalid(format!(
                "{node}: not replicating from {primary} after {timeout:?} (IO {io}, SQL {sql}) {errors}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c.close().await;
    reporter
        .info(&format!(
            "{node}: rejoined as a read-only replica of {primary}"
        ))
        .await;
    Ok(())
}

/// What a replica has received (relay log) and executed, as one set: MariaDB Gtid_IO_Pos
/// merged with gtid_current_pos; MySQL Retrieved_Gtid_Set with gtid_executed.
/// Undoes the first steps of a promotion that did not happen (a controller died in the
/// middle, and the plan no longer holds): the replicas' threads run again, and the
/// primary, if it was fenced, takes writes again. Each step's failure is logged; the
/// steps that failed are returned.
pub async fn roll_back(
    access: &ReplicationAccess,
    primary: &Endpoint,
    replicas: &[Endpoint],
    reporter: &dyn Reporter,
) -> Vec<String> {
    let mut failed = Vec::new();
    for r in replicas {
        let step = async {
            let mut c = access.connect(r).await?;
            c.exec(access.start_replica_sql()).await
        };
        match step.await {
            Ok(()) => {
                reporter
                    .info(&format!("{r}: replication threads started"))
                    .await
            }
            Err(e) => {
                reporter
                    .warn(&format!("{r}: cannot start its replication threads: {e}"))
                    .await;
                failed.push(format!("{r}: {e}"));
            }
        }
    }
    let step = async {
        let mut c = access.connect(primary).await?;
        c.exec(access.writable_sql()).await
    };
    match step.await {
        Ok(()) => {
            reporter
                .info(&format!("{primary}: takes writes again"))
                .await
        }
        Err(e) => {
            reporter
                .warn(&format!("{primary}: cannot make it writable again: {e}"))
                .await;
            failed.push(format!("{primary}: {e}"));
        }
    }
    failed
}

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
    let r = c.exec(&access.semi_sync_master_sql(true)).await;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn access(flavor: Flavor) -> ReplicationAccess {
        ReplicationAccess {
            flavor,
            admin: Credentials {
                user: "a".into(),
                password: "b".into(),
            },
            replication: Some(Credentials {
                user: "repl".into(),
                password: "p'w".into(),
            }),
            timeouts: Timeouts {
                connect: Duration::from_secs(1),
                query: Duration::from_secs(1),
            },
            semi_sync: true,
        }
    }

    #[test]
    fn change_source_by_flavor() {
        let src: Endpoint = "127.0.0.5:3307".parse().unwrap();
        let m = access(Flavor::MariaDb).change_source_sql(&src, false);
        assert!(
            m.contains("MASTER_HOST='127.0.0.5', MASTER_PORT=3307"),
            "{m}"
        );
        assert!(m.contains("MASTER_PASSWORD='p''w'"), "{m}");
        assert!(m.contains("MASTER_USE_GTID=slave_pos"));
        assert!(!m.contains("gtid_slave_pos="));
        let own = access(Flavor::MariaDb).change_source_sql(&src, true);
        assert!(own.contains("SET GLOBAL gtid_slave_pos=@@GLOBAL.gtid_current_pos"));
        let y = access(Flavor::MySql).change_source_sql(&src, true);
        assert!(
            y.contains("CHANGE REPLICATION SOURCE TO SOURCE_HOST='127.0.0.5'"),
            "{y}"
        );
        assert!(y.contains("SOURCE_AUTO_POSITION=1"));
        assert!(!y.contains("gtid_slave_pos"));
        let mut imported = access(Flavor::MariaDb);
        imported.replication = None;
        let i = imported.change_source_sql(&src, false);
        assert!(!i.contains("MASTER_USER"), "{i}");
        assert!(
            i.contains("MASTER_PORT=3307, MASTER_USE_GTID=slave_pos"),
            "{i}"
        );
    }

    #[test]
    fn sql_strings_are_escaped() {
        assert_eq!(sql_str("a'b\\c"), "'a''b\\\\c'");
    }
}
