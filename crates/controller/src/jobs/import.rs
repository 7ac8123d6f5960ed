//! The import job: discover the seed's cluster, then register it and start watching it.

use nines_model::event::EventKind;
use nines_model::job::JobError;
use std::sync::Arc;

use nines_access::server::Credentials;
use nines_model::job::HostAccessSpec;
use nines_model::{ClusterType, Endpoint, Role};
use nines_ops::{OpError, Reporter};
use nines_store::{NewCluster, Store, StoreError};

use super::{JobContext, JobEnv};
use crate::monitor::Monitor;

/// What an import was asked.
pub(super) struct ImportArgs<'a> {
    pub name: &'a str,
    pub seed: &'a Endpoint,
    pub db_user: &'a str,
    pub db_password_secret: i64,
    pub host_access: &'a HostAccessSpec,
}

pub(super) async fn run(
    ctx: &JobContext,
    args: ImportArgs<'_>,
    env: &JobEnv,
) -> Result<(), JobError> {
    let result = import(ctx, &args, &env.store, &env.monitor, &env.settings).await;
    if result.is_err() {
        // Nothing registered: the password kept for this import goes too.
        crate::log_store_error(
            "the removal of the import's password",
            env.store.delete_secret(args.db_password_secret).await,
        );
    }
    result
}

async fn import(
    ctx: &JobContext,
    args: &ImportArgs<'_>,
    store: &Arc<dyn Store>,
    monitor: &Arc<Monitor>,
    settings: &super::JobSettings,
) -> Result<(), JobError> {
    let ImportArgs {
        name,
        seed,
        db_user,
        db_password_secret,
        host_access,
    } = *args;
    ctx.progress("check", 5).await;
    if store
        .get_cluster(name)
        .await
        .map_err(|e| e.to_string())?
        .is_some()
    {
        return Err(JobError::refused(format!(
            "a cluster named `{name}` already exists"
        )));
    }
    let password = store
        .get_secret(db_password_secret)
        .await
        .map_err(|e| e.to_string())?;
    let creds = Credentials {
        user: db_user.to_string(),
        password: password.expose().to_string(),
    };
    ctx.progress("discover", 10).await;
    let topology = tokio::select! {
        r = nines_ops::discover::discover(seed, &creds, settings.timeouts, ctx) => r,
        _ = ctx.cancellation().cancelled() => Err(OpError::Cancelled),
    }
    .map_err(|e| e.to_string())?;

    for n in &topology.nodes {
        if let Some(owner) = store
            .cluster_of_node(&n.endpoint)
            .await
            .map_err(|e| e.to_string())?
        {
            return Err(JobError::refused(format!(
                "node {} is already managed by nines in cluster `{owner}`; nothing registered",
                n.endpoint
            )));
        }
    }
    check_hosts(ctx, host_access, &topology, settings).await;
    ctx.progress("register", 90).await;
    let cluster = store
        .create_cluster(NewCluster {
            name: name.to_string(),
            cluster_type: topology.cluster_type,
            host_access: host_access.clone(),
            db_user: db_user.to_string(),
            db_password_secret,
            nodes: topology
                .nodes
                .iter()
                .map(|n| nines_store::NewNode {
                    endpoint: n.endpoint.clone(),
                    role: n.role,
                    settings: None,
                })
                .collect(),
            settings: None,
            deploy_state: None,
            primary: match topology.cluster_type {
                ClusterType::Replication => topology
                    .nodes
                    .iter()
                    .find(|n| n.role == Role::Primary)
                    .map(|n| n.endpoint.clone()),
                ClusterType::Galera | ClusterType::Standalone => None,
            },
        })
        .await
        .map_err(|e| match e {
            StoreError::Conflict(m) => format!("{m}; nothing registered"),
            other => other.to_string(),
        })?;
    let summary = format!(
        "registered {} cluster `{}` with {} nodes",
        cluster.cluster_type,
        cluster.name,
        topology.nodes.len()
    );
    ctx.info(&summary).await;
    store
        .add_event(&cluster.name, None, EventKind::ClusterRegistered, &summary)
        .await
        .map_err(|e| e.to_string())?;
    monitor
        .watch(cluster.name.clone())
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Reads the facts of every host over the cluster's host transport and logs them; a host
/// that cannot be reached is a warning (monitoring works without host access), not a failure.
async fn check_hosts(
    ctx: &JobContext,
    spec: &nines_model::job::HostAccessSpec,
    topology: &nines_ops::discover::Topology,
    settings: &super::JobSettings,
) {
    let mut hosts: Vec<&str> = topology
        .nodes
        .iter()
        .map(|n| n.endpoint.host.as_str())
        .collect();
    hosts.sort_unstable();
    hosts.dedup();
    for host in hosts {
        let Some(access) = crate::hosts::host_access(spec, host, settings.ssh_config.as_deref())
        else {
            return;
        };
        let facts = nines_access::host::host_facts(
            access.as_ref(),
            "/",
            std::time::Duration::from_secs(20),
        )
        .await;
        match facts {
            Ok(f) => {
                ctx.info(&format!(
                    "host {host} ({}): {}, kernel {}, {} CPUs, {} MiB memory, systemd {}",
                    access.describe(),
                    f.os.pretty_name,
                    f.kernel,
                    f.cpu_count,
                    f.memory_total_bytes / (1024 * 1024),
                    if f.systemd { "yes" } else { "no" }
                ))
                .await;
            }
            Err(e) => {
                ctx.warn(&format!(
                    "host {host}: no host access ({e}); host metrics will be missing"
                ))
                .await;
            }
        }
    }
}
