//! Backup jobs: take a backup of a cluster into a repository (and check it at once),
//! verify one, restore one onto a cluster.
//!
//! A backup streams from the chosen node's host through the controller (the host
//! transport's stdout), where `nines_backup` cuts it into chunks, compresses, encrypts and
//! stores them; nothing lands uncompressed on any disk. docs/backups.md is the story.

use nines_model::event::EventKind;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use nines_backup::crypto::{self, Key};
use nines_backup::{Repository, S3Config};
use nines_model::alarm::{AlarmKind, Condition};
use nines_model::backup::{
    BackupMethod, BackupState, MANIFEST_FORMAT, Manifest, SourceCandidate, choose_source,
    incremental_parent,
};
use nines_model::gtid::{MariaDbGtid, MariaDbGtidPos};
use nines_model::job::{JobError, LogLevel};
use nines_model::replication::IoThreadState;
use nines_model::{ClusterType, Endpoint, NodeState, Role};
use nines_ops::Reporter;
use nines_ops::backup as ops;
use nines_ops::lifecycle::NodePart;
use nines_ops::node::{NodeTarget, READY_TIMEOUT};
use nines_store::{BackupOutcome, BackupRecord, NewBackup, RepoLocation};

use super::targets::{Loaded, load};
use super::{JobContext, JobEnv, op, store_err};

/// The repository a backup goes to when none is named: a directory under the
/// controller's data directory, made on first use.
pub const DEFAULT_REPO: &str = "local";

/// Opens repository `name` with its key (the default one is made when missing).
pub(super) async fn open_repo(env: &JobEnv, name: &str) -> Result<(Repository, Key), JobError> {
    let mut rec = env.store.repo(name).await.map_err(store_err)?;
    if rec.is_none() && name == DEFAULT_REPO {
        let path = env.settings.data_dir.join("backups");
        let key = Key::generate();
        let secret = env
            .store
            .put_secret(&key.to_hex())
            .await
            .map_err(store_err)?;
        let location = RepoLocation::Directory {
            path: path.display().to_string(),
        };
        rec = match env.store.add_repo(name, &location, secret).await {
            Ok(r) => Some(r),
            // Made by a job running beside this one.
            Err(nines_store::StoreError::Conflict(_)) => {
                crate::log_store_error(
                    "the removal of an unused key",
                    env.store.delete_secret(secret).await,
                );
                env.store.repo(name).await.map_err(store_err)?
            }
            Err(e) => return Err(store_err(e)),
        };
    }
    let Some(rec) = rec else {
        return Err(JobError::refused(format!(
            "no backup repository named `{name}` (nines backup repo list)"
        )));
    };
    let repo = match &rec.location {
        RepoLocation::Directory { path } => Repository::directory(std::path::Path::new(path)),
        RepoLocation::S3 {
            endpoint,
            bucket,
            region,
            access_key_secret,
            secret_key_secret,
        } => {
            let access = env
                .store
                .get_secret(*access_key_secret)
                .await
                .map_err(store_err)?;
            let secret = env
                .store
                .get_secret(*secret_key_secret)
                .await
                .map_err(store_err)?;
            Repository::s3(&S3Config {
                endpoint: endpoint.clone(),
                bucket: bucket.clone(),
                region: region.clone(),
                access_key: access.expose().to_string(),
                secret_key: secret.expose().to_string(),
            })
        }
    }
    .map_err(JobError::Failed)?;
    let key = env
        .store
        .get_secret(rec.key_secret)
        .await
        .map_err(store_err)?;
    let key = Key::from_hex(key.expose())
        .map_err(|e| JobError::Failed(format!("the key of repository `{name}`: {e}")))?;
    Ok((repo, key))
}

/// The nodes as the source choice sees them, from the monitor.
fn candidates(env: &JobEnv, c: &Loaded) -> Vec<SourceCandidate> {
    let observed = env.monitor.cluster(&c.record.name);
    c.nodes
        .iter()
        .map(|n| {
            let o = observed
                .as_ref()
                .and_then(|o| o.nodes.iter().find(|x| x.endpoint == n.endpoint));
            let sample = o.and_then(|o| o.sample.clone());
            let role = super::targets::part(&c.record, n);
            let role = match role {
                NodePart::Primary => Role::Primary,
                NodePart::Replica | NodePart::Fenced => Role::Replica,
                NodePart::Galera => Role::Galera,
                NodePart::Standalone => Role::Primary,
            };
            let state = o.and_then(|o| o.state).unwrap_or(NodeState::Offline);
            let serving = state != NodeState::Offline
                && match (c.record.cluster_type, role) {
                    (ClusterType::Galera, _) => sample
                        .as_ref()
                        .and_then(|s| s.wsrep.as_ref())
                        .is_some_and(|w| w.is_synced() && w.is_primary_component()),
                    (_, Role::Replica) => {
                        n.fenced.is_none()
                            && sample.as_ref().is_some_and(|s| {
                                !s.replication.is_empty()
                                    && s.replication.iter().all(|r| {
                                        r.io_state == IoThreadState::Running && r.sql_running
                                    })
                            })
                    }
                    _ => true,
                };
            let lag_seconds = sample
                .as_ref()
                .and_then(|s| s.replication.iter().filter_map(|r| r.seconds_behind).max())
                .map(|s| s as f64);
            SourceCandidate {
                endpoint: n.endpoint.clone(),
                role,
                state,
                serving,
                lag_seconds,
            }
        })
        .collect()
}

/// Logs the stream's progress every 10 s (bytes, rate); never returns (the caller drops
/// it when the stream ends).
async fn report_progress(ctx: &JobContext, what: &str, bytes: &AtomicU64) {
    let started = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(10)).await;
        let n = bytes.load(Ordering::Relaxed);
        let secs = started.elapsed().as_secs_f64().max(0.001);
        ctx.info(&format!(
            "{what}: {} MiB so far, {:.1} MiB/s",
            n >> 20,
            n as f64 / secs / 1048576.0
        ))
        .await;
    }
}

/// Takes a backup of `cluster` (and checks it at once).
pub(super) async fn create(
    ctx: &JobContext,
    env: &JobEnv,
    cluster: &str,
    method: BackupMethod,
    asked: Option<&Endpoint>,
    repo_name: &str,
    verify_restore: bool,
) -> Result<(), JobError> {
    let c = load(env, cluster).await?;
    let (repo, repo_key) = open_repo(env, repo_name).await?;
    // An incremental builds on the newest physical backup of this repository.
    let mut parent: Option<BackupRecord> = None;
    if method == BackupMethod::Incremental {
        let all = env.store.backups(Some(cluster)).await.map_err(store_err)?;
        let rows: Vec<(i64, BackupMethod, BackupState, &str, &str)> = all
            .iter()
            .map(|b| (b.id, b.method, b.state, b.repo.as_str(), b.node.as_str()))
            .collect();
        let Some((pid, _)) = incremental_parent(&rows, repo_name) else {
            return Err(JobError::refused(format!(
                "no completed full backup of `{cluster}` in repository `{repo_name}` to build an incremental on: take a full backup first"
            )));
        };
        parent = all.into_iter().find(|b| b.id == pid);
    }
    let parent_node: Option<Endpoint> = parent.as_ref().and_then(|p| p.node.parse().ok());
    let choice = choose_source(
        c.record.cluster_type,
        &candidates(env, &c),
        asked,
        parent_node.as_ref(),
    )
    .map_err(JobError::refused)?;
    let lsn = match &parent {
        Some(p) => Some(p.to_lsn.and_then(|l| u64::try_from(l).ok()).ok_or_else(|| {
            JobError::refused(format!(
                "backup {} has no recorded LSN to build an incremental on: take a full backup",
                p.id
            ))
        })?),
        None => None,
    };
    let rec = c.node(&choice.node)?;
    let node = c.backup_target(env, rec).await?;
    ctx.info(&format!(
        "{method} backup of `{cluster}` from {} ({}) into repository `{repo_name}` ({}){}",
        choice.node,
        choice.reason,
        repo.describe,
        parent
            .as_ref()
            .map(|p| format!(", on top of backup {}", p.id))
            .unwrap_or_default()
    ))
    .await;
    let epoch = env
        .store
        .archive_state(cluster)
        .await
        .map_err(store_err)?
        .map(|a| a.epoch)
        .unwrap_or(0);
    let rec = env
        .store
        .begin_backup(&NewBackup {
            cluster: cluster.to_string(),
            repo: repo_name.to_string(),
            method,
            node: choice.node.to_string(),
            parent_id: parent.as_ref().map(|p| p.id),
            job_id: Some(ctx.id),
            epoch,
        })
        .await
        .map_err(store_err)?;
    let started_at = Utc::now();
    let outcome = take(
        ctx,
        &node,
        &repo,
        &repo_key,
        cluster,
        rec.id,
        method,
        lsn,
        choice.desync,
    )
    .await;
    match outcome {
        Ok((written, facts, wrapped)) => {
            let gtid = if method.is_physical() {
                facts.gtid_position.clone()
            } else {
                let g = ops::dump_gtid(&written.tail);
                if g.is_empty() {
                    ops::dump_gtid(&written.head)
                } else {
                    g
                }
            };
            let version = env
                .monitor
                .cluster(cluster)
                .and_then(|o| {
                    o.nodes
                        .iter()
                        .find(|n| n.endpoint == choice.node)
                        .and_then(|n| n.sample.as_ref().map(|s| s.version.text.clone()))
                })
                .unwrap_or_default();
            let manifest = Manifest {
                format: MANIFEST_FORMAT,
                backup_id: rec.id,
                cluster: cluster.to_string(),
                method,
                node: choice.node.to_string(),
                started_at,
                finished_at: Utc::now(),
                gtid_position: gtid.clone(),
                parent_id: parent.as_ref().map(|p| p.id),
                from_lsn: facts.from_lsn,
                to_lsn: facts.to_lsn,
                server_version: version,
                compression: format!("zstd-{}", crypto::ZSTD_LEVEL),
                cipher: "aes-256-gcm".into(),
                wrapped_key: wrapped,
                plain_bytes: written.plain_bytes,
                stored_bytes: written.stored_bytes,
                chunks: written.chunks.clone(),
            };
            if let Err(e) = repo.put_manifest(&manifest).await {
                fail(env, &repo, cluster, rec.id, &e).await;
                return Err(JobError::Failed(e));
            }
            env.store
                .finish_backup(
                    rec.id,
                    &BackupOutcome::Completed {
                        size_bytes: written.plain_bytes,
                        stored_bytes: written.stored_bytes,
                        gtid_position: gtid.clone(),
                        to_lsn: facts.to_lsn,
                    },
                )
                .await
                .map_err(store_err)?;
            let msg = format!(
                "backup {} of `{cluster}` completed: {method} from {}, {:.1} MiB read, {:.1} MiB stored in `{repo_name}`, {} chunks{}",
                rec.id,
                choice.node,
                written.plain_bytes as f64 / 1048576.0,
                written.stored_bytes as f64 / 1048576.0,
                written.chunks.len(),
                if gtid.is_empty() {
                    String::new()
                } else {
                    format!(", at GTID {gtid}")
                }
            );
            ctx.info(&msg).await;
            env.store
                .add_event(
                    cluster,
                    Some(&choice.node.to_string()),
                    EventKind::BackupCompleted,
                    &msg,
                )
                .await
                .map_err(store_err)?;
            crate::log_store_error(
                "a backup alarm's clearing",
                env.alarms
                    .clear_kind(cluster, None, AlarmKind::BackupFailed)
                    .await,
            );
        }
        Err(e) => {
            fail(env, &repo, cluster, rec.id, &e.to_string()).await;
            return Err(e);
        }
    }
    // Every backup is checked at once; scheduled ones are also restored onto a
    // throwaway server.
    verify(ctx, env, cluster, rec.id, verify_restore).await
}

/// Records a failed backup, removes what it stored, and raises an alarm event.
async fn fail(env: &JobEnv, repo: &Repository, cluster: &str, id: i64, error: &str) {
    if let Err(e) = repo.delete_backup(cluster, id).await {
        tracing::warn!(backup = id, error = %e, "cannot remove a failed backup's chunks");
    }
    crate::log_store_error(
        "a failed backup's record",
        env.store
            .finish_backup(
                id,
                &BackupOutcome::Failed {
                    error: error.to_string(),
                },
            )
            .await,
    );
    crate::log_store_error(
        "a failed backup's alarm",
        env.alarms
            .raise(Condition::new(
                cluster,
                None,
                AlarmKind::BackupFailed,
                format!(
                    "backup {id} of `{cluster}` failed: {error}. The last completed backup is still the newest restorable one; fix the cause and run `nines backup create --cluster {cluster}` (the alarm clears when a backup completes)."
                ),
            ))
            .await,
    );
}

/// Streams the node's backup into the repository under a fresh data key.
#[allow(clippy::too_many_arguments)]
async fn take(
    ctx: &JobContext,
    node: &NodeTarget,
    repo: &Repository,
    repo_key: &Key,
    cluster: &str,
    id: i64,
    method: BackupMethod,
    lsn: Option<u64>,
    desync: bool,
) -> Result<(nines_backup::Written, ops::StreamFacts, String), JobError> {
    let data_key = Key::generate();
    let wrapped = crypto::wrap(repo_key, &data_key);
    if desync {
        node.sql("SET GLOBAL wsrep_desync=ON").await.map_err(op)?;
        ctx.info(&format!(
            "{}: desynced from flow control for the backup",
            node.endpoint
        ))
        .await;
    }
    ctx.progress("stream", 10).await;
    nines_ops::pause_point("backup_stream").await;
    let bytes = Arc::new(AtomicU64::new(0));
    let (mut rd, mut wr) = tokio::io::duplex(1 << 20);
    let produce = async {
        let r = ops::stream_backup(node, method, lsn, desync, &mut wr).await;
        drop(wr);
        r
    };
    let counter = Arc::clone(&bytes);
    let count = move |n| counter.store(n, Ordering::Relaxed);
    let consume = nines_backup::write_stream(repo, &data_key, cluster, id, &mut rd, &count);
    let work = async { tokio::join!(produce, consume) };
    let what = format!("backup stream from {}", node.endpoint);
    let result = tokio::select! {
        r = work => Some(r),
        () = report_progress(ctx, &what, &bytes) => None,
        () = ctx.cancellation().cancelled() => None,
    };
    if desync {
        // Whatever happened, the node goes back under flow control.
        if let Err(e) = node.sql("SET GLOBAL wsrep_desync=OFF").await {
            ctx.log(
                LogLevel::Warn,
                &format!("{}: cannot end the desync: {e}", node.endpoint),
            )
            .await;
        }
    }
    let Some((produced, consumed)) = result else {
        return Err(JobError::Cancelled);
    };
    // The server's error says more than the store's (which only saw the stream end).
    let facts = produced.map_err(op)?;
    let written = consumed.map_err(JobError::Failed)?;
    Ok((written, facts, wrapped))
}

/// The chain a physical backup restores from: its full, then each incremental up to it.
async fn chain(env: &JobEnv, id: i64) -> Result<Vec<BackupRecord>, JobError> {
    let mut out = Vec::new();
    let mut next = Some(id);
    while let Some(i) = next {
        let b = env
            .store
            .backup(i)
            .await
            .map_err(store_err)?
            .ok_or_else(|| JobError::refused(format!("backup {i} not found")))?;
        if b.state != BackupState::Completed {
            return Err(JobError::refused(format!(
                "backup {i} is {}, not completed",
                b.state
            )));
        }
        next = b.parent_id;
        out.push(b);
        if out.len() > 1000 {
            return Err(JobError::refused(format!(
                "backup {id}'s chain of parents does not end"
            )));
        }
    }
    out.reverse();
    Ok(out)
}

/// A backup's manifest and data key, checked: the repository key must open it.
async fn open_backup(
    repo: &Repository,
    repo_key: &Key,
    b: &BackupRecord,
) -> Result<(Manifest, Key), JobError> {
    let m = repo
        .get_manifest(&b.cluster, b.id)
        .await
        .map_err(JobError::refused)?;
    if m.format != MANIFEST_FORMAT {
        return Err(JobError::refused(format!(
            "backup {}: manifest format {} is not one this nines reads ({MANIFEST_FORMAT})",
            b.id, m.format
        )));
    }
    let key = crypto::unwrap(repo_key, &m.wrapped_key)
        .map_err(|e| JobError::refused(format!("backup {}: {e}", b.id)))?;
    Ok((m, key))
}

/// Checks every chunk of every backup of the chain (checksums, decryption,
/// decompression) without writing anything.
async fn check_chain(
    ctx: &JobContext,
    env: &JobEnv,
    links: &[BackupRecord],
) -> Result<Vec<(Repository, Manifest, Key)>, JobError> {
    let mut out = Vec::new();
    for b in links {
        let (repo, repo_key) = open_repo(env, &b.repo).await?;
        let (m, key) = open_backup(&repo, &repo_key, b).await?;
        let n = nines_backup::read_stream(&repo, &key, &b.cluster, b.id, &m.chunks, None, &|_| {})
            .await
            .map_err(|e| JobError::refused(e.to_string()))?;
        ctx.info(&format!(
            "backup {}: {} chunks, {} MiB, every checksum and tag checks",
            b.id,
            m.chunks.len(),
            n >> 20
        ))
        .await;
        out.push((repo, m, key));
    }
    Ok(out)
}

/// Where a backup streamed out of the repository goes on a node.
enum Sink<'a> {
    /// mbstream into this directory (physical backups).
    Unpack(&'a str),
    /// The node's own server (a dump).
    Load,
    /// A throwaway server (a dump being verified).
    LoadInto(&'a ops::Throwaway),
}

/// Streams one backup from the repository into `sink` on the node.
async fn stream_into(
    node: &NodeTarget,
    repo: &Repository,
    m: &Manifest,
    key: &Key,
    sink: Sink<'_>,
) -> Result<(), JobError> {
    let (mut rd, mut wr) = tokio::io::duplex(1 << 20);
    let produce = async {
        let r = nines_backup::read_stream(
            repo,
            key,
            &m.cluster,
            m.backup_id,
            &m.chunks,
            Some(&mut wr),
            &|_| {},
        )
        .await;
        drop(wr);
        r
    };
    let consume = async {
        match sink {
            Sink::Unpack(d) => ops::unpack_into(node, d, &mut rd).await,
            Sink::Load => ops::load_dump(node, &mut rd).await,
            Sink::LoadInto(t) => ops::load_dump_into(node, t, &mut rd).await,
        }
    };
    let (p, c) = tokio::join!(produce, consume);
    p.map_err(|e| JobError::Failed(e.to_string()))?;
    c.map_err(op)
}

/// Verifies a backup: every chunk, and for a physical backup a `--prepare` of its chain
/// in a scratch directory on a node of its cluster; a dump must end as mariadb-dump ends
/// one. The result is recorded with the backup; a failure raises an alarm event.
pub(super) async fn verify(
    ctx: &JobContext,
    env: &JobEnv,
    cluster: &str,
    id: i64,
    restore: bool,
) -> Result<(), JobError> {
    ctx.progress("verify", 70).await;
    let started = Instant::now();
    let result = verify_inner(ctx, env, cluster, id, restore).await;
    let (ok, note) = match &result {
        Ok(note) => (
            true,
            format!("{note} ({:.1} s)", started.elapsed().as_secs_f64()),
        ),
        Err(JobError::Cancelled) => return Err(JobError::Cancelled),
        Err(e) => (false, e.to_string()),
    };
    env.store
        .set_backup_verified(id, ok, &note)
        .await
        .map_err(store_err)?;
    if ok {
        ctx.info(&format!("backup {id} verified: {note}")).await;
        crate::log_store_error(
            "a verification alarm's clearing",
            env.alarms
                .clear_kind(cluster, None, AlarmKind::BackupVerify)
                .await,
        );
        Ok(())
    } else {
        env.alarms
            .raise(Condition::new(
                cluster,
                None,
                AlarmKind::BackupVerify,
                format!(
                    "backup {id} of `{cluster}` failed verification: {note}. Do not count on it for a restore; take a new backup and verify it (`nines backup verify ID`)."
                ),
            ))
            .await
            .map_err(store_err)?;
        result.map(|_| ())
    }
}

async fn verify_inner(
    ctx: &JobContext,
    env: &JobEnv,
    cluster: &str,
    id: i64,
    restore: bool,
) -> Result<String, JobError> {
    let links = chain(env, id).await?;
    let opened = check_chain(ctx, env, &links).await?;
    let Some((_, last, _)) = opened.last() else {
        return Err(JobError::refused(format!("backup {id} not found")));
    };
    if !last.method.is_physical() {
        let (repo, m, key) = &opened[opened.len() - 1];
        let mut tail = TailKeeper::default();
        nines_backup::read_stream(
            repo,
            key,
            &m.cluster,
            m.backup_id,
            &m.chunks,
            Some(&mut tail),
            &|_| {},
        )
        .await
        .map_err(|e| JobError::refused(e.to_string()))?;
        if !String::from_utf8_lossy(&tail.0).contains("-- Dump completed") {
            return Err(JobError::refused(format!(
                "backup {id}: the dump does not end as mariadb-dump ends one (truncated?)"
            )));
        }
        if !restore {
            return Ok("chunks checked; the dump is complete".into());
        }
        let node = verify_node(env, cluster, id, &links[0].node).await?;
        let base = ops::scratch_dir(&node, &format!("verify-{id}"));
        let started = Instant::now();
        let t = ops::start_throwaway(&node, &base, id, true)
            .await
            .map_err(op)?;
        let loaded = async {
            stream_into(&node, repo, m, key, Sink::LoadInto(&t)).await?;
            ops::count_rows(&node, &t).await.map_err(op)
        }
        .await;
        ops::stop_throwaway(&node, &t).await;
        let (tables, rows) = loaded?;
        return Ok(format!(
            "chunks checked; loaded into a throwaway server on {} in {:.1} s: {tables} tables, {rows} rows",
            node.endpoint,
            started.elapsed().as_secs_f64()
        ));
    }
    // --prepare on a node of the cluster (the one it was read from when it is still there).
    let node = verify_node(env, cluster, id, &links[0].node).await?;
    let base = ops::scratch_dir(&node, &format!("verify-{id}"));
    let started = Instant::now();
    let r: Result<Option<String>, JobError> = async {
        prepare_chain(ctx, &node, &opened, &base).await?;
        if !restore {
            return Ok(None);
        }
        let t = ops::start_throwaway(&node, &base, id, false)
            .await
            .map_err(op)?;
        let up = started.elapsed();
        let counted = ops::count_rows(&node, &t).await.map_err(op);
        ops::stop_throwaway(&node, &t).await;
        let (tables, rows) = counted?;
        Ok(Some(format!(
            "restored onto a throwaway server on {} in {:.1} s: {tables} tables, {rows} rows",
            node.endpoint,
            up.as_secs_f64()
        )))
    }
    .await;
    if let Err(e) = node
        .run(
            nines_access::host::HostCommand::shell("rm -rf \"$1\" \"$1\".inc-*").arg(&base),
            Duration::from_secs(600),
        )
        .await
    {
        ctx.log(LogLevel::Warn, &format!("cannot remove {base}: {e}"))
            .await;
    }
    let restored = r?;
    let prepared = format!(
        "chunks checked; --prepare of {} backup(s) passed on {}",
        opened.len(),
        node.endpoint
    );
    Ok(match restored {
        Some(r) => format!("{prepared}; {r}"),
        None => prepared,
    })
}

/// Puts nines's own accounts of the cluster back after a restore replaced the grant
/// tables: a backup of another cluster (an imported one, say) has other accounts or other
/// passwords, and without these nines could neither watch the restored servers nor let
/// replicas connect. Root over the socket is used, as for every deployed node: a backup
/// whose `root@localhost` cannot log in that way leaves the cluster to a person, and the
/// error says so.
async fn own_accounts(
    ctx: &JobContext,
    env: &JobEnv,
    c: &Loaded,
    first: &NodeTarget,
    id: i64,
    from_cluster: &str,
) -> Result<(), JobError> {
    let accounts = super::scale::cluster_accounts(env, c.record.id).await?;
    let galera = c.record.cluster_type == ClusterType::Galera;
    if let Err(e) = first
        .sql(&nines_ops::deploy::accounts_sql(&accounts, galera))
        .await
    {
        return Err(JobError::Failed(format!(
            "backup {id} (of `{from_cluster}`) is restored on {}, but nines cannot put its own accounts back: {e}. \
             The restored grant tables do not let root log in over the socket (unix_socket); \
             give root@localhost unix_socket authentication on that server, then run the restore again",
            first.endpoint
        )));
    }
    if from_cluster != c.record.name {
        ctx.info(&format!(
            "{}: nines's accounts of `{}` put back beside those of `{from_cluster}` that came with the backup",
            first.endpoint, c.record.name
        ))
        .await;
    }
    Ok(())
}

/// The node a verification works on: the one the backup was read from when it is still a
/// node of the cluster, else its first node.
async fn verify_node(
    env: &JobEnv,
    cluster: &str,
    id: i64,
    taken_from: &str,
) -> Result<NodeTarget, JobError> {
    let c = load(env, cluster).await?;
    let from: Option<Endpoint> = taken_from.parse().ok();
    let rec = c
        .nodes
        .iter()
        .find(|n| Some(&n.endpoint) == from.as_ref())
        .or_else(|| c.nodes.first())
        .ok_or_else(|| {
            JobError::refused(format!(
                "cluster `{cluster}` has no node to verify backup {id} on"
            ))
        })?;
    c.backup_target(env, rec).await
}

/// Unpacks a chain into `base` (the full) and `base.inc-N` (incrementals) and prepares.
async fn prepare_chain(
    ctx: &JobContext,
    node: &NodeTarget,
    opened: &[(Repository, Manifest, Key)],
    base: &str,
) -> Result<(), JobError> {
    for (i, (repo, m, key)) in opened.iter().enumerate() {
        let dir = if i == 0 {
            base.to_string()
        } else {
            format!("{base}.inc-{i}")
        };
        stream_into(node, repo, m, key, Sink::Unpack(&dir)).await?;
    }
    ops::prepare(node, base, None, ctx).await.map_err(op)?;
    for i in 1..opened.len() {
        let inc = format!("{base}.inc-{i}");
        ops::prepare(node, base, Some(&inc), ctx)
            .await
            .map_err(op)?;
    }
    Ok(())
}

/// Keeps the last few hundred bytes written to it.
#[derive(Default)]
struct TailKeeper(Vec<u8>);

impl tokio::io::AsyncWrite for TailKeeper {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.0.extend_from_slice(buf);
        let excess = self.0.len().saturating_sub(512);
        if excess > 0 {
            self.0.drain(..excess);
        }
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// Where a restore rolls forward to with the archived binlogs (nowhere when both are None).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RollForward {
    pub until: Option<chrono::DateTime<Utc>>,
    pub until_gtid: Option<String>,
}

impl RollForward {
    fn wanted(&self) -> bool {
        self.until.is_some() || self.until_gtid.is_some()
    }

    fn describe(&self) -> String {
        match (&self.until, &self.until_gtid) {
            (Some(t), _) => format!("to {}", t.format("%Y-%m-%d %H:%M:%S UTC")),
            (None, Some(g)) => format!("to GTID {g}"),
            (None, None) => String::new(),
        }
    }
}

/// Replays the archived binlogs of the backup's cluster on `node`, from the backup's
/// GTID position to the target: each server's files in the order they were archived,
/// each from the position reached so far (so transactions two servers hold, before and
/// after a failover, are applied once).
async fn roll_forward(
    ctx: &JobContext,
    env: &JobEnv,
    node: &NodeTarget,
    b: &BackupRecord,
    target: &RollForward,
) -> Result<(), JobError> {
    let mut position = b
        .gtid_position
        .clone()
        .filter(|g| !g.is_empty())
        .ok_or_else(|| {
            JobError::refused(format!(
                "backup {} has no GTID position to roll forward from",
                b.id
            ))
        })?;
    let state = env
        .store
        .archive_state(&b.cluster)
        .await
        .map_err(store_err)?
        .ok_or_else(|| {
            JobError::refused(format!("cluster `{}` has no binlog archive", b.cluster))
        })?;
    let (repo, key) = open_repo(env, &state.repo).await?;
    let segments: Vec<nines_store::SegmentRecord> = env
        .store
        .segments(&b.cluster, &state.repo)
        .await
        .map_err(store_err)?
        .into_iter()
        .filter(|s| s.epoch == b.epoch)
        .collect();
    let mut servers: Vec<String> = Vec::new();
    for s in &segments {
        if !servers.contains(&s.server) {
            servers.push(s.server.clone());
        }
    }
    let base = ops::scratch_dir(node, &format!("pitr-{}", b.id));
    node.run(
        nines_access::host::HostCommand::shell("rm -rf \"$1\" && mkdir -p \"$1\"").arg(&base),
        nines_ops::node::SHORT,
    )
    .await
    .map_err(op)?;
    let mut applied_servers = 0;
    for server in &servers {
        let mut mine: Vec<&nines_store::SegmentRecord> =
            segments.iter().filter(|s| &s.server == server).collect();
        // A server whose archive holds nothing past the position reached (a primary that
        // died before its last binlogs were archived: its successor logged the same
        // transactions) is skipped; mariadb-binlog would refuse files that never reach
        // the start position.
        let reached: MariaDbGtidPos = position.parse().unwrap_or_default();
        let archived: MariaDbGtidPos = mine
            .iter()
            .filter_map(|s| s.last_gtid.as_deref())
            .filter_map(|g| g.parse::<MariaDbGtid>().ok())
            .collect();
        if archived.ahead_of(&reached).is_empty() {
            ctx.info(&format!(
                "{server}: nothing past GTID {position} in its archived binlogs; skipped"
            ))
            .await;
            continue;
        }
        mine.sort_by(|a, c| (&a.file, a.offset).cmp(&(&c.file, c.offset)));
        let dir = format!("{base}/{}", server.replace([':', '[', ']'], "_"));
        let mut files: Vec<String> = Vec::new();
        let mut end: HashMap<String, i64> = HashMap::new();
        for s in &mine {
            let at = end.get(&s.file).copied().unwrap_or(0);
            if s.offset != at {
                return Err(JobError::refused(format!(
                    "the binlog archive of {server} has a gap in {} at offset {at} (next piece at {})",
                    s.file, s.offset
                )));
            }
            end.insert(s.file.clone(), s.offset + s.length);
            let stored = repo
                .get_segment(
                    &b.cluster,
                    b.epoch,
                    server,
                    &s.file,
                    u64::try_from(s.offset).unwrap_or(0),
                )
                .await
                .map_err(JobError::refused)?;
            let plain = crypto::open_object(&key, &stored, u64::try_from(s.length).unwrap_or(0))
                .map_err(|e| {
                    JobError::refused(format!("binlog {}@{} of {server}: {e}", s.file, s.offset))
                })?;
            let path = format!("{dir}/{}", s.file);
            if !files.contains(&path) {
                files.push(path.clone());
            }
            let mut src: &[u8] = &plain;
            let out = node
                .host
                .run_streaming(
                    &nines_access::host::HostCommand::shell(
                        "mkdir -p \"$(dirname \"$1\")\" && cat >> \"$1\"",
                    )
                    .arg(&path)
                    .sudo(true),
                    ops::STREAM_TIMEOUT,
                    Some(&mut src),
                    None,
                )
                .await
                .map_err(|e| JobError::Failed(e.to_string()))?;
            if !out.success() {
                return Err(JobError::Failed(format!(
                    "writing {path}: {}",
                    out.stderr_text().trim()
                )));
            }
        }
        // bash for pipefail: a failing mariadb-binlog must fail the replay.
        let mut cmd = nines_access::host::HostCommand::new("bash")
            .arg("-c")
            .arg(
                "set -o pipefail; f=\"$1\"; shift; TZ=UTC mariadb-binlog \"$@\" | mariadb --socket=\"$f\" --user=root --binary-mode",
            )
            .arg("bash")
            .arg(&node.settings.layout.socket)
        .arg(format!("--start-position={position}"));
        if let Some(t) = target.until {
            cmd = cmd.arg(format!("--stop-datetime={}", t.format("%Y-%m-%d %H:%M:%S")));
        }
        if let Some(g) = &target.until_gtid {
            cmd = cmd.arg(format!("--stop-position={g}"));
        }
        for f in &files {
            cmd = cmd.arg(f);
        }
        ctx.info(&format!(
            "{}: replaying {} archived binlog file(s) of {server} from GTID {position} {}",
            node.endpoint,
            files.len(),
            target.describe()
        ))
        .await;
        let out = node
            .host
            .run(&cmd.sudo(true), ops::STREAM_TIMEOUT)
            .await
            .map_err(|e| JobError::Failed(e.to_string()))?;
        if !out.success() {
            return Err(JobError::Failed(format!(
                "{}: replaying the binlogs of {server} failed: {}",
                node.endpoint,
                nines_ops::node::failure_summary(&out.stderr_text(), "")
            )));
        }
        applied_servers += 1;
        let now = node
            .sql("SELECT @@gtid_binlog_pos")
            .await
            .map_err(op)?
            .trim()
            .to_string();
        if !now.is_empty() {
            position = now;
        }
    }
    if let Err(e) = node
        .run(
            nines_access::host::HostCommand::shell("rm -rf \"$1\"").arg(&base),
            nines_ops::node::SHORT,
        )
        .await
    {
        ctx.log(LogLevel::Warn, &format!("cannot remove {base}: {e}"))
            .await;
    }
    ctx.info(&format!(
        "rolled forward {} with the binlogs of {applied_servers} server(s): now at GTID {position}",
        target.describe()
    ))
    .await;
    Ok(())
}

/// Restores backup `id` onto `cluster`, rolled forward with the archived binlogs when
/// asked. Everything is checked first; a cluster whose servers serve needs `force`.
pub(super) async fn restore(
    ctx: &JobContext,
    env: &JobEnv,
    cluster: &str,
    id: i64,
    force: bool,
    target: &RollForward,
) -> Result<(), JobError> {
    let c = load(env, cluster).await?;
    if c.record.settings.is_none() {
        return Err(JobError::refused(format!(
            "cluster `{cluster}` was imported: nines restores only onto servers it deployed (it replaces their data directories and starts their services); restore onto a new cluster instead: `nines cluster create --name NEW --type standalone …`, then `nines backup restore {id} --cluster NEW --force`"
        )));
    }
    let targets = c.targets(env)?;
    let links = chain(env, id).await?;
    let serving: Vec<String> = candidates(env, &c)
        .into_iter()
        .filter(|n| n.state == NodeState::Online)
        .map(|n| n.endpoint.to_string())
        .collect();
    if !serving.is_empty() && !force {
        return Err(JobError::refused(format!(
            "cluster `{cluster}` serves ({}): restoring backup {id} replaces its data; add --force to do it anyway",
            serving.join(", ")
        )));
    }
    ctx.progress("check", 5).await;
    let opened = check_chain(ctx, env, &links).await?;
    new_epoch(ctx, env, cluster).await?;
    let method = links[links.len() - 1].method;
    // The node restored first: the primary, the standalone server, the first Galera node.
    let (first, _) = targets
        .iter()
        .find(|(_, p)| matches!(p, NodePart::Primary | NodePart::Standalone))
        .or_else(|| targets.first())
        .ok_or_else(|| JobError::refused(format!("cluster `{cluster}` has no node")))?;
    ctx.info(&format!(
        "restoring backup {id} ({method}, {} link(s)) onto `{cluster}` through {}",
        links.len(),
        first.endpoint
    ))
    .await;
    let last = links[links.len() - 1].clone();
    if method == BackupMethod::Logical {
        ctx.progress("load", 30).await;
        stream_into(first, &opened[0].0, &opened[0].1, &opened[0].2, Sink::Load).await?;
        if target.wanted() {
            roll_forward(ctx, env, first, &last, target).await?;
        }
        own_accounts(ctx, env, &c, first, id, &last.cluster).await?;
        let msg = format!(
            "backup {id} (logical) loaded into `{cluster}` through {}{}",
            first.endpoint,
            if target.wanted() {
                format!(" and rolled forward {}", target.describe())
            } else {
                String::new()
            }
        );
        ctx.info(&msg).await;
        env.store
            .add_event(cluster, None, EventKind::BackupRestored, &msg)
            .await
            .map_err(store_err)?;
        return Ok(());
    }
    // Physical: every server stops; the first gets the prepared copy; the others follow.
    ctx.progress("stop", 15).await;
    for (t, _) in targets.iter().rev() {
        t.stop().await.map_err(op)?;
    }
    let restored = ops::scratch_dir(first, &format!("restore-{id}"));
    ctx.progress("unpack", 25).await;
    prepare_chain(ctx, first, &opened, &restored).await?;
    if c.record.cluster_type == ClusterType::Galera {
        // A new history: the restored node bootstraps it.
        first
            .run(
                nines_access::host::HostCommand::shell(
                    "rm -f \"$1/grastate.dat\" \"$1/galera.cache\"",
                )
                .arg(&restored),
                nines_ops::node::SHORT,
            )
            .await
            .map_err(op)?;
    }
    ops::swap_in_datadir(first, &restored).await.map_err(op)?;
    let galera = c.record.cluster_type == ClusterType::Galera;
    let extra: &[&str] = if galera {
        &["--wsrep-new-cluster"]
    } else {
        &[]
    };
    // Galera refuses the session server ids a binlog replay sets: the restored node rolls
    // forward as a plain server first, then bootstraps the new history.
    let plain_first = galera && target.wanted();
    let started = async {
        if plain_first {
            first.start(&["--wsrep-provider=none"]).await?;
        } else {
            first.start(extra).await?;
        }
        first.wait_ready(READY_TIMEOUT).await
    }
    .await;
    if let Err(e) = started {
        ctx.log(
            LogLevel::Error,
            &format!(
                "{}: the restored server does not start: {e}; putting the old data back",
                first.endpoint
            ),
        )
        .await;
        if let Err(back) = async {
            first.stop().await?;
            ops::put_back_old_datadir(first).await?;
            first.start(extra).await
        }
        .await
        {
            ctx.log(
                LogLevel::Error,
                &format!("{}: and putting it back failed: {back}", first.endpoint),
            )
            .await;
        }
        return Err(op(e));
    }
    ops::drop_old_datadir(first).await.map_err(op)?;
    if target.wanted() {
        ctx.progress("roll forward", 50).await;
        roll_forward(ctx, env, first, &last, target).await?;
    }
    own_accounts(ctx, env, &c, first, id, &last.cluster).await?;
    if plain_first {
        first.stop().await.map_err(op)?;
        first
            .run(
                nines_access::host::HostCommand::shell("rm -f \"$1/grastate.dat\"")
                    .arg(&first.settings.layout.datadir),
                nines_ops::node::SHORT,
            )
            .await
            .map_err(op)?;
        first.start(extra).await.map_err(op)?;
        first.wait_ready(READY_TIMEOUT).await.map_err(op)?;
    }
    ctx.progress("followers", 60).await;
    match c.record.cluster_type {
        ClusterType::Standalone => {}
        ClusterType::Galera => {
            let peers: Vec<NodeTarget> = targets.iter().map(|(t, _)| t.clone()).collect();
            for (t, _) in targets.iter().filter(|(t, _)| t.endpoint != first.endpoint) {
                // Their old state is of another history: they join by full state transfer.
                t.run(
                    nines_access::host::HostCommand::shell("rm -f \"$1/grastate.dat\"")
                        .arg(&t.settings.layout.datadir),
                    nines_ops::node::SHORT,
                )
                .await
                .map_err(op)?;
                nines_ops::lifecycle::start_node_among(t, NodePart::Galera, &peers, ctx)
                    .await
                    .map_err(op)?;
            }
        }
        ClusterType::Replication => {
            let repl = super::scale::replication_account(env, c.record.id).await?;
            for (t, _) in targets.iter().filter(|(t, _)| t.endpoint != first.endpoint) {
                ctx.info(&format!(
                    "{}: copying the restored data from {}",
                    t.endpoint, first.endpoint
                ))
                .await;
                let gtid = nines_ops::stream::copy_datadir(first, t, ctx)
                    .await
                    .map_err(op)?;
                t.start(&[]).await.map_err(op)?;
                t.wait_ready(READY_TIMEOUT).await.map_err(op)?;
                t.sql(&format!(
                    "STOP SLAVE; RESET SLAVE ALL; SET GLOBAL gtid_slave_pos='{gtid}'; {}",
                    nines_ops::deploy::change_master_sql(first, &repl)
                ))
                .await
                .map_err(op)?;
                nines_ops::deploy::wait_replicating(t, Duration::from_secs(120))
                    .await
                    .map_err(op)?;
            }
        }
    }
    env.monitor
        .rewatch(cluster)
        .await
        .map_err(|e| JobError::Failed(e.to_string()))?;
    let msg = format!(
        "backup {id} ({method}{}) restored onto `{cluster}`{}",
        links
            .last()
            .and_then(|b| b.gtid_position.clone())
            .filter(|g| !g.is_empty())
            .map(|g| format!(", taken at GTID {g}"))
            .unwrap_or_default(),
        if target.wanted() {
            format!(" and rolled forward {}", target.describe())
        } else {
            String::new()
        }
    );
    ctx.info(&msg).await;
    env.store
        .add_event(cluster, None, EventKind::BackupRestored, &msg)
        .await
        .map_err(store_err)?;
    Ok(())
}

/// A restore gives the cluster a new history: its binlog archive starts a new epoch, before
/// any server is touched, so that the archiver never files the restored servers' binlogs
/// (same file names, other content) under the old one.
async fn new_epoch(ctx: &JobContext, env: &JobEnv, cluster: &str) -> Result<(), JobError> {
    let repo = env
        .store
        .archive_state(cluster)
        .await
        .map_err(store_err)?
        .map(|a| a.repo)
        .unwrap_or_else(|| DEFAULT_REPO.to_string());
    let epoch = env
        .store
        .new_archive_epoch(cluster, &repo)
        .await
        .map_err(store_err)?;
    ctx.info(&format!(
        "the binlog archive of `{cluster}` starts epoch {epoch}: earlier backups roll forward with the binlogs of their own epoch"
    ))
    .await;
    Ok(())
}

/// Lets go of the backups of `cluster` in `repo_name` that a restorable window of
/// `window_secs` does not need (`nines_model::backup::retention`), files first, then
/// records; each removal is logged.
pub(super) async fn purge(
    ctx: &JobContext,
    env: &JobEnv,
    cluster: &str,
    repo_name: &str,
    window_secs: u64,
) -> Result<(), JobError> {
    use nines_model::backup::retention::{BackupFacts, RetentionPolicy, expired};
    let all = env.store.backups(Some(cluster)).await.map_err(store_err)?;
    let mine: Vec<&BackupRecord> = all.iter().filter(|b| b.repo == repo_name).collect();
    let facts: Vec<BackupFacts> = mine
        .iter()
        .map(|b| BackupFacts {
            id: b.id,
            method: b.method,
            state: b.state,
            parent_id: b.parent_id,
            started_at: b.started_at,
            finished_at: b.finished_at,
        })
        .collect();
    let policy = RetentionPolicy {
        window: chrono::Duration::seconds(i64::try_from(window_secs).unwrap_or(i64::MAX / 1000)),
        min_fulls: 1,
    };
    let gone = expired(&facts, &policy, Utc::now());
    if gone.is_empty() {
        ctx.info(&format!(
            "retention ({} of restorable window): every backup in `{repo_name}` is still needed",
            humanize(window_secs)
        ))
        .await;
        return purge_binlogs(ctx, env, cluster, repo_name).await;
    }
    let (repo, _) = open_repo(env, repo_name).await?;
    for id in &gone {
        let Some(b) = mine.iter().find(|b| b.id == *id) else {
            continue;
        };
        let objects = repo
            .delete_backup(cluster, *id)
            .await
            .map_err(JobError::Failed)?;
        env.store
            .delete_backup_record(*id)
            .await
            .map_err(store_err)?;
        let msg = format!(
            "retention: removed backup {id} ({}, {}, finished {}; {objects} objects) from `{repo_name}`",
            b.method,
            b.state,
            b.finished_at
                .map(|f| f.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_else(|| "-".into())
        );
        ctx.info(&msg).await;
        env.store
            .add_event(cluster, None, EventKind::BackupPurged, &msg)
            .await
            .map_err(store_err)?;
    }
    purge_binlogs(ctx, env, cluster, repo_name).await
}

/// Deletes the archived binlog files (whole files, every piece) of the repository that end
/// before the oldest backup it keeps began: no kept backup rolls forward through them.
async fn purge_binlogs(
    ctx: &JobContext,
    env: &JobEnv,
    cluster: &str,
    repo_name: &str,
) -> Result<(), JobError> {
    let kept = env.store.backups(Some(cluster)).await.map_err(store_err)?;
    let Some(oldest) = kept
        .iter()
        .filter(|b| b.repo == repo_name && b.state == BackupState::Completed)
        .map(|b| b.started_at)
        .min()
    else {
        return Ok(());
    };
    let segments = env
        .store
        .segments(cluster, repo_name)
        .await
        .map_err(store_err)?;
    let mut files: HashMap<(i64, String, String), Vec<&nines_store::SegmentRecord>> =
        HashMap::new();
    for s in &segments {
        files
            .entry((s.epoch, s.server.clone(), s.file.clone()))
            .or_default()
            .push(s);
    }
    let (repo, _) = open_repo(env, repo_name).await?;
    let mut removed = 0usize;
    for ((epoch, server, file), pieces) in files {
        let old = pieces
            .iter()
            .all(|p| p.last_time.is_some_and(|t| t < oldest));
        if !old {
            continue;
        }
        for p in &pieces {
            repo.delete_segment(
                cluster,
                epoch,
                &server,
                &file,
                u64::try_from(p.offset).unwrap_or(0),
            )
            .await
            .map_err(JobError::Failed)?;
        }
        let ids: Vec<i64> = pieces.iter().map(|p| p.id).collect();
        env.store.delete_segments(&ids).await.map_err(store_err)?;
        removed += 1;
        ctx.info(&format!(
            "retention: removed archived binlog {file} of {server} (epoch {epoch}, {} pieces): older than the oldest kept backup",
            pieces.len()
        ))
        .await;
    }
    if removed > 0 {
        env.store
            .add_event(
                cluster,
                None,
                EventKind::BackupPurged,
                &format!("retention: removed {removed} archived binlog file(s) from `{repo_name}`"),
            )
            .await
            .map_err(store_err)?;
    }
    Ok(())
}

fn humanize(secs: u64) -> String {
    match secs {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Puts a stored physical backup of `cluster` (its whole chain, every chunk checked
/// first) into a new node's empty data directory, prepared; returns the GTID position it
/// is consistent at, for the new replica to start replicating from.
pub(super) async fn restore_into_new_node(
    ctx: &JobContext,
    env: &JobEnv,
    cluster: &str,
    node: &NodeTarget,
    id: i64,
) -> Result<String, JobError> {
    let links = chain(env, id).await?;
    let last = &links[links.len() - 1];
    if last.cluster != cluster {
        return Err(JobError::refused(format!(
            "backup {id} is of cluster `{}`, not `{cluster}`: its GTIDs are not this cluster's history",
            last.cluster
        )));
    }
    if !last.method.is_physical() {
        return Err(JobError::refused(format!(
            "backup {id} is logical: a new replica is provisioned from a full or incremental backup"
        )));
    }
    let gtid = last
        .gtid_position
        .clone()
        .filter(|g| !g.is_empty())
        .ok_or_else(|| {
            JobError::refused(format!(
                "backup {id} has no GTID position to replicate from"
            ))
        })?;
    let opened = check_chain(ctx, env, &links).await?;
    let dir = ops::scratch_dir(node, &format!("provision-{id}"));
    prepare_chain(ctx, node, &opened, &dir).await?;
    ops::swap_in_datadir(node, &dir).await.map_err(op)?;
    ops::drop_old_datadir(node).await.map_err(op)?;
    ctx.info(&format!(
        "{}: backup {id} restored and prepared, consistent at GTID {gtid}",
        node.endpoint
    ))
    .await;
    Ok(gtid)
}
