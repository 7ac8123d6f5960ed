//! Galera recovery as a job: the reconciler's automatic recovery, `nines cluster recover`
//! and `nines cluster start` of a Galera cluster without a Primary component.
//!
//! The job builds the recovery view from what the monitor sees now (the shared
//! `haview::galera_view`), asks each host of a node that does not answer whether its server
//! runs (a node whose process is gone is confirmed down, and its position is read from
//! grastate.dat or `--wsrep-recover`), plans with the model (`plan_galera_recovery`, or
//! `forced_galera_recovery` for a person's `--force`), logs the plan's reasons and carries
//! out exactly that plan with `nines_ops::galera::execute`.

use nines_model::event::EventKind;
use nines_model::ha::{
    GaleraAction, GaleraDecision, GaleraView, forced_galera_recovery, plan_galera_recovery,
};
use nines_model::job::JobError;
use nines_model::snapshot::ProbeErrorKind;
use nines_model::{ClusterType, Endpoint};
use nines_ops::Reporter;
use nines_ops::galera::{self, BootstrapPlan};
use nines_ops::lifecycle::{self, NodePart};
use nines_ops::node::NodeTarget;

use super::targets::load;
use super::{JobContext, JobEnv, op};
use crate::haview;

/// What asked for the recovery.
pub(super) enum Mode<'a> {
    /// The reconciler, with its decision's reasons.
    Automatic(&'a [String]),
    /// A person, naming the node or leaving the choice to nines; `force` overrides it.
    Manual {
        bootstrap_from: Option<&'a Endpoint>,
        force: bool,
    },
    /// `cluster start`: the nodes nines deployed all run, in one Primary component.
    Start,
}

pub(super) async fn recover(
    ctx: &JobContext,
    env: &JobEnv,
    cluster: &str,
    mode: Mode<'_>,
) -> Result<(), JobError> {
    let c = load(env, cluster).await?;
    if c.record.cluster_type != ClusterType::Galera {
        return Err(JobError::refused(format!(
            "cluster `{cluster}` is {}: recovery by bootstrap applies to Galera clusters",
            c.record.cluster_type
        )));
    }
    let targets: Vec<NodeTarget> = c.targets(env)?.into_iter().map(|(t, _)| t).collect();
    if let Mode::Automatic(reasons) = mode {
        ctx.info(&format!("decided by nines: {}", reasons.join("; ")))
            .await;
    }
    let observed = haview::probed_view(&env.monitor, cluster, Some(chrono::Utc::now())).await?;
    let endpoints: Vec<Endpoint> = targets.iter().map(|t| t.endpoint.clone()).collect();
    let mut view = haview::galera_view(&observed, &endpoints, None, Vec::new());
    ctx.progress("positions", 0).await;
    collect_positions(ctx, &targets, &mut view).await?;
    let decision = match mode {
        Mode::Manual {
            bootstrap_from: Some(from),
            force: true,
        } => forced_galera_recovery(&view, from),
        Mode::Manual {
            bootstrap_from: Some(from),
            force: false,
        } => {
            let d = plan_galera_recovery(&view);
            if let GaleraAction::Bootstrap { node, .. } = &d.action
                && node != from
            {
                return Err(JobError::refused(format!(
                    "nines would bootstrap {node}, not {from}: {}; add --force to bootstrap {from} anyway",
                    d.explain()
                )));
            }
            d
        }
        _ => plan_galera_recovery(&view),
    };
    for r in &decision.reasons {
        ctx.info(r).await;
    }
    carry_out(ctx, env, cluster, &targets, &view, decision, &mode).await
}

/// Asks the host of every node that does not answer whether its server runs; reads the
/// position of every one that does not (all at once: `--wsrep-recover` takes seconds).
async fn collect_positions(
    ctx: &JobContext,
    targets: &[NodeTarget],
    view: &mut GaleraView,
) -> Result<(), JobError> {
    let silent: Vec<(&NodeTarget, bool)> = view
        .nodes
        .iter()
        .filter(|n| !n.probe.is_reachable())
        .filter_map(|n| {
            let refused = n.probe.error_kind() == Some(ProbeErrorKind::Refused);
            targets
                .iter()
                .find(|t| t.endpoint == n.endpoint)
                .map(|t| (t, refused))
        })
        .collect();
    let found = futures::future::join_all(silent.iter().map(|(t, refused)| async move {
        match t.is_running().await {
            Ok(false) => Ok(Some(galera::position(t, ctx).await.map_err(op)?)),
            // It refuses connections yet runs: starting, or receiving a state transfer.
            // A failure, not a refusal: a joiner finishes soon, and the next try may go on.
            Ok(true) if *refused => Err(JobError::Failed(format!(
                "{}: refuses connections but its server process runs (starting, or in a state transfer): not recovering while it may be joining",
                t.endpoint
            ))),
            // It does not answer and runs (hung, frozen, cut off): it stays unknown.
            Ok(true) => {
                ctx.warn(&format!(
                    "{}: does not answer, and its server process runs: it may still be in a Primary component",
                    t.endpoint
                ))
                .await;
                Ok(None)
            }
            Err(e) => {
                // The host does not confirm: the node stays unknown, and the plan refuses
                // unless a person forces it.
                ctx.warn(&format!(
                    "{}: its host cannot tell whether the server runs: {e}",
                    t.endpoint
                ))
                .await;
                Ok(None)
            }
        }
    }))
    .await;
    for ((t, _), result) in silent.iter().zip(found) {
        let Some(pos) = result? else { continue };
        if let Some(node) = view.nodes.iter_mut().find(|n| n.endpoint == t.endpoint) {
            node.down_confirmed = true;
            node.recovered = Some(pos);
        }
    }
    Ok(())
}

async fn carry_out(
    ctx: &JobContext,
    env: &JobEnv,
    cluster: &str,
    targets: &[NodeTarget],
    view: &GaleraView,
    decision: GaleraDecision,
    mode: &Mode<'_>,
) -> Result<(), JobError> {
    match decision.action {
        GaleraAction::Bootstrap {
            node,
            method,
            stop_first,
            then_join,
        } => {
            let positions: Vec<_> = view
                .nodes
                .iter()
                .filter_map(|n| n.recovered.clone())
                .collect();
            let plan = BootstrapPlan {
                node,
                method,
                stop_first,
                then_join,
            };
            galera::execute(&plan, targets, &positions, ctx)
                .await
                .map_err(op)?;
            let msg = format!(
                "Galera cluster recovered: bootstrapped from {} ({}), then joined {}",
                plan.node,
                match method {
                    nines_model::ha::BootstrapMethod::PcBootstrap => "pc.bootstrap",
                    nines_model::ha::BootstrapMethod::NewCluster => "--wsrep-new-cluster",
                },
                if plan.then_join.is_empty() {
                    "no other node".to_string()
                } else {
                    plan.then_join
                        .iter()
                        .map(|e| e.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            );
            ctx.info(&msg).await;
            env.store
                .add_event(
                    cluster,
                    Some(&plan.node.to_string()),
                    EventKind::GaleraRecovered,
                    &msg,
                )
                .await
                .map_err(|e| e.to_string())?;
            Ok(())
        }
        GaleraAction::NoAction => {
            if matches!(mode, Mode::Start) {
                // A Primary component serves: the stopped nodes join it.
                for t in targets {
                    lifecycle::start_node_among(t, NodePart::Galera, targets, ctx)
                        .await
                        .map_err(op)?;
                }
            }
            Ok(())
        }
        GaleraAction::Refuse
        | GaleraAction::Wait { .. }
        | GaleraAction::CollectPositions { .. } => Err(JobError::refused(format!(
            "not recovering: {}",
            decision.reasons.last().cloned().unwrap_or_default()
        ))),
    }
}
