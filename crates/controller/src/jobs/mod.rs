//! The job runner: executes queued jobs in lanes (`nines_model::lanes`: changes to a
//! cluster one at a time, long read-only work beside them, failover and recovery never
//! behind a data copy) and clusters in parallel, with a durable log, progress and
//! cancellation.
//!
//! Jobs live in the store; the runner only holds the cancellation tokens of the jobs it is
//! running. It wakes when a job is submitted or finishes, and every second besides, so a
//! lost wake-up costs at most a second. At start-up, jobs a previous controller left
//! running are closed as failed (their steps are not all idempotent yet).

pub mod archive;
pub mod backup;
mod context;
mod create;
mod galera;
pub mod ha;
mod import;
mod lifecycle;
mod scale;
mod targets;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nines_model::job::{FailureKind, JobError, JobSpec, JobState, LogLevel};
use nines_model::lanes::{Lock, startable};
use nines_ops::Reporter;
use nines_store::{JobRecord, Store, StoreError};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use context::JobContext;
pub use ha::Hooks;

use crate::monitor::Monitor;

/// A store error in a job: a failure (the store may answer next time).
fn store_err(e: StoreError) -> JobError {
    JobError::Failed(e.to_string())
}

/// An operation's error in a job: a step that went wrong is a failure; a cancelled one
/// stays a cancellation. (Refusals are decided by the job itself, from what it found.)
fn op(e: nines_ops::OpError) -> JobError {
    match e {
        nines_ops::OpError::Cancelled => JobError::Cancelled,
        e => JobError::Failed(e.to_string()),
    }
}

/// What every job can reach.
pub struct JobEnv {
    pub store: Arc<dyn Store>,
    pub monitor: Arc<Monitor>,
    pub alarms: Arc<crate::alarms::Alarms>,
    /// What the load balancer follower last applied.
    pub balancers: Arc<crate::balancers::Applied>,
    pub settings: JobSettings,
}

/// Submits, runs and cancels jobs.
pub struct JobRunner {
    store: Arc<dyn Store>,
    env: JobEnv,
    wake: Notify,
    running: Mutex<HashMap<i64, CancellationToken>>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

/// What jobs need to reach servers and hosts.
#[derive(Debug, Clone)]
pub struct JobSettings {
    /// Timeouts of jobs' server connections: more patient than the monitor's probes.
    pub timeouts: nines_access::server::Timeouts,
    /// ssh_config file handed to OpenSSH for host access, if any.
    pub ssh_config: Option<std::path::PathBuf>,
    /// The HA policy (the per-cluster switch and semi-sync are applied on top).
    pub ha: nines_model::ha::HaPolicy,
    /// Pre/post failover and switchover scripts.
    pub hooks: Hooks,
    /// The controller's data directory (the default backup repository lives under it).
    pub data_dir: std::path::PathBuf,
}

impl JobRunner {
    pub fn new(
        store: Arc<dyn Store>,
        monitor: Arc<Monitor>,
        alarms: Arc<crate::alarms::Alarms>,
        shutdown: CancellationToken,
        settings: JobSettings,
    ) -> Arc<Self> {
        Arc::new(Self {
            env: JobEnv {
                store: Arc::clone(&store),
                monitor,
                alarms,
                balancers: Arc::default(),
                settings,
            },
            store,
            wake: Notify::new(),
            running: Mutex::new(HashMap::new()),
            tasks: TaskTracker::new(),
            shutdown,
        })
    }

    /// The alarm engine.
    pub fn alarms(&self) -> &Arc<crate::alarms::Alarms> {
        &self.env.alarms
    }

    /// What the load balancer follower last applied.
    pub fn balancers(&self) -> &Arc<crate::balancers::Applied> {
        &self.env.balancers
    }

    /// Queues a job and wakes the runner.
    pub async fn submit(
        &self,
        spec: &JobSpec,
        requested_by: &str,
    ) -> Result<JobRecord, StoreError> {
        let job = self.store.create_job(spec, requested_by).await?;
        self.store
            .append_job_log(
                job.id,
                LogLevel::Info,
                &format!(
                    "queued {} for cluster `{}` by {requested_by}",
                    job.kind, job.cluster_name
                ),
            )
            .await?;
        self.wake.notify_one();
        Ok(job)
    }

    /// Cancels a job: a queued one at once, a running one by signalling its steps.
    pub async fn cancel(&self, id: i64) -> Result<JobState, StoreError> {
        let state = self.store.request_cancel(id).await?;
        if state == JobState::Running
            && let Some(token) = self.running_token(id)
        {
            token.cancel();
        }
        Ok(state)
    }

    fn running_token(&self, id: i64) -> Option<CancellationToken> {
        self.running.lock().ok().and_then(|m| m.get(&id).cloned())
    }

    /// The dispatch loop; returns when the controller shuts down, after running jobs end
    /// (they are cancelled) or the deadline passes.
    pub async fn run(self: Arc<Self>) {
        loop {
            if let Err(e) = self.dispatch().await {
                tracing::error!(error = %e, "job dispatch failed");
            }
            tokio::select! {
                _ = self.shutdown.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
        self.tasks.close();
        if tokio::time::timeout(Duration::from_secs(10), self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "jobs still running at shutdown deadline; they will be closed as failed at next start"
            );
        }
    }

    /// Starts every queued job the lanes allow (`nines_model::lanes`). Only this loop
    /// starts jobs, so what it read cannot change under it but by a cancellation, which
    /// `start_job` notices.
    async fn dispatch(self: &Arc<Self>) -> Result<(), StoreError> {
        let active = self.store.active_jobs().await?;
        let running: Vec<Vec<Lock>> = active
            .iter()
            .filter(|j| j.state == JobState::Running)
            .map(|j| j.spec.locks())
            .collect();
        let queued: Vec<(i64, Vec<Lock>)> = active
            .iter()
            .filter(|j| j.state == JobState::Queued)
            .map(|j| (j.id, j.spec.locks()))
            .collect();
        let start = startable(&running, &queued);
        for job in active.into_iter().filter(|j| start.contains(&j.id)) {
            if !self.store.start_job(job.id).await? {
                continue;
            }
            let token = self.shutdown.child_token();
            if let Ok(mut m) = self.running.lock() {
                m.insert(job.id, token.clone());
            }
            let this = Arc::clone(self);
            self.tasks.spawn(async move {
                let id = job.id;
                this.execute(job, token).await;
                if let Ok(mut m) = this.running.lock() {
                    m.remove(&id);
                }
                this.wake.notify_one();
            });
        }
        Ok(())
    }

    async fn execute(&self, job: JobRecord, token: CancellationToken) {
        let ctx = JobContext::new(job.id, Arc::clone(&self.store), token.clone());
        ctx.log(LogLevel::Info, &format!("started {}", job.kind))
            .await;
        let result = self.dispatch_spec(&ctx, &job.spec).await;
        let (state, error, failure) = match result {
            Ok(()) => (JobState::Succeeded, None, None),
            Err(_) if token.is_cancelled() && !self.shutdown.is_cancelled() => (
                JobState::Cancelled,
                Some(JobError::Cancelled.to_string()),
                None,
            ),
            Err(_) if self.shutdown.is_cancelled() => (
                JobState::Failed,
                Some("controller shut down while the job ran".to_string()),
                Some(FailureKind::Failed),
            ),
            Err(JobError::Cancelled) => (
                JobState::Cancelled,
                Some(JobError::Cancelled.to_string()),
                None,
            ),
            Err(e) => (JobState::Failed, Some(e.to_string()), e.kind()),
        };
        match (&error, failure) {
            (Some(e), Some(FailureKind::Refused)) => {
                ctx.log(LogLevel::Error, &format!("refused: {e}")).await;
            }
            (Some(e), _) => ctx.log(LogLevel::Error, &format!("{state}: {e}")).await,
            (None, _) => ctx.log(LogLevel::Info, "succeeded").await,
        }
        if let Err(e) = self
            .store
            .finish_job(job.id, state, error.as_deref(), failure)
            .await
        {
            tracing::error!(job = job.id, error = %e, "cannot record job result");
        }
    }
}

impl JobRunner {
    async fn dispatch_spec(&self, ctx: &JobContext, spec: &JobSpec) -> Result<(), JobError> {
        let env = &self.env;
        match spec {
            JobSpec::ImportCluster {
                name,
                seed,
                db_user,
                db_password_secret,
                host_access,
            } => {
                let args = import::ImportArgs {
                    name,
                    seed,
                    db_user,
                    db_password_secret: *db_password_secret,
                    host_access,
                };
                import::run(ctx, args, env).await
            }
            JobSpec::CreateCluster { .. } => create::run(ctx, spec, env).await,
            JobSpec::NodeAction {
                cluster,
                node,
                action,
                force,
            } => lifecycle::node_action(ctx, env, cluster, node, *action, *force).await,
            JobSpec::ClusterAction { cluster, action } => {
                lifecycle::cluster_action(ctx, env, cluster, *action).await
            }
            JobSpec::DeleteCluster { cluster, purge } => {
                lifecycle::delete_cluster(ctx, env, cluster, *purge).await
            }
            JobSpec::AddNode {
                cluster,
                node,
                source,
                from_backup,
            } => scale::add_node(ctx, env, cluster, node, source.as_ref(), *from_backup).await,
            JobSpec::RemoveNode {
                cluster,
                node,
                mode,
            } => scale::remove_node(ctx, env, cluster, node, *mode).await,
            JobSpec::Failover {
                cluster,
                to,
                force,
                automatic,
                reasons,
            } => ha::failover(ctx, env, cluster, to.as_ref(), *force, *automatic, reasons).await,
            JobSpec::Switchover { cluster, to } => {
                ha::switchover(ctx, env, cluster, to.as_ref()).await
            }
            JobSpec::Rejoin { cluster, node } => ha::rejoin(ctx, env, cluster, node).await,
            JobSpec::GaleraRecovery {
                cluster,
                bootstrap_from,
                force,
                automatic,
                reasons,
            } => {
                let mode = if *automatic {
                    galera::Mode::Automatic(reasons)
                } else {
                    galera::Mode::Manual {
                        bootstrap_from: bootstrap_from.as_ref(),
                        force: *force,
                    }
                };
                galera::recover(ctx, env, cluster, mode).await
            }
            JobSpec::CreateBackup {
                cluster,
                method,
                node,
                repo,
                retention_secs,
                verify_restore,
            } => {
                backup::create(
                    ctx,
                    env,
                    cluster,
                    *method,
                    node.as_ref(),
                    repo,
                    *verify_restore,
                )
                .await?;
                match retention_secs {
                    Some(secs) => backup::purge(ctx, env, cluster, repo, *secs).await,
                    None => Ok(()),
                }
            }
            JobSpec::VerifyBackup { cluster, backup_id } => {
                backup::verify(ctx, env, cluster, *backup_id, true).await
            }
            JobSpec::RestoreBackup {
                cluster,
                backup_id,
                force,
                until,
                until_gtid,
            } => {
                let target = backup::RollForward {
                    until: *until,
                    until_gtid: until_gtid.clone(),
                };
                backup::restore(ctx, env, cluster, *backup_id, *force, &target).await
            }
            JobSpec::AddLoadBalancer {
                cluster,
                host,
                rw_port,
                ro_port,
                stats_port,
                host_access,
                vip,
                policy,
            } => {
                let new = nines_store::NewLb {
                    cluster: cluster.clone(),
                    host: host.clone(),
                    rw_port: *rw_port,
                    ro_port: *ro_port,
                    stats_port: *stats_port,
                    dir: crate::balancers::lb_dir(cluster, host, *rw_port),
                    host_access: host_access.clone(),
                    // Interface, router id and priority are found by the job.
                    vip: vip.as_ref().map(|address| nines_store::Vip {
                        address: address.clone(),
                        router_id: 0,
                        priority: 0,
                        interface: String::new(),
                    }),
                    policy: *policy,
                };
                crate::balancers::add(ctx, env, &env.balancers, new)
                    .await
                    .map_err(JobError::Failed)
            }
            JobSpec::RemoveLoadBalancer { cluster, host } => {
                crate::balancers::remove(ctx, env, cluster, host)
                    .await
                    .map_err(JobError::Failed)
            }
            JobSpec::RestartLoadBalancer { cluster, host } => {
                crate::balancers::restart(ctx, env, cluster, host)
                    .await
                    .map_err(JobError::Failed)
            }
            JobSpec::ReconfigureLoadBalancer {
                cluster,
                host,
                policy,
            } => crate::balancers::reconfigure(ctx, env, cluster, host, *policy)
                .await
                .map_err(JobError::Failed),
        }
    }
}
