//! The advisor runner: every interval (30 s by default), for each cluster, reads an
//! advisor sample of every node (`nines_access::server::advisor`: variables, status,
//! oldest transaction, tables, clock; on one Galera node the tables without a primary
//! key), builds the facts the rules need with the monitor's view and the cluster's
//! backups, runs the built-in rules (`nines_model::advisor::evaluate`) and the cluster's
//! user rules that are due, stores each rule's results and history, and syncs the
//! `advisor.*` alarms with the stored results.
//!
//! Connections: nines's administration account on clusters it deployed (it must see
//! every table to find those without a key), the registered account on imported ones.
//! User rules run in a read-only transaction under a 10 s statement limit.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::join_all;
use nines_access::server::{Credentials, ServerConn, Timeouts};
use nines_model::advisor::user::{UserRule, number};
use nines_model::advisor::{self, AdvisorSample, BackupFacts, ClusterFacts, NodeFacts, RuleResult};
use nines_model::alarm::Source;
use nines_model::backup::BackupState;
use nines_model::{ClusterType, Endpoint};
use nines_store::{ClusterRecord, Store, StoreError};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::alarms::Alarms;
use crate::monitor::{ClusterObserved, Monitor};

/// How long an advisor's connection and queries may take.
const TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_secs(3),
    query: Duration::from_secs(10),
};

/// The advisor runner's memory: each node's previous sample (for rates) and when each
/// user rule last ran.
pub struct Advisors {
    store: Arc<dyn Store>,
    monitor: Arc<Monitor>,
    alarms: Arc<Alarms>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    prev: HashMap<(String, String), AdvisorSample>,
    user_ran: HashMap<(String, String), DateTime<Utc>>,
    /// Each node's digest counters at the last read (the query monitor's baseline).
    digests: HashMap<(String, String), nines_model::query::Previous>,
    /// Whether each node has performance_schema on, as last read.
    performance_schema: HashMap<(String, String), bool>,
    pruned_at: Option<DateTime<Utc>>,
    /// When each cluster's digests were last read.
    queries_read: HashMap<String, DateTime<Utc>>,
}

/// The shortest time between two digest reads of a cluster on demand (`query top`).
const QUERY_REFRESH: chrono::Duration = chrono::Duration::seconds(5);

/// How long the query monitor keeps its samples.
const QUERY_RETENTION: chrono::Duration = chrono::Duration::days(7);

/// One node's read: its advisor sample, and its statement digests.
struct NodeRead {
    sample: AdvisorSample,
    queries: QueryRead,
}

/// Whether a node has performance_schema on, and its statement digests when it has.
struct QueryRead {
    performance_schema: bool,
    digests: Option<Vec<nines_model::query::DigestRow>>,
}

impl Advisors {
    pub fn new(store: Arc<dyn Store>, monitor: Arc<Monitor>, alarms: Arc<Alarms>) -> Arc<Self> {
        Arc::new(Self {
            store,
            monitor,
            alarms,
            state: Mutex::new(State::default()),
        })
    }

    /// Runs every `interval` until `shutdown`; the first run one interval after start.
    pub async fn run(self: Arc<Self>, interval: Duration, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            for c in self.monitor.clusters() {
                if let Err(e) = self.check(&c.name, false).await {
                    tracing::warn!(cluster = %c.name, error = %e, "advisors failed");
                }
            }
        }
    }

    /// One run over a cluster (`all_user_rules`: every user rule, due or not); the
    /// cluster's results afterwards.
    pub async fn check(&self, cluster: &str, all_user_rules: bool) -> Result<(), String> {
        let Some(observed) = self.monitor.cluster(cluster) else {
            return Err(format!("cluster `{cluster}` is not watched"));
        };
        let record = self
            .store
            .get_cluster(cluster)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("cluster `{cluster}` not found"))?;
        if record
            .deploy_state
            .is_some_and(|s| s != nines_model::DeployState::Deployed)
        {
            return Ok(());
        }
        let creds = self.credentials(&record).await.map_err(|e| e.to_string())?;
        let mut hide = vec![record.db_user.clone()];
        if creds.user != record.db_user {
            hide.push(creds.user.clone());
        }
        let reads = self.sample_all(&observed, &creds, &hide).await;
        let queries: Vec<Option<&QueryRead>> = reads
            .iter()
            .map(|r| r.as_ref().map(|r| &r.queries))
            .collect();
        self.record_queries(cluster, &observed, &queries).await;
        let samples: Vec<Option<AdvisorSample>> =
            reads.into_iter().map(|r| r.map(|r| r.sample)).collect();
        let now = Utc::now();
        let backups = self
            .backup_facts(cluster, now)
            .await
            .map_err(|e| e.to_string())?;
        let results = {
            let mut state = self.state.lock().await;
            let nodes: Vec<NodeFacts<'_>> = observed
                .nodes
                .iter()
                .zip(samples.iter())
                .map(|(n, s)| NodeFacts {
                    address: n.endpoint.to_string(),
                    role: n.role,
                    sample: s.as_ref(),
                    prev: state
                        .prev
                        .get(&(cluster.to_string(), n.endpoint.to_string())),
                    server: if n.probe.is_reachable() {
                        n.sample.as_deref()
                    } else {
                        None
                    },
                    host: n.host.as_ref(),
                })
                .collect();
            let facts = ClusterFacts {
                name: cluster.to_string(),
                cluster_type: record.cluster_type,
                semi_sync: record.settings.as_ref().is_some_and(|s| s.semi_sync),
                nodes,
                backups,
                now,
            };
            let results = advisor::evaluate(&facts);
            for (n, s) in observed.nodes.iter().zip(samples) {
                if let Some(s) = s {
                    state
                        .prev
                        .insert((cluster.to_string(), n.endpoint.to_string()), s);
                }
            }
            results
        };
        let mut by_rule: HashMap<String, Vec<RuleResult>> = HashMap::new();
        for r in results {
            by_rule.entry(r.rule.clone()).or_default().push(r);
        }
        let by_rule: Vec<(String, Vec<RuleResult>)> = by_rule.into_iter().collect();
        self.store
            .set_results(cluster, &by_rule, now)
            .await
            .map_err(|e| e.to_string())?;
        self.user_rules(&observed, &creds, all_user_rules)
            .await
            .map_err(|e| e.to_string())?;
        self.sync_alarms(cluster).await.map_err(|e| e.to_string())
    }

    /// Brings the cluster's `advisor.*` alarms to its stored results (after a user rule
    /// was deleted).
    pub async fn resync(&self, cluster: &str) -> Result<(), StoreError> {
        self.sync_alarms(cluster).await
    }

    /// Raises and clears the `advisor.*` alarms to match the stored results.
    async fn sync_alarms(&self, cluster: &str) -> Result<(), StoreError> {
        let stored: Vec<RuleResult> = self
            .store
            .advice(cluster)
            .await?
            .into_iter()
            .map(|a| a.result)
            .collect();
        self.alarms
            .sync(
                cluster,
                Source::Advisor,
                advisor::conditions(cluster, &stored),
            )
            .await
    }

    async fn credentials(&self, c: &ClusterRecord) -> Result<Credentials, StoreError> {
        if c.settings.is_some() {
            let accounts = self.store.accounts(c.id).await?;
            if let Some(a) = accounts
                .iter()
                .find(|a| a.purpose == nines_model::deploy::accounts::ADMIN)
            {
                return Ok(Credentials {
                    user: a.user.clone(),
                    password: self
                        .store
                        .get_secret(a.secret_id)
                        .await?
                        .expose()
                        .to_string(),
                });
            }
        }
        Ok(Credentials {
            user: c.db_user.clone(),
            password: self
                .store
                .get_secret(c.db_password_secret)
                .await?
                .expose()
                .to_string(),
        })
    }

    /// Whether a node has performance_schema on (None: not read yet).
    pub async fn performance_schema(&self, cluster: &str, node: &str) -> Option<bool> {
        self.state
            .lock()
            .await
            .performance_schema
            .get(&(cluster.to_string(), node.to_string()))
            .copied()
    }

    /// Reads every node's statement digests now (at most every few seconds per cluster),
    /// so that `query top` includes what ran since the last advisor run.
    pub async fn refresh_queries(&self, cluster: &str) -> Result<(), String> {
        let now = Utc::now();
        {
            let mut state = self.state.lock().await;
            if state
                .queries_read
                .get(cluster)
                .is_some_and(|t| now - *t < QUERY_REFRESH)
            {
                return Ok(());
            }
            state.queries_read.insert(cluster.to_string(), now);
        }
        let Some(observed) = self.monitor.cluster(cluster) else {
            return Err(format!("cluster `{cluster}` is not watched"));
        };
        let record = self
            .store
            .get_cluster(cluster)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("cluster `{cluster}` not found"))?;
        let creds = self.credentials(&record).await.map_err(|e| e.to_string())?;
        let mut hide = vec![record.db_user.clone()];
        if creds.user != record.db_user {
            hide.push(creds.user.clone());
        }
        let hide = &hide;
        let creds = &creds;
        let reads = join_all(observed.nodes.iter().map(|n| async move {
            if !n.probe.is_reachable() {
                return None;
            }
            let mut conn = ServerConn::connect(&n.endpoint, creds, TIMEOUTS)
                .await
                .ok()?;
            let ps = conn
                .query_sets("SELECT @@performance_schema")
                .await
                .ok()
                .and_then(|s| s.into_iter().next())
                .and_then(|s| s.first_cell())
                .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("ON"));
            let read = read_queries(&mut conn, &n.endpoint, ps, hide).await;
            conn.close().await;
            Some(read)
        }))
        .await;
        let queries: Vec<Option<&QueryRead>> = reads.iter().map(Option::as_ref).collect();
        self.record_queries(cluster, &observed, &queries).await;
        Ok(())
    }

    /// Stores what each node's statement digests did since the last read.
    async fn record_queries(
        &self,
        cluster: &str,
        observed: &ClusterObserved,
        reads: &[Option<&QueryRead>],
    ) {
        let now = Utc::now();
        let mut todo = Vec::new();
        let prune = {
            let mut state = self.state.lock().await;
            state.queries_read.insert(cluster.to_string(), now);
            for (n, r) in observed.nodes.iter().zip(reads) {
                let Some(r) = r else { continue };
                let key = (cluster.to_string(), n.endpoint.to_string());
                state
                    .performance_schema
                    .insert(key.clone(), r.performance_schema);
                let Some(rows) = &r.digests else {
                    state.digests.remove(&key);
                    continue;
                };
                let next: nines_model::query::Previous =
                    rows.iter().map(|d| (d.key(), d.clone())).collect();
                if let Some(prev) = state.digests.insert(key, next) {
                    todo.push((
                        n.endpoint.to_string(),
                        nines_model::query::deltas(&prev, rows),
                    ));
                }
            }
            let prune = state
                .pruned_at
                .is_none_or(|t| now - t > chrono::Duration::hours(1));
            if prune {
                state.pruned_at = Some(now);
            }
            prune
        };
        if prune && let Err(e) = self.store.prune_query_samples(now - QUERY_RETENTION).await {
            tracing::warn!(error = %e, "cannot prune query samples");
        }
        for (node, deltas) in todo {
            if let Err(e) = self
                .store
                .add_query_samples(cluster, &node, now, &deltas)
                .await
            {
                tracing::warn!(cluster, node = %node, error = %e, "cannot record query samples");
            }
        }
    }

    /// Every node's read (None where it did not answer), in the monitor's order.
    async fn sample_all(
        &self,
        observed: &ClusterObserved,
        creds: &Credentials,
        hide: &[String],
    ) -> Vec<Option<NodeRead>> {
        // The catalog query runs on one node: Galera members hold the same tables.
        let pk_on = (observed.cluster_type == ClusterType::Galera)
            .then(|| {
                observed
                    .nodes
                    .iter()
                    .position(|n| n.probe.is_reachable() && n.sample.is_some())
            })
            .flatten();
        join_all(observed.nodes.iter().enumerate().map(|(i, n)| async move {
            if !n.probe.is_reachable() {
                return None;
            }
            let mut conn = ServerConn::connect(&n.endpoint, creds, TIMEOUTS)
                .await
                .ok()?;
            let s = nines_access::server::advisor::sample(&mut conn, pk_on == Some(i)).await;
            let read = match s {
                Ok(sample) => {
                    let ps = sample.var_on("performance_schema") == Some(true);
                    let queries = read_queries(&mut conn, &n.endpoint, ps, hide).await;
                    Some(NodeRead { sample, queries })
                }
                Err(e) => {
                    tracing::debug!(node = %n.endpoint, error = %e, "advisor sample failed");
                    None
                }
            };
            conn.close().await;
            read
        }))
        .await
    }

    async fn backup_facts(
        &self,
        cluster: &str,
        now: DateTime<Utc>,
    ) -> Result<BackupFacts, StoreError> {
        let last_completed = self
            .store
            .backups(Some(cluster))
            .await?
            .into_iter()
            .filter(|b| b.state == BackupState::Completed)
            .filter_map(|b| b.finished_at.map(|f| (f, b.verified)))
            .max_by_key(|(f, _)| *f);
        let schedule_every = self
            .store
            .schedules()
            .await?
            .into_iter()
            .filter(|s| s.cluster == cluster)
            .filter_map(|s| {
                let sched = nines_model::backup::schedule::Schedule::parse(&s.cron, &s.tz).ok()?;
                let a = sched.next_after(now)?;
                let b = sched.next_after(a)?;
                Some(b - a)
            })
            .min();
        Ok(BackupFacts {
            last_completed,
            schedule_every,
        })
    }

    /// Runs the cluster's user rules that are due (all with `all`).
    async fn user_rules(
        &self,
        observed: &ClusterObserved,
        creds: &Credentials,
        all: bool,
    ) -> Result<(), StoreError> {
        let rules = self.store.user_rules(Some(&observed.name)).await?;
        let now = Utc::now();
        for (_, rule) in rules {
            let key = (observed.name.clone(), rule.name.clone());
            let due = all || {
                let state = self.state.lock().await;
                state.user_ran.get(&key).is_none_or(|t| {
                    now - *t >= chrono::Duration::seconds(rule.every_seconds as i64)
                })
            };
            if !due {
                continue;
            }
            self.state.lock().await.user_ran.insert(key, now);
            let results = run_user_rule(observed, creds, &rule).await;
            self.store
                .set_rule_results(&observed.name, &rule.id(), &results, Utc::now())
                .await?;
        }
        Ok(())
    }
}

/// A user rule's results on its nodes.
async fn run_user_rule(
    observed: &ClusterObserved,
    creds: &Credentials,
    rule: &UserRule,
) -> Vec<RuleResult> {
    let picked: Vec<&Endpoint> = observed
        .nodes
        .iter()
        .filter(|n| rule.nodes.picks(&n.endpoint.to_string(), n.role))
        .map(|n| &n.endpoint)
        .collect();
    let values = join_all(picked.iter().map(|ep| query_number(ep, creds, &rule.sql))).await;
    picked
        .into_iter()
        .zip(values)
        .map(|(ep, v)| {
            let (status, message) = match v {
                Ok(v) => rule.verdict(v),
                Err(e) => (
                    advisor::Status::Warning,
                    format!("the rule's query failed: {e}"),
                ),
            };
            RuleResult {
                rule: rule.id(),
                node: Some(ep.to_string()),
                status,
                message,
                advice: String::new(),
            }
        })
        .collect()
}

/// Runs a user rule's query read-only under a statement time limit; its number.
async fn query_number(ep: &Endpoint, creds: &Credentials, sql: &str) -> Result<f64, String> {
    let mut conn = ServerConn::connect(ep, creds, TIMEOUTS)
        .await
        .map_err(|e| e.to_string())?;
    let sql = sql.trim().trim_end_matches(';');
    let r = async {
        conn.exec("START TRANSACTION READ ONLY").await?;
        let rows = conn
            .query_sets(&format!("SET STATEMENT max_statement_time=10 FOR {sql}"))
            .await;
        let _ = conn.exec("ROLLBACK").await;
        rows
    }
    .await;
    conn.close().await;
    let sets = r.map_err(|e| e.to_string())?;
    let first = sets.into_iter().next().and_then(|s| s.first_cell());
    number(first.as_deref())
}

/// A node's statement digests, when performance_schema is on (nines's own sessions taken
/// out of it first).
async fn read_queries(
    conn: &mut ServerConn,
    node: &Endpoint,
    performance_schema: bool,
    hide: &[String],
) -> QueryRead {
    if !performance_schema {
        return QueryRead {
            performance_schema,
            digests: None,
        };
    }
    let users: Vec<&str> = hide.iter().map(String::as_str).collect();
    if let Err(e) = nines_access::server::advisor::hide_users(conn, &users).await {
        tracing::debug!(node = %node, error = %e, "cannot keep nines's sessions out of performance_schema");
    }
    QueryRead {
        performance_schema,
        digests: nines_access::server::advisor::digests(conn).await.ok(),
    }
}
