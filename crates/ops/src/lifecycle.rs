//! Starting and stopping nodes and whole clusters, with the safety rules an operator
//! expects: never stop the last node of a Galera Primary component or a primary that has
//! replicas unless forced; restart node by node, each healthy before the next. Starting a
//! Galera cluster that has no Primary component is a recovery (`galera.rs`).

use std::time::Duration;

use nines_model::ClusterType;

use crate::deploy::{JOIN_TIMEOUT, wait_replicating};
use crate::node::{NodeTarget, READY_TIMEOUT};
use crate::{OpError, Reporter};

/// A node's part in its cluster, for the rules below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodePart {
    Galera,
    Primary,
    Replica,
    /// A replication node kept read-only and out of the cluster (a failed-over primary
    /// waiting for its rejoin check, or one with errant transactions).
    Fenced,
    Standalone,
}

/// Refuses to stop a node whose loss stops the service, unless forced; says why.
pub async fn check_stop_allowed(
    n: &NodeTarget,
    part: NodePart,
    force: bool,
) -> Result<(), OpError> {
    if force || !n.is_running().await? {
        return Ok(());
    }
    match part {
        NodePart::Galera => {
            let size = n.status_var("wsrep_cluster_size").await.unwrap_or_default();
            let status = n
                .status_var("wsrep_cluster_status")
                .await
                .unwrap_or_default();
            if status == "Primary" && size == "1" {
                return Err(OpError::Invalid(format!(
                    "{} is the last node of the Galera Primary component: stopping it stops the cluster; use --force to stop it anyway",
                    n.endpoint
                )));
            }
        }
        NodePart::Primary => {
            let replicas = n.status_var("Slaves_connected").await.unwrap_or_default();
            if replicas.parse::<u32>().unwrap_or(0) > 0 {
                return Err(OpError::Invalid(format!(
                    "{} is the primary and {replicas} replica(s) replicate from it: stopping it stops writes; use --force (or a switchover) to stop it anyway",
                    n.endpoint
                )));
            }
        }
        NodePart::Replica | NodePart::Fenced | NodePart::Standalone => {}
    }
    Ok(())
}

/// The extra server arguments a node is started with in its part. A semi-sync cluster's
/// option file says `init_rpl_role = SLAVE`, so that a crashed primary that comes back as
/// a replica after a failover cuts from its binlog what no replica acknowledged
/// (MDEV-21117). A primary started to stay the primary (restarted in place, the cluster
/// started) must not cut anything: its replicas may already hold those transactions and
/// would then be ahead of it (MDEV-33465 made the cut depend on the role). The command
/// line overrides the file for this start only.
pub fn start_args(part: NodePart) -> &'static [&'static str] {
    match part {
        NodePart::Primary => &["--init-rpl-role=MASTER"],
        _ => &[],
    }
}

/// Starts a node and waits until it does its job: Synced (Galera), writable (primary),
/// replicating (replica), answering (standalone).
pub async fn start_node(
    n: &NodeTarget,
    part: NodePart,
    reporter: &dyn Reporter,
) -> Result<(), OpError> {
    start_node_among(n, part, &[], reporter).await
}

/// [`start_node`], with the cluster's other nodes known: a Galera joiner whose donor
/// failed the state transfer gets the donor's own account of why in its warning or error.
pub async fn start_node_among(
    n: &NodeTarget,
    part: NodePart,
    peers: &[NodeTarget],
    reporter: &dyn Reporter,
) -> Result<(), OpError> {
    if !n.is_running().await? {
        match part {
            NodePart::Galera => crate::galera::start_joiner(n, &[], peers, reporter).await?,
            _ => {
                crate::wait::report_while(
                    reporter,
                    &format!("{} to start", n.endpoint),
                    n.start(start_args(part)),
                )
                .await?;
            }
        }
    }
    n.wait_ready(READY_TIMEOUT).await?;
    match part {
        NodePart::Galera => n.wait_synced(JOIN_TIMEOUT, reporter).await?,
        NodePart::Primary => {
            // Semi-sync clusters have the replica side on everywhere; the primary waits for
            // acknowledgements once it takes writes again.
            n.sql(
                "SET GLOBAL rpl_semi_sync_master_enabled=@@GLOBAL.rpl_semi_sync_slave_enabled; \
                 SET GLOBAL read_only=OFF",
            )
            .await?;
        }
        NodePart::Replica => wait_replicating(n, Duration::from_secs(120)).await?,
        NodePart::Fenced => {
            reporter
                .warn(&format!(
                    "{} is fenced: it stays read-only and out of replication until it rejoins",
                    n.endpoint
                ))
                .await;
        }
        NodePart::Standalone => {}
    }
    reporter.info(&format!("{} is running", n.endpoint)).await;
    Ok(())
}

/// Stops a node cleanly.
pub async fn stop_node(n: &NodeTarget, reporter: &dyn Reporter) -> Result<(), OpError> {
    n.stop().await?;
    reporter.info(&format!("{} stopped", n.endpoint)).await;
    Ok(())
}

/// Stops a whole cluster: replicas before their primary; Galera nodes one at a time, so
/// the last one stopped holds the latest state and is marked safe to bootstrap.
pub async fn stop_cluster(
    cluster_type: ClusterType,
    nodes: &[(NodeTarget, NodePart)],
    reporter: &dyn Reporter,
) -> Result<(), OpError> {
    let mut order: Vec<&(NodeTarget, NodePart)> = nodes.iter().collect();
    if cluster_type == ClusterType::Replication {
        order.sort_by_key(|(_, p)| matches!(p, NodePart::Primary));
    }
    for (n, _) in order {
        stop_node(n, reporter).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_primary_starts_without_the_semi_sync_cut() {
        for (part, want) in [
            (NodePart::Primary, &["--init-rpl-role=MASTER"][..]),
            (NodePart::Replica, &[][..]),
            (NodePart::Fenced, &[][..]),
            (NodePart::Galera, &[][..]),
            (NodePart::Standalone, &[][..]),
        ] {
            assert_eq!(start_args(part), want, "{part:?}");
        }
    }
}
