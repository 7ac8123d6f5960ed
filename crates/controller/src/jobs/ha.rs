//! Failover, switchover and rejoin jobs of replication clusters.
//!
//! Each job plans again from the monitor's freshest view with the pure decisions of
//! `nines_model::ha` (an automatic failover's reasons, given by the reconciler, are
//! logged first), runs the pre hook (a failing one vetoes), carries the plan out with
//! `nines_ops::replication`, then records the new designated primary, the roles, the
//! fence of a failed-over primary and the failover itself, writes an event, and runs the
//! post hook. Every input and step is in the job log.
//!
//! Crash safety: a promotion's intent is in the store before its first change, and its
//! outcome replaces the intent in one transaction. A controller that finds an intent at
//! start-up queues the same promotion again ([`resume_promotions`]): it completes when the
//! plan made again holds, and its first steps are rolled back when it does not.

use nines_model::event::EventKind;
use nines_model::job::JobError;
use std::path::Path;
use std::time::Duration;

use chrono::Utc;
use nines_access::server::{Credentials, Timeouts};
use nines_model::deploy::accounts as purpose;
use nines_model::gtid::GtidSet;
use nines_model::ha::PromotionKind;
use nines_model::ha::{
    HaPolicy, RejoinAction, old_primary_rejoin, requested_failover, switchover_preflight,
};
use nines_model::job::LogLevel;
use nines_model::{ClusterType, Endpoint, Role};
use nines_ops::Reporter;
use nines_ops::replication::{self, PromotionOutcome, ReplicationAccess};
use nines_store::{NewFailover, NewPromotionIntent, PromotionRecord};

use super::targets::{Loaded, load};
use super::{JobContext, JobEnv, op, store_err};
use crate::haview;

use nines_model::ha::fence::Fence;

/// Scripts run around failovers and switchovers, on the controller's host.
#[derive(Debug, Clone, Default)]
pub struct Hooks {
    /// Runs before anything changes; a non-zero exit or a timeout vetoes the operation.
    pub pre: Option<std::path::PathBuf>,
    /// Runs after success; a failure is logged, nothing else.
    pub post: Option<std::path::PathBuf>,
    /// How long a hook may run.
    pub timeout: Duration,
}

/// The connections the steps use: nines's admin account of a deployed cluster (the
/// import account otherwise), the replication account where nines knows it.
async fn access(
    env: &JobEnv,
    c: &Loaded,
    observed: &crate::monitor::ClusterObserved,
) -> Result<ReplicationAccess, JobError> {
    let accounts = env.store.accounts(c.record.id).await.map_err(store_err)?;
    let creds = |p: &str| accounts.iter().find(|a| a.purpose == p);
    let admin = match creds(purpose::ADMIN) {
        Some(a) => Credentials {
            user: a.user.clone(),
            password: env
                .store
                .get_secret(a.secret_id)
                .await
                .map_err(store_err)?
                .expose()
                .to_string(),
        },
        None => Credentials {
            user: c.record.db_user.clone(),
            password: env
                .store
                .get_secret(c.record.db_password_secret)
                .await
                .map_err(store_err)?
                .expose()
                .to_string(),
        },
    };
    let replication = match creds(purpose::REPLICATION) {
        Some(a) => Some(Credentials {
            user: a.user.clone(),
            password: env
                .store
                .get_secret(a.secret_id)
                .await
                .map_err(store_err)?
                .expose()
                .to_string(),
        }),
        None => None,
    };
    let semi_sync = match &c.record.settings {
        Some(s) => s.semi_sync,
        // Imported: semi-sync where the primary reports it on.
        None => observed.nodes.iter().any(|n| {
            Some(&n.endpoint) == c.record.primary.as_ref()
                && n.sample.as_ref().is_some_and(|s| {
                    s.status
                        .get("Rpl_semi_sync_master_status")
                        .copied()
                        .unwrap_or(0)
                        == 1
                        || s.status
                            .get("Rpl_semi_sync_source_status")
                            .copied()
                            .unwrap_or(0)
                            == 1
                })
        }),
    };
    Ok(ReplicationAccess {
        flavor: haview::flavor(observed),
        admin,
        replication,
        timeouts: Timeouts {
            connect: Duration::from_secs(2),
            query: Duration::from_secs(15),
        },
        semi_sync,
    })
}

/// The cluster's effective HA policy: the one set for it (`ClusterRecord::ha_policy`),
/// else the controller's `base`; then `automatic_recovery` is always the cluster's
/// recovery switch, and `require_semi_sync_ack` is forced on for a cluster deployed with
/// semi-sync.
pub fn cluster_policy(base: &HaPolicy, record: &nines_store::ClusterRecord) -> HaPolicy {
    let chosen = record.ha_policy.as_ref().unwrap_or(base);
    HaPolicy {
        automatic_recovery: record.auto_recovery,
        require_semi_sync_ack: chosen.require_semi_sync_ack
            || record.settings.as_ref().is_some_and(|s| s.semi_sync),
        ..chosen.clone()
    }
}

async fn replication_cluster(
    env: &JobEnv,
    cluster: &str,
) -> Result<(Loaded, std::sync::Arc<crate::monitor::ClusterObserved>), JobError> {
    let c = load(env, cluster).await?;
    if c.record.cluster_type != ClusterType::Replication {
        return Err(JobError::refused(format!(
            "cluster `{cluster}` is a {} cluster: failover, switchover and rejoin apply to replication clusters",
            c.record.cluster_type
        )));
    }
    let observed = haview::probed_view(&env.monitor, cluster, None).await?;
    Ok((c, observed))
}

/// Runs a hook with the operation's facts in its environment.
async fn run_hook(
    path: &Path,
    timeout: Duration,
    vars: &[(&str, String)],
) -> Result<String, String> {
    let mut cmd = tokio::process::Command::new(path);
    cmd.kill_on_drop(true);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(timeout, cmd.output())
        .await
        .map_err(|_| format!("{} did not finish within {timeout:?}", path.display()))?
        .map_err(|e| format!("cannot run {}: {e}", path.display()))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text: String = text.trim().chars().take(2000).collect();
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!(
            "{} exited with {}: {text}",
            path.display(),
            out.status
        ))
    }
}

fn hook_vars(
    cluster: &str,
    kind: PromotionKind,
    old: &Endpoint,
    new: &Endpoint,
) -> Vec<(&'static str, String)> {
    vec![
        ("NINES_CLUSTER", cluster.to_string()),
        ("NINES_OPERATION", kind.to_string()),
        ("NINES_OLD_PRIMARY", old.to_string()),
        ("NINES_NEW_PRIMARY", new.to_string()),
    ]
}

async fn pre_hook(
    ctx: &JobContext,
    hooks: &Hooks,
    vars: &[(&str, String)],
) -> Result<(), JobError> {
    let Some(path) = &hooks.pre else {
        return Ok(());
    };
    match run_hook(path, hooks.timeout, vars).await {
        Ok(out) => {
            ctx.info(&format!(
                "pre hook {} passed{}",
                path.display(),
                if out.is_empty() {
                    String::new()
                } else {
                    format!(": {out}")
                }
            ))
            .await;
            Ok(())
        }
        Err(e) => Err(JobError::refused(format!(
            "the pre hook vetoed the operation: {e}; nothing was changed"
        ))),
    }
}

async fn post_hook(ctx: &JobContext, hooks: &Hooks, vars: &[(&str, String)]) {
    let Some(path) = &hooks.post else {
        return;
    };
    match run_hook(path, hooks.timeout, vars).await {
        Ok(_) => ctx.info(&format!("post hook {} ran", path.display())).await,
        Err(e) => ctx.warn(&format!("post hook failed: {e}")).await,
    }
}

/// Records the new primary, the roles, the failover, and fences `fence` nodes, in one
/// transaction that also ends the promotion's intent.
#[allow(clippy::too_many_arguments)]
async fn record_outcome(
    ctx: &JobContext,
    env: &JobEnv,
    c: &Loaded,
    kind: PromotionKind,
    automatic: bool,
    old: &Endpoint,
    outcome: &PromotionOutcome,
    fence: &[(Endpoint, Fence)],
) -> Result<(), JobError> {
    let store = &env.store;
    let new = &outcome.new_primary;
    let mut roles = Vec::new();
    let mut fences = Vec::new();
    for n in &c.nodes {
        let role = if &n.endpoint == new {
            Role::Primary
        } else {
            Role::Replica
        };
        roles.push((n.id, role));
        let reason = fence
            .iter()
            .find(|(e, _)| *e == n.endpoint)
            .map(|(_, r)| r.clone());
        if reason.is_some() || outcome.repointed.contains(&n.endpoint) || &n.endpoint == new {
            fences.push((n.id, reason));
        }
    }
    store
        .record_promotion(&PromotionRecord {
            failover: NewFailover {
                cluster_id: c.record.id,
                at: Utc::now(),
                kind,
                automatic,
                old_primary: old.clone(),
                new_primary: new.clone(),
                promoted_at: outcome.promoted_at.clone(),
                job_id: Some(ctx.id),
            },
            roles,
            fences,
        })
        .await
        .map_err(store_err)?;
    let mut msg = format!(
        "{kind} of `{}`: {new} is the primary (was {old}), writable {} ms after the job started; repointed: {}",
        c.record.name,
        outcome.elapsed_ms,
        if outcome.repointed.is_empty() {
            "none".to_string()
        } else {
            outcome
                .repointed
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    for (e, why) in &outcome.not_repointed {
        msg.push_str(&format!("; {e} not repointed ({why})"));
    }
    if !outcome.semi_sync_active && env_semi(c) {
        msg.push_str("; semi-sync is off until a replica follows the new primary");
    }
    ctx.info(&msg).await;
    store
        .add_event(
            &c.record.name,
            Some(&new.to_string()),
            kind.event_kind(),
            &msg,
        )
        .await
        .map_err(store_err)?;
    Ok(())
}

/// Writes the promotion's intent before its first change; returns its id.
async fn begin_intent(
    ctx: &JobContext,
    env: &JobEnv,
    c: &Loaded,
    observed: &crate::monitor::ClusterObserved,
    kind: PromotionKind,
    old: &Endpoint,
    candidate: &Endpoint,
) -> Result<i64, JobError> {
    let node = |e: &Endpoint| observed.nodes.iter().find(|n| &n.endpoint == e);
    let planned_position = node(candidate)
        .and_then(|n| n.sample.as_ref())
        .map(|s| s.gtid_executed.clone())
        .unwrap_or_default();
    let primary_sample = node(old).and_then(|n| n.recent.last().cloned());
    let id = env
        .store
        .begin_promotion(&NewPromotionIntent {
            cluster_id: c.record.id,
            job_id: Some(ctx.id),
            kind,
            old_primary: old.clone(),
            candidate: candidate.clone(),
            planned_position,
            primary_sample,
        })
        .await
        .map_err(store_err)?;
    Ok(id)
}

/// A promotion a dead controller began relied on the old primary's last sample, which
/// this controller never saw (the primary died before it started): the view gets it from
/// the intent, so that the plan made again bounds what the promotion loses the same way.
async fn inherit_primary_sample(
    ctx: &JobContext,
    env: &JobEnv,
    c: &Loaded,
    view: &mut nines_model::ha::ReplicationView,
) -> Result<(), JobError> {
    let Some(primary) = c.record.primary.clone() else {
        return Ok(());
    };
    let Some(node) = view.nodes.iter_mut().find(|n| n.endpoint == primary) else {
        return Ok(());
    };
    if !node.samples.is_empty() {
        return Ok(());
    }
    let open = env.store.open_promotions().await.map_err(store_err)?;
    // The newest intent's sample.
    let inherited = open
        .into_iter()
        .rev()
        .filter(|p| p.intent.cluster_id == c.record.id && p.intent.old_primary == primary)
        .find_map(|p| p.intent.primary_sample.map(|s| (p.intent.job_id, s)));
    if let Some((job, sample)) = inherited {
        ctx.info(&format!(
            "{primary}'s last good sample ({}: {}) comes from the promotion job {} began",
            sample.at.format("%H:%M:%S%.3f UTC"),
            sample.sample.gtid_binlog_pos,
            job.map(|j| j.to_string()).unwrap_or_else(|| "?".into())
        ))
        .await;
        node.samples.push(sample);
    }
    Ok(())
}

/// The promotion did not happen: its intent ends.
async fn abandon_intent(ctx: &JobContext, env: &JobEnv, id: i64) {
    if let Err(e) = env.store.abandon_promotion(id).await {
        ctx.warn(&format!("cannot end promotion intent {id}: {e}"))
            .await;
    }
}

/// Queues, at start-up, the completion of every promotion a dead controller left in the
/// middle: its job plans again from the freshest view, completes the promotion when the
/// plan holds, and otherwise rolls its first steps back.
pub async fn resume_promotions(
    store: &std::sync::Arc<dyn nines_store::Store>,
    jobs: &super::JobRunner,
) -> Result<(), nines_store::StoreError> {
    for open in store.open_promotions().await? {
        let i = &open.intent;
        let why = format!(
            "a controller stopped in the middle of {} job {} of `{}` (from {} to {}, begun {}): completing it, or rolling it back if the plan no longer holds",
            i.kind,
            i.job_id
                .map(|j| j.to_string())
                .unwrap_or_else(|| "?".into()),
            open.cluster,
            i.old_primary,
            i.candidate,
            open.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
        );
        tracing::warn!(cluster = %open.cluster, "{why}");
        let spec = if i.kind == PromotionKind::Switchover {
            nines_model::job::JobSpec::Switchover {
                cluster: open.cluster.clone(),
                to: Some(i.candidate.clone()),
            }
        } else {
            nines_model::job::JobSpec::Failover {
                cluster: open.cluster.clone(),
                to: Some(i.candidate.clone()),
                force: false,
                automatic: true,
                reasons: vec![why.clone()],
            }
        };
        let job = jobs.submit(&spec, crate::reconciler::REQUESTER).await?;
        store
            .add_event(
                &open.cluster,
                Some(&i.candidate.to_string()),
                EventKind::PromotionResumed,
                &format!("{why} (job {})", job.id),
            )
            .await?;
    }
    Ok(())
}

/// When a promotion a dead controller began cannot be completed (the plan made again no
/// longer holds), undoes its first steps: replicas replicate again and the designated
/// primary takes writes again, unless another node was already made writable (then a
/// person decides: an alarm says so). Ends those intents.
async fn roll_back_interrupted(
    ctx: &JobContext,
    env: &JobEnv,
    c: &Loaded,
    observed: &crate::monitor::ClusterObserved,
) -> Result<(), JobError> {
    let open: Vec<_> = env
        .store
        .open_promotions()
        .await
        .map_err(store_err)?
        .into_iter()
        .filter(|p| p.intent.cluster_id == c.record.id && p.intent.job_id != Some(ctx.id))
        .collect();
    if open.is_empty() {
        return Ok(());
    }
    let Some(primary) = c.record.primary.clone() else {
        return Ok(());
    };
    let promoted_elsewhere = observed.nodes.iter().any(|n| {
        n.endpoint != primary
            && n.probe.is_reachable()
            && n.sample
                .as_ref()
                .is_some_and(|s| !s.read_only && s.replication.is_empty())
    });
    if promoted_elsewhere {
        let msg = format!(
            "alarm: an interrupted promotion of `{}` left another node writable beside the designated primary {primary}: nines does not choose between them; a person must (`nines cluster failover --to` or `switchover --to`)",
            c.record.name
        );
        ctx.warn(&msg).await;
        env.store
            .add_event(
                &c.record.name,
                Some(&primary.to_string()),
                EventKind::Alarm,
                &msg,
            )
            .await
            .map_err(store_err)?;
        return Ok(());
    }
    ctx.warn(&format!(
        "rolling back the first steps of the interrupted promotion(s): {primary} stays the primary"
    ))
    .await;
    let acc = access(env, c, observed).await?;
    let replicas: Vec<Endpoint> = c
        .nodes
        .iter()
        .filter(|n| n.endpoint != primary && n.fenced.is_none())
        .map(|n| n.endpoint.clone())
        .collect();
    let failed = replication::roll_back(&acc, &primary, &replicas, ctx).await;
    for p in &open {
        abandon_intent(ctx, env, p.id).await;
    }
    let msg = if failed.is_empty() {
        format!("rolled back an interrupted promotion: {primary} stays the primary")
    } else {
        format!(
            "alarm: rolled back an interrupted promotion, but: {}",
            failed.join("; ")
        )
    };
    env.store
        .add_event(
            &c.record.name,
            Some(&primary.to_string()),
            if failed.is_empty() {
                EventKind::PromotionRolledBack
            } else {
                EventKind::Alarm
            },
            &msg,
        )
        .await
        .map_err(store_err)?;
    Ok(())
}

/// Steps after the promotion that failed: the new primary stands (it is recorded), but
/// the job fails and an alarm says what a person must check.
async fn after_promotion_problems(
    env: &JobEnv,
    cluster: &str,
    outcome: &PromotionOutcome,
) -> Result<(), JobError> {
    if outcome.problems.is_empty() {
        return Ok(());
    }
    let msg = format!(
        "{} is the primary now, but: {}",
        outcome.new_primary,
        outcome.problems.join("; ")
    );
    env.store
        .add_event(
            cluster,
            Some(&outcome.new_primary.to_string()),
            EventKind::Alarm,
            &format!("alarm: {msg}"),
        )
        .await
        .map_err(store_err)?;
    Err(JobError::from(msg))
}

fn env_semi(c: &Loaded) -> bool {
    c.record.settings.as_ref().is_some_and(|s| s.semi_sync)
}

/// `nines cluster failover` and the reconciler's automatic failovers.
pub(super) async fn failover(
    ctx: &JobContext,
    env: &JobEnv,
    cluster: &str,
    to: Option<&Endpoint>,
    force: bool,
    automatic: bool,
    reasons: &[String],
) -> Result<(), JobError> {
    let (c, observed) = replication_cluster(env, cluster).await?;
    if automatic {
        ctx.info("automatic failover decided by the reconciler because:")
            .await;
        for r in reasons {
            ctx.info(&format!("  - {r}")).await;
        }
    }
    let now = Utc::now();
    let maintenance = haview::maintenance(&env.store, c.record.id, now)
        .await
        .map_err(store_err)?;
    let mut view =
        haview::replication_view(&c.record, &observed, Some(now), Vec::new(), maintenance);
    inherit_primary_sample(ctx, env, &c, &mut view).await?;
    let policy = cluster_policy(&env.settings.ha, &c.record);
    let (plan, why) = match requested_failover(&view, to, force, &policy, now) {
        Ok(p) => p,
        Err(why) => {
            for r in &why {
                ctx.log(LogLevel::Warn, r).await;
            }
            roll_back_interrupted(ctx, env, &c, &observed).await?;
            return Err(JobError::refused(format!(
                "failover refused: {}",
                why.last().cloned().unwrap_or_default()
            )));
        }
    };
    ctx.info("plan:").await;
    for r in &why {
        ctx.info(&format!("  - {r}")).await;
    }
    for e in &plan.errant {
        ctx.warn(&format!(
            "alarm: {} has errant transactions {} ({}); it is repointed but was never a candidate",
            e.endpoint, e.errant.gtids, e.errant.why
        ))
        .await;
    }
    let vars = hook_vars(
        cluster,
        PromotionKind::Failover,
        &plan.old_primary,
        &plan.candidate,
    );
    pre_hook(ctx, &env.settings.hooks, &vars).await?;
    let acc = access(env, &c, &observed).await?;
    let intent = begin_intent(
        ctx,
        env,
        &c,
        &observed,
        PromotionKind::Failover,
        &plan.old_primary,
        &plan.candidate,
    )
    .await?;
    let outcome = match replication::failover(
        &acc,
        &plan,
        policy
            .relay_log_apply_timeout
            .to_std()
            .unwrap_or(Duration::from_secs(10)),
        ctx,
    )
    .await
    {
        Ok(o) => o,
        Err(e) => {
            abandon_intent(ctx, env, intent).await;
            return Err(op(e));
        }
    };
    let old = &plan.old_primary;
    let mut fence = vec![(
        old.clone(),
        Fence::PendingRejoin(format!(
            "failed over at {} (job {}); read-only until its GTIDs are proven to be in {}'s history",
            Utc::now().format("%Y-%m-%d %H:%M:%S UTC"),
            ctx.id,
            outcome.new_primary
        )),
    )];
    for (e, why) in &outcome.not_repointed {
        fence.push((
            e.clone(),
            Fence::PendingRejoin(format!("not repointed during the failover ({why})")),
        ));
    }
    record_outcome(
        ctx,
        env,
        &c,
        PromotionKind::Failover,
        automatic,
        old,
        &outcome,
        &fence,
    )
    .await?;
    let vars = hook_vars(cluster, PromotionKind::Failover, old, &outcome.new_primary);
    post_hook(ctx, &env.settings.hooks, &vars).await;
    after_promotion_problems(env, cluster, &outcome).await
}

/// `nines cluster switchover`.
pub(super) async fn switchover(
    ctx: &JobContext,
    env: &JobEnv,
    cluster: &str,
    to: Option<&Endpoint>,
) -> Result<(), JobError> {
    let (c, observed) = replication_cluster(env, cluster).await?;
    let acc = access(env, &c, &observed).await?;
    let now = Utc::now();
    let maintenance = haview::maintenance(&env.store, c.record.id, now)
        .await
        .map_err(store_err)?;
    let mut view =
        haview::replication_view(&c.record, &observed, Some(now), Vec::new(), maintenance);
    let policy = cluster_policy(&env.settings.ha, &c.record);
    if let Some(p) = c.record.primary.clone()
        && let Some(n) = view.nodes.iter_mut().find(|n| n.endpoint == p)
    {
        n.longest_transaction_secs = replication::longest_transaction_secs(&acc, &p).await.ok();
    }
    let plan = match switchover_preflight(&view, to, &policy, now) {
        Ok(p) => p,
        Err(problems) => {
            for p in &problems {
                ctx.warn(p).await;
            }
            roll_back_interrupted(ctx, env, &c, &observed).await?;
            return Err(JobError::refused(format!(
                "switchover refused: {}",
                problems.join("; ")
            )));
        }
    };
    ctx.info("preflight passed:").await;
    for r in &plan.reasons {
        ctx.info(&format!("  - {r}")).await;
    }
    let vars = hook_vars(
        cluster,
        PromotionKind::Switchover,
        &plan.old_primary,
        &plan.candidate,
    );
    pre_hook(ctx, &env.settings.hooks, &vars).await?;
    let timeout = policy
        .relay_log_apply_timeout
        .to_std()
        .unwrap_or(Duration::from_secs(10));
    let intent = begin_intent(
        ctx,
        env,
        &c,
        &observed,
        PromotionKind::Switchover,
        &plan.old_primary,
        &plan.candidate,
    )
    .await?;
    // Load balancers stop sending to the primary before it turns read-only.
    let _hold = crate::balancers::hold_writer_out(env, cluster, &plan.old_primary).await;
    let outcome = match replication::switchover(
        &acc,
        &plan.old_primary,
        &plan.candidate,
        &plan.others,
        timeout,
        ctx,
    )
    .await
    {
        Ok(o) => o,
        Err(e) => {
            abandon_intent(ctx, env, intent).await;
            return Err(op(e));
        }
    };
    let fence: Vec<(Endpoint, Fence)> = outcome
        .not_repointed
        .iter()
        .map(|(e, why)| {
            (
                e.clone(),
                Fence::PendingRejoin(format!("not repointed during the switchover ({why})")),
            )
        })
        .collect();
    record_outcome(
        ctx,
        env,
        &c,
        PromotionKind::Switchover,
        false,
        &plan.old_primary,
        &outcome,
        &fence,
    )
    .await?;
    post_hook(ctx, &env.settings.hooks, &vars).await;
    after_promotion_problems(env, cluster, &outcome).await
}

/// Makes a fenced node a replica of the primary when its GTIDs prove it lost nothing.
pub(super) async fn rejoin(
    ctx: &JobContext,
    env: &JobEnv,
    cluster: &str,
    node: &Endpoint,
) -> Result<(), JobError> {
    let (c, observed) = replication_cluster(env, cluster).await?;
    let rec = c.node(node)?;
    let Some(primary) = c.record.primary.clone() else {
        return Err(JobError::refused(format!(
            "cluster `{cluster}` has no designated primary to rejoin"
        )));
    };
    if &primary == node {
        return Err(JobError::refused(format!("{node} is the primary")));
    }
    let acc = access(env, &c, &observed).await?;
    let old = replication::executed_set(&acc, node).await.map_err(op)?;
    let new = replication::executed_set(&acc, &primary)
        .await
        .map_err(op)?;
    let since = Utc::now() - chrono::Duration::days(365);
    let promoted_at = env
        .store
        .failovers(c.record.id, since)
        .await
        .map_err(store_err)?
        .into_iter()
        .rev()
        .find(|f| f.new_primary == primary)
        .and_then(|f| GtidSet::parse(acc.flavor, &f.promoted_at).ok());
    // Promoted without nines (adopted): what the primary had applied as a replica before
    // it was promoted is its replication position, which writes since do not move.
    let promoted_at = match (promoted_at, acc.flavor) {
        (Some(p), _) => Some(p),
        (None, nines_model::replication::Flavor::MariaDb) => {
            let pos = replication::slave_position(&acc, &primary)
                .await
                .map_err(op)?;
            ctx.info(&format!(
                "no promotion of {primary} was recorded by nines: its replication position {pos} (what it had applied before it was promoted) stands for the promotion position"
            ))
            .await;
            Some(pos)
        }
        (None, nines_model::replication::Flavor::MySql) => None,
    };
    ctx.info(&format!(
        "{node} executed {old}; the primary {primary} executed {new}{}",
        promoted_at
            .as_ref()
            .map(|p| format!(", promoted at {p}"))
            .unwrap_or_default()
    ))
    .await;
    let decision = old_primary_rejoin(&old, &new, promoted_at.as_ref());
    for r in &decision.reasons {
        ctx.info(&format!("  - {r}")).await;
    }
    match decision.action {
        RejoinAction::Rejoin => {
            replication::rejoin(&acc, node, &primary, Duration::from_secs(30), ctx)
                .await
                .map_err(op)?;
            env.store
                .set_node_fenced(rec.id, None)
                .await
                .map_err(store_err)?;
            env.store
                .set_node_role(rec.id, Role::Replica)
                .await
                .map_err(store_err)?;
            if acc.semi_sync {
                // A primary left without followers had semi-sync off; it has one now.
                replication::semi_sync_on(&acc, &primary)
                    .await
                    .map_err(op)?;
            }
            let msg = format!(
                "{node} rejoined `{cluster}` as a read-only replica of {primary}: {}",
                decision.explain()
            );
            env.store
                .add_event(cluster, Some(&node.to_string()), EventKind::Rejoin, &msg)
                .await
                .map_err(store_err)?;
            Ok(())
        }
        RejoinAction::StayFenced { ref errant } => {
            let reason = format!(
                "errant transactions {errant}: {node} has transactions the cluster lacks (or that cannot be proven to be in its history); it stays read-only and out of the cluster until a person saves them and rebuilds or rejoins it"
            );
            env.store
                .set_node_fenced(rec.id, Some(&Fence::Held(reason.clone())))
                .await
                .map_err(store_err)?;
            let msg = format!("alarm: {reason}. {}", decision.explain());
            env.store
                .add_event(cluster, Some(&node.to_string()), EventKind::Alarm, &msg)
                .await
                .map_err(store_err)?;
            Err(JobError::refused(reason))
        }
    }
}
