//! Continuous binlog archiving, for point-in-time recovery: every two seconds, for each
//! cluster that has a completed backup (deployed, or imported with host access), the binary logs of its writer (the
//! designated primary, the standalone server, or a Synced Galera node) are read from where the archive stopped
//! and the whole events appended since are stored, sealed, in the repository of the
//! cluster's newest backup (one object per run, its GTIDs and times recorded in the
//! store). When a pass finds everything the server had written archived, the archive is
//! caught up to the moment that pass began: the latest restorable point.
//!
//! After a failover the new primary's files are archived from their start; a restore
//! replays each server's files from the GTID position reached so far, so what both
//! servers hold is applied once. A restore onto the cluster starts a new epoch (the
//! servers' binlogs start again): backups roll forward within their own epoch. A Galera
//! cluster is archived from a Synced node (every node logs the same GTIDs).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use nines_access::host::HostCommand;
use nines_backup::crypto;
use nines_model::ClusterType;
use nines_model::alarm::{AlarmKind, Condition};
use nines_model::backup::BackupState;
use nines_model::binlog;
use nines_ops::lifecycle::NodePart;
use nines_store::{ArchiveState, SegmentRecord};
use tokio_util::sync::CancellationToken;

use super::targets::load;
use super::{JobEnv, JobRunner};

/// How often each cluster's binlogs are looked at.
pub const INTERVAL: Duration = Duration::from_secs(2);
/// At most this much of one file is read per pass (the rest the next pass).
const MAX_READ: u64 = 64 << 20;

/// How far behind the archive may fall before an alarm: the 10 s the restorable window
/// promises, with room for a slow pass.
pub const LAG_ALARM: chrono::Duration = chrono::Duration::seconds(30);

/// Whether the archive-lag alarm of a cluster is to be raised (`Some(true)`) or cleared
/// (`Some(false)`): raised once the archive has been behind for longer than
/// [`LAG_ALARM`] (since it last caught up, or since archiving began in this process),
/// cleared when it has caught up again.
pub fn lag_alarm(
    caught_up_at: Option<chrono::DateTime<Utc>>,
    watched_since: chrono::DateTime<Utc>,
    now: chrono::DateTime<Utc>,
    raised: bool,
) -> Option<bool> {
    let since = caught_up_at.map_or(watched_since, |c| c.max(watched_since));
    let behind = now - since > LAG_ALARM;
    match (behind, raised) {
        (true, false) => Some(true),
        (false, true) => Some(false),
        _ => None,
    }
}

/// Runs until `shutdown`.
pub async fn run(jobs: Arc<JobRunner>, shutdown: CancellationToken) {
    let env = &jobs.env;
    let mut last_error: HashMap<String, String> = HashMap::new();
    // Since when each cluster's archive (in its current epoch) is watched.
    let mut watched: HashMap<String, (i64, chrono::DateTime<Utc>)> = HashMap::new();
    loop {
        match env.store.list_clusters().await {
            Ok(clusters) => {
                for c in clusters {
                    let r = pass(env, &c.name, c.cluster_type).await;
                    let (state, text) = match r {
                        Ok(state) => (state, String::new()),
                        Err(e) => (env.store.archive_state(&c.name).await.ok().flatten(), e),
                    };
                    if !text.is_empty() && last_error.get(&c.name) != Some(&text) {
                        tracing::warn!(cluster = %c.name, error = %text, "binlog archive");
                    }
                    last_error.insert(c.name.clone(), text.clone());
                    let Some(state) = state else {
                        watched.remove(&c.name);
                        continue;
                    };
                    let now = Utc::now();
                    let entry = watched.entry(c.name.clone()).or_insert((state.epoch, now));
                    if entry.0 != state.epoch {
                        // A restore started a new history: its archive gets its own time.
                        *entry = (state.epoch, now);
                    }
                    let since = entry.1;
                    let was = env.alarms.is_active(&c.name, None, &AlarmKind::ArchiveLag);
                    if let Some(raise) = lag_alarm(state.caught_up_at, since, now, was) {
                        if raise {
                            let msg = format!(
                                "the binlog archive of `{}` is more than {} s behind (last caught up: {}){}: points after that cannot be restored. Check that the writer answers and the repository takes writes",
                                c.name,
                                LAG_ALARM.num_seconds(),
                                state
                                    .caught_up_at
                                    .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                                    .unwrap_or_else(|| "never".into()),
                                if text.is_empty() {
                                    String::new()
                                } else {
                                    format!("; {text}")
                                }
                            );
                            crate::log_store_error(
                                "an archive alarm",
                                env.alarms
                                    .raise(Condition::new(
                                        &c.name,
                                        None,
                                        AlarmKind::ArchiveLag,
                                        msg,
                                    ))
                                    .await,
                            );
                        } else {
                            crate::log_store_error(
                                "an archive alarm's clearing",
                                env.alarms
                                    .clear_kind(&c.name, None, AlarmKind::ArchiveLag)
                                    .await,
                            );
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "binlog archive: cannot list clusters"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(INTERVAL) => {}
        }
    }
}

/// The repository a cluster's archive goes to: that of its newest completed backup.
pub(super) async fn archive_repo(env: &JobEnv, cluster: &str) -> Result<Option<String>, String> {
    let backups = env
        .store
        .backups(Some(cluster))
        .await
        .map_err(|e| e.to_string())?;
    Ok(backups
        .into_iter()
        .find(|b| b.state == BackupState::Completed)
        .map(|b| b.repo))
}

/// One pass over a cluster; its archive state afterwards (None: nothing to archive).
async fn pass(
    env: &JobEnv,
    cluster: &str,
    kind: ClusterType,
) -> Result<Option<ArchiveState>, String> {
    let Some(repo_name) = archive_repo(env, cluster).await? else {
        return Ok(None);
    };
    let c = load(env, cluster).await.map_err(|e| e.to_string())?;
    let prev = env
        .store
        .archive_state(cluster)
        .await
        .map_err(|e| e.to_string())?;
    let mut state = prev.unwrap_or(ArchiveState {
        cluster: cluster.to_string(),
        repo: repo_name.clone(),
        epoch: 0,
        server: None,
        caught_up_at: None,
        error: None,
    });
    let result = archive(
        env,
        &c,
        &repo_name,
        state.epoch,
        kind,
        state.server.as_deref(),
    )
    .await;
    state.repo = repo_name;
    match &result {
        Ok((server, caught_up)) => {
            state.server = Some(server.clone());
            if let Some(t) = caught_up {
                state.caught_up_at = Some(*t);
            }
            state.error = None;
        }
        Err(e) => state.error = Some(e.clone()),
    }
    env.store
        .set_archive_state(&state)
        .await
        .map_err(|e| e.to_string())?;
    result.map(|_| Some(state))
}

/// One pass over the writer's binlogs; returns the server and, when everything it had
/// written when the pass began is now archived, that moment.
async fn archive(
    env: &JobEnv,
    c: &super::targets::Loaded,
    repo_name: &str,
    epoch: i64,
    kind: ClusterType,
    last_server: Option<&str>,
) -> Result<(String, Option<chrono::DateTime<Utc>>), String> {
    let node = if kind == ClusterType::Galera {
        // Every Galera node logs the same GTIDs (wsrep_gtid_mode): any Synced node will
        // do; the one archived from last, while it stays Synced.
        let observed = env.monitor.cluster(&c.record.name);
        let synced = |ep: &nines_model::Endpoint| {
            observed.as_ref().is_some_and(|o| {
                o.nodes.iter().any(|n| {
                    &n.endpoint == ep
                        && n.sample
                            .as_ref()
                            .and_then(|s| s.wsrep.as_ref())
                            .is_some_and(|w| w.is_synced() && w.is_primary_component())
                })
            })
        };
        c.nodes
            .iter()
            .filter(|n| synced(&n.endpoint))
            .max_by_key(|n| Some(n.endpoint.to_string().as_str()) == last_server)
    } else {
        c.nodes.iter().find(|n| {
            matches!(
                super::targets::part(&c.record, n),
                NodePart::Primary | NodePart::Standalone
            )
        })
    };
    let Some(node) = node else {
        return Err("no writer (or Synced Galera node) to archive from".into());
    };
    let node = c
        .backup_target(env, node)
        .await
        .map_err(|e| e.to_string())?;
    let (repo, repo_key) = super::backup::open_repo(env, repo_name)
        .await
        .map_err(|e| e.to_string())?;
    let began = Utc::now();
    let listing = node
        .sql("SELECT @@log_bin_basename; SHOW BINARY LOGS")
        .await
        .map_err(|e| e.to_string())?;
    let mut lines = listing.lines();
    let base = lines.next().unwrap_or("").trim().to_string();
    if base.is_empty() || base == "NULL" {
        return Err(format!("{}: binary logging is off", node.endpoint));
    }
    let dir = base
        .rsplit_once('/')
        .map(|(d, _)| d.to_string())
        .unwrap_or_default();
    let files: Vec<(String, u64)> = lines
        .filter_map(|l| {
            let mut f = l.split('\t');
            let name = f.next()?.trim().to_string();
            let size = f.next()?.trim().parse().ok()?;
            Some((name, size))
        })
        .collect();
    let server = node.endpoint.to_string();
    let mut ends: HashMap<String, u64> = HashMap::new();
    for s in env
        .store
        .segments(&c.record.name, repo_name)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|s| s.server == server && s.epoch == epoch)
    {
        let end = u64::try_from(s.offset + s.length).unwrap_or(0);
        let e = ends.entry(s.file).or_default();
        *e = (*e).max(end);
    }
    let mut caught_up = true;
    for (file, size) in files {
        let have = ends.get(&file).copied().unwrap_or(0);
        if size <= have {
            continue;
        }
        let len = (size - have).min(MAX_READ);
        if len < size - have {
            caught_up = false;
        }
        let out = node
            .host
            .run(
                &HostCommand::shell("tail -c +\"$(($2 + 1))\" \"$1\" | head -c \"$3\"")
                    .arg(format!("{dir}/{file}"))
                    .arg(have.to_string())
                    .arg(len.to_string())
                    .sudo(true),
                Duration::from_secs(120),
            )
            .await
            .map_err(|e| e.to_string())?;
        if !out.success() {
            return Err(format!(
                "{}: reading {file}: {}",
                node.endpoint,
                out.stderr_text().trim()
            ));
        }
        let bytes = out.stdout;
        let scan = binlog::scan(&bytes, have).map_err(|e| format!("{file}@{have}: {e}"))?;
        if scan.events == 0 {
            continue;
        }
        let whole = &bytes[..scan.complete];
        let sealed = crypto::seal_object(&repo_key, whole)?;
        repo.put_segment(&c.record.name, epoch, &server, &file, have, sealed)
            .await?;
        env.store
            .add_segment(&SegmentRecord {
                id: 0,
                cluster: c.record.name.clone(),
                repo: repo_name.to_string(),
                epoch,
                server: server.clone(),
                file: file.clone(),
                offset: i64::try_from(have).unwrap_or(i64::MAX),
                length: i64::try_from(whole.len()).unwrap_or(i64::MAX),
                first_gtid: scan.first_gtid,
                last_gtid: scan.last_gtid,
                first_time: scan.first_time,
                last_time: scan.last_time,
            })
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok((server, caught_up.then_some(began)))
}

/// A cluster's restorable window: from the oldest completed backup the archive's binlogs
/// reach back to (or, without an archive, the newest backup alone), to the moment the
/// archive last caught up (or the newest backup). None without a completed backup.
pub async fn window(
    store: &Arc<dyn nines_store::Store>,
    cluster: &str,
) -> Result<Option<(chrono::DateTime<Utc>, chrono::DateTime<Utc>)>, nines_store::StoreError> {
    let backups: Vec<nines_store::BackupRecord> = store
        .backups(Some(cluster))
        .await?
        .into_iter()
        .filter(|b| b.state == BackupState::Completed && b.finished_at.is_some())
        .collect();
    let Some(newest) = backups.first() else {
        return Ok(None);
    };
    let newest_at = newest.finished_at.unwrap_or(newest.started_at);
    let state = store.archive_state(cluster).await?;
    let Some(state) = state.filter(|s| s.caught_up_at.is_some()) else {
        return Ok(Some((newest_at, newest_at)));
    };
    let segments = store.segments(cluster, &state.repo).await?;
    let archived_from = segments
        .iter()
        .filter(|s| s.epoch == state.epoch)
        .filter_map(|s| s.first_time)
        .min();
    let latest = state.caught_up_at.unwrap_or(newest_at).max(newest_at);
    let earliest = backups
        .iter()
        .filter(|b| b.repo == state.repo && b.epoch == state.epoch)
        .filter(|b| b.gtid_position.as_deref().is_some_and(|g| !g.is_empty()))
        .filter_map(|b| b.finished_at)
        .filter(|f| archived_from.is_some_and(|a| a <= *f))
        .min()
        .unwrap_or(newest_at);
    Ok(Some((earliest, latest)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_lag_alarm_is_raised_once_and_cleared_on_catching_up() {
        let t = |s: i64| Utc.timestamp_opt(1_764_000_000 + s, 0).single().unwrap();
        // (caught up at, watched since, now, raised, decision)
        let cases = [
            (Some(t(0)), t(0), t(10), false, None),
            (Some(t(0)), t(0), t(31), false, Some(true)),
            (Some(t(0)), t(0), t(40), true, None),
            (Some(t(38)), t(0), t(40), true, Some(false)),
            (None, t(0), t(20), false, None),
            (None, t(0), t(31), false, Some(true)),
            // A controller restarted long after the last catch-up gives the archive its
            // time before alarming.
            (Some(t(0)), t(100), t(110), false, None),
        ];
        for (caught, since, now, raised, want) in cases {
            assert_eq!(
                lag_alarm(caught, since, now, raised),
                want,
                "{caught:?} {since} {now} {raised}"
            );
        }
    }
}
