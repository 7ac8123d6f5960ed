//! The create job: plan, pre-flight every host, register the cluster, deploy, watch.
//!
//! The cluster is registered only after pre-flight passed (so bad input leaves nothing
//! behind anywhere), in state `deploying`; a deploy that fails leaves it `failed`, to be
//! retried with the same command or removed with `cluster delete --purge`.

use nines_model::event::EventKind;
use nines_model::job::JobError;
use std::collections::BTreeMap;

use nines_model::deploy::{
    ClusterSettings, NodeLayout, NodeSettings, ServiceKind, accounts as purpose,
};
use nines_model::job::JobSpec;
use nines_model::{ClusterType, Role};
use nines_ops::Reporter;
use nines_ops::deploy::{Account, Accounts, Deploy};
use nines_ops::node::NodeTarget;
use nines_store::{NewCluster, NewNode};
use rand::Rng;

use super::{JobContext, JobEnv};

/// A random password of letters and digits (safe in SQL and configuration files).
pub(super) fn generate_password() -> String {
    rand::rng()
        .sample_iter(&rand::distr::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

pub(super) async fn run(ctx: &JobContext, spec: &JobSpec, env: &JobEnv) -> Result<(), JobError> {
    let mut registered = false;
    let result = create(ctx, spec, env, &mut registered).await;
    if result.is_err()
        && !registered
        && let JobSpec::CreateCluster {
            admin_password_secret,
            ..
        } = spec
    {
        // Nothing was registered: the admin password given for this deploy goes too.
        crate::log_store_error(
            "the removal of the deploy's admin password",
            env.store.delete_secret(*admin_password_secret).await,
        );
    }
    result
}

async fn create(
    ctx: &JobContext,
    spec: &JobSpec,
    env: &JobEnv,
    registered: &mut bool,
) -> Result<(), JobError> {
    let JobSpec::CreateCluster {
        name,
        cluster_type,
        nodes,
        datadir_template,
        admin_user,
        admin_password_secret,
        host_access,
        semi_sync,
        config_template,
        innodb_buffer_pool_size,
    } = spec
    else {
        return Err("not a create job".into());
    };
    let store = &env.store;
    if let Some(old) = store.get_cluster(name).await.map_err(|e| e.to_string())? {
        if old.deploy_state != Some(nines_model::DeployState::Failed) {
            return Err(JobError::refused(format!(
                "a cluster named `{name}` already exists"
            )));
        }
        ctx.info(&format!("retrying the failed deploy of `{name}`"))
            .await;
    }
    ctx.progress("plan", 2).await;
    let layouts = NodeLayout::for_nodes(datadir_template, nodes).map_err(|e| e.to_string())?;
    let mut targets = Vec::new();
    for (i, (ep, layout)) in nodes.iter().zip(layouts).enumerate() {
        let host =
            crate::hosts::host_access(host_access, &ep.host, env.settings.ssh_config.as_deref())
                .ok_or("deploying needs host access (ssh or local)")?;
        let settings = NodeSettings {
            layout,
            server_id: u32::try_from(i + 1).unwrap_or(1),
            service: ServiceKind::Process,
        };
        targets.push(NodeTarget::new(ep.clone(), settings, host));
    }

    ctx.progress("pre-flight", 5).await;
    let hosts = nines_ops::preflight::preflight(name, *cluster_type, &targets, &[], ctx)
        .await
        .map_err(|e| e.to_string())?;
    for t in &mut targets {
        if hosts.get(&t.endpoint.host).is_some_and(|h| h.facts.systemd) {
            t.settings.service = ServiceKind::Systemd;
        }
    }

    // Accounts: nines's own with generated passwords, and the user's admin.
    let admin_password = store
        .get_secret(*admin_password_secret)
        .await
        .map_err(|e| e.to_string())?;
    let accounts = Accounts {
        admin: Account {
            user: nines_model::input::NINES_ADMIN_ACCOUNT.into(),
            password: generate_password(),
        },
        monitor: Account {
            user: nines_model::input::NINES_MONITOR_ACCOUNT.into(),
            password: generate_password(),
        },
        replication: Account {
            user: nines_model::input::NINES_REPLICATION_ACCOUNT.into(),
            password: generate_password(),
        },
        user_admin: Account {
            user: admin_user.clone(),
            password: admin_password.expose().to_string(),
        },
    };

    ctx.progress("register", 10).await;
    let cluster_id = register(ctx, env, spec, &targets, &accounts).await?;
    *registered = true;
    let deploy = Deploy {
        cluster: name,
        cluster_type: *cluster_type,
        nodes: &targets,
        hosts: &hosts,
        accounts: &accounts,
        semi_sync: *semi_sync,
        config_template: config_template.as_deref(),
        innodb_buffer_pool_size: *innodb_buffer_pool_size,
    };
    let result = tokio::select! {
        r = nines_ops::deploy::deploy(&deploy, ctx) => r,
        _ = ctx.cancellation().cancelled() => Err(nines_ops::OpError::Cancelled),
    };
    match result {
        Ok(()) => {
            store
                .set_deploy_state(cluster_id, nines_model::DeployState::Deployed)
                .await
                .map_err(|e| e.to_string())?;
            let msg = format!(
                "deployed {cluster_type} cluster `{name}` with {} nodes",
                targets.len()
            );
            ctx.info(&msg).await;
            store
                .add_event(name, None, EventKind::ClusterDeployed, &msg)
                .await
                .map_err(|e| e.to_string())?;
            env.monitor
                .watch(name.clone())
                .await
                .map_err(|e| e.to_string())?;
            Ok(())
        }
        Err(e) => {
            crate::log_store_error(
                "the failed deploy state",
                store
                    .set_deploy_state(cluster_id, nines_model::DeployState::Failed)
                    .await,
            );
            Err(JobError::from(format!(
                "{e}. The cluster stays registered as failed: run the same create command again to retry, or `nines cluster delete --name {name} --purge` to remove what was done"
            )))
        }
    }
}

/// Registers the cluster (replacing an earlier failed attempt) with its nodes and accounts.
async fn register(
    ctx: &JobContext,
    env: &JobEnv,
    spec: &JobSpec,
    targets: &[NodeTarget],
    accounts: &Accounts,
) -> Result<i64, String> {
    let JobSpec::CreateCluster {
        name,
        cluster_type,
        datadir_template,
        admin_password_secret,
        host_access,
        semi_sync,
        config_template,
        innodb_buffer_pool_size,
        ..
    } = spec
    else {
        return Err("not a create job".into());
    };
    let store = &env.store;
    if let Some(old) = store.get_cluster(name).await.map_err(|e| e.to_string())? {
        env.monitor.unwatch(name).await;
        store
            .delete_cluster(old.id)
            .await
            .map_err(|e| e.to_string())?;
    }
    let mut secrets = BTreeMap::new();
    for (p, acc) in [
        (purpose::ADMIN, &accounts.admin),
        (purpose::MONITOR, &accounts.monitor),
        (purpose::REPLICATION, &accounts.replication),
    ] {
        let id = store
            .put_secret(&acc.password)
            .await
            .map_err(|e| e.to_string())?;
        secrets.insert(p, (acc.user.clone(), id));
    }
    let (monitor_user, monitor_secret) = secrets[purpose::MONITOR].clone();
    let roles = |i: usize| match cluster_type {
        ClusterType::Galera => Role::Galera,
        ClusterType::Standalone => Role::Standalone,
        ClusterType::Replication if i == 0 => Role::Primary,
        ClusterType::Replication => Role::Replica,
    };
    let cluster = store
        .create_cluster(NewCluster {
            name: name.clone(),
            cluster_type: *cluster_type,
            host_access: host_access.clone(),
            db_user: monitor_user,
            db_password_secret: monitor_secret,
            nodes: targets
                .iter()
                .enumerate()
                .map(|(i, t)| NewNode {
                    endpoint: t.endpoint.clone(),
                    role: roles(i),
                    settings: Some(t.settings.clone()),
                })
                .collect(),
            settings: Some(ClusterSettings {
                datadir_template: datadir_template.clone(),
                semi_sync: *semi_sync,
                config_template: config_template.clone(),
                innodb_buffer_pool_size: *innodb_buffer_pool_size,
            }),
            deploy_state: Some(nines_model::DeployState::Deploying),
            primary: match cluster_type {
                ClusterType::Replication => targets.first().map(|t| t.endpoint.clone()),
                ClusterType::Galera | ClusterType::Standalone => None,
            },
        })
        .await
        .map_err(|e| e.to_string())?;
    for (p, (user, id)) in &secrets {
        store
            .put_account(cluster.id, p, user, *id)
            .await
            .map_err(|e| e.to_string())?;
    }
    store
        .put_account(
            cluster.id,
            purpose::USER_ADMIN,
            &accounts.user_admin.user,
            *admin_password_secret,
        )
        .await
        .map_err(|e| e.to_string())?;
    ctx.info(&format!(
        "registered `{name}` ({} nodes) as deploying",
        targets.len()
    ))
    .await;
    Ok(cluster.id)
}
