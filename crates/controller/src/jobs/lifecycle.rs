//! Jobs that stop, start and restart nodes and clusters, and delete clusters.

use nines_model::Endpoint;
use nines_model::event::EventKind;
use nines_model::job::JobError;
use nines_model::job::{ClusterAction, NodeAction};
use nines_model::{ClusterType, Desired};
use nines_ops::Reporter;
use nines_ops::lifecycle::{self, NodePart};
use nines_ops::node::NodeTarget;

use super::targets::{load, part};
use super::{JobContext, JobEnv, op};

pub(super) async fn node_action(
    ctx: &JobContext,
    env: &JobEnv,
    cluster: &str,
    node: &Endpoint,
    action: NodeAction,
    force: bool,
) -> Result<(), JobError> {
    let c = load(env, cluster).await?;
    let rec = c.node(node)?;
    let t = c.target(env, rec)?;
    let p = part(&c.record, rec);
    match action {
        NodeAction::Stop => {
            lifecycle::check_stop_allowed(&t, p, force)
                .await
                .map_err(op)?;
            env.store
                .set_node_desired(rec.id, Desired::Stopped)
                .await
                .map_err(|e| e.to_string())?;
            lifecycle::stop_node(&t, ctx).await.map_err(op)?;
        }
        NodeAction::Start => {
            env.store
                .set_node_desired(rec.id, Desired::Running)
                .await
                .map_err(|e| e.to_string())?;
            lifecycle::start_node(&t, p, ctx).await.map_err(op)?;
        }
        NodeAction::Restart => {
            lifecycle::check_stop_allowed(&t, p, force)
                .await
                .map_err(op)?;
            lifecycle::stop_node(&t, ctx).await.map_err(op)?;
            lifecycle::start_node(&t, p, ctx).await.map_err(op)?;
            env.store
                .set_node_desired(rec.id, Desired::Running)
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

pub(super) async fn cluster_action(
    ctx: &JobContext,
    env: &JobEnv,
    cluster: &str,
    action: ClusterAction,
) -> Result<(), JobError> {
    let c = load(env, cluster).await?;
    let targets = c.targets(env)?;
    let t = c.record.cluster_type;
    let desired = |d: Desired| {
        let store = env.store.clone();
        let ids: Vec<i64> = c.nodes.iter().map(|n| n.id).collect();
        async move {
            for id in ids {
                store
                    .set_node_desired(id, d)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok::<(), String>(())
        }
    };
    match action {
        ClusterAction::Stop => {
            desired(Desired::Stopped).await?;
            lifecycle::stop_cluster(t, &targets, ctx)
                .await
                .map_err(op)?;
        }
        ClusterAction::Start if t == ClusterType::Galera => {
            desired(Desired::Running).await?;
            super::galera::recover(ctx, env, cluster, super::galera::Mode::Start).await?;
        }
        ClusterAction::Start => {
            desired(Desired::Running).await?;
            start_cluster(&targets, ctx).await?;
        }
        ClusterAction::RollingRestart => {
            let ordered = restart_order(t, &targets);
            let peers: Vec<NodeTarget> = targets.iter().map(|(n, _)| n.clone()).collect();
            let n = ordered.len();
            for (i, (node, p)) in ordered.into_iter().enumerate() {
                if ctx.cancellation().is_cancelled() {
                    return Err("cancelled".into());
                }
                ctx.progress("restart", u8::try_from(100 * i / n.max(1)).unwrap_or(99))
                    .await;
                ctx.info(&format!("restarting {} ({}/{n})", node.endpoint, i + 1))
                    .await;
                lifecycle::stop_node(node, ctx).await.map_err(op)?;
                lifecycle::start_node_among(node, *p, &peers, ctx)
                    .await
                    .map_err(op)?;
            }
        }
    }
    Ok(())
}

/// Replicas before the primary; Galera in the listed order.
fn restart_order(
    t: ClusterType,
    targets: &[(NodeTarget, NodePart)],
) -> Vec<&(NodeTarget, NodePart)> {
    let mut v: Vec<&(NodeTarget, NodePart)> = targets.iter().collect();
    if t == ClusterType::Replication {
        v.sort_by_key(|(_, p)| matches!(p, NodePart::Primary));
    }
    v
}

/// Starts a replication or standalone cluster: the primary first, so replicas find
/// their source.
async fn start_cluster(
    targets: &[(NodeTarget, NodePart)],
    ctx: &JobContext,
) -> Result<(), JobError> {
    let mut v: Vec<&(NodeTarget, NodePart)> = targets.iter().collect();
    v.sort_by_key(|(_, p)| !matches!(p, NodePart::Primary));
    for (n, p) in v {
        lifecycle::start_node(n, *p, ctx).await.map_err(op)?;
    }
    Ok(())
}

pub(super) async fn delete_cluster(
    ctx: &JobContext,
    env: &JobEnv,
    cluster: &str,
    purge: bool,
) -> Result<(), JobError> {
    let c = load(env, cluster).await?;
    env.monitor.unwatch(cluster).await;
    if purge {
        for rec in &c.nodes {
            let t = match c.target(env, rec) {
                Ok(t) => t,
                Err(e) => {
                    ctx.warn(&format!("{}: not purged: {e}", rec.endpoint))
                        .await;
                    continue;
                }
            };
            purge_node(&t, ctx).await?;
        }
    }
    env.store
        .delete_cluster(c.record.id)
        .await
        .map_err(|e| e.to_string())?;
    crate::log_store_error(
        "the clearing of a deleted cluster's alarms",
        env.alarms.forget_cluster(cluster).await,
    );
    crate::log_store_error(
        "a deleted cluster's advice",
        env.store.drop_cluster_advice(cluster).await,
    );
    let msg = format!(
        "cluster `{cluster}` deleted{}",
        if purge {
            " and its nodes purged"
        } else {
            " (servers left as they are)"
        }
    );
    ctx.info(&msg).await;
    env.store
        .add_event(cluster, None, EventKind::ClusterDeleted, &msg)
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Stops a node's server, removes its service, data directory and node directory.
pub(super) async fn purge_node(t: &NodeTarget, ctx: &JobContext) -> Result<(), JobError> {
    t.remove_service().await.map_err(op)?;
    let l = &t.settings.layout;
    for dir in [&l.datadir, &l.node_dir] {
        nines_access::host::fs::remove_tree(t.host.as_ref(), dir, nines_ops::node::SHORT)
            .await
            .map_err(|e| format!("{}: removing {dir}: {e}", t.endpoint))?;
    }
    ctx.info(&format!(
        "{}: stopped and purged {} and {}",
        t.endpoint, l.datadir, l.node_dir
    ))
    .await;
    Ok(())
}
