//! The SQLite store against a real database file: inventory rules, the job lifecycle,
//! durability across reopen, secrets sealed at rest.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use nines_model::job::{FailureKind, HostAccessSpec, JobSpec, JobState, LogLevel, Progress};
use nines_model::{ClusterType, Endpoint, Role};
use nines_store::{JobFilter, NewCluster, SqliteStore, Store, StoreError};

fn ep(s: &str) -> Endpoint {
    s.parse().unwrap()
}

fn import_spec(name: &str) -> JobSpec {
    JobSpec::ImportCluster {
        name: name.into(),
        seed: ep("127.0.0.1:3306"),
        db_user: "u".into(),
        db_password_secret: 1,
        host_access: HostAccessSpec::None,
    }
}

async fn new_cluster(store: &SqliteStore, name: &str, nodes: &[&str]) -> Result<i64, StoreError> {
    let secret = store.put_secret("Sup3r-Secret-Value").await?;
    store
        .create_cluster(NewCluster {
            name: name.into(),
            cluster_type: ClusterType::Replication,
            host_access: HostAccessSpec::Local,
            db_user: "nines".into(),
            db_password_secret: secret,
            nodes: nodes
                .iter()
                .map(|n| nines_store::NewNode {
                    endpoint: ep(n),
                    role: Role::Replica,
                    settings: None,
                })
                .collect(),
            settings: None,
            deploy_state: None,
            primary: None,
        })
        .await
        .map(|c| c.id)
}

#[tokio::test]
async fn clusters_are_unique_by_name_and_node_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    new_cluster(&store, "a", &["127.0.0.1:3306", "127.0.0.2:3306"])
        .await
        .unwrap();
    let dup = new_cluster(&store, "a", &["127.0.0.9:3306"])
        .await
        .unwrap_err();
    assert!(
        matches!(dup, StoreError::Conflict(ref m) if m.contains("`a`")),
        "{dup}"
    );
    let taken = new_cluster(&store, "b", &["127.0.0.3:3306", "127.0.0.2:3306"])
        .await
        .unwrap_err();
    assert!(
        matches!(taken, StoreError::Conflict(ref m) if m.contains("127.0.0.2:3306") && m.contains("`a`")),
        "{taken}"
    );
    // Nothing of the refused cluster was written.
    assert!(store.get_cluster("b").await.unwrap().is_none());
    assert!(
        store
            .cluster_of_node(&ep("127.0.0.3:3306"))
            .await
            .unwrap()
            .is_none()
    );
    store.close().await;

    let store = SqliteStore::open(dir.path()).await.unwrap();
    let clusters = store.list_clusters().await.unwrap();
    assert_eq!(clusters.len(), 1);
    assert_eq!(clusters[0].host_access, HostAccessSpec::Local);
    assert_eq!(
        store.list_nodes(Some(clusters[0].id)).await.unwrap().len(),
        2
    );
    let pw = store
        .get_secret(clusters[0].db_password_secret)
        .await
        .unwrap();
    assert_eq!(pw.expose(), "Sup3r-Secret-Value");
    // The password is nowhere in the database files in clear.
    for f in ["nines.db", "nines.db-wal"] {
        if let Ok(raw) = std::fs::read(dir.path().join(f)) {
            assert!(
                !raw.windows(18).any(|w| w == b"Sup3r-Secret-Value"),
                "{f} holds the password"
            );
        }
    }
}

#[tokio::test]
async fn jobs_start_once_and_interrupted_jobs_fail_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let j1 = store.create_job(&import_spec("x"), "admin").await.unwrap();
    let j2 = store.create_job(&import_spec("x"), "admin").await.unwrap();
    let j3 = store.create_job(&import_spec("y"), "admin").await.unwrap();
    assert_eq!(j1.state, JobState::Queued);
    let active = |store: &SqliteStore| {
        let store = store.clone();
        async move {
            store
                .active_jobs()
                .await
                .unwrap()
                .iter()
                .map(|j| (j.id, j.state))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        active(&store).await,
        vec![
            (j1.id, JobState::Queued),
            (j2.id, JobState::Queued),
            (j3.id, JobState::Queued)
        ]
    );
    // Which job may start is the runner's (nines_model::lanes); the store starts a
    // queued job once.
    assert!(store.start_job(j1.id).await.unwrap());
    assert!(!store.start_job(j1.id).await.unwrap(), "started twice");
    assert!(store.start_job(j3.id).await.unwrap());
    assert_eq!(
        active(&store).await,
        vec![
            (j1.id, JobState::Running),
            (j2.id, JobState::Queued),
            (j3.id, JobState::Running)
        ]
    );

    store
        .set_job_progress(
            j1.id,
            &Progress {
                phase: "discover".into(),
                percent: 40,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .append_job_log(j1.id, LogLevel::Info, "one")
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .append_job_log(j1.id, LogLevel::Warn, "two")
            .await
            .unwrap(),
        2
    );
    let logs = store.job_logs(j1.id, 1).await.unwrap();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].message, "two");

    store
        .finish_job(j3.id, JobState::Succeeded, None, None)
        .await
        .unwrap();
    // Cancelling a queued job is immediate; a running one is flagged.
    assert_eq!(
        store.request_cancel(j2.id).await.unwrap(),
        JobState::Cancelled
    );
    assert_eq!(
        store.request_cancel(j1.id).await.unwrap(),
        JobState::Running
    );
    assert!(
        store
            .get_job(j1.id)
            .await
            .unwrap()
            .unwrap()
            .cancel_requested
    );
    store.close().await;

    // A new controller finds j1 still running: it is closed as failed, with a log line.
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let failed = store
        .fail_interrupted_jobs("controller restarted")
        .await
        .unwrap();
    assert_eq!(failed, vec![j1.id]);
    let j1 = store.get_job(j1.id).await.unwrap().unwrap();
    assert_eq!(j1.state, JobState::Failed);
    assert_eq!(j1.error.as_deref(), Some("controller restarted"));
    assert_eq!(j1.progress.percent, 40);
    let last = store.job_logs(j1.id, 0).await.unwrap().pop().unwrap();
    assert_eq!(last.level, LogLevel::Error);
    let done = store
        .list_jobs(&JobFilter {
            state: Some(JobState::Succeeded),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].progress.percent, 100);
    assert_eq!(done[0].failure, None);
    assert_eq!(j1.failure, Some(FailureKind::Failed));

    // A refusal is kept as such, and a final job does not change again.
    let j4 = store.create_job(&import_spec("z"), "admin").await.unwrap();
    assert!(store.start_job(j4.id).await.unwrap());
    store
        .finish_job(
            j4.id,
            JobState::Failed,
            Some("no candidate"),
            Some(FailureKind::Refused),
        )
        .await
        .unwrap();
    store
        .finish_job(j4.id, JobState::Succeeded, None, None)
        .await
        .unwrap();
    let j4 = store.get_job(j4.id).await.unwrap().unwrap();
    assert_eq!(
        (j4.state, j4.failure, j4.error.as_deref()),
        (
            JobState::Failed,
            Some(FailureKind::Refused),
            Some("no candidate")
        )
    );
}

#[tokio::test]
async fn rollups_prune_by_age() {
    use chrono::{Duration, Utc};
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let now = Utc::now();
    let mk = |mins: i64, v: f64| nines_store::Rollup {
        node: "n".into(),
        metric: "m".into(),
        minute: now - Duration::minutes(mins),
        avg: v,
        min: v,
        max: v,
        samples: 60,
    };
    store
        .insert_rollups(&[mk(120, 1.0), mk(30, 2.0), mk(1, 3.0)])
        .await
        .unwrap();
    assert_eq!(
        store
            .prune_rollups(now - Duration::minutes(60))
            .await
            .unwrap(),
        1
    );
    let left = store
        .rollups("n", "m", now - Duration::days(1))
        .await
        .unwrap();
    assert_eq!(
        left.iter().map(|r| r.avg).collect::<Vec<_>>(),
        vec![2.0, 3.0]
    );
}

#[tokio::test]
async fn deployed_clusters_keep_accounts_and_delete_takes_their_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let id = new_cluster(&store, "d", &["127.0.0.1:3306"]).await.unwrap();
    let other = new_cluster(&store, "o", &["127.0.0.2:3306"]).await.unwrap();
    let s1 = store.put_secret("repl-pw").await.unwrap();
    store
        .put_account(id, "replication", "nines_repl", s1)
        .await
        .unwrap();
    let s2 = store.put_secret("repl-pw-2").await.unwrap();
    store
        .put_account(id, "replication", "nines_repl", s2)
        .await
        .unwrap();
    let accounts = store.accounts(id).await.unwrap();
    assert_eq!(accounts.len(), 1, "one account per purpose");
    assert_eq!(accounts[0].secret_id, s2);

    // A node managed by another cluster cannot be added.
    let taken = store
        .add_node(
            id,
            nines_store::NewNode {
                endpoint: ep("127.0.0.2:3306"),
                role: Role::Replica,
                settings: None,
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(taken, StoreError::Conflict(ref m) if m.contains("`o`")),
        "{taken}"
    );
    let added = store
        .add_node(
            id,
            nines_store::NewNode {
                endpoint: ep("127.0.0.3:3306"),
                role: Role::Replica,
                settings: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(added.desired, nines_model::Desired::Running);
    store
        .set_node_desired(added.id, nines_model::Desired::Stopped)
        .await
        .unwrap();
    let nodes = store.list_nodes(Some(id)).await.unwrap();
    assert_eq!(
        nodes.iter().find(|n| n.id == added.id).unwrap().desired,
        nines_model::Desired::Stopped
    );

    let cluster = store.get_cluster("d").await.unwrap().unwrap();
    store.delete_cluster(id).await.unwrap();
    assert!(store.get_cluster("d").await.unwrap().is_none());
    assert!(store.list_nodes(Some(id)).await.unwrap().is_empty());
    assert!(store.accounts(id).await.unwrap().is_empty());
    assert!(matches!(
        store.get_secret(s2).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.get_secret(cluster.db_password_secret).await,
        Err(StoreError::NotFound(_))
    ));
    // The other cluster is untouched; its address can now be reused by nobody else's mistake.
    assert_eq!(store.list_nodes(Some(other)).await.unwrap().len(), 1);
    assert!(
        store
            .cluster_of_node(&ep("127.0.0.1:3306"))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn maintenance_windows_replace_expire_and_clear() {
    use chrono::{Duration, Utc};
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let id = new_cluster(&store, "m", &["127.0.0.1:3306"]).await.unwrap();
    let now = Utc::now();
    store
        .set_maintenance(id, None, "kernel upgrade", "admin", None)
        .await
        .unwrap();
    store
        .set_maintenance(
            id,
            Some("127.0.0.1:3306"),
            "disk swap",
            "admin",
            Some(now + Duration::hours(1)),
        )
        .await
        .unwrap();
    // Setting again replaces the window of that scope.
    store
        .set_maintenance(id, None, "kernel upgrade, take 2", "ops", None)
        .await
        .unwrap();
    let m = store.maintenance(id, now).await.unwrap();
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].node, None);
    assert_eq!(m[0].reason, "kernel upgrade, take 2");
    assert_eq!(m[1].node.as_deref(), Some("127.0.0.1:3306"));
    // After its end, a timed window no longer applies.
    assert_eq!(
        store
            .maintenance(id, now + Duration::hours(2))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(store.clear_maintenance(id, None).await.unwrap());
    assert!(!store.clear_maintenance(id, None).await.unwrap());
    assert_eq!(store.maintenance(id, now).await.unwrap().len(), 1);
}

#[tokio::test]
async fn nothing_under_the_data_directory_is_readable_by_others() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("data");
    let store = SqliteStore::open(&dir).await.unwrap();
    store.put_secret("s3cret").await.unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        assert_eq!(mode(&p) & 0o077, 0, "{} is {:o}", p.display(), mode(&p));
        files += 1;
    }
    assert!(files >= 3, "db, wal/shm and key expected, found {files}");
    store.close().await;

    // A directory made by hand with loose modes is narrowed on the next open.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(dir.join("nines.db"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let store = SqliteStore::open(&dir).await.unwrap();
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("nines.db")), 0o600);
    store.close().await;
}

#[tokio::test]
async fn load_balancers_keep_their_vip_and_policy_and_ports_are_unique() {
    use nines_store::{BalancerStore, LbState, NewLb, Vip};
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let new = |host: &str, vip: Option<Vip>| NewLb {
        cluster: "shop".into(),
        host: host.into(),
        rw_port: 3306,
        ro_port: 3307,
        stats_port: 9101,
        dir: format!("/var/lib/nines-lb/shop-{host}-3306"),
        host_access: HostAccessSpec::Local,
        vip,
        policy: nines_model::lb::LbPolicy {
            max_replica_lag_seconds: 30,
            ro_fallback_to_primary: false,
        },
    };
    let vip = Vip {
        address: "10.0.0.100".into(),
        router_id: 51,
        priority: 140,
        interface: "eth0".into(),
    };
    let a = store
        .add_lb(&new("10.0.0.1", Some(vip.clone())))
        .await
        .unwrap();
    let b = store.add_lb(&new("10.0.0.2", None)).await.unwrap();
    assert_eq!(a.vip.as_ref(), Some(&vip));
    assert_eq!(b.vip, None);
    assert_eq!(a.state, LbState::Deploying);
    let dup = store.add_lb(&new("10.0.0.1", None)).await.unwrap_err();
    assert!(matches!(dup, StoreError::Conflict(_)), "{dup:?}");
    store
        .set_lb_policy(b.id, &nines_model::lb::LbPolicy::default())
        .await
        .unwrap();
    drop(store);
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let all = store.lbs(Some("shop")).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].vip.as_ref(), Some(&vip));
    assert_eq!(all[0].policy.max_replica_lag_seconds, 30);
    assert!(!all[0].policy.ro_fallback_to_primary);
    assert_eq!(all[1].policy, nines_model::lb::LbPolicy::default());
    assert!(store.lbs(Some("other")).await.unwrap().is_empty());
}

#[tokio::test]
async fn users_tokens_sessions_and_the_audit_log() {
    use chrono::Utc;
    use nines_model::auth::UserRole;
    use nines_store::{NewAudit, UserStore};
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    // The bootstrap token of an older store keeps working after the migration.
    store.create_token("admin", "h0", "admin").await.unwrap();
    let ann = store
        .add_user("ann", UserRole::Operator, "$argon2id$x")
        .await
        .unwrap();
    assert_eq!(ann.role, UserRole::Operator);
    let dup = store
        .add_user("ann", UserRole::Viewer, "y")
        .await
        .unwrap_err();
    assert!(matches!(dup, StoreError::Conflict(_)), "{dup:?}");
    let t = store.add_user_token("ann", "ci", "h1").await.unwrap();
    assert_eq!(
        (t.user.as_deref(), t.role),
        (Some("ann"), UserRole::Operator)
    );
    let dup = store.add_user_token("ann", "ci", "h2").await.unwrap_err();
    assert!(matches!(dup, StoreError::Conflict(_)), "{dup:?}");
    let missing = store
        .add_user_token("nobody", "ci", "h3")
        .await
        .unwrap_err();
    assert!(matches!(missing, StoreError::NotFound(_)), "{missing:?}");
    let boot = store.token_by_hash("h0").await.unwrap().unwrap();
    assert_eq!((boot.user, boot.role), (None, UserRole::Admin));

    let soon = Utc::now() + chrono::Duration::hours(1);
    store
        .add_session("s1", "ann", "c1", soon, "127.0.0.1")
        .await
        .unwrap();
    let s = store
        .session("s1", Utc::now(), 3600)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (s.user.as_str(), s.role, s.csrf.as_str()),
        ("ann", UserRole::Operator, "c1")
    );
    // Idle too long, or past its end: gone.
    let later = Utc::now() + chrono::Duration::seconds(7200);
    assert!(store.session("s1", later, 3600).await.unwrap().is_none());
    store
        .add_session(
            "s2",
            "ann",
            "c2",
            Utc::now() - chrono::Duration::seconds(1),
            "x",
        )
        .await
        .unwrap();
    assert!(
        store
            .session("s2", Utc::now(), 3600)
            .await
            .unwrap()
            .is_none()
    );
    // A new password ends the sessions; deleting the user takes tokens and sessions.
    assert!(store.set_password("ann", "$argon2id$z").await.unwrap());
    assert!(
        store
            .session("s1", Utc::now(), 3600)
            .await
            .unwrap()
            .is_none()
    );
    store
        .add_session("s3", "ann", "c3", soon, "127.0.0.1")
        .await
        .unwrap();
    assert!(store.delete_user("ann").await.unwrap());
    assert!(!store.delete_user("ann").await.unwrap());
    assert!(store.token_by_hash("h1").await.unwrap().is_none());
    assert!(
        store
            .session("s3", Utc::now(), 3600)
            .await
            .unwrap()
            .is_none()
    );

    for i in 0..3 {
        store
            .add_audit(&NewAudit {
                who: "ann".into(),
                action: "POST /api/v1/clusters".into(),
                target: format!("/api/v1/clusters/{i}"),
                from: "127.0.0.1".into(),
                outcome: "202 Accepted".into(),
                via: "api".into(),
            })
            .await
            .unwrap();
    }
    drop(store);
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let a = store
        .audit(Utc::now() - chrono::Duration::hours(1), 2)
        .await
        .unwrap();
    assert_eq!(a.len(), 2);
    assert_eq!(a[0].target, "/api/v1/clusters/2", "newest first");
}

#[tokio::test]
async fn the_last_backup_of_each_cluster_is_its_newest_completed_one() {
    use nines_model::backup::BackupMethod;
    use nines_store::{BackupOutcome, BackupStore, NewBackup};
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let begin = |cluster: &str| NewBackup {
        cluster: cluster.into(),
        repo: "local".into(),
        method: BackupMethod::Full,
        node: "127.0.0.1:3306".into(),
        parent_id: None,
        job_id: None,
        epoch: 0,
    };
    let done = BackupOutcome::Completed {
        size_bytes: 1,
        stored_bytes: 1,
        gtid_position: "0-1-1".into(),
        to_lsn: None,
    };
    let failed = BackupOutcome::Failed {
        error: "disk full".into(),
    };
    // a: two completed, then a failed one (newer, not counted); b: still running;
    // c: one completed.
    let mut a_done = Vec::new();
    for outcome in [&done, &done, &failed] {
        let b = store.begin_backup(&begin("a")).await.unwrap();
        store.finish_backup(b.id, outcome).await.unwrap();
        let rec = store.backup(b.id).await.unwrap().unwrap();
        if *outcome == done {
            a_done.push(rec.finished_at.unwrap());
        }
    }
    store.begin_backup(&begin("b")).await.unwrap();
    let c = store.begin_backup(&begin("c")).await.unwrap();
    store.finish_backup(c.id, &done).await.unwrap();
    let c_at = store
        .backup(c.id)
        .await
        .unwrap()
        .unwrap()
        .finished_at
        .unwrap();
    let mut last = store.last_backups().await.unwrap();
    last.sort();
    assert_eq!(
        last,
        vec![
            ("a".to_string(), *a_done.iter().max().unwrap()),
            ("c".to_string(), c_at)
        ]
    );
}
