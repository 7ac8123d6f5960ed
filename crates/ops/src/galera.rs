//! Galera cluster recovery, carried out exactly as `nines_model::ha::galera` planned it:
//! read the positions of stopped nodes, re-check right before acting that no node is in a
//! Primary component, stop the running nodes the plan names, bootstrap the chosen node
//! (`pc.bootstrap` on a running one, `--wsrep-new-cluster` at its recovered position on a
//! stopped one), then start the others one at a time as joiners at their own positions,
//! so that they catch up by IST where the donor's gcache holds the gap.
//!
//! Nothing here chooses: a plan that no longer fits what the nodes say (a node came up
//! in a Primary component, a node to read is running) is an error, and the job plans
//! again.

use std::time::Duration;

use nines_access::host::HostCommand;
use nines_access::server::parse::{parse_grastate, parse_wsrep_recover};
use nines_model::Endpoint;
use nines_model::galera::GaleraPosition;
use nines_model::ha::BootstrapMethod;

use crate::deploy::JOIN_TIMEOUT;
use crate::node::{NodeTarget, READY_TIMEOUT, SHORT};
use crate::wait::report_while;
use crate::{OpError, Reporter};

/// How long a running node outside the new Primary component gets to join it by itself
/// (after `pc.bootstrap` the members of the same component do so at once) before it is
/// restarted as a joiner.
const JOIN_BY_ITSELF: Duration = Duration::from_secs(30);

/// A bootstrap plan of the model, as the steps need it.
#[derive(Debug, Clone)]
pub struct BootstrapPlan {
    pub node: Endpoint,
    pub method: BootstrapMethod,
    pub stop_first: Vec<Endpoint>,
    pub then_join: Vec<Endpoint>,
}

/// Reads a stopped Galera node's committed position: grastate.dat, and where it says
/// seqno -1 (not shut down cleanly), `mariadbd --wsrep-recover`. Refuses to touch a node
/// whose server runs.
pub async fn position(n: &NodeTarget, reporter: &dyn Reporter) -> Result<GaleraPosition, OpError> {
    if n.is_running().await? {
        return Err(OpError::Invalid(format!(
            "{}: its server process runs although it refused connections (starting, or in a state transfer): its position cannot be read now",
            n.endpoint
        )));
    }
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
                "{}: grastate.dat has seqno {}, recovering the position with --wsrep-recover",
                n.endpoint, pos.seqno
            ))
            .await;
        let log = report_while(
            reporter,
            &format!("mariadbd --wsrep-recover on {}", n.endpoint),
            n.wsrep_recover(),
        )
        .await?;
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

/// The `--wsrep-start-position` argument for a node whose position is known.
fn start_position(positions: &[GaleraPosition], n: &NodeTarget) -> Option<String> {
    positions
        .iter()
        .find(|p| p.node == n.endpoint.to_string() && p.seqno >= 0 && !p.uuid.is_empty())
        .map(|p| format!("--wsrep-start-position={}:{}", p.uuid, p.seqno))
}

fn target<'a>(nodes: &'a [NodeTarget], e: &Endpoint) -> Result<&'a NodeTarget, OpError> {
    nodes
        .iter()
        .find(|n| &n.endpoint == e)
        .ok_or_else(|| OpError::Invalid(format!("{e} is not a node nines can start or stop")))
}

fn check_cancelled(reporter: &dyn Reporter) -> Result<(), OpError> {
    if reporter.cancellation().is_cancelled() {
        return Err(OpError::Cancelled);
    }
    Ok(())
}

/// Carries out a bootstrap plan. `positions` are the ones the plan was made from (the
/// chosen node and the joiners start at theirs).
pub async fn execute(
    plan: &BootstrapPlan,
    nodes: &[NodeTarget],
    positions: &[GaleraPosition],
    reporter: &dyn Reporter,
) -> Result<(), OpError> {
    let first = target(nodes, &plan.node)?;
    let total = 2 + plan.then_join.len();
    let pct = |step: usize| u8::try_from(100 * step / total).unwrap_or(99);
    // mariadb-operator#1626: the facts the plan relied on, once more, right before.
    reporter.progress("checking", pct(0)).await;
    for n in nodes {
        if !n.is_running().await? {
            continue;
        }
        let status = n
            .status_var("wsrep_cluster_status")
            .await
            .unwrap_or_default();
        if status == "Primary" {
            return Err(OpError::Invalid(format!(
                "{} is in a Primary component now: not bootstrapping a second one",
                n.endpoint
            )));
        }
    }
    for e in &plan.stop_first {
        check_cancelled(reporter)?;
        let n = target(nodes, e)?;
        reporter
            .info(&format!(
                "stopping {e}: it runs outside any Primary component and rejoins as a joiner"
            ))
            .await;
        report_while(reporter, &format!("{e} to stop"), n.stop()).await?;
    }
    check_cancelled(reporter)?;
    reporter.progress("bootstrap", pct(1)).await;
    match plan.method {
        BootstrapMethod::PcBootstrap => {
            reporter
                .info(&format!(
                    "bootstrapping the Primary component on the running {} (pc.bootstrap=YES)",
                    first.endpoint
                ))
                .await;
            first
                .sql("SET GLOBAL wsrep_provider_options='pc.bootstrap=YES'")
                .await?;
        }
        BootstrapMethod::NewCluster => {
            bootstrap_stopped(first, nodes, positions, reporter).await?;
        }
    }
    first.wait_synced(READY_TIMEOUT, reporter).await?;
    reporter
        .info(&format!(
            "{} is Synced in a Primary component: the cluster takes writes again",
            first.endpoint
        ))
        .await;
    for (i, e) in plan.then_join.iter().enumerate() {
        check_cancelled(reporter)?;
        reporter.progress("join", pct(2 + i)).await;
        join(target(nodes, e)?, positions, reporter).await?;
    }
    reporter.progress("done", 100).await;
    Ok(())
}

/// Starts a stopped node as the first of a new Primary component, at its position; only
/// it may bootstrap (every other grastate.dat says so), and none may have come up.
async fn bootstrap_stopped(
    first: &NodeTarget,
    nodes: &[NodeTarget],
    positions: &[GaleraPosition],
    reporter: &dyn Reporter,
) -> Result<(), OpError> {
    for n in nodes.iter().filter(|n| n.endpoint != first.endpoint) {
        if n.is_running().await? {
            continue;
        }
        n.run(
            HostCommand::shell(
                "[ ! -f \"$1\" ] || sed -i 's/^safe_to_bootstrap:.*/safe_to_bootstrap: 0/' \"$1\"",
            )
            .arg(format!("{}/grastate.dat", n.settings.layout.datadir)),
            SHORT,
        )
        .await?;
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
    let mut args = vec!["--wsrep-new-cluster".to_string()];
    args.extend(start_position(positions, first));
    reporter
        .info(&format!(
            "starting {} with {}",
            first.endpoint,
            args.join(" ")
        ))
        .await;
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    report_while(
        reporter,
        &format!("{} to start", first.endpoint),
        first.start(&args),
    )
    .await
}

/// Brings one node into the Primary component: a running node that does not join by
/// itself within [`JOIN_BY_ITSELF`] is restarted; a stopped one starts at its position.
async fn join(
    n: &NodeTarget,
    positions: &[GaleraPosition],
    reporter: &dyn Reporter,
) -> Result<(), OpError> {
    if n.is_running().await? {
        match n.wait_synced(JOIN_BY_ITSELF, reporter).await {
            Ok(()) => {
                reporter
                    .info(&format!("{} joined the Primary component", n.endpoint))
                    .await;
                return Ok(());
            }
            Err(OpError::Cancelled) => return Err(OpError::Cancelled),
            Err(e) => {
                reporter
                    .warn(&format!("{e}: restarting it as a joiner"))
                    .await;
                report_while(reporter, &format!("{} to stop", n.endpoint), n.stop()).await?;
            }
        }
    }
    let pos = start_position(positions, n);
    reporter
        .info(&format!(
            "starting {} as a joiner{}",
            n.endpoint,
            pos.as_deref()
                .map(|p| format!(" ({p}, IST where the donor still has the gap)"))
                .unwrap_or_default()
        ))
        .await;
    let args: Vec<&str> = pos.iter().map(String::as_str).collect();
    report_while(
        reporter,
        &format!("{} to start and receive its state", n.endpoint),
        n.start(&args),
    )
    .await?;
    n.wait_synced(JOIN_TIMEOUT, reporter).await?;
    reporter.info(&format!("{} is Synced", n.endpoint)).await;
    Ok(())
}
