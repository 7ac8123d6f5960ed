//! Per-cluster HA policies in the SQLite store (migration 0006): none by default and after
//! the migration, set whole, replaced, forgotten, kept across a reopen, and a stored value
//! that does not read back is reported naming its cluster.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::Duration;
use nines_model::ha::HaPolicy;
use nines_model::job::HostAccessSpec;
use nines_model::{ClusterType, Endpoint, Role};
use nines_store::{NewCluster, NewNode, SqliteStore, Store, StoreError};

fn ep(s: &str) -> Endpoint {
    s.parse().unwrap()
}

async fn replication(store: &SqliteStore, name: &str, nodes: &[&str]) -> i64 {
    let secret = store.put_secret("pw").await.unwrap();
    store
        .create_cluster(NewCluster {
            name: name.into(),
            cluster_type: ClusterType::Replication,
            host_access: HostAccessSpec::Local,
            db_user: "nines".into(),
            db_password_secret: secret,
            nodes: nodes
                .iter()
                .enumerate()
                .map(|(i, n)| NewNode {
                    endpoint: ep(n),
                    role: if i == 0 { Role::Primary } else { Role::Replica },
                    settings: None,
                })
                .collect(),
            settings: None,
            deploy_state: None,
            primary: Some(ep(nodes[0])),
        })
        .await
        .unwrap()
        .id
}

/// A raw connection to the store's database, beside the store.
async fn raw(dir: &std::path::Path) -> sqlx::SqlitePool {
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(dir.join("nines.db"))
        .create_if_missing(true)
        .foreign_keys(true);
    sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(opts)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_policy_is_set_replaced_forgotten_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let id = replication(&store, "shop", &["127.0.0.1:3306", "127.0.0.2:3306"]).await;
    let other = replication(&store, "other", &["127.0.0.3:3306"]).await;
    assert_eq!(
        store.get_cluster("shop").await.unwrap().unwrap().ha_policy,
        None
    );

    let policy = HaPolicy {
        daily_failover_budget: 5,
        failover_block_window: Duration::minutes(10),
        excluded_candidates: vec![ep("127.0.0.2:3306")],
        ..HaPolicy::default()
    };
    store.set_ha_policy(id, Some(&policy)).await.unwrap();
    assert_eq!(
        store.get_cluster("shop").await.unwrap().unwrap().ha_policy,
        Some(policy.clone())
    );
    assert_eq!(
        store.get_cluster("other").await.unwrap().unwrap().ha_policy,
        None,
        "only the cluster it was set for"
    );
    let listed = store.list_clusters().await.unwrap();
    let shop = listed.iter().find(|c| c.id == id).unwrap();
    assert_eq!(shop.ha_policy.as_ref(), Some(&policy));

    let replaced = HaPolicy {
        max_restart_attempts: 7,
        ..HaPolicy::default()
    };
    store.set_ha_policy(id, Some(&replaced)).await.unwrap();
    store.close().await;
    let store = SqliteStore::open(dir.path()).await.unwrap();
    assert_eq!(
        store.get_cluster("shop").await.unwrap().unwrap().ha_policy,
        Some(replaced),
        "replaced whole, kept across a reopen"
    );

    store.set_ha_policy(id, None).await.unwrap();
    assert_eq!(
        store.get_cluster("shop").await.unwrap().unwrap().ha_policy,
        None
    );
    store.set_ha_policy(other, None).await.unwrap();

    let e = store
        .set_ha_policy(id + other + 100, Some(&HaPolicy::default()))
        .await
        .unwrap_err();
    assert!(
        matches!(e, StoreError::NotFound(ref m) if m.contains("cluster")),
        "{e}"
    );
}

#[tokio::test]
async fn a_stored_policy_that_does_not_read_back_names_its_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let id = replication(&store, "shop", &["127.0.0.1:3306"]).await;
    let pool = raw(dir.path()).await;

    // Fields a newer or older controller did not write take their defaults.
    sqlx::query("UPDATE clusters SET ha_policy = ? WHERE id = ?")
        .bind(r#"{"daily_failover_budget": 9, "from_the_future": true}"#)
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    let p = store.get_cluster("shop").await.unwrap().unwrap().ha_policy;
    assert_eq!(
        p,
        Some(HaPolicy {
            daily_failover_budget: 9,
            ..HaPolicy::default()
        })
    );

    for bad in ["{not json", r#"{"restart_grace": -1}"#, r#"[1, 2]"#] {
        sqlx::query("UPDATE clusters SET ha_policy = ? WHERE id = ?")
            .bind(bad)
            .bind(id)
            .execute(&pool)
            .await
            .unwrap();
        let e = store.get_cluster("shop").await.unwrap_err();
        assert!(
            matches!(e, StoreError::Corrupt(ref m) if m.contains("HA policy of cluster `shop`")),
            "{bad}: {e}"
        );
        assert!(store.list_clusters().await.is_err(), "{bad}");
    }
    pool.close().await;
}

/// Clusters registered before migration 0006 use the controller's default.
#[tokio::test]
async fn migration_leaves_existing_clusters_on_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let pool = raw(dir.path()).await;
    sqlx::migrate!("./migrations")
        .run_to(5, &pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO secrets (id, sealed, created_at) VALUES (1, x'00', 0)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO clusters (name, cluster_type, host_access, db_user, db_password_secret, \
         created_at) VALUES ('old', 'replication', '{\"transport\":\"local\"}', 'u', 1, 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let store = SqliteStore::open(dir.path()).await.unwrap();
    let old = store.get_cluster("old").await.unwrap().unwrap();
    assert_eq!(old.ha_policy, None);
    store
        .set_ha_policy(old.id, Some(&HaPolicy::default()))
        .await
        .unwrap();
    assert_eq!(
        store.get_cluster("old").await.unwrap().unwrap().ha_policy,
        Some(HaPolicy::default())
    );
}
