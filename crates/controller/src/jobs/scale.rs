//! Jobs that add and remove nodes.
//!
//! A Galera node joins by state transfer (IST when the donor's gcache still holds what
//! it lacks, SST by mariabackup otherwise). A replica is provisioned from a mariabackup
//! stream of a source node sent straight from the source's host to the new node's host
//! (socat on the new node's address, port 4444, as Galera's own SST does), prepared, and
//! started replicating from the primary at the backup's GTID position.

use nines_model::event::EventKind;
use nines_model::job::JobError;
use std::time::Duration;

use nines_access::host::host_facts;
use nines_model::deploy::{NodeLayout, NodeSettings, ServiceKind};
use nines_model::job::RemoveMode;
use nines_model::{ClusterType, Endpoint, Role};
use nines_ops::Reporter;
use nines_ops::deploy::{Account, change_master_sql, node_config, prepare_node, wait_replicating};
use nines_ops::lifecycle::{self, NodePart};
use nines_ops::node::{NodeTarget, READY_TIMEOUT, SHORT};
use nines_store::NewNode;

use super::lifecycle::purge_node;
use super::targets::{Loaded, load, part};
use super::{JobContext, JobEnv, op};

pub(super) async fn add_node(
    ctx: &JobContext,
    env: &JobEnv,
    cluster: &str,
    node: &Endpoint,
    source: Option<&Endpoint>,
    from_backup: Option<i64>,
) -> Result<(), JobError> {
    let c = load(env, cluster).await?;
    let Some(settings) = c.record.settings.clone() else {
        return Err(JobError::refused(format!(
            "cluster `{cluster}` was not deployed by nines"
        )));
    };
    if c.nodes.iter().any(|n| &n.endpoint == node) {
        return Err(JobError::refused(format!(
            "node {node} is already part of `{cluster}`"
        )));
    }
    let layout =
        NodeLayout::from_template(&settings.datadir_template, node).map_err(|e| e.to_string())?;
    if let Some(clash) = c.nodes.iter().find(|n| {
        n.endpoint.host == node.host
            && n.settings
                .as_ref()
                .is_some_and(|s| s.layout.datadir == layout.datadir)
    }) {
        return Err(JobError::refused(format!(
            "node {node} would share the data directory {} with {}",
            layout.datadir, clash.endpoint
        )));
    }
    let server_id = c
        .nodes
        .iter()
        .filter_map(|n| n.settings.as_ref().map(|s| s.server_id))
        .max()
        .unwrap_or(0)
        + 1;
    let host = crate::hosts::host_access(
        &c.record.host_access,
        &node.host,
        env.settings.ssh_config.as_deref(),
    )
    .ok_or("the cluster has no host access")?;
    let mut target = NodeTarget::new(
        node.clone(),
        NodeSettings {
            layout,
            server_id,
            service: ServiceKind::Process,
        },
        host,
    );
    ctx.progress("pre-flight", 5).await;
    let t = c.record.cluster_type;
    // A new replica receives its copy on port 4444 of its address (Galera's SST port too).
    let transfer_port: &[u16] = if t == ClusterType::Replication {
        &[4444]
    } else {
        &[]
    };
    let hosts = nines_ops::preflight::preflight(
        cluster,
        t,
        std::slice::from_ref(&target),
        transfer_port,
        ctx,
    )
    .await
    .map_err(op)?;
    let ready = hosts
        .get(&node.host)
        .ok_or_else(|| format!("no pre-flight result for {}", node.host))?;
    if ready.facts.systemd {
        target.settings.service = ServiceKind::Systemd;
    }
    if !ready.missing.is_empty() {
        ctx.info(&format!(
            "{}: installing {}",
            node.host,
            ready.missing.join(" ")
        ))
        .await;
        let names: Vec<&str> = ready.missing.iter().map(String::as_str).collect();
        nines_access::host::packages::install(
            target.host.as_ref(),
            ready.package_manager,
            &names,
            Duration::from_secs(900),
        )
        .await
        .map_err(|e| format!("{}: installing packages failed: {e}", node.host))?;
    }
    let existing = c.targets(env)?;
    let mut all: Vec<&NodeTarget> = existing.iter().map(|(n, _)| n).collect();
    all.push(&target);
    let config = node_config(
        cluster,
        t,
        &target,
        false,
        &all,
        &ready.facts,
        settings.semi_sync,
        settings.config_template.as_deref(),
        settings.innodb_buffer_pool_size,
    )
    .map_err(op)?;
    ctx.progress("prepare", 20).await;
    prepare_node(cluster, &target, &config, false, ctx)
        .await
        .map_err(op)?;
    // Register first: from here on a failure leaves the node visible and removable.
    let role = if t == ClusterType::Galera {
        Role::Galera
    } else {
        Role::Replica
    };
    let rec = env
        .store
        .add_node(
            c.record.id,
            NewNode {
                endpoint: node.clone(),
                role,
                settings: Some(target.settings.clone()),
            },
        )
        .await
        .map_err(|e| e.to_string())?;
    let joined = match t {
        ClusterType::Galera => {
            ctx.progress("join", 40).await;
            ctx.info(&format!("{node}: joining by state transfer"))
                .await;
            // A chosen donor is passed for this start only (wsrep_node_name is host:port).
            let donor = source.map(|s| format!("--wsrep-sst-donor={s}"));
            let args: Vec<&str> = donor.iter().map(String::as_str).collect();
            let peers: Vec<NodeTarget> = existing.iter().map(|(n, _)| n.clone()).collect();
            let started = nines_ops::galera::start_joiner(&target, &args, &peers, ctx)
                .await
                .map_err(op);
            let r = match started {
                Ok(()) => lifecycle::start_node(&target, NodePart::Galera, ctx)
                    .await
                    .map_err(op),
                Err(e) => Err(e),
            };
            if r.is_ok() {
                let rewrite: Vec<&NodeTarget> = existing.iter().map(|(n, _)| n).collect();
                update_cluster_addresses(ctx, &c, &rewrite, &all, &settings).await;
            }
            r
        }
        ClusterType::Replication => {
            provision_replica(ctx, env, &c, &existing, &target, source, from_backup).await
        }
        ClusterType::Standalone => Err(JobError::refused("a standalone cluster has one node")),
    };
    if let Err(e) = joined {
        // Leave no half-added node behind: stop it and forget it; its files stay (marked
        // as this cluster's) so that `node add` can simply be run again.
        if let Err(stop) = target.stop().await {
            ctx.warn(&format!("{node}: cannot stop it: {stop}")).await;
        }
        env.store.remove_node(rec.id).await.map_err(|s| {
            format!("{e}; and the node could not be unregistered ({s}): `nines node remove` it")
        })?;
        return Err(JobError::from(format!(
            "{e}. The node was stopped and unregistered; its files are left in {} for inspection, and `nines node add` can be run again",
            target.settings.layout.node_dir
        )));
    }
    let msg = format!("node {node} added to `{cluster}`");
    ctx.info(&msg).await;
    env.store
        .add_event(cluster, Some(&node.to_string()), EventKind::NodeAdded, &msg)
        .await
        .map_err(|e| e.to_string())?;
    env.monitor
        .rewatch(cluster)
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Rewrites the configuration files of the existing Galera nodes so that their
/// wsrep_cluster_address lists the new member at their next start (running servers keep
/// their connections; Galera learns the new member from the group itself).
async fn update_cluster_addresses(
    ctx: &JobContext,
    c: &Loaded,
    rewrite: &[&NodeTarget],
    all: &[&NodeTarget],
    settings: &nines_model::deploy::ClusterSettings,
) {
    for n in rewrite {
        let facts = match host_facts(n.host.as_ref(), &n.settings.layout.datadir, SHORT).await {
            Ok(f) => f,
            Err(e) => {
                ctx.warn(&format!("{}: configuration not updated: {e}", n.endpoint))
                    .await;
                continue;
            }
        };
        let result = async {
            let config = node_config(
                &c.record.name,
                c.record.cluster_type,
                n,
                false,
                all,
                &facts,
                settings.semi_sync,
                settings.config_template.as_deref(),
                settings.innodb_buffer_pool_size,
            )?;
            nines_ops::deploy::write_config(n, &config).await
        }
        .await;
        if let Err(e) = result {
            ctx.warn(&format!("{}: configuration not updated: {e}", n.endpoint))
                .await;
        }
    }
}

/// Copies a source's data to the new replica with mariabackup, then starts it replicating.
async fn provision_replica(
    ctx: &JobContext,
    env: &JobEnv,
    c: &Loaded,
    existing: &[(NodeTarget, NodePart)],
    target: &NodeTarget,
    chosen: Option<&Endpoint>,
    from_backup: Option<i64>,
) -> Result<(), JobError> {
    let primary = existing
        .iter()
        .find(|(_, p)| *p == NodePart::Primary)
        .map(|(n, _)| n)
        .ok_or("the cluster has no primary to replicate from")?;
    // Prefer a running replica as the copy's source: the primary keeps its resources for writes.
    let mut source = primary;
    match chosen {
        Some(ep) => {
            source = existing
                .iter()
                .map(|(n, _)| n)
                .find(|n| &n.endpoint == ep)
                .ok_or_else(|| format!("source {ep} is not a node of `{}`", c.record.name))?;
            if !source.is_running().await.unwrap_or(false) {
                return Err(JobError::refused(format!("source {ep} is not running")));
            }
        }
        None => {
            for (n, p) in existing {
                if *p == NodePart::Replica && n.is_running().await.unwrap_or(false) {
                    source = n;
                    break;
                }
            }
        }
    }
    let repl = replication_account(env, c.record.id).await?;
    ctx.progress("copy", 30).await;
    let gtid = match from_backup {
        Some(id) => {
            ctx.info(&format!(
                "{}: restoring backup {id} instead of copying a live node",
                target.endpoint
            ))
            .await;
            super::backup::restore_into_new_node(ctx, env, &c.record.name, target, id).await?
        }
        None => {
            ctx.info(&format!(
                "{}: copying data from {} with mariabackup",
                target.endpoint, source.endpoint
            ))
            .await;
            // The datadir is ours (pre-flight checked its marker): the copy starts from empty.
            nines_ops::stream::copy_datadir(source, target, ctx)
                .await
                .map_err(op)?
        }
    };
    ctx.info(&format!(
        "{}: backup taken at GTID position `{gtid}`",
        target.endpoint
    ))
    .await;
    ctx.progress("start", 80).await;
    // Said every 10 s while it lasts, so a slow start shows in the job's log.
    nines_ops::wait::report_while(
        ctx,
        &format!("{} to start and answer", target.endpoint),
        async {
            target.start(&[]).await?;
            target.wait_ready(READY_TIMEOUT).await
        },
    )
    .await
    .map_err(op)?;
    ctx.info(&format!("{}: started", target.endpoint)).await;
    if !gtid
        .chars()
        .all(|ch| ch.is_ascii_digit() || ch == '-' || ch == ',')
    {
        return Err(JobError::from(format!(
            "{}: unexpected GTID position `{gtid}` in the backup",
            target.endpoint
        )));
    }
    // A failover may run beside the copy, or finish just after the new replica was
    // pointed somewhere: follow the designated primary of now (the copy's GTID position
    // is in its history too), and look again while the replica does not replicate.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let mut pointed_at: Option<nines_model::Endpoint> = None;
    loop {
        let now_primary = super::targets::load(env, &c.record.name)
            .await
            .ok()
            .and_then(|l| {
                l.targets(env).ok().and_then(|t| {
                    t.into_iter()
                        .find(|(_, p)| *p == NodePart::Primary)
                        .map(|(n, _)| n)
                })
            });
        let source = now_primary.as_ref().unwrap_or(primary);
        if pointed_at.as_ref() != Some(&source.endpoint) {
            if source.endpoint != primary.endpoint {
                ctx.info(&format!(
                    "the primary changed during the copy: {} replicates from {} instead of {}",
                    target.endpoint, source.endpoint, primary.endpoint
                ))
                .await;
            }
            target
                .sql(&format!(
                    "STOP SLAVE; RESET SLAVE ALL; SET GLOBAL gtid_slave_pos='{gtid}'; {}",
                    change_master_sql(source, &repl)
                ))
                .await
                .map_err(op)?;
            pointed_at = Some(source.endpoint.clone());
        }
        match wait_replicating(target, Duration::from_secs(5)).await {
            Ok(()) => {
                ctx.info(&format!(
                    "{}: replicating from {}",
                    target.endpoint, source.endpoint
                ))
                .await;
                return Ok(());
            }
            Err(e) if tokio::time::Instant::now() >= deadline => return Err(op(e)),
            Err(_) => {}
        }
    }
}

/// Every account nines keeps for a deployed cluster, with its password.
pub(super) async fn cluster_accounts(
    env: &JobEnv,
    cluster_id: i64,
) -> Result<nines_ops::deploy::Accounts, JobError> {
    use nines_model::deploy::accounts;
    let stored = env
        .store
        .accounts(cluster_id)
        .await
        .map_err(|e| e.to_string())?;
    let get = async |purpose: &str| -> Result<Account, JobError> {
        let a = stored
            .iter()
            .find(|a| a.purpose == purpose)
            .ok_or_else(|| format!("the cluster has no {purpose} account"))?;
        let pw = env
            .store
            .get_secret(a.secret_id)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Account {
            user: a.user.clone(),
            password: pw.expose().to_string(),
        })
    };
    Ok(nines_ops::deploy::Accounts {
        admin: get(accounts::ADMIN).await?,
        monitor: get(accounts::MONITOR).await?,
        replication: get(accounts::REPLICATION).await?,
        user_admin: get(accounts::USER_ADMIN).await?,
    })
}

pub(super) async fn replication_account(
    env: &JobEnv,
    cluster_id: i64,
) -> Result<Account, JobError> {
    let accounts = env
        .store
        .accounts(cluster_id)
        .await
        .map_err(|e| e.to_string())?;
    let a = accounts
        .iter()
        .find(|a| a.purpose == nines_model::deploy::accounts::REPLICATION)
        .ok_or("the cluster has no replication account")?;
    let pw = env
        .store
        .get_secret(a.secret_id)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Account {
        user: a.user.clone(),
        password: pw.expose().to_string(),
    })
}

pub(super) async fn remove_node(
    ctx: &JobContext,
    env: &JobEnv,
    cluster: &str,
    node: &Endpoint,
    mode: RemoveMode,
) -> Result<(), JobError> {
    let c = load(env, cluster).await?;
    let rec = c.node(node)?;
    if c.nodes.len() == 1 {
        return Err(JobError::refused(format!(
            "{node} is the only node of `{cluster}`: delete the cluster instead (nines cluster delete --name {cluster})"
        )));
    }
    let p = part(&c.record, rec);
    if p == NodePart::Primary {
        return Err(JobError::refused(format!(
            "{node} is the primary of `{cluster}`: switch over to another node before removing it"
        )));
    }
    if c.record.cluster_type == ClusterType::Galera
        && c.nodes.len() <= 3
        && mode != RemoveMode::Unregister
    {
        ctx.warn(&format!(
            "`{cluster}` will have {} Galera nodes: it cannot keep a majority if one more fails",
            c.nodes.len() - 1
        ))
        .await;
    }
    match mode {
        RemoveMode::Unregister => {
            ctx.info(&format!(
                "{node}: unregistered; the server is left as it is"
            ))
            .await;
        }
        RemoveMode::Stop | RemoveMode::Purge => {
            let t = c.target(env, rec)?;
            if p == NodePart::Replica {
                // A removed replica must not keep pulling from the cluster.
                let _ = t.sql("STOP SLAVE").await;
            }
            lifecycle::stop_node(&t, ctx).await.map_err(op)?;
            if mode == RemoveMode::Purge {
                purge_node(&t, ctx).await?;
            } else {
                ctx.info(&format!(
                    "{node}: stopped; data kept in {}",
                    t.settings.layout.datadir
                ))
                .await;
            }
        }
    }
    env.store
        .remove_node(rec.id)
        .await
        .map_err(|e| e.to_string())?;
    // A removed node leaves the cluster's candidate lists too.
    if let Some(mut policy) = c.record.ha_policy.clone()
        && (policy.excluded_candidates.contains(node) || policy.preferred_candidates.contains(node))
    {
        policy.excluded_candidates.retain(|e| e != node);
        policy.preferred_candidates.retain(|e| e != node);
        env.store
            .set_ha_policy(c.record.id, Some(&policy))
            .await
            .map_err(|e| e.to_string())?;
        ctx.info(&format!(
            "{node}: taken out of the cluster's HA candidate lists"
        ))
        .await;
    }
    if c.record.cluster_type == ClusterType::Galera
        && let Some(settings) = &c.record.settings
    {
        // The remaining members' configurations stop listing the removed node.
        let rest: Vec<NodeTarget> = c
            .nodes
            .iter()
            .filter(|n| n.id != rec.id)
            .filter_map(|n| c.target(env, n).ok())
            .collect();
        let refs: Vec<&NodeTarget> = rest.iter().collect();
        update_cluster_addresses(ctx, &c, &refs, &refs, settings).await;
    }
    let msg = format!("node {node} removed from `{cluster}`");
    env.store
        .add_event(
            cluster,
            Some(&node.to_string()),
            EventKind::NodeRemoved,
            &msg,
        )
        .await
        .map_err(|e| e.to_string())?;
    env.monitor
        .rewatch(cluster)
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}
