//! Backup routes: repositories (add, list), backups of a cluster (take, list), one backup
//! (show, verify, restore). Taking, verifying and restoring are jobs; repositories are
//! checked (written, read back, deleted) before they are recorded.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use nines_backup::crypto::Key;
use nines_backup::{Repository, S3Config};
use nines_model::api::{
    BackupCreateRequest, BackupView, JobCreated, RepoAddRequest, RepoView, RestoreRequest,
};
use nines_model::backup::BackupMethod;
use nines_model::event::EventKind;
use nines_model::input::ClusterName;
use nines_model::job::JobSpec;
use nines_store::{BackupRecord, RepoLocation, RepoRecord};

use super::AppState;
use super::auth::Caller;
use super::deploy::{Queued, cluster, queue};
use super::error::ApiErr;
use super::json::ApiJson;
use crate::jobs::backup::DEFAULT_REPO;

pub fn repo_view(r: &RepoRecord) -> RepoView {
    let mut v = RepoView {
        name: r.name.clone(),
        kind: String::new(),
        path: None,
        s3_endpoint: None,
        s3_bucket: None,
        s3_region: None,
        created_at: r.created_at,
    };
    match &r.location {
        RepoLocation::Directory { path } => {
            v.kind = "directory".into();
            v.path = Some(path.clone());
        }
        RepoLocation::S3 {
            endpoint,
            bucket,
            region,
            ..
        } => {
            v.kind = "s3".into();
            v.s3_endpoint = Some(endpoint.clone());
            v.s3_bucket = Some(bucket.clone());
            v.s3_region = Some(region.clone());
        }
    }
    v
}

pub fn backup_view(b: BackupRecord) -> BackupView {
    BackupView {
        id: b.id,
        cluster: b.cluster,
        method: b.method,
        state: b.state,
        node: b.node,
        repo: b.repo,
        size_bytes: b.size_bytes,
        stored_bytes: b.stored_bytes,
        started_at: b.started_at,
        finished_at: b.finished_at,
        gtid_position: b.gtid_position,
        parent_id: b.parent_id,
        verified: b.verified,
        verify_note: b.verify_note,
        job_id: b.job_id,
        error: b.error,
    }
}

fn required<'a>(field: &str, v: &'a Option<String>) -> Result<&'a str, ApiErr> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiErr::field(field, format!("{field} is needed for an S3 repository")))
}

/// Adds a backup repository (a directory on the controller or an S3-compatible bucket)
/// after writing, reading back and deleting a probe object in it.
#[utoipa::path(post, path = "/api/v1/backup-repos", tag = "backups", request_body = RepoAddRequest,
    responses((status = 201, body = RepoView), (status = 400, body = nines_model::api::ApiError),
              (status = 409, body = nines_model::api::ApiError)))]
pub async fn add_repo(
    State(st): State<AppState>,
    ApiJson(req): ApiJson<RepoAddRequest>,
) -> Result<(StatusCode, Json<RepoView>), ApiErr> {
    // Repository names follow cluster names' rules (a path segment, a word in lists).
    ClusterName::parse("name", &req.name)?;
    let s3 = req.s3_endpoint.is_some()
        || req.s3_bucket.is_some()
        || req.s3_access_key.is_some()
        || req.s3_secret_key.is_some();
    let (repo, location_of) = match (&req.path, s3) {
        (Some(_), true) => {
            return Err(ApiErr::field(
                "path",
                "give a path or S3 settings, not both",
            ));
        }
        (None, false) => {
            return Err(ApiErr::field(
                "path",
                "give a path (a directory) or S3 settings",
            ));
        }
        (Some(p), false) => {
            let p = nines_model::input::controller_path("path", p)?;
            let repo = Repository::directory(std::path::Path::new(&p))
                .map_err(|e| ApiErr::field("path", e))?;
            (repo, None)
        }
        (None, true) => {
            let endpoint = required("s3_endpoint", &req.s3_endpoint)?;
            if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                return Err(ApiErr::field(
                    "s3_endpoint",
                    format!("s3_endpoint `{endpoint}` must be an http:// or https:// URL"),
                ));
            }
            let cfg = S3Config {
                endpoint: endpoint.to_string(),
                bucket: required("s3_bucket", &req.s3_bucket)?.to_string(),
                region: req
                    .s3_region
                    .clone()
                    .filter(|r| !r.trim().is_empty())
                    .unwrap_or_else(|| "us-east-1".into()),
                access_key: required("s3_access_key", &req.s3_access_key)?.to_string(),
                secret_key: required("s3_secret_key", &req.s3_secret_key)?.to_string(),
            };
            let repo = Repository::s3(&cfg).map_err(|e| ApiErr::field("s3_endpoint", e))?;
            (repo, Some(cfg))
        }
    };
    if st.store.repo(&req.name).await?.is_some() {
        return Err(ApiErr::conflict(
            "name",
            format!("a repository named `{}` already exists", req.name),
        ));
    }
    repo.check().await.map_err(|e| {
        ApiErr::field(
            if location_of.is_some() {
                "s3_endpoint"
            } else {
                "path"
            },
            format!("the repository cannot be used: {e}"),
        )
    })?;
    let key = st.store.put_secret(&Key::generate().to_hex()).await?;
    let location = match (location_of, &req.path) {
        (Some(cfg), _) => RepoLocation::S3 {
            endpoint: cfg.endpoint,
            bucket: cfg.bucket,
            region: cfg.region,
            access_key_secret: st.store.put_secret(&cfg.access_key).await?,
            secret_key_secret: st.store.put_secret(&cfg.secret_key).await?,
        },
        (None, Some(p)) => RepoLocation::Directory { path: p.clone() },
        (None, None) => return Err(ApiErr::field("path", "give a path or S3 settings")),
    };
    let rec = st.store.add_repo(&req.name, &location, key).await?;
    Ok((StatusCode::CREATED, Json(repo_view(&rec))))
}

/// Backup repositories (never their keys).
#[utoipa::path(get, path = "/api/v1/backup-repos", tag = "backups",
    responses((status = 200, body = Vec<RepoView>)))]
pub async fn list_repos(State(st): State<AppState>) -> Result<Json<Vec<RepoView>>, ApiErr> {
    let repos = st.store.repos().await?;
    Ok(Json(repos.iter().map(repo_view).collect()))
}

/// Takes a backup of a cluster: full (default), incremental or logical, from the node
/// chosen by policy or named, into the repository named (default `local`).
#[utoipa::path(post, path = "/api/v1/clusters/{name}/backups", tag = "backups",
    params(("name" = String, Path)), request_body = BackupCreateRequest,
    responses((status = 202, body = JobCreated), (status = 400, body = nines_model::api::ApiError),
              (status = 404, body = nines_model::api::ApiError)))]
pub async fn create_backup(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<BackupCreateRequest>,
) -> Result<Queued, ApiErr> {
    let method: BackupMethod = req
        .method
        .as_deref()
        .unwrap_or("full")
        .parse()
        .map_err(|e: String| ApiErr::field("method", e))?;
    let node = req
        .node
        .as_deref()
        .map(|n| nines_model::input::node_address("node", n))
        .transpose()?;
    let repo = req.repo.clone().unwrap_or_else(|| DEFAULT_REPO.to_string());
    ClusterName::parse("repo", &repo)?;
    let c = cluster(&st, &name).await?;
    if repo != DEFAULT_REPO && st.store.repo(&repo).await?.is_none() {
        return Err(ApiErr::field(
            "repo",
            format!("no backup repository named `{repo}` (nines backup repo list)"),
        ));
    }
    if let Some(n) = &node {
        let nodes = st.store.list_nodes(Some(c.id)).await?;
        if !nodes.iter().any(|x| &x.endpoint == n) {
            return Err(ApiErr::field(
                "node",
                format!("node {n} is not a node of cluster `{name}`"),
            ));
        }
    }
    queue(
        &st,
        &caller,
        JobSpec::CreateBackup {
            cluster: name,
            method,
            node,
            repo,
            retention_secs: None,
            verify_restore: false,
        },
    )
    .await
}

/// A cluster's backups, newest first.
#[utoipa::path(get, path = "/api/v1/clusters/{name}/backups", tag = "backups",
    params(("name" = String, Path)),
    responses((status = 200, body = Vec<BackupView>), (status = 404, body = nines_model::api::ApiError)))]
pub async fn list_backups(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Vec<BackupView>>, ApiErr> {
    ClusterName::parse("name", &name)?;
    let all = st.store.backups(Some(&name)).await?;
    if all.is_empty() && st.store.get_cluster(&name).await?.is_none() {
        return Err(ApiErr::not_found(format!("cluster `{name}`")));
    }
    Ok(Json(all.into_iter().map(backup_view).collect()))
}

async fn backup_of(st: &AppState, id: &str) -> Result<BackupRecord, ApiErr> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiErr::field("id", format!("backup id `{id}` is not a number")))?;
    st.store
        .backup(id)
        .await?
        .ok_or_else(|| ApiErr::not_found(format!("backup {id}")))
}

/// One backup.
#[utoipa::path(get, path = "/api/v1/backups/{id}", tag = "backups",
    params(("id" = i64, Path)),
    responses((status = 200, body = BackupView), (status = 404, body = nines_model::api::ApiError)))]
pub async fn show_backup(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<BackupView>, ApiErr> {
    Ok(Json(backup_view(backup_of(&st, &id).await?)))
}

/// Verifies a backup: every chunk's checksum and tag, and a `--prepare` of a physical
/// backup's chain on a node of its cluster.
#[utoipa::path(post, path = "/api/v1/backups/{id}/verify", tag = "backups",
    params(("id" = i64, Path)),
    responses((status = 202, body = JobCreated), (status = 404, body = nines_model::api::ApiError)))]
pub async fn verify_backup(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Queued, ApiErr> {
    let b = backup_of(&st, &id).await?;
    queue(
        &st,
        &caller,
        JobSpec::VerifyBackup {
            cluster: b.cluster,
            backup_id: b.id,
        },
    )
    .await
}

/// Restores a backup onto a cluster (every chunk is checked before anything changes; a
/// cluster whose servers serve needs `force`).
#[utoipa::path(post, path = "/api/v1/backups/{id}/restore", tag = "backups",
    params(("id" = i64, Path)), request_body = RestoreRequest,
    responses((status = 202, body = JobCreated), (status = 400, body = nines_model::api::ApiError),
              (status = 404, body = nines_model::api::ApiError)))]
pub async fn restore_backup(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RestoreRequest>,
) -> Result<Queued, ApiErr> {
    ClusterName::parse("cluster", &req.cluster)?;
    let until = req
        .until
        .as_deref()
        .map(|t| {
            chrono::DateTime::parse_from_rfc3339(t.trim())
                .map(|d| d.with_timezone(&chrono::Utc))
                .map_err(|e| {
                    ApiErr::field(
                        "until",
                        format!(
                            "until `{}` is not an RFC 3339 time ({e})",
                            nines_model::input::printable(t)
                        ),
                    )
                })
        })
        .transpose()?;
    let until_gtid = req
        .until_gtid
        .as_deref()
        .map(|g| {
            let g = g.trim();
            let ok = !g.is_empty()
                && g.split(',').all(|one| {
                    let parts: Vec<&str> = one.trim().split('-').collect();
                    parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
                });
            if ok {
                Ok(g.to_string())
            } else {
                Err(ApiErr::field(
                    "until_gtid",
                    format!(
                        "until_gtid `{}` is not a GTID position (domain-server-sequence, comma-separated)",
                        nines_model::input::printable(g)
                    ),
                ))
            }
        })
        .transpose()?;
    if until.is_some() && until_gtid.is_some() {
        return Err(ApiErr::field("until", "give until or until_gtid, not both"));
    }
    let b = backup_of(&st, &id).await?;
    let c = cluster(&st, &req.cluster).await?;
    if c.settings.is_none() {
        return Err(ApiErr::field(
            "cluster",
            format!(
                "cluster `{}` was imported: nines restores onto clusters it deployed",
                req.cluster
            ),
        ));
    }
    if b.state != nines_model::backup::BackupState::Completed {
        return Err(ApiErr::field(
            "id",
            format!("backup {} is {}, not completed", b.id, b.state),
        ));
    }
    if until.is_some() || until_gtid.is_some() {
        if b.gtid_position.as_deref().is_none_or(str::is_empty) {
            return Err(ApiErr::field(
                "id",
                format!("backup {} has no GTID position to roll forward from", b.id),
            ));
        }
        if let Some(t) = until {
            let taken = b.finished_at.unwrap_or(b.started_at);
            if t < taken {
                return Err(ApiErr::field(
                    "until",
                    format!(
                        "backup {} was taken at {}, after {}: choose an older backup",
                        b.id,
                        taken.to_rfc3339(),
                        t.to_rfc3339()
                    ),
                ));
            }
            let window = crate::jobs::archive::window(&st.store, &b.cluster).await?;
            if let Some((_, latest)) = window
                && t > latest
            {
                return Err(ApiErr::field(
                    "until",
                    format!(
                        "the binlog archive of `{}` reaches {} only",
                        b.cluster,
                        latest.to_rfc3339()
                    ),
                ));
            }
        }
    }
    queue(
        &st,
        &caller,
        JobSpec::RestoreBackup {
            cluster: req.cluster,
            backup_id: b.id,
            force: req.force,
            until,
            until_gtid,
        },
    )
    .await
}

/// A cluster's restorable window: the earliest and latest points a restore can reach
/// (with the archived binlogs; without them, the newest backup).
#[utoipa::path(get, path = "/api/v1/clusters/{name}/backup-window", tag = "backups",
    params(("name" = String, Path)),
    responses((status = 200, body = nines_model::api::BackupWindow), (status = 404, body = nines_model::api::ApiError)))]
pub async fn backup_window(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<nines_model::api::BackupWindow>, ApiErr> {
    ClusterName::parse("name", &name)?;
    match crate::jobs::archive::window(&st.store, &name).await? {
        Some((earliest, latest)) => Ok(Json(nines_model::api::BackupWindow { earliest, latest })),
        None => Err(ApiErr::not_found(format!(
            "a completed backup of cluster `{name}`"
        ))),
    }
}

fn schedule_view(s: nines_store::ScheduleRecord) -> nines_model::api::ScheduleView {
    nines_model::api::ScheduleView {
        id: s.id,
        cluster: s.cluster,
        cron: s.cron,
        tz: s.tz,
        method: s.method,
        repo: s.repo,
        retention_secs: s.retention_secs,
        next_run_at: s.next_run_at,
        last_run_at: s.last_run_at,
    }
}

/// Adds a backup schedule to a cluster: a cron expression read in a time zone, the
/// method, the repository and the restorable window to keep.
#[utoipa::path(post, path = "/api/v1/clusters/{name}/backup-schedules", tag = "backups",
    params(("name" = String, Path)), request_body = nines_model::api::ScheduleCreateRequest,
    responses((status = 201, body = nines_model::api::ScheduleView), (status = 400, body = nines_model::api::ApiError),
              (status = 404, body = nines_model::api::ApiError)))]
pub async fn create_schedule(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<nines_model::api::ScheduleCreateRequest>,
) -> Result<(StatusCode, Json<nines_model::api::ScheduleView>), ApiErr> {
    let tz = req.tz.clone().unwrap_or_else(|| "UTC".into());
    let schedule = nines_model::backup::schedule::Schedule::parse(&req.cron, &tz)?;
    let method: BackupMethod = req
        .method
        .as_deref()
        .unwrap_or("full")
        .parse()
        .map_err(|e: String| ApiErr::field("method", e))?;
    let repo = req.repo.clone().unwrap_or_else(|| DEFAULT_REPO.to_string());
    ClusterName::parse("repo", &repo)?;
    let retention_secs = match req.retention.as_deref() {
        None => None,
        Some(r) => {
            let d =
                nines_model::api::parse_duration(r).map_err(|e| ApiErr::field("retention", e))?;
            if d < std::time::Duration::from_secs(1) {
                return Err(ApiErr::field("retention", "retention must be at least 1s"));
            }
            Some(
                i64::try_from(d.as_secs())
                    .map_err(|_| ApiErr::field("retention", "retention is too long"))?,
            )
        }
    };
    // Imported clusters are backed up too (over TCP with their registered account), so
    // they can have schedules like deployed ones: the cluster must exist, that is all.
    cluster(&st, &name).await?;
    if repo != DEFAULT_REPO && st.store.repo(&repo).await?.is_none() {
        return Err(ApiErr::field(
            "repo",
            format!("no backup repository named `{repo}` (nines backup repo list)"),
        ));
    }
    let next = schedule
        .next_after(chrono::Utc::now())
        .ok_or_else(|| ApiErr::field("cron", "the schedule never fires"))?;
    let rec = st
        .store
        .add_schedule(&nines_store::NewSchedule {
            cluster: name.clone(),
            cron: req.cron.trim().to_string(),
            tz,
            method,
            repo,
            retention_secs,
            next_run_at: next,
        })
        .await?;
    st.store
        .add_event(
            &name,
            None,
            EventKind::BackupSchedule,
            &format!(
                "backup schedule {} added by {}: {} `{}` {}, next at {}",
                rec.id,
                caller.0,
                rec.method,
                rec.cron,
                rec.tz,
                rec.next_run_at.format("%Y-%m-%d %H:%M:%S UTC")
            ),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(schedule_view(rec))))
}

/// Backup schedules of every cluster.
#[utoipa::path(get, path = "/api/v1/backup-schedules", tag = "backups",
    responses((status = 200, body = Vec<nines_model::api::ScheduleView>)))]
pub async fn list_schedules(
    State(st): State<AppState>,
) -> Result<Json<Vec<nines_model::api::ScheduleView>>, ApiErr> {
    let all = st.store.schedules().await?;
    Ok(Json(all.into_iter().map(schedule_view).collect()))
}

/// Deletes a backup schedule (its backups stay); answers with the schedule deleted.
#[utoipa::path(delete, path = "/api/v1/backup-schedules/{id}", tag = "backups",
    params(("id" = i64, Path)),
    responses((status = 200, body = nines_model::api::ScheduleView), (status = 404, body = nines_model::api::ApiError)))]
pub async fn delete_schedule(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<nines_model::api::ScheduleView>, ApiErr> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiErr::field("id", format!("schedule id `{id}` is not a number")))?;
    let Some(rec) = st.store.schedules().await?.into_iter().find(|s| s.id == id) else {
        return Err(ApiErr::not_found(format!("backup schedule {id}")));
    };
    st.store.delete_schedule(id).await?;
    st.store
        .add_event(
            &rec.cluster,
            None,
            EventKind::BackupSchedule,
            &format!(
                "backup schedule {id} (`{}` {}) deleted by {}",
                rec.cron, rec.tz, caller.0
            ),
        )
        .await?;
    Ok(Json(schedule_view(rec)))
}
