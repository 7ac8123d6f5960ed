//! Failover: promote the replica that has everything, when the primary is gone.

use std::time::{Duration, Instant};

use futures::future::join_all;
use nines_model::Endpoint;
use nines_model::gtid::GtidSet;
use nines_model::ha::FailoverPlan;

use super::*;
use crate::{OpError, Reporter};

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
    conn.exec(access.sql().reset_replica()).await?;
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
