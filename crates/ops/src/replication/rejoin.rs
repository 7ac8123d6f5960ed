//! Rejoin of a former primary as a replica, and the roll-back of a promotion that
//! did not happen.

use std::time::{Duration, Instant};

use nines_model::Endpoint;

use super::*;
use crate::{OpError, Reporter};

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
    c.exec(access.sql().fence()).await?;
    if access.semi_sync {
        c.exec(&access.sql().semi_sync_primary(false)).await?;
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
            c.exec(access.sql().start_replica()).await
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
        c.exec(access.sql().writable()).await
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
