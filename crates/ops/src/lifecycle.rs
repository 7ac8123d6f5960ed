//! Starting and stopping nodes and whole clusters, with the safety rules an operator
//! expects: never stop the last node of a Galera Primary component or a primary that has
//! replicas unless forced; start a fully stopped Galera cluster only from the node with
//! the highest committed seqno; restart node by node, each healthy before the next.

use std::time::Duration;

use nines_access::host::HostCommand;
use nines_access::server::parse::{parse_grastate, parse_wsrep_recover};
use nines_model::ClusterType;
use nines_model::galera::{GaleraPosition, choose_bootstrap};

use crate::deploy::{JOIN_TIMEOUT, wait_replicating};
use crate::node::{NodeTarget, READY_TIMEOUT, SHORT};
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

/// Starts a node and waits until it does its job: Synced (Galera), writable (primary),
/// replicating (replica), answering (standalone).
pub async fn start_node(
    n: &NodeTarget,
    part: NodePart,
    reporter: &dyn Reporter,
) -> Result<(), OpError> {
    if !n.is_running().await? {
        n.start(&[]).await?;
    }
    n.wait_ready(READY_TIMEOUT).await?;
    match part {
        NodePart::Galera => n.wait_synced(JOIN_TIMEOUT).await?,
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

/// Reads a stopped Galera node's committed position: grastate.dat, and where it says
/// seqno -1, `mariadbd --wsrep-recover`. A failing step keeps what was read.
pub async fn galera_position(
    n: &NodeTarget,
    reporter: &dyn Reporter,
) -> Result<GaleraPosition, OpError> {
    let path = format!("{}/grastate.dat", n.settings.layout.datadir);
    let text = n
        .run(HostCommand::new("cat").arg(&path), SHORT)
        .await
        .unwrap_or_default();
    let g = parse_grastate(&text);
    let mut pos = GaleraPosition {
        node: n.endpoint.to_string(),
        uuid: g.uuid.clone(),
        seqno: g.seqno,
        safe_to_bootstrap: g.safe_to_bootstrap.unwrap_or(false),
    };
    if pos.seqno < 0 {
        reporter
            .info(&format!(
                "{}: grastate seqno is -1, recovering the position",
                n.endpoint
            ))
            .await;
        let log = n.wsrep_recover().await?;
        match parse_wsrep_recover(&log) {
            Some((uuid, seqno)) => {
                pos.uuid = uuid;
                pos.seqno = seqno;
            }
            None => {
                reporter
                    .warn(&format!("{}: --wsrep-recover gave no position", n.endpoint))
                    .await
            }
        }
    }
    reporter
        .info(&format!(
            "{}: position {}:{} safe_to_bootstrap={}",
            n.endpoint, pos.uuid, pos.seqno, pos.safe_to_bootstrap
        ))
        .await;
    Ok(pos)
}

/// Starts a fully stopped Galera cluster: bootstrap the most advanced node, then join the rest one by one.
pub async fn start_galera_cluster(
    nodes: &[NodeTarget],
    reporter: &dyn Reporter,
) -> Result<(), OpError> {
    let mut running = Vec::new();
    for n in nodes {
        if n.is_running().await? {
            running.push(n);
        }
    }
    if !running.is_empty() {
        // Part of the cluster runs: the rest simply join it.
        for n in nodes {
            start_node(n, NodePart::Galera, reporter).await?;
        }
        return Ok(());
    }
    let mut positions = Vec::new();
    for n in nodes {
        positions.push(galera_position(n, reporter).await?);
    }
    let chosen = choose_bootstrap(&positions).map_err(OpError::Invalid)?;
    let Some(first) = nodes.iter().find(|n| n.endpoint.to_string() == chosen.node) else {
        return Err(OpError::Invalid(format!(
            "chosen node {} not found",
            chosen.node
        )));
    };
    reporter
        .info(&format!(
            "bootstrapping from {} (seqno {}, the highest)",
            first.endpoint, chosen.seqno
        ))
        .await;
    // Only the chosen node may bootstrap: every other grastate says it may not, and no
    // node may have come up in the meantime.
    for n in nodes.iter().filter(|n| n.endpoint != first.endpoint) {
        if n.is_running().await? {
            return Err(OpError::Invalid(format!(
                "{} started while the cluster was being recovered: not bootstrapping a second cluster",
                n.endpoint
            )));
        }
        let _ = n
            .run(
                HostCommand::shell(
                    "[ -f \"$1\" ] && sed -i 's/^safe_to_bootstrap:.*/safe_to_bootstrap: 0/' \"$1\" || true",
                )
                .arg(format!("{}/grastate.dat", n.settings.layout.datadir)),
                SHORT,
            )
            .await;
    }
    first
        .run(
            HostCommand::new("sed")
                .arg("-i")
                .arg("s/^safe_to_bootstrap:.*/safe_to_bootstrap: 1/")
                .arg(format!("{}/grastate.dat", first.settings.layout.datadir)),
            SHORT,
        )
        .await?;
    // The recovered position goes to the server: without it a node whose grastate says
    // seqno -1 starts the group from 00000000-…:-1, a new history, and every joiner then
    // needs a full state transfer instead of IST.
    let start_position = |n: &NodeTarget| {
        positions
            .iter()
            .find(|p| p.node == n.endpoint.to_string() && p.seqno >= 0 && !p.uuid.is_empty())
            .map(|p| format!("--wsrep-start-position={}:{}", p.uuid, p.seqno))
    };
    let mut args = vec!["--wsrep-new-cluster".to_string()];
    args.extend(start_position(first));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    first.start(&args).await?;
    first.wait_ready(READY_TIMEOUT).await?;
    first.wait_synced(READY_TIMEOUT).await?;
    for n in nodes.iter().filter(|n| n.endpoint != first.endpoint) {
        if !n.is_running().await? {
            let pos = start_position(n);
            let args: Vec<&str> = pos.iter().map(String::as_str).collect();
            n.start(&args).await?;
        }
        start_node(n, NodePart::Galera, reporter).await?;
    }
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
