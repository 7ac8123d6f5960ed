//! Replication HA state in the SQLite store: the designated primary (written at creation,
//! changed, backfilled by migration 0005), fenced nodes, node roles, and the record of
//! failovers and switchovers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Duration, Utc};
use nines_model::ha::PromotionKind;
use nines_model::ha::fence::Fence;
use nines_model::job::{HostAccessSpec, JobSpec};
use nines_model::{ClusterType, Endpoint, Role};
use nines_store::{NewCluster, NewFailover, NewNode, SqliteStore, Store, StoreError};

const FAILOVER: PromotionKind = PromotionKind::Failover;
const SWITCHOVER: PromotionKind = PromotionKind::Switchover;

fn ep(s: &str) -> Endpoint {
    s.parse().unwrap()
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap()
}

/// A cluster whose nodes are given with their roles.
async fn cluster(
    store: &SqliteStore,
    name: &str,
    cluster_type: ClusterType,
    nodes: &[(&str, Role)],
    primary: Option<&str>,
) -> Result<nines_store::ClusterRecord, StoreError> {
    let secret = store.put_secret("pw").await?;
    store
        .create_cluster(NewCluster {
            name: name.into(),
            cluster_type,
            host_access: HostAccessSpec::Local,
            db_user: "nines".into(),
            db_password_secret: secret,
            nodes: nodes
                .iter()
                .map(|(n, role)| NewNode {
                    endpoint: ep(n),
                    role: *role,
                    settings: None,
                })
                .collect(),
            settings: None,
            deploy_state: None,
            primary: primary.map(ep),
        })
        .await
}

fn failover(cluster_id: i64, ms: i64, kind: PromotionKind, old: &str, new: &str) -> NewFailover {
    NewFailover {
        cluster_id,
        at: at(ms),
        kind,
        automatic: kind == FAILOVER,
        old_primary: ep(old),
        new_primary: ep(new),
        promoted_at: "0-11-57".into(),
        job_id: None,
    }
}

#[tokio::test]
async fn primary_is_written_at_creation_changed_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let nodes = [
        ("127.0.0.1:3306", Role::Primary),
        ("127.0.0.2:3306", Role::Replica),
    ];
    let c = cluster(
        &store,
        "r",
        ClusterType::Replication,
        &nodes,
        Some("127.0.0.1:3306"),
    )
    .await
    .unwrap();
    assert_eq!(c.primary, Some(ep("127.0.0.1:3306")));
    let g = cluster(
        &store,
        "g",
        ClusterType::Galera,
        &[("127.0.0.5:3306", Role::Galera)],
        None,
    )
    .await
    .unwrap();
    assert_eq!(g.primary, None);

    // A primary that is not one of the nodes is refused, and nothing is written.
    let err = cluster(
        &store,
        "bad",
        ClusterType::Replication,
        &[("127.0.0.9:3306", Role::Primary)],
        Some("127.0.0.8:3306"),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, StoreError::Invalid(ref m) if m.contains("127.0.0.8:3306")),
        "{err}"
    );
    assert!(store.get_cluster("bad").await.unwrap().is_none());

    store
        .set_cluster_primary(c.id, Some(&ep("127.0.0.2:3306")))
        .await
        .unwrap();
    assert_eq!(
        store.get_cluster("r").await.unwrap().unwrap().primary,
        Some(ep("127.0.0.2:3306"))
    );
    // IPv6 addresses round-trip.
    store
        .set_cluster_primary(c.id, Some(&ep("[::1]:3310")))
        .await
        .unwrap();
    assert_eq!(
        store.get_cluster("r").await.unwrap().unwrap().primary,
        Some(Endpoint::new("::1", 3310))
    );
    store.set_cluster_primary(c.id, None).await.unwrap();
    assert_eq!(store.get_cluster("r").await.unwrap().unwrap().primary, None);
    let missing = store.set_cluster_primary(9999, None).await.unwrap_err();
    assert!(matches!(missing, StoreError::NotFound(_)), "{missing}");

    store
        .set_cluster_primary(c.id, Some(&ep("127.0.0.2:3306")))
        .await
        .unwrap();
    store.close().await;
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let listed = store.list_clusters().await.unwrap();
    let r = listed.iter().find(|c| c.name == "r").unwrap();
    assert_eq!(r.primary, Some(ep("127.0.0.2:3306")));
}

#[tokio::test]
async fn nodes_are_fenced_and_unfenced_and_change_role() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let c = cluster(
        &store,
        "r",
        ClusterType::Replication,
        &[
            ("127.0.0.1:3306", Role::Primary),
            ("127.0.0.2:3306", Role::Replica),
        ],
        Some("127.0.0.1:3306"),
    )
    .await
    .unwrap();
    let nodes = store.list_nodes(Some(c.id)).await.unwrap();
    assert!(nodes.iter().all(|n| n.fenced.is_none()));
    let old = nodes
        .iter()
        .find(|n| n.endpoint == ep("127.0.0.1:3306"))
        .unwrap();
    let new = nodes
        .iter()
        .find(|n| n.endpoint == ep("127.0.0.2:3306"))
        .unwrap();

    let reason = Fence::Held("errant GTIDs 0-11-57 after failover at 2025-01-01T00:00:00Z".into());
    store.set_node_fenced(old.id, Some(&reason)).await.unwrap();
    store.set_node_role(old.id, Role::Replica).await.unwrap();
    store.set_node_role(new.id, Role::Primary).await.unwrap();
    let nodes = store.list_nodes(Some(c.id)).await.unwrap();
    let old_now = nodes.iter().find(|n| n.id == old.id).unwrap();
    let new_now = nodes.iter().find(|n| n.id == new.id).unwrap();
    assert_eq!(old_now.fenced.as_ref(), Some(&reason));
    assert_eq!(old_now.role, Role::Replica);
    assert_eq!(new_now.fenced, None);
    assert_eq!(new_now.role, Role::Primary);
    // The role alone changed: the state is untouched.
    assert_eq!(old_now.state, old.state);

    store.set_node_fenced(old.id, None).await.unwrap();
    let nodes = store.list_nodes(Some(c.id)).await.unwrap();
    assert!(nodes.iter().all(|n| n.fenced.is_none()));

    for err in [
        store
            .set_node_fenced(9999, Some(&Fence::Held("x".into())))
            .await
            .unwrap_err(),
        store.set_node_role(9999, Role::Replica).await.unwrap_err(),
    ] {
        assert!(
            matches!(err, StoreError::NotFound(ref m) if m.contains("9999")),
            "{err}"
        );
    }
}

#[tokio::test]
async fn failovers_are_recorded_listed_acknowledged_and_deleted_with_their_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let nodes = [
        ("127.0.0.1:3306", Role::Primary),
        ("127.0.0.2:3306", Role::Replica),
    ];
    let c = cluster(
        &store,
        "r",
        ClusterType::Replication,
        &nodes,
        Some("127.0.0.1:3306"),
    )
    .await
    .unwrap();
    let other = cluster(
        &store,
        "o",
        ClusterType::Replication,
        &[("127.0.0.7:3306", Role::Primary)],
        Some("127.0.0.7:3306"),
    )
    .await
    .unwrap();
    let job = store
        .create_job(
            &JobSpec::ImportCluster {
                name: "r".into(),
                seed: ep("127.0.0.1:3306"),
                db_user: "u".into(),
                db_password_secret: 1,
                host_access: HostAccessSpec::None,
            },
            "nines",
        )
        .await
        .unwrap();

    // Recorded out of order: listed by time.
    let mut later = failover(c.id, 3_000, SWITCHOVER, "127.0.0.2:3306", "127.0.0.1:3306");
    later.job_id = Some(job.id);
    later.promoted_at = String::new();
    let later_id = store.record_failover(&later).await.unwrap();
    let first_id = store
        .record_failover(&failover(
            c.id,
            2_000,
            FAILOVER,
            "127.0.0.1:3306",
            "127.0.0.2:3306",
        ))
        .await
        .unwrap();
    store
        .record_failover(&failover(
            c.id,
            1_000,
            FAILOVER,
            "127.0.0.1:3306",
            "127.0.0.2:3306",
        ))
        .await
        .unwrap();
    store
        .record_failover(&failover(
            other.id,
            2_500,
            FAILOVER,
            "127.0.0.7:3306",
            "127.0.0.8:3306",
        ))
        .await
        .unwrap();

    let list = store.failovers(c.id, at(2_000)).await.unwrap();
    assert_eq!(
        list.iter().map(|f| f.id).collect::<Vec<_>>(),
        vec![first_id, later_id]
    );
    let f = &list[0];
    assert_eq!(f.cluster_id, c.id);
    assert_eq!(f.at, at(2_000));
    assert_eq!(f.kind, FAILOVER);
    assert!(f.automatic);
    assert_eq!(f.old_primary, ep("127.0.0.1:3306"));
    assert_eq!(f.new_primary, ep("127.0.0.2:3306"));
    assert_eq!(f.promoted_at, "0-11-57");
    assert_eq!(f.job_id, None);
    assert!(!f.acknowledged);
    let s = &list[1];
    assert_eq!(s.kind, SWITCHOVER);
    assert!(!s.automatic);
    assert_eq!(s.promoted_at, "");
    assert_eq!(s.job_id, Some(job.id));
    assert_eq!(store.failovers(c.id, at(0)).await.unwrap().len(), 3);
    assert!(store.failovers(c.id, at(3_001)).await.unwrap().is_empty());

    // Acknowledging touches only this cluster's unacknowledged ones.
    assert_eq!(store.acknowledge_failovers(c.id).await.unwrap(), 3);
    assert_eq!(store.acknowledge_failovers(c.id).await.unwrap(), 0);
    assert!(
        store
            .failovers(c.id, at(0))
            .await
            .unwrap()
            .iter()
            .all(|f| f.acknowledged)
    );
    assert!(!store.failovers(other.id, at(0)).await.unwrap()[0].acknowledged);
    store
        .record_failover(&failover(
            c.id,
            4_000,
            FAILOVER,
            "127.0.0.1:3306",
            "127.0.0.2:3306",
        ))
        .await
        .unwrap();
    assert_eq!(store.acknowledge_failovers(c.id).await.unwrap(), 1);

    // Refusals: unknown cluster or job; nothing written. (The kind is a `PromotionKind`:
    // no other word can reach the store.)
    let no_cluster = store
        .record_failover(&failover(
            9999,
            5_000,
            FAILOVER,
            "127.0.0.1:3306",
            "127.0.0.2:3306",
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(no_cluster, StoreError::NotFound(ref m) if m.contains("cluster 9999")),
        "{no_cluster}"
    );
    let mut no_job = failover(c.id, 5_000, FAILOVER, "127.0.0.1:3306", "127.0.0.2:3306");
    no_job.job_id = Some(9999);
    let no_job = store.record_failover(&no_job).await.unwrap_err();
    assert!(
        matches!(no_job, StoreError::NotFound(ref m) if m.contains("job 9999")),
        "{no_job}"
    );
    assert_eq!(store.failovers(c.id, at(0)).await.unwrap().len(), 4);

    // They go with their cluster.
    store.delete_cluster(c.id).await.unwrap();
    assert!(store.failovers(c.id, at(0)).await.unwrap().is_empty());
    assert_eq!(store.failovers(other.id, at(0)).await.unwrap().len(), 1);
    // `since` in the future: nothing yet.
    let far = Utc::now() + Duration::days(365);
    assert!(store.failovers(other.id, far).await.unwrap().is_empty());
}

/// Migration 0005 designates, in replication clusters registered before it, the one node
/// last seen as primary; with none or several primaries, or in other cluster types, none.
#[tokio::test]
async fn migration_backfills_the_primary_from_node_roles() {
    let dir = tempfile::tempdir().unwrap();
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(dir.path().join("nines.db"))
        .create_if_missing(true)
        .foreign_keys(true);
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(opts)
        .await
        .unwrap();
    sqlx::migrate!("./migrations")
        .run_to(4, &pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO secrets (id, sealed, created_at) VALUES (1, x'00', 0)")
        .execute(&pool)
        .await
        .unwrap();
    /// A node as (host, port, role).
    type Node = (&'static str, i64, &'static str);
    // (cluster, type, nodes)
    let clusters: [(&str, &str, &[Node]); 5] = [
        (
            "one",
            "replication",
            &[
                ("127.0.0.1", 3306, "replica"),
                ("127.0.0.2", 3307, "primary"),
            ],
        ),
        ("v6", "replication", &[("::1", 3310, "primary")]),
        ("none", "replication", &[("127.0.0.3", 3306, "replica")]),
        (
            "two",
            "replication",
            &[
                ("127.0.0.4", 3306, "primary"),
                ("127.0.0.5", 3306, "primary"),
            ],
        ),
        ("gal", "galera", &[("127.0.0.6", 3306, "galera")]),
    ];
    for (name, ty, nodes) in clusters {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO clusters (name, cluster_type, host_access, db_user, db_password_secret, \
             created_at) VALUES (?, ?, ?, 'u', 1, 0) RETURNING id",
        )
        .bind(name)
        .bind(ty)
        .bind(r#"{"transport":"local"}"#)
        .fetch_one(&pool)
        .await
        .unwrap();
        for (host, port, role) in nodes {
            sqlx::query(
                "INSERT INTO nodes (cluster_id, host, port, role, created_at) VALUES (?, ?, ?, ?, 0)",
            )
            .bind(id)
            .bind(host)
            .bind(port)
            .bind(role)
            .execute(&pool)
            .await
            .unwrap();
        }
    }
    pool.close().await;

    let store = SqliteStore::open(dir.path()).await.unwrap();
    let primary = |name: &str| {
        let store = store.clone();
        let name = name.to_string();
        async move { store.get_cluster(&name).await.unwrap().unwrap().primary }
    };
    assert_eq!(primary("one").await, Some(ep("127.0.0.2:3307")));
    assert_eq!(primary("v6").await, Some(Endpoint::new("::1", 3310)));
    assert_eq!(primary("none").await, None);
    assert_eq!(primary("two").await, None);
    assert_eq!(primary("gal").await, None);
    // The new columns and table are usable on the migrated database.
    let one = store.get_cluster("one").await.unwrap().unwrap();
    assert!(
        store
            .list_nodes(Some(one.id))
            .await
            .unwrap()
            .iter()
            .all(|n| n.fenced.is_none())
    );
    assert!(store.failovers(one.id, at(0)).await.unwrap().is_empty());
}

#[tokio::test]
async fn reconciler_memory_survives_reopen_and_goes_with_its_cluster() {
    use nines_store::{HaAttempt, RaisedAlarm};
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let c = cluster(
        &store,
        "gal",
        ClusterType::Galera,
        &[
            ("10.0.0.1:3306", Role::Galera),
            ("10.0.0.2:3306", Role::Galera),
        ],
        None,
    )
    .await
    .unwrap();
    let attempt = |subject: &str, ms| HaAttempt {
        cluster_id: c.id,
        repair: "node_restart".into(),
        subject: subject.into(),
        at: at(ms),
    };
    store
        .record_attempt(&attempt("10.0.0.1:3306", 1_000))
        .await
        .unwrap();
    store
        .record_attempt(&attempt("10.0.0.1:3306", 2_000))
        .await
        .unwrap();
    store
        .record_attempt(&attempt("10.0.0.2:3306", 500))
        .await
        .unwrap();
    let alarm = RaisedAlarm {
        cluster_id: c.id,
        cluster: "gal".into(),
        alarm: "galera_recovery".into(),
        subject: String::new(),
        raised_at: at(3_000),
        message: "alarm: Galera recovery refused: 10.0.0.2:3306 may still be running".into(),
    };
    assert!(store.raise_alarm(&alarm).await.unwrap(), "raised");
    assert!(!store.raise_alarm(&alarm).await.unwrap(), "raised once");
    let events = store.list_events(Some("gal"), 10).await.unwrap();
    assert_eq!(
        events.iter().filter(|e| e.kind == "alarm").count(),
        1,
        "one event for one raise: {events:?}"
    );
    // A restarted controller finds both.
    store.close().await;
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let attempts = store.attempts_since(at(0)).await.unwrap();
    assert_eq!(
        attempts,
        vec![
            attempt("10.0.0.2:3306", 500),
            attempt("10.0.0.1:3306", 1_000),
            attempt("10.0.0.1:3306", 2_000)
        ]
    );
    assert_eq!(store.raised_alarms().await.unwrap(), vec![alarm.clone()]);
    // An outage that ended, and old attempts, are forgotten.
    store
        .clear_attempts(c.id, "node_restart", "10.0.0.1:3306")
        .await
        .unwrap();
    assert_eq!(store.prune_attempts(at(600)).await.unwrap(), 1);
    assert!(store.attempts_since(at(0)).await.unwrap().is_empty());
    assert!(
        store
            .clear_alarm(c.id, "galera_recovery", "")
            .await
            .unwrap()
    );
    assert!(
        !store
            .clear_alarm(c.id, "galera_recovery", "")
            .await
            .unwrap()
    );
    // Deleting the cluster takes its memory; an alarm of an unknown cluster is not raised.
    store
        .record_attempt(&attempt("10.0.0.1:3306", 9_000))
        .await
        .unwrap();
    assert!(store.raise_alarm(&alarm).await.unwrap());
    store.delete_cluster(c.id).await.unwrap();
    assert!(store.attempts_since(at(0)).await.unwrap().is_empty());
    assert!(store.raised_alarms().await.unwrap().is_empty());
    assert!(!store.raise_alarm(&alarm).await.unwrap());
}

#[tokio::test]
async fn a_promotion_is_an_intent_then_one_transaction() {
    use nines_store::{NewPromotionIntent, PromotionRecord};
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let c = cluster(
        &store,
        "shop",
        ClusterType::Replication,
        &[
            ("10.0.0.1:3306", Role::Primary),
            ("10.0.0.2:3306", Role::Replica),
            ("10.0.0.3:3306", Role::Replica),
        ],
        Some("10.0.0.1:3306"),
    )
    .await
    .unwrap();
    let nodes = store.list_nodes(Some(c.id)).await.unwrap();
    let id_of = |a: &str| nodes.iter().find(|n| n.endpoint == ep(a)).unwrap().id;
    let intent = NewPromotionIntent {
        cluster_id: c.id,
        job_id: None,
        kind: FAILOVER,
        old_primary: ep("10.0.0.1:3306"),
        candidate: ep("10.0.0.2:3306"),
        planned_position: "0-1-40".into(),
        primary_sample: None,
    };
    let first = store.begin_promotion(&intent).await.unwrap();
    // An intent outlives a controller.
    store.close().await;
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let open = store.open_promotions().await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!((open[0].id, &open[0].intent), (first, &intent));
    assert_eq!(open[0].cluster, "shop");

    let record = |roles: Vec<(i64, Role)>| PromotionRecord {
        failover: failover(c.id, 5_000, FAILOVER, "10.0.0.1:3306", "10.0.0.2:3306"),
        roles,
        fences: vec![(
            id_of("10.0.0.1:3306"),
            Some(Fence::PendingRejoin("failed over".into())),
        )],
    };
    // A part that fails (a node of no cluster) writes nothing at all.
    let broken = record(vec![
        (id_of("10.0.0.2:3306"), Role::Primary),
        (9999, Role::Replica),
    ]);
    assert!(store.record_promotion(&broken).await.is_err());
    let c_now = store.get_cluster("shop").await.unwrap().unwrap();
    assert_eq!(
        c_now.primary,
        Some(ep("10.0.0.1:3306")),
        "primary unchanged"
    );
    assert!(store.failovers(c.id, at(0)).await.unwrap().is_empty());
    assert_eq!(store.open_promotions().await.unwrap().len(), 1);
    // The whole outcome at once, and the intent is gone.
    let ok = record(vec![
        (id_of("10.0.0.1:3306"), Role::Replica),
        (id_of("10.0.0.2:3306"), Role::Primary),
        (id_of("10.0.0.3:3306"), Role::Replica),
    ]);
    store.record_promotion(&ok).await.unwrap();
    let c_now = store.get_cluster("shop").await.unwrap().unwrap();
    assert_eq!(c_now.primary, Some(ep("10.0.0.2:3306")));
    let nodes = store.list_nodes(Some(c.id)).await.unwrap();
    let node = |a: &str| nodes.iter().find(|n| n.endpoint == ep(a)).unwrap().clone();
    assert_eq!(node("10.0.0.2:3306").role, Role::Primary);
    // Stored as the one line it always was, and read back as the fence it is.
    assert_eq!(
        node("10.0.0.1:3306").fenced,
        Some(Fence::PendingRejoin("failed over".into()))
    );
    assert_eq!(store.failovers(c.id, at(0)).await.unwrap().len(), 1);
    assert!(store.open_promotions().await.unwrap().is_empty());
    // An abandoned intent ends too.
    let second = store.begin_promotion(&intent).await.unwrap();
    store.abandon_promotion(second).await.unwrap();
    assert!(store.open_promotions().await.unwrap().is_empty());
}
