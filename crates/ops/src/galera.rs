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
        join(target(nodes, e)?, nodes, positions, reporter).await?;
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
    peers: &[NodeTarget],
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
    start_joiner(n, &args, peers, reporter).await?;
    n.wait_synced(JOIN_TIMEOUT, reporter).await?;
    reporter.info(&format!("{} is Synced", n.endpoint)).await;
    Ok(())
}

/// Starts a stopped node as a joiner, waiting through its state transfer. A transfer that
/// failed on the donor's side (the joiner's log says so) is tried once more: a donor's
/// mariabackup can fail for a passing reason (a lock it waited too long for, a busy
/// host), and a second donor request picks again. What the donor logged is added to the
/// warning and, when the second start fails too, to the error, so that the cause is on
/// the job rather than on another host.
pub async fn start_joiner(
    n: &NodeTarget,
    args: &[&str],
    peers: &[NodeTarget],
    reporter: &dyn Reporter,
) -> Result<(), OpError> {
    let what = format!("{} to start and receive its state", n.endpoint);
    let from = log_size(n).await;
    let first = match report_while(reporter, &what, n.start(args)).await {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    let Some(donor) = failed_donor(&log_since(n, from).await) else {
        return Err(first);
    };
    let said = donor_report(&donor, peers).await;
    reporter
        .warn(&format!(
            "{}: the state transfer from donor {donor} failed on the donor's side{said}; \
             starting it once more as a joiner",
            n.endpoint
        ))
        .await;
    check_cancelled(reporter)?;
    let from = log_size(n).await;
    match report_while(reporter, &what, n.start(args)).await {
        Ok(()) => Ok(()),
        Err(e) => {
            let e = e.to_string();
            let said = match failed_donor(&log_since(n, from).await) {
                Some(d) => donor_report(&d, peers).await,
                None => String::new(),
            };
            Err(OpError::Invalid(format!("{e}{said}")))
        }
    }
}

/// The size of the node's error log, where the lines of the next start begin.
async fn log_size(n: &NodeTarget) -> u64 {
    n.run(
        HostCommand::shell("stat -c %s \"$1\" 2>/dev/null || echo 0")
            .arg(&n.settings.layout.error_log),
        SHORT,
    )
    .await
    .ok()
    .and_then(|s| s.trim().parse().ok())
    .unwrap_or(0)
}

/// The state-transfer lines the node's error log gained after `from` bytes (a crash
/// report after them can push them out of the start error's tail).
async fn log_since(n: &NodeTarget, from: u64) -> String {
    n.run(
        HostCommand::shell(
            "tail -c +\"$2\" \"$1\" 2>/dev/null | grep -a ': State transfer to ' | tail -n 5; true",
        )
        .arg(&n.settings.layout.error_log)
        .arg((from + 1).to_string()),
        SHORT,
    )
    .await
    .unwrap_or_default()
}

/// The donor a joiner's log names as having failed its state transfer, as its
/// `wsrep_node_name` (nines sets it to `host:port`): from a line like
/// `0.0 (127.0.0.53:3306): State transfer to 2.0 (127.0.0.55:3306) failed: Invalid argument`.
pub fn failed_donor(joiner_log: &str) -> Option<String> {
    joiner_log.lines().rev().find_map(|l| {
        let (before, after) = l.split_once("): State transfer to ")?;
        if !after.contains(") failed") {
            return None;
        }
        let name = before.rsplit_once(" (")?.1;
        (!name.is_empty()).then(|| name.to_string())
    })
}

/// What the donor logged about a failed state transfer: the SST script's errors from its
/// error log and the error lines of its mariabackup log. Empty when the donor is not one of the
/// known nodes or cannot be read (this only adds to an error).
async fn donor_report(donor: &str, peers: &[NodeTarget]) -> String {
    let Some(d) = peers.iter().find(|p| p.endpoint.to_string() == donor) else {
        return String::new();
    };
    let text = d
        .run(
            HostCommand::shell(
                "grep -a 'WSREP_SST: \\[ERROR\\]' \"$1\" 2>/dev/null | tail -n 5; \
                 grep -aiE 'error|fail|cannot' \"$2/mariabackup.backup.log\" 2>/dev/null | tail -n 8; true",
            )
            .arg(&d.settings.layout.error_log)
            .arg(&d.settings.layout.datadir),
            SHORT,
        )
        .await
        .unwrap_or_default();
    let text = text.trim();
    if text.is_empty() {
        String::new()
    } else {
        format!("; the donor {donor} logged:\n{text}")
    }
}

#[cfg(test)]
mod tests {
    use super::failed_donor;

    #[test]
    fn the_failed_donor_is_read_from_the_joiners_log() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                "2026-11-30  6:08:32 0 [Note] WSREP: Member 2.0 (127.0.0.55:3306) requested state transfer from '*any*'. Selected 0.0 (127.0.0.53:3306)(SYNCED) as donor.\n\
                 2026-11-30  6:08:43 0 [Warning] WSREP: 0.0 (127.0.0.53:3306): State transfer to 2.0 (127.0.0.55:3306) failed: Invalid argument\n\
                 WSREP_SST: [ERROR] xtrabackup_checkpoints missing, failed mariadb-backup/SST on donor",
                Some("127.0.0.53:3306"),
            ),
            // A transfer that completed is no donor failure.
            (
                "2026-11-30  6:08:30 0 [Note] WSREP: 0.0 (127.0.0.53:3306): State transfer to 1.0 (127.0.0.54:3306) complete.",
                None,
            ),
            // A joiner that failed by itself (its own configuration) names no donor.
            (
                "2026-11-30  6:08:30 0 [ERROR] mariadbd: unknown variable 'wsrep_bogus=1'\n\
                 2026-11-30  6:08:30 0 [ERROR] Aborting",
                None,
            ),
            ("", None),
            // A node name that is not host:port (an imported cluster) is returned as is.
            (
                "[Warning] WSREP: 1.0 (db-one): State transfer to 0.0 (db-two) failed: Connection refused",
                Some("db-one"),
            ),
        ];
        for (log, want) in cases {
            assert_eq!(failed_donor(log).as_deref(), *want, "{log}");
        }
    }
}
