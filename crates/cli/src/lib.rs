//! The `nines` command line: clap definitions and the client commands, each a thin
//! caller of the controller's HTTP API. `nines serve` is declared here too but run by
//! the binary, which links the controller.

mod alarms;
pub mod client;
pub mod commands;
pub mod output;
mod users;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// nines: deploy, watch and repair MariaDB/MySQL clusters.
#[derive(Debug, Parser)]
#[command(name = "nines", version, about, propagate_version = true)]
pub struct Cli {
    /// Output format.
    #[arg(short = 'o', long = "output", global = true, value_enum, default_value_t = Format::Table)]
    pub output: Format,
    /// The controller's URL.
    #[arg(
        long,
        global = true,
        env = "NINES_SERVER",
        default_value = "http://127.0.0.1:9550"
    )]
    pub server: String,
    /// API token (default: the admin token file of the data directory).
    #[arg(long, global = true, env = "NINES_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A PEM file of the CA (or self-signed certificate) that an HTTPS controller's
    /// certificate is checked against, besides the system's roots.
    #[arg(long, global = true, env = "NINES_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// The controller's data directory (for `serve`, and to find the admin token).
    #[arg(
        long,
        global = true,
        env = "NINES_DATA_DIR",
        default_value = "./nines-data"
    )]
    pub data_dir: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the controller: API, monitor and job runner.
    Serve(ServeArgs),
    /// Clusters: create, import, list, show, stop, start, rolling-restart, switchover,
    /// failover, failovers, recover, recovery, ha-policy, delete.
    #[command(subcommand)]
    Cluster(ClusterCmd),
    /// Nodes: list, add, remove, stop, start, restart, rejoin.
    #[command(subcommand)]
    Node(NodeCmd),
    /// Jobs: every change to a cluster is one.
    #[command(subcommand)]
    Job(JobCmd),
    /// Maintenance windows: nines takes no automatic action on a cluster or node in one.
    #[command(subcommand)]
    Maintenance(MaintenanceCmd),
    /// Backups: repositories, taking, listing, verifying and restoring them.
    #[command(subcommand)]
    Backup(BackupCmd),
    /// Alarms: list, acknowledge, silence a kind for a time.
    #[command(subcommand)]
    Alarm(AlarmCmd),
    /// Notification channels for alarms: webhook, Slack, e-mail.
    #[command(subcommand)]
    Notify(NotifyCmd),
    /// Advisors: rule results, their history, checking now, user rules.
    #[command(subcommand)]
    Advisor(AdvisorCmd),
    /// The query monitor: statement digests that took the most time.
    #[command(subcommand)]
    Query(QueryCmd),
    /// Load balancers: HAProxy in front of a cluster, kept pointed at the right nodes.
    #[command(subcommand)]
    Lb(LbCmd),
    /// Users of the web UI and the API, with their roles (admin, operator, viewer).
    #[command(subcommand)]
    User(UserCmd),
    /// API tokens of users: created (shown once), listed, revoked.
    #[command(subcommand)]
    Token(TokenCmd),
    /// The audit log: who changed what, from where, and how it ended.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Metric series of a cluster and its nodes, for charts and scripts.
    Metrics {
        #[arg(long)]
        cluster: String,
        /// Metric names, comma-separated, e.g. queries_per_second,replication_lag_seconds.
        #[arg(long)]
        series: String,
        #[arg(long, default_value = "1h")]
        since: String,
        /// The step between points (default: about 120 points).
        #[arg(long)]
        step: Option<String>,
    },
    /// Recent events: state changes and decisions, with reasons.
    Events {
        #[arg(long)]
        cluster: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port of the API, UI and /metrics.
    #[arg(long, default_value = "127.0.0.1:9550")]
    pub listen: String,
    /// How often each node is probed, e.g. 1s, 500ms.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub probe_interval: std::time::Duration,
    /// How often host metrics are read over SSH or locally.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub host_interval: std::time::Duration,
    /// How long full-resolution metrics are kept in memory.
    #[arg(long, default_value = "15m", value_parser = parse_duration)]
    pub metrics_raw_window: std::time::Duration,
    /// How long per-minute metric rollups are kept in the store.
    #[arg(long, default_value = "7d", value_parser = parse_duration)]
    pub metrics_retention: std::time::Duration,
    /// An ssh_config file for host access (default: OpenSSH's own, ~/.ssh/config).
    #[arg(long)]
    pub ssh_config: Option<PathBuf>,
    /// A program run before every failover and switchover, with NINES_CLUSTER,
    /// NINES_OPERATION, NINES_OLD_PRIMARY and NINES_NEW_PRIMARY in its environment; a
    /// non-zero exit (or running past --hook-timeout) vetoes the operation.
    #[arg(long)]
    pub pre_failover_hook: Option<PathBuf>,
    /// A program run after every successful failover and switchover (same environment);
    /// its failure is logged.
    #[arg(long)]
    pub post_failover_hook: Option<PathBuf>,
    /// How long a hook may run.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub hook_timeout: std::time::Duration,
    /// How often the advisors and the query monitor check each cluster (variables,
    /// counters, tables, backups, statement digests); 0s turns them off.
    #[arg(long, default_value = "30s", value_parser = parse_interval_or_off)]
    pub advisor_interval: std::time::Duration,
    /// Serve HTTPS (API, UI, /metrics) on --listen with this PEM certificate chain;
    /// needs --tls-key.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// A web UI session unused this long ends (sessions end 12 h after sign-in anyway).
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub session_idle: std::time::Duration,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCmd {
    /// Deploy a new cluster onto hosts: pre-flight, packages, configuration, servers, accounts.
    Create(CreateArgs),
    /// Import an existing cluster from one seed node: discovers the topology and registers it.
    Import(ImportArgs),
    /// Stop every node (replicas before their primary).
    Stop(NameArgs),
    /// Start a stopped cluster (Galera: from the node with the highest committed seqno).
    Start(NameArgs),
    /// Restart node by node, each healthy again before the next.
    RollingRestart(NameArgs),
    /// Hand the primary role of a replication cluster to a replica, with zero loss.
    Switchover {
        #[command(flatten)]
        cluster: NameArgs,
        /// The replica to promote, ADDR[:PORT]; default: the most advanced eligible one.
        #[arg(long)]
        to: Option<String>,
    },
    /// Promote a replica of a replication cluster whose primary is gone.
    Failover {
        #[command(flatten)]
        cluster: NameArgs,
        /// The replica to promote, ADDR[:PORT]; default: the most advanced eligible one.
        #[arg(long)]
        to: Option<String>,
        /// Fail over even when the primary answers (it is fenced first) or when the chosen
        /// replica lacks transactions (they are named in the job's log).
        #[arg(long)]
        force: bool,
    },
    /// List the failovers and switchovers of a replication cluster, newest first; with
    /// --acknowledge, acknowledge them instead (an unacknowledged automatic failover keeps
    /// nines from failing over automatically again for 5 minutes).
    Failovers {
        /// Cluster name.
        #[arg(long)]
        name: String,
        /// How far back, e.g. 24h, 7d.
        #[arg(long, default_value = "30d", conflicts_with = "acknowledge")]
        since: String,
        /// Acknowledge every unacknowledged one and print how many.
        #[arg(long)]
        acknowledge: bool,
    },
    /// Bring back a Galera cluster that has no Primary component: bootstrap the most
    /// advanced node (or, with --force, the one named) and join the others one by one.
    Recover {
        #[command(flatten)]
        cluster: NameArgs,
        /// The node to bootstrap from, ADDR[:PORT]; default: the one nines chooses (the
        /// highest committed seqno). Without --force it must be that one.
        #[arg(long)]
        bootstrap_from: Option<String>,
        /// Bootstrap --bootstrap-from even though nines would not (nodes that do not answer
        /// may be alive elsewhere, or another node is more advanced). Never beside a
        /// Primary component that serves.
        #[arg(long, requires = "bootstrap_from")]
        force: bool,
    },
    /// Turn automatic recovery (restarts, Galera recovery, failover) on or off.
    Recovery {
        #[arg(value_enum)]
        switch: Switch,
        #[arg(long)]
        name: String,
    },
    /// Show a cluster's HA policy (what automatic recovery may do), or change some of it
    /// with the flags below, or go back to the controller's default with --reset.
    HaPolicy(HaPolicyArgs),
    /// Unregister a cluster; --purge also stops its servers and deletes their files.
    Delete {
        #[arg(long)]
        name: String,
        #[arg(long)]
        purge: bool,
        #[arg(long)]
        wait: bool,
    },
    /// List clusters.
    List,
    /// Show one cluster with its nodes and recent events.
    Show {
        /// Cluster name.
        #[arg(value_name = "NAME", required_unless_present = "name_flag")]
        name: Option<String>,
        #[arg(long = "name", id = "name_flag")]
        name_flag: Option<String>,
    },
}

/// `cluster ha-policy`: without a setting flag it shows the policy; the flags given
/// replace those settings only (a list flag replaces the whole list). Bounds are checked
/// by the controller, which names the setting at fault.
#[derive(Debug, Args)]
pub struct HaPolicyArgs {
    /// Cluster name.
    #[arg(long)]
    pub name: String,
    /// Go back to the controller's default policy.
    #[arg(long, conflicts_with_all = SETTING_FLAGS)]
    pub reset: bool,
    /// A replica never promoted automatically (reporting or backup replica, another
    /// data centre), ADDR[:PORT]; repeat for several. Replaces the list.
    #[arg(long = "exclude-candidate", value_name = "ADDR")]
    pub exclude_candidates: Vec<String>,
    /// Empty the list of excluded candidates.
    #[arg(long, conflicts_with = "exclude_candidates")]
    pub clear_excluded_candidates: bool,
    /// A replica preferred among equally advanced candidates, ADDR[:PORT]; repeat for
    /// several, in order of preference. Replaces the list.
    #[arg(long = "prefer-candidate", value_name = "ADDR")]
    pub prefer_candidates: Vec<String>,
    /// Empty the list of preferred candidates.
    #[arg(long, conflicts_with = "prefer_candidates")]
    pub clear_preferred_candidates: bool,
    /// No other automatic failover this long after one unless acknowledged, e.g. 10m (0s: off).
    #[arg(long, value_name = "DURATION", value_parser = parse_millis)]
    pub failover_block_window: Option<u64>,
    /// Automatic failovers allowed in any 24 h.
    #[arg(long, value_name = "N")]
    pub daily_failover_budget: Option<u32>,
    /// Consecutive timed-out probes before the primary is suspected.
    #[arg(long, value_name = "N")]
    pub suspect_after_timeouts: Option<u32>,
    /// Silent heartbeat periods before a replica confirms the primary's death.
    #[arg(long, value_name = "N")]
    pub confirm_heartbeat_periods: Option<u32>,
    /// How long a failover waits for the candidate to apply its relay log, e.g. 30s.
    #[arg(long, value_name = "DURATION", value_parser = parse_millis)]
    pub relay_log_apply_timeout: Option<u64>,
    /// Largest replication lag of a failover candidate, whole seconds, e.g. 30s, or `none`.
    #[arg(long, value_name = "DURATION|none", value_parser = parse_limit_seconds)]
    pub max_candidate_lag: Option<Limit>,
    /// Largest number of transactions a failover may lose, or `none` (default 0).
    #[arg(long, value_name = "N|none", value_parser = parse_limit)]
    pub max_missing_transactions: Option<Limit>,
    /// Largest lag of a switchover candidate, whole seconds, e.g. 1s (0s: fully caught up).
    #[arg(long, value_name = "DURATION", value_parser = parse_seconds)]
    pub switchover_max_lag: Option<u64>,
    /// Oldest transaction on the primary a switchover accepts (it is killed), e.g. 10s.
    #[arg(long, value_name = "DURATION", value_parser = parse_millis)]
    pub switchover_max_transaction_age: Option<u64>,
    /// Refuse an automatic failover when acknowledged commits may be lost (semi-sync).
    #[arg(long, value_name = "BOOL")]
    pub require_semi_sync_ack: Option<bool>,
    /// How long a dead server is left alone before nines restarts it, e.g. 10s.
    #[arg(long, value_name = "DURATION", value_parser = parse_millis)]
    pub restart_grace: Option<u64>,
    /// Wait after a failed restart before the next, doubled each time, e.g. 10s.
    #[arg(long, value_name = "DURATION", value_parser = parse_millis)]
    pub restart_backoff: Option<u64>,
    /// Restarts of one outage before nines gives up and raises an alarm.
    #[arg(long, value_name = "N")]
    pub max_restart_attempts: Option<u32>,
    /// How long a Galera cluster may have no Primary component before nines recovers it, e.g. 20s.
    #[arg(long, value_name = "DURATION", value_parser = parse_millis)]
    pub galera_no_primary_timeout: Option<u64>,
}

/// The setting flags of `cluster ha-policy` (argument ids), which `--reset` excludes.
const SETTING_FLAGS: [&str; 18] = [
    "exclude_candidates",
    "clear_excluded_candidates",
    "prefer_candidates",
    "clear_preferred_candidates",
    "failover_block_window",
    "daily_failover_budget",
    "suspect_after_timeouts",
    "confirm_heartbeat_periods",
    "relay_log_apply_timeout",
    "max_candidate_lag",
    "max_missing_transactions",
    "switchover_max_lag",
    "switchover_max_transaction_age",
    "require_semi_sync_ack",
    "restart_grace",
    "restart_backoff",
    "max_restart_attempts",
    "galera_no_primary_timeout",
];

/// A limit that may be lifted: a number, or `none` for no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    At(u64),
    None,
}

impl HaPolicyArgs {
    /// The change the flags ask for, as the API's JSON (durations in milliseconds);
    /// empty when no setting flag was given.
    pub fn patch(&self) -> serde_json::Map<String, serde_json::Value> {
        use serde_json::{Value, json};
        let mut m = serde_json::Map::new();
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                m.insert(k.to_string(), v);
            }
        };
        let list =
            |items: &[String], clear: bool| (clear || !items.is_empty()).then(|| json!(items));
        let limit = |l: Option<Limit>| {
            l.map(|l| match l {
                Limit::At(n) => json!(n),
                Limit::None => Value::Null,
            })
        };
        put(
            "excluded_candidates",
            list(&self.exclude_candidates, self.clear_excluded_candidates),
        );
        put(
            "preferred_candidates",
            list(&self.prefer_candidates, self.clear_preferred_candidates),
        );
        put(
            "failover_block_window",
            self.failover_block_window.map(|v| json!(v)),
        );
        put(
            "daily_failover_budget",
            self.daily_failover_budget.map(|v| json!(v)),
        );
        put(
            "suspect_after_timeouts",
            self.suspect_after_timeouts.map(|v| json!(v)),
        );
        put(
            "confirm_heartbeat_periods",
            self.confirm_heartbeat_periods.map(|v| json!(v)),
        );
        put(
            "relay_log_apply_timeout",
            self.relay_log_apply_timeout.map(|v| json!(v)),
        );
        put(
            "switchover_max_lag_seconds",
            self.switchover_max_lag.map(|v| json!(v)),
        );
        put(
            "switchover_max_transaction_age",
            self.switchover_max_transaction_age.map(|v| json!(v)),
        );
        put(
            "require_semi_sync_ack",
            self.require_semi_sync_ack.map(|v| json!(v)),
        );
        put("restart_grace", self.restart_grace.map(|v| json!(v)));
        put("restart_backoff", self.restart_backoff.map(|v| json!(v)));
        put(
            "max_restart_attempts",
            self.max_restart_attempts.map(|v| json!(v)),
        );
        put(
            "galera_no_primary_timeout",
            self.galera_no_primary_timeout.map(|v| json!(v)),
        );
        let mut lag = serde_json::Map::new();
        if let Some(v) = limit(self.max_candidate_lag) {
            lag.insert("max_seconds_behind".into(), v);
        }
        if let Some(v) = limit(self.max_missing_transactions) {
            lag.insert("max_missing_transactions".into(), v);
        }
        if !lag.is_empty() {
            m.insert("max_candidate_lag".into(), Value::Object(lag));
        }
        m
    }
}

/// A duration (`parse_duration`, or `0`/`0s`) as whole milliseconds.
fn parse_millis(s: &str) -> Result<u64, String> {
    if matches!(s.trim(), "0" | "0s" | "0ms") {
        return Ok(0);
    }
    let d = parse_duration(s)?;
    u64::try_from(d.as_millis()).map_err(|_| format!("duration `{s}` is too long"))
}

/// A duration in whole seconds (`0s` allowed).
fn parse_seconds(s: &str) -> Result<u64, String> {
    let ms = parse_millis(s)?;
    if ms % 1000 != 0 {
        return Err(format!("`{s}` is not a whole number of seconds"));
    }
    Ok(ms / 1000)
}

/// Whole seconds, or `none` for no limit.
fn parse_limit_seconds(s: &str) -> Result<Limit, String> {
    if s.trim().eq_ignore_ascii_case("none") {
        return Ok(Limit::None);
    }
    parse_seconds(s).map(Limit::At)
}

/// A count, or `none` for no limit.
fn parse_limit(s: &str) -> Result<Limit, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("none") {
        return Ok(Limit::None);
    }
    t.parse::<u64>()
        .map(Limit::At)
        .map_err(|_| format!("`{s}` is neither a number nor `none`"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    Enable,
    Disable,
}

#[derive(Debug, Subcommand)]
pub enum MaintenanceCmd {
    /// Start a maintenance window (replacing one of the same scope).
    On {
        /// Cluster name.
        #[arg(long)]
        cluster: String,
        /// One node, ADDR[:PORT]; without it the whole cluster.
        #[arg(long)]
        node: Option<String>,
        /// How long, e.g. 30m, 2h; without it until `maintenance off`.
        #[arg(long = "for")]
        duration: Option<String>,
        /// Why (shown in lists and events).
        #[arg(long)]
        reason: String,
    },
    /// End a maintenance window.
    Off {
        /// Cluster name.
        #[arg(long)]
        cluster: String,
        /// The node, ADDR[:PORT]; without it the cluster's own window.
        #[arg(long)]
        node: Option<String>,
        /// Why it ends (recorded in the event).
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum BackupCmd {
    /// Backup repositories: a directory on the controller or an S3-compatible bucket.
    #[command(subcommand)]
    Repo(RepoCmd),
    /// Take a backup of a cluster.
    Create {
        #[arg(long)]
        cluster: String,
        /// full (default), incremental (on the newest physical backup) or logical.
        #[arg(long, default_value = "full")]
        method: String,
        /// The node to read, ADDR[:PORT]; default: a serving replica or Synced Galera node.
        #[arg(long)]
        node: Option<String>,
        /// Repository name; default `local` (under the controller's data directory).
        #[arg(long)]
        repo: Option<String>,
        /// Wait until it is taken and checked; prints the backup.
        #[arg(long)]
        wait: bool,
    },
    /// List a cluster's backups, newest first.
    List {
        #[arg(long)]
        cluster: String,
    },
    /// Check a backup: every chunk, and a physical backup's --prepare.
    Verify {
        id: i64,
        #[arg(long)]
        wait: bool,
    },
    /// Backup schedules: cron expressions in a time zone, with a retention.
    #[command(subcommand)]
    Schedule(ScheduleCmd),
    /// Restore a backup onto a cluster (its servers' data is replaced).
    Restore {
        id: i64,
        #[arg(long)]
        cluster: String,
        /// Even over a cluster whose servers serve.
        #[arg(long)]
        force: bool,
        /// Roll forward with the archived binlogs to this time (RFC 3339, e.g.
        /// 2026-11-30T04:10:00Z): what was committed before it.
        #[arg(long, conflicts_with = "until_gtid")]
        until: Option<String>,
        /// Roll forward to this GTID position (included), e.g. 0-1-4711.
        #[arg(long)]
        until_gtid: Option<String>,
        #[arg(long)]
        wait: bool,
    },
    /// The restorable window of a cluster: earliest and latest points.
    Window {
        #[arg(long)]
        cluster: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ScheduleCmd {
    /// Add a schedule.
    Create {
        #[arg(long)]
        cluster: String,
        /// Five fields (minute hour day month weekday), or six with seconds first.
        #[arg(long)]
        cron: String,
        /// IANA time zone, e.g. Europe/Berlin; default UTC.
        #[arg(long)]
        tz: Option<String>,
        /// full (default), incremental or logical.
        #[arg(long)]
        method: Option<String>,
        #[arg(long)]
        repo: Option<String>,
        /// Restorable window to keep, e.g. 14d; older backups it does not need go.
        #[arg(long)]
        retention: Option<String>,
    },
    /// List schedules.
    List {
        #[arg(long)]
        cluster: Option<String>,
    },
    /// Delete a schedule (its backups stay).
    Delete { id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum RepoCmd {
    /// Add a repository: --path DIR, or the --s3-* flags.
    Add {
        name: String,
        /// A directory on the controller.
        #[arg(long, conflicts_with_all = ["s3_endpoint", "s3_bucket"])]
        path: Option<std::path::PathBuf>,
        /// URL of an S3-compatible service, e.g. https://s3.eu-west-1.amazonaws.com.
        #[arg(long, requires_all = ["s3_bucket", "s3_access_key_file", "s3_secret_key_file"])]
        s3_endpoint: Option<String>,
        #[arg(long)]
        s3_bucket: Option<String>,
        #[arg(long)]
        s3_region: Option<String>,
        /// File holding the access key id (first line).
        #[arg(long)]
        s3_access_key_file: Option<std::path::PathBuf>,
        /// File holding the secret access key (first line).
        #[arg(long)]
        s3_secret_key_file: Option<std::path::PathBuf>,
    },
    /// List repositories.
    List,
}

/// How nines reaches the nodes' hosts: SSH (the system OpenSSH client) or locally.
#[derive(Debug, Args)]
pub struct HostArgs {
    /// SSH login user (root, or a user with passwordless sudo).
    #[arg(long, conflicts_with = "local")]
    pub ssh_user: Option<String>,
    /// SSH private key.
    #[arg(long, requires = "ssh_user")]
    pub ssh_key: Option<PathBuf>,
    /// SSH port.
    #[arg(long, requires = "ssh_user")]
    pub ssh_port: Option<u16>,
    /// The nodes run on this machine: local execution instead of SSH.
    #[arg(long)]
    pub local: bool,
}

#[derive(Debug, Args)]
pub struct NameArgs {
    /// Cluster name.
    #[arg(long)]
    pub name: String,
    /// Follow the job and exit non-zero if it fails.
    #[arg(long)]
    pub wait: bool,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Name of the new cluster.
    #[arg(long)]
    pub name: String,
    /// galera, replication or standalone.
    #[arg(long = "type")]
    pub cluster_type: String,
    /// Nodes, ADDR[:PORT] separated by commas; for replication the first is the primary.
    #[arg(long, value_delimiter = ',', required = true)]
    pub nodes: Vec<String>,
    /// Your administrator account, created on every node with all privileges.
    #[arg(long)]
    pub db_admin_user: String,
    /// File holding that account's password (first line).
    #[arg(long)]
    pub db_admin_password_file: PathBuf,
    /// Data directory template, e.g. /srv/db/{host}_{port} (default /var/lib/nines/{host}_{port}).
    #[arg(long)]
    pub datadir: Option<String>,
    #[command(flatten)]
    pub hosts: HostArgs,
    /// Semi-synchronous replication (replication clusters; the default, kept for clarity).
    #[arg(long, conflicts_with = "no_semi_sync")]
    pub semi_sync: bool,
    /// Asynchronous replication: commits do not wait for a replica, so a failover may
    /// lose the last acknowledged ones.
    #[arg(long)]
    pub no_semi_sync: bool,
    /// A configuration template (minijinja) replacing nines's default.
    #[arg(long)]
    pub config_template: Option<PathBuf>,
    /// Buffer pool size instead of the sized default, e.g. 256M.
    #[arg(long)]
    pub innodb_buffer_pool_size: Option<String>,
    /// Follow the job and exit non-zero if it fails.
    #[arg(long)]
    pub wait: bool,
}

#[derive(Debug, Args)]
pub struct NodeArgs {
    /// Cluster name.
    #[arg(long)]
    pub cluster: String,
    /// The node, ADDR[:PORT].
    #[arg(long)]
    pub node: String,
    /// Follow the job and exit non-zero if it fails.
    #[arg(long)]
    pub wait: bool,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Name to register the cluster under.
    #[arg(long)]
    pub name: String,
    /// One node of the cluster, HOST:PORT.
    #[arg(long)]
    pub seed: String,
    /// Database account nines uses (needs PROCESS, REPLICATION CLIENT, and SUPER or REPLICA MONITOR).
    #[arg(long)]
    pub db_user: String,
    /// File holding the account's password (first line).
    #[arg(long)]
    pub db_password_file: PathBuf,
    #[command(flatten)]
    pub hosts: HostArgs,
    /// Follow the job and exit non-zero if it fails.
    #[arg(long)]
    pub wait: bool,
}

#[derive(Debug, Subcommand)]
pub enum NodeCmd {
    /// List nodes with role, state, read_only and lag.
    List {
        #[arg(long)]
        cluster: Option<String>,
    },
    /// Add a node: a Galera joiner, or a replica copied from a running node.
    Add {
        #[command(flatten)]
        node: NodeArgs,
        /// The node to copy from (Galera donor, or the replica's backup source); default: nines chooses.
        #[arg(long, conflicts_with = "from_backup")]
        source: Option<String>,
        /// Replication: provision the new replica from this stored backup (an id from
        /// `nines backup list`) instead of copying a live node.
        #[arg(long)]
        from_backup: Option<i64>,
    },
    /// Remove a node: by default stop it and keep its data.
    Remove {
        #[command(flatten)]
        node: NodeArgs,
        /// Also delete its data directory and files.
        #[arg(long, conflicts_with = "unregister_only")]
        purge: bool,
        /// Only forget the node; leave its server running.
        #[arg(long)]
        unregister_only: bool,
    },
    /// Stop a node (refused for the last Galera node or a primary with replicas unless --force).
    Stop {
        #[command(flatten)]
        node: NodeArgs,
        #[arg(long)]
        force: bool,
    },
    /// Start a node and wait until it serves.
    Start(NodeArgs),
    /// Restart a node and wait until it serves again.
    Restart {
        #[command(flatten)]
        node: NodeArgs,
        #[arg(long)]
        force: bool,
    },
    /// Make a former primary (or a stray node) of a replication cluster a replica of the
    /// current primary, once it is proven to hold no transaction the cluster lacks.
    Rejoin(NodeArgs),
}

#[derive(Debug, Subcommand)]
pub enum JobCmd {
    /// List jobs, newest first.
    List {
        #[arg(long)]
        cluster: Option<String>,
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Show one job.
    Show { id: i64 },
    /// Print a job's log.
    Logs {
        id: i64,
        /// Keep printing until the job ends; exit non-zero if it failed.
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Cancel a queued or running job.
    Cancel { id: i64 },
}

pub use nines_model::api::parse_duration;

/// A duration, or `off` / `0` / `0s` for none (zero).
pub fn parse_interval_or_off(s: &str) -> Result<std::time::Duration, String> {
    match s.trim() {
        "off" | "0" | "0s" => Ok(std::time::Duration::ZERO),
        other => parse_duration(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap().as_millis(), 500);
        assert_eq!(parse_duration("15m").unwrap().as_secs(), 900);
        assert_eq!(parse_duration("7d").unwrap().as_secs(), 604800);
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5y").is_err());
        let e = parse_duration("100000000000000000000d").unwrap_err();
        assert!(e.contains("too long"), "{e}");
    }

    #[test]
    fn output_flag_is_global() {
        let a = Cli::try_parse_from(["nines", "-o", "json", "cluster", "list"]).unwrap();
        let b = Cli::try_parse_from(["nines", "cluster", "list", "-o", "json"]).unwrap();
        assert_eq!(a.output, Format::Json);
        assert_eq!(b.output, Format::Json);
    }

    #[test]
    fn galera_recover_command_parses() {
        let c = Cli::try_parse_from([
            "nines",
            "cluster",
            "recover",
            "--name",
            "gal",
            "--bootstrap-from",
            "127.0.0.11",
            "--force",
            "--wait",
        ])
        .unwrap();
        match c.command {
            Command::Cluster(ClusterCmd::Recover {
                cluster,
                bootstrap_from,
                force,
            }) => {
                assert_eq!(cluster.name, "gal");
                assert!(cluster.wait && force);
                assert_eq!(bootstrap_from.as_deref(), Some("127.0.0.11"));
            }
            other => panic!("{other:?}"),
        }
        assert!(
            Cli::try_parse_from(["nines", "cluster", "recover", "--name", "g", "--force"]).is_err(),
            "--force needs --bootstrap-from"
        );
    }

    #[test]
    fn primary_role_commands_parse() {
        let c = Cli::try_parse_from([
            "nines", "cluster", "failover", "--name", "shop", "--to", "db2", "--force", "--wait",
        ])
        .unwrap();
        match c.command {
            Command::Cluster(ClusterCmd::Failover { cluster, to, force }) => {
                assert_eq!(cluster.name, "shop");
                assert!(cluster.wait);
                assert_eq!(to.as_deref(), Some("db2"));
                assert!(force);
            }
            other => panic!("{other:?}"),
        }
        let c = Cli::try_parse_from(["nines", "cluster", "switchover", "--name", "shop"]).unwrap();
        match c.command {
            Command::Cluster(ClusterCmd::Switchover { cluster, to }) => {
                assert_eq!(cluster.name, "shop");
                assert!(!cluster.wait);
                assert_eq!(to, None);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            Cli::try_parse_from(["nines", "cluster", "switchover", "--name", "a", "--force"])
                .is_err(),
            "a switchover has no --force"
        );
        let c = Cli::try_parse_from([
            "nines",
            "node",
            "rejoin",
            "--cluster",
            "shop",
            "--node",
            "db1:3307",
        ])
        .unwrap();
        assert!(matches!(c.command, Command::Node(NodeCmd::Rejoin(ref n)) if n.node == "db1:3307"));
        assert!(Cli::try_parse_from(["nines", "node", "rejoin", "--cluster", "shop"]).is_err());
    }

    #[test]
    fn failover_history_commands_parse() {
        let c = Cli::try_parse_from(["nines", "cluster", "failovers", "--name", "shop"]).unwrap();
        match c.command {
            Command::Cluster(ClusterCmd::Failovers {
                name,
                since,
                acknowledge,
            }) => {
                assert_eq!(name, "shop");
                assert_eq!(since, "30d");
                assert!(!acknowledge);
            }
            other => panic!("{other:?}"),
        }
        let c = Cli::try_parse_from([
            "nines",
            "cluster",
            "failovers",
            "--name",
            "shop",
            "--acknowledge",
        ])
        .unwrap();
        assert!(matches!(
            c.command,
            Command::Cluster(ClusterCmd::Failovers {
                acknowledge: true,
                ..
            })
        ));
        assert!(
            Cli::try_parse_from([
                "nines",
                "cluster",
                "failovers",
                "--name",
                "shop",
                "--since",
                "7d",
                "--acknowledge",
            ])
            .is_err(),
            "--since lists, --acknowledge acknowledges: not both"
        );
        assert!(Cli::try_parse_from(["nines", "cluster", "failovers"]).is_err());
    }

    fn ha_policy(args: &[&str]) -> Result<HaPolicyArgs, clap::Error> {
        let mut all = vec!["nines", "cluster", "ha-policy", "--name", "shop"];
        all.extend_from_slice(args);
        match Cli::try_parse_from(all)?.command {
            Command::Cluster(ClusterCmd::HaPolicy(a)) => Ok(a),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ha_policy_flags_become_a_patch_in_millis() {
        let a = ha_policy(&[]).unwrap();
        assert!(a.patch().is_empty() && !a.reset, "no flag: show");
        let a = ha_policy(&[
            "--exclude-candidate",
            "db3",
            "--exclude-candidate",
            "db4:3307",
            "--prefer-candidate",
            "db2",
            "--failover-block-window",
            "10m",
            "--daily-failover-budget",
            "5",
            "--suspect-after-timeouts",
            "3",
            "--confirm-heartbeat-periods",
            "3",
            "--relay-log-apply-timeout",
            "30s",
            "--max-candidate-lag",
            "30s",
            "--max-missing-transactions",
            "none",
            "--switchover-max-lag",
            "0s",
            "--switchover-max-transaction-age",
            "20s",
            "--require-semi-sync-ack",
            "true",
            "--restart-grace",
            "10s",
            "--restart-backoff",
            "1m",
            "--max-restart-attempts",
            "4",
            "--galera-no-primary-timeout",
            "20s",
        ])
        .unwrap();
        assert_eq!(
            serde_json::Value::Object(a.patch()),
            serde_json::json!({
                "excluded_candidates": ["db3", "db4:3307"],
                "preferred_candidates": ["db2"],
                "failover_block_window": 600_000,
                "daily_failover_budget": 5,
                "suspect_after_timeouts": 3,
                "confirm_heartbeat_periods": 3,
                "relay_log_apply_timeout": 30_000,
                "max_candidate_lag": {"max_seconds_behind": 30, "max_missing_transactions": null},
                "switchover_max_lag_seconds": 0,
                "switchover_max_transaction_age": 20_000,
                "require_semi_sync_ack": true,
                "restart_grace": 10_000,
                "restart_backoff": 60_000,
                "max_restart_attempts": 4,
                "galera_no_primary_timeout": 20_000,
            })
        );
        let a = ha_policy(&["--clear-excluded-candidates", "--restart-grace", "2500ms"]).unwrap();
        assert_eq!(
            serde_json::Value::Object(a.patch()),
            serde_json::json!({"excluded_candidates": [], "restart_grace": 2500})
        );
        // Every setting flag is one --reset excludes.
        assert!(ha_policy(&["--reset"]).unwrap().reset);
        for flag in SETTING_FLAGS {
            let cmd = <Cli as clap::CommandFactory>::command();
            let cluster = cmd.find_subcommand("cluster").unwrap();
            let sub = cluster.find_subcommand("ha-policy").unwrap();
            assert!(
                sub.get_arguments().any(|a| a.get_id() == flag),
                "{flag} is not an argument"
            );
        }
        assert!(ha_policy(&["--reset", "--daily-failover-budget", "2"]).is_err());
        assert!(ha_policy(&["--reset", "--exclude-candidate", "db2"]).is_err());
        assert!(ha_policy(&["--exclude-candidate", "db2", "--clear-excluded-candidates"]).is_err());
        // Values the CLI can tell are wrong: not a duration, not whole seconds, not a count.
        assert!(ha_policy(&["--failover-block-window", "soon"]).is_err());
        assert!(ha_policy(&["--max-candidate-lag", "1500ms"]).is_err());
        assert!(ha_policy(&["--max-missing-transactions", "few"]).is_err());
        assert!(ha_policy(&["--daily-failover-budget", "-1"]).is_err());
    }

    #[test]
    fn ssh_and_local_conflict() {
        let r = Cli::try_parse_from([
            "nines",
            "cluster",
            "import",
            "--name",
            "a",
            "--seed",
            "h:1",
            "--db-user",
            "u",
            "--db-password-file",
            "f",
            "--ssh-user",
            "root",
            "--local",
        ]);
        assert!(r.is_err());
    }
}

#[derive(Debug, Subcommand)]
pub enum AlarmCmd {
    /// Active alarms, newest first (with --all, cleared ones too).
    List {
        #[arg(long)]
        cluster: Option<String>,
        /// Cleared alarms too.
        #[arg(long)]
        all: bool,
        #[arg(long, default_value_t = 200)]
        limit: i64,
    },
    /// Acknowledge an alarm: you have seen it (it stays active until its condition ends).
    Ack {
        id: i64,
        #[arg(long)]
        note: Option<String>,
    },
    /// Send no notifications for a kind of alarm (on one cluster, or all) for a time; its
    /// alarms are still raised and listed.
    Silence {
        /// The alarm kind, e.g. node_down, backup_failed, advisor.RULE.
        #[arg(long)]
        kind: String,
        #[arg(long)]
        cluster: Option<String>,
        /// For how long, e.g. 2h (at most 30d).
        #[arg(long = "for")]
        duration: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// The silences in force.
    Silences,
    /// End a silence.
    Unsilence { id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum NotifyCmd {
    /// Add a channel: --webhook URL, --slack URL, or --email TO --smtp HOST:PORT.
    Add {
        name: String,
        /// A URL that receives a JSON object per message.
        #[arg(long, conflicts_with_all = ["slack", "email"])]
        webhook: Option<String>,
        /// A Slack-compatible incoming-webhook URL.
        #[arg(long, conflicts_with = "email")]
        slack: Option<String>,
        /// Recipients, comma-separated.
        #[arg(long, requires = "smtp")]
        email: Option<String>,
        /// The SMTP server, HOST:PORT (STARTTLS is used when the server offers it).
        #[arg(long, requires = "email")]
        smtp: Option<String>,
        /// The sender address (default nines@localhost).
        #[arg(long, requires = "email")]
        from: Option<String>,
        /// A file holding a key to sign webhook bodies with (HMAC-SHA256, header
        /// X-Nines-Signature: sha256=HEX).
        #[arg(long, requires = "webhook")]
        hmac_key_file: Option<PathBuf>,
        /// The least severity sent: critical, warning or info.
        #[arg(long, default_value = "warning")]
        min_severity: String,
        /// Only this cluster's alarms.
        #[arg(long)]
        cluster: Option<String>,
    },
    /// The channels, with their latest delivery.
    List,
    /// Send a sample notification now.
    Test { name: String },
    /// Remove a channel.
    Delete { name: String },
    /// A channel's deliveries: state, attempts, last error.
    Deliveries {
        name: String,
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdvisorCmd {
    /// Every rule's latest result on a cluster, worst first.
    List {
        #[arg(long)]
        cluster: String,
    },
    /// Check every rule (user rules too) now, then list.
    Run {
        #[arg(long)]
        cluster: String,
    },
    /// Changes of the rules' verdicts, newest first.
    History {
        #[arg(long)]
        cluster: String,
        #[arg(long, default_value = "7d")]
        since: String,
    },
    /// User rules: a query returning one number, with thresholds.
    #[command(subcommand)]
    Rule(AdvisorRuleCmd),
}

#[derive(Debug, Subcommand)]
pub enum AdvisorRuleCmd {
    /// Add a rule: --sql returning one number, --warning and/or --critical thresholds.
    Add {
        #[arg(long)]
        cluster: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        sql: String,
        #[arg(long, allow_hyphen_values = true)]
        warning: Option<f64>,
        #[arg(long, allow_hyphen_values = true)]
        critical: Option<f64>,
        /// The value goes wrong downward (default: upward).
        #[arg(long)]
        below: bool,
        /// What a failing result says; {value} is the number.
        #[arg(long)]
        message: String,
        /// How often, e.g. 60s.
        #[arg(long, default_value = "60s")]
        every: String,
        /// all, primary, replicas, or ADDR[:PORT],…
        #[arg(long, default_value = "all")]
        nodes: String,
    },
    List {
        #[arg(long)]
        cluster: String,
    },
    Delete {
        #[arg(long)]
        cluster: String,
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum QueryCmd {
    /// The digests that took the most time, cluster-wide or on one node.
    Top {
        #[arg(long)]
        cluster: String,
        /// One node, ADDR[:PORT].
        #[arg(long)]
        node: Option<String>,
        /// How far back, e.g. 1h, 24h.
        #[arg(long, default_value = "1h")]
        since: String,
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Add a user with a role and a password (read from a file, at least 12 characters).
    Add {
        name: String,
        /// admin (everything, users), operator (every cluster action), viewer (read only).
        #[arg(long)]
        role: String,
        /// A file holding the password (its trailing newline is not part of it).
        #[arg(long)]
        password_file: PathBuf,
    },
    /// The users and their roles.
    List,
    /// Delete a user with their tokens and sessions.
    Delete { name: String },
    /// Set a user's password (their browser sessions end).
    Password {
        name: String,
        #[arg(long)]
        password_file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Create an API token for a user; it is printed once (only its hash is kept).
    Create {
        #[arg(long)]
        user: String,
        /// A label for the token, unique per user.
        #[arg(long)]
        name: String,
    },
    /// API tokens (never the tokens themselves).
    List {
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a token.
    Delete { id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Changes made through the API and the web UI, and sign-ins, newest first.
    List {
        /// How far back, e.g. 1h, 7d.
        #[arg(long, default_value = "30d")]
        since: String,
        #[arg(long, default_value_t = 200)]
        limit: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum LbCmd {
    /// Deploy HAProxy on a host in front of the cluster (read-write and read-only ports).
    Add {
        #[arg(long)]
        cluster: String,
        /// haproxy.
        #[arg(long = "type", default_value = "haproxy")]
        lb_type: String,
        /// The address HAProxy listens on.
        #[arg(long)]
        host: String,
        #[arg(long, default_value_t = 3306)]
        rw_port: u16,
        #[arg(long, default_value_t = 3307)]
        ro_port: u16,
        /// Prometheus and stats.
        #[arg(long, default_value_t = 9101)]
        stats_port: u16,
        #[command(flatten)]
        hosts: HostArgs,
        /// A virtual IP shared with the cluster's other load balancers that name it, kept
        /// by Keepalived on one of them (needs --keepalived).
        #[arg(long)]
        vip: Option<String>,
        /// Run Keepalived (VRRP) for --vip beside HAProxy.
        #[arg(long)]
        keepalived: bool,
        /// A replica further behind (seconds) leaves the read-only pool [default: 10].
        #[arg(long)]
        max_replica_lag: Option<u64>,
        /// The primary does not serve reads when no replica qualifies.
        #[arg(long)]
        no_ro_fallback: bool,
        #[arg(long)]
        wait: bool,
    },
    /// The cluster's load balancers with their backends' states.
    List {
        #[arg(long)]
        cluster: String,
    },
    /// Stop and start a load balancer's HAProxy (and Keepalived).
    Restart {
        #[arg(long)]
        cluster: String,
        #[arg(long)]
        host: String,
        #[arg(long)]
        wait: bool,
    },
    /// Change a load balancer's read-only pool policy (applied without a reload).
    Reconfigure {
        #[arg(long)]
        cluster: String,
        #[arg(long)]
        host: String,
        /// A replica further behind (seconds) leaves the read-only pool.
        #[arg(long)]
        max_replica_lag: Option<u64>,
        /// Whether the primary serves reads when no replica qualifies (true or false).
        #[arg(long)]
        ro_fallback: Option<bool>,
        #[arg(long)]
        wait: bool,
    },
    /// Stop and remove the load balancer on a host.
    Remove {
        #[arg(long)]
        cluster: String,
        #[arg(long)]
        host: String,
        #[arg(long)]
        wait: bool,
    },
}
