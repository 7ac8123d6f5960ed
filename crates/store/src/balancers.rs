//! The store's part of load balancers: each HAProxy nines deployed in front of a cluster,
//! kept apart from the main [`crate::Store`] trait as [`BalancerStore`], which every store
//! also implements.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nines_model::job::HostAccessSpec;
use nines_model::lb::LbPolicy;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::sqlite::{SqliteStore, to_time};
use crate::{Result, StoreError};

pub use nines_model::lb::LbState;

/// A load balancer as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbRecord {
    pub id: i64,
    pub cluster: String,
    pub kind: String,
    pub host: String,
    pub rw_port: u16,
    pub ro_port: u16,
    pub stats_port: u16,
    pub dir: String,
    pub host_access: HostAccessSpec,
    pub state: LbState,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub vip: Option<Vip>,
    pub policy: LbPolicy,
}

/// A load balancer's share of a virtual IP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vip {
    /// The address, without a prefix.
    pub address: String,
    /// VRRP's router id, the same on every peer of the VIP.
    pub router_id: u8,
    pub priority: u8,
    /// The host's interface the VIP goes on.
    pub interface: String,
}

/// A load balancer about to be deployed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLb {
    pub cluster: String,
    pub host: String,
    pub rw_port: u16,
    pub ro_port: u16,
    pub stats_port: u16,
    pub dir: String,
    pub host_access: HostAccessSpec,
    pub vip: Option<Vip>,
    pub policy: LbPolicy,
}

#[async_trait]
pub trait BalancerStore: Send + Sync {
    /// Records a load balancer as deploying; a host and port in use is a conflict.
    async fn add_lb(&self, lb: &NewLb) -> Result<LbRecord>;
    /// Load balancers, of one cluster or all.
    async fn lbs(&self, cluster: Option<&str>) -> Result<Vec<LbRecord>>;
    async fn set_lb_state(&self, id: i64, state: LbState, error: Option<&str>) -> Result<()>;
    async fn delete_lb(&self, id: i64) -> Result<()>;
    async fn set_lb_policy(&self, id: i64, policy: &LbPolicy) -> Result<()>;
}

fn lb_from_row(r: &SqliteRow) -> Result<LbRecord> {
    let port = |k: &str| -> Result<u16> {
        u16::try_from(r.try_get::<i64, _>(k)?)
            .map_err(|_| StoreError::Corrupt(format!("load balancer {k}")))
    };
    let access: String = r.try_get("host_access")?;
    Ok(LbRecord {
        id: r.try_get("id")?,
        cluster: r.try_get("cluster")?,
        kind: r.try_get("kind")?,
        host: r.try_get("host")?,
        rw_port: port("rw_port")?,
        ro_port: port("ro_port")?,
        stats_port: port("stats_port")?,
        dir: r.try_get("dir")?,
        host_access: serde_json::from_str(&access)
            .map_err(|e| StoreError::Corrupt(format!("load balancer host access: {e}")))?,
        state: r
            .try_get::<String, _>("state")?
            .parse()
            .map_err(StoreError::Corrupt)?,
        error: r.try_get("error")?,
        created_at: to_time(r.try_get("created_at")?),
        vip: match r.try_get::<Option<String>, _>("vip")? {
            None => None,
            Some(address) => Some(Vip {
                address,
                router_id: u8::try_from(r.try_get::<i64, _>("router_id")?)
                    .map_err(|_| StoreError::Corrupt("load balancer router_id".into()))?,
                priority: u8::try_from(r.try_get::<i64, _>("vrrp_priority")?)
                    .map_err(|_| StoreError::Corrupt("load balancer vrrp_priority".into()))?,
                interface: r.try_get("interface")?,
            }),
        },
        policy: match r.try_get::<Option<String>, _>("policy")? {
            None => LbPolicy::default(),
            Some(p) => serde_json::from_str(&p)
                .map_err(|e| StoreError::Corrupt(format!("load balancer policy: {e}")))?,
        },
    })
}

#[async_trait]
impl BalancerStore for SqliteStore {
    async fn add_lb(&self, lb: &NewLb) -> Result<LbRecord> {
        let access = serde_json::to_string(&lb.host_access)
            .map_err(|e| StoreError::Invalid(format!("host access: {e}")))?;
        let policy = serde_json::to_string(&lb.policy)
            .map_err(|e| StoreError::Invalid(format!("policy: {e}")))?;
        let row = sqlx::query(
            "INSERT INTO load_balancers (cluster, kind, host, rw_port, ro_port, stats_port, dir, \
             host_access, state, created_at, vip, router_id, vrrp_priority, interface, policy) \
             VALUES (?, 'haproxy', ?, ?, ?, ?, ?, ?, 'deploying', ?, ?, ?, ?, ?, ?) RETURNING *",
        )
        .bind(&lb.cluster)
        .bind(&lb.host)
        .bind(i64::from(lb.rw_port))
        .bind(i64::from(lb.ro_port))
        .bind(i64::from(lb.stats_port))
        .bind(&lb.dir)
        .bind(access)
        .bind(Utc::now().timestamp_millis())
        .bind(lb.vip.as_ref().map(|v| v.address.clone()))
        .bind(lb.vip.as_ref().map(|v| i64::from(v.router_id)))
        .bind(lb.vip.as_ref().map(|v| i64::from(v.priority)))
        .bind(lb.vip.as_ref().map(|v| v.interface.clone()))
        .bind(policy)
        .fetch_one(self.pool())
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(format!(
                "a load balancer already listens on {} at port {} or {}",
                lb.host, lb.rw_port, lb.ro_port
            )),
            _ => StoreError::Db(e),
        })?;
        lb_from_row(&row)
    }

    async fn lbs(&self, cluster: Option<&str>) -> Result<Vec<LbRecord>> {
        sqlx::query("SELECT * FROM load_balancers WHERE (? IS NULL OR cluster = ?) ORDER BY id")
            .bind(cluster)
            .bind(cluster)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(lb_from_row)
            .collect()
    }

    async fn set_lb_state(&self, id: i64, state: LbState, error: Option<&str>) -> Result<()> {
        sqlx::query("UPDATE load_balancers SET state = ?, error = ? WHERE id = ?")
            .bind(state.as_str())
            .bind(error)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn set_lb_policy(&self, id: i64, policy: &LbPolicy) -> Result<()> {
        let policy = serde_json::to_string(policy)
            .map_err(|e| StoreError::Invalid(format!("policy: {e}")))?;
        sqlx::query("UPDATE load_balancers SET policy = ? WHERE id = ?")
            .bind(policy)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn delete_lb(&self, id: i64) -> Result<()> {
        sqlx::query("DELETE FROM load_balancers WHERE id = ?")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
