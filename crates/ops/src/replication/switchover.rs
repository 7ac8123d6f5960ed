//! Switchover: hand the primary role to a replica with zero loss.

use std::time::{Duration, Instant};

use nines_model::Endpoint;

use super::*;
use crate::{OpError, Reporter};

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
    if let Err(e) = conn.exec(access.sql().reset_replica()).await {
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
    match conn.exec(access.sql().writable()).await {
        Ok(()) => reporter.warn(&format!("{old}: writable again")).await,
        Err(e) => reporter
            .warn(&format!(
                "{old}: cannot make it writable again: {e}; it stays read-only, a person must act"
            ))
            .await,
    }
}
