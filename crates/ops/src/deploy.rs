//! Deploying a cluster after pre-flight: packages, directories, configuration, datadir
//! initialisation, servers started in the right order, accounts created, and a check
//! that every node serves. Each step can run again after a failure: directories and
//! packages are ensured, not assumed absent; an initialised datadir is not initialised
//! twice; accounts are created if missing and given their (new) passwords.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::try_join_all;
use nines_access::host::{HostCommand, fs, packages, write_file_command};
use nines_access::server::replication::sql_str;
use nines_access::server::{Credentials, ServerConn, Timeouts};
use nines_model::ClusterType;
use nines_model::deploy::{ConfigInput, HostShare, render_config, size_for};

use crate::node::{NodeTarget, READY_TIMEOUT, SHORT};
use crate::preflight::{HostReady, MARKER};
use crate::{OpError, Reporter};

/// How long one Galera joiner may take to receive its state and sync.
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(600);
const INSTALL_TIMEOUT: Duration = Duration::from_secs(900);

/// A database account: user and password.
#[derive(Clone)]
pub struct Account {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Account({}, ***)", self.user)
    }
}

/// The accounts a deploy creates.
#[derive(Debug, Clone)]
pub struct Accounts {
    /// nines's administration account.
    pub admin: Account,
    /// The monitor's account.
    pub monitor: Account,
    /// Replicas connect with this one.
    pub replication: Account,
    /// The user's own administrator.
    pub user_admin: Account,
}

/// Everything a deploy needs.
pub struct Deploy<'a> {
    pub cluster: &'a str,
    pub cluster_type: ClusterType,
    /// For replication, the first node is the primary; for Galera, the first bootstraps.
    pub nodes: &'a [NodeTarget],
    pub hosts: &'a BTreeMap<String, HostReady>,
    pub accounts: &'a Accounts,
    pub semi_sync: bool,
    pub config_template: Option<&'a str>,
    pub innodb_buffer_pool_size: Option<u64>,
}

/// The Galera provider library where the host's packages put it.
pub fn wsrep_provider(facts: &nines_access::host::HostFacts) -> &'static str {
    match facts.package_manager {
        Some(nines_access::host::PackageManager::Apt) => "/usr/lib/galera/libgalera_smm.so",
        _ => "/usr/lib64/galera-4/libgalera_smm.so",
    }
}

/// Whether two node hosts are one machine: the same name, or both loopback addresses
/// (every 127.0.0.0/8 address, and `localhost`, is the controller's own machine), so that
/// nodes sharing a machine share its memory instead of each sizing for all of it.
pub fn same_machine(a: &str, b: &str) -> bool {
    let loopback = |h: &str| {
        h.eq_ignore_ascii_case("localhost")
            || h.parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    };
    a.eq_ignore_ascii_case(b) || (loopback(a) && loopback(b))
}

/// Renders one node's configuration file.
#[allow(clippy::too_many_arguments)]
pub fn node_config(
    cluster: &str,
    cluster_type: ClusterType,
    node: &NodeTarget,
    primary: bool,
    all: &[&NodeTarget],
    facts: &nines_access::host::HostFacts,
    semi_sync: bool,
    template: Option<&str>,
    buffer_pool: Option<u64>,
) -> Result<String, OpError> {
    let on_host = all
        .iter()
        .filter(|n| same_machine(&n.endpoint.host, &node.endpoint.host))
        .count();
    let mut sizing = size_for(HostShare {
        memory_bytes: facts.memory_total_bytes,
        cpus: facts.cpu_count,
        nodes_on_host: u32::try_from(on_host).unwrap_or(1),
    });
    if let Some(bp) = buffer_pool {
        sizing.innodb_buffer_pool_size = bp;
    }
    let mut input = ConfigInput::new(
        cluster,
        cluster_type,
        &node.endpoint,
        &node.settings.layout,
        &sizing,
        node.settings.server_id,
    );
    input.semi_sync = semi_sync;
    input.primary = primary;
    input.wsrep_provider = wsrep_provider(facts).to_string();
    input.cluster_address = format!(
        "gcomm://{}",
        all.iter()
            .map(|n| format!("{}:4567", n.endpoint.host))
            .collect::<Vec<_>>()
            .join(",")
    );
    render_config(template, &input).map_err(|e| OpError::Invalid(format!("{}: {e}", node.endpoint)))
}

/// Runs the deploy.
pub async fn deploy(d: &Deploy<'_>, reporter: &dyn Reporter) -> Result<(), OpError> {
    install_packages(d, reporter).await?;
    reporter.progress("prepare", 35).await;
    let all: Vec<&NodeTarget> = d.nodes.iter().collect();
    try_join_all(d.nodes.iter().enumerate().map(|(i, n)| {
        let all = all.clone();
        async move {
            let facts = &d
                .hosts
                .get(&n.endpoint.host)
                .ok_or_else(|| OpError::Invalid(format!("no pre-flight facts for {}", n.endpoint)))?
                .facts;
            let config = node_config(
                d.cluster,
                d.cluster_type,
                n,
                d.cluster_type == ClusterType::Replication && i == 0,
                &all,
                facts,
                d.semi_sync,
                d.config_template,
                d.innodb_buffer_pool_size,
            )?;
            // Galera joiners receive their datadir by state transfer: no initialisation.
            let init = !(d.cluster_type == ClusterType::Galera && i > 0);
            prepare_node(d.cluster, n, &config, init, reporter).await
        }
    }))
    .await?;
    check_cancel(reporter)?;
    reporter.progress("start", 50).await;
    match d.cluster_type {
        ClusterType::Galera => start_galera(d, reporter).await?,
        ClusterType::Replication => start_replication(d, reporter).await?,
        ClusterType::Standalone => {
            let n = &d.nodes[0];
            n.start(&[]).await?;
            n.wait_ready(READY_TIMEOUT).await?;
            n.sql(&local_cleanup_sql()).await?;
            n.sql(&accounts_sql(d.accounts, false)).await?;
            reporter.info(&format!("{} started", n.endpoint)).await;
        }
    }
    reporter.progress("verify", 90).await;
    verify(d, reporter).await
}

fn check_cancel(reporter: &dyn Reporter) -> Result<(), OpError> {
    if reporter.cancellation().is_cancelled() {
        Err(OpError::Cancelled)
    } else {
        Ok(())
    }
}

async fn install_packages(d: &Deploy<'_>, reporter: &dyn Reporter) -> Result<(), OpError> {
    let mut jobs = Vec::new();
    for (host, ready) in d.hosts {
        if ready.missing.is_empty() {
            continue;
        }
        let Some(node) = d.nodes.iter().find(|n| &n.endpoint.host == host) else {
            continue;
        };
        reporter
            .info(&format!("{host}: installing {}", ready.missing.join(" ")))
            .await;
        let h = node.host.clone();
        let pm = ready.package_manager;
        let missing = ready.missing.clone();
        let host = host.clone();
        jobs.push(async move {
            let names: Vec<&str> = missing.iter().map(String::as_str).collect();
            packages::install(h.as_ref(), pm, &names, INSTALL_TIMEOUT)
                .await
                .map_err(|e| OpError::Invalid(format!("{host}: installing packages failed: {e}")))
        });
    }
    if jobs.is_empty() {
        reporter
            .info("packages already installed on every host")
            .await;
    }
    try_join_all(jobs).await?;
    Ok(())
}

/// Directories, marker, configuration and (unless a joiner) an initialised datadir.
pub async fn prepare_node(
    cluster: &str,
    n: &NodeTarget,
    config: &str,
    init: bool,
    reporter: &dyn Reporter,
) -> Result<(), OpError> {
    let h = n.host.as_ref();
    let l = &n.settings.layout;
    let err = |what: &str, e: nines_access::host::HostError| {
        OpError::Invalid(format!("{}: {what}: {e}", n.endpoint))
    };
    fs::ensure_dir(h, &l.node_dir, Some("mysql:mysql"), 0o750, SHORT)
        .await
        .map_err(|e| err("creating the node directory", e))?;
    fs::ensure_dir(h, &l.datadir, Some("mysql:mysql"), 0o750, SHORT)
        .await
        .map_err(|e| err("creating the data directory", e))?;
    h.run(
        &write_file_command(
            &format!("{}/{MARKER}", l.node_dir),
            cluster.as_bytes(),
            0o640,
        )
        .sudo(true),
        SHORT,
    )
    .await
    .and_then(|o| o.check())
    .map_err(|e| err("writing the marker file", e))?;
    write_config(n, config).await?;
    if init {
        // Our marker, written only after a complete initialisation: a datadir an earlier
        // attempt left half-initialised (pre-flight accepted it because the node
        // directory names this cluster) is emptied and initialised again.
        let done = format!("{}/initialized", l.node_dir);
        let initialised = fs::file_exists(h, &done, SHORT)
            .await
            .map_err(|e| err("checking the data directory", e))?;
        if initialised {
            reporter
                .info(&format!(
                    "{}: data directory already initialised",
                    n.endpoint
                ))
                .await;
        } else {
            n.run(
                HostCommand::shell("find \"$1\" -mindepth 1 -delete").arg(&l.datadir),
                SHORT,
            )
            .await?;
            let installed = n
                .run(
                    HostCommand::new("mariadb-install-db")
                        .arg(format!("--defaults-file={}", l.config_file))
                        .arg("--user=mysql")
                        .arg("--auth-root-authentication-method=socket")
                        .arg("--skip-test-db"),
                    Duration::from_secs(300),
                )
                .await;
            if let Err(e) = installed {
                // The server writes why to its error log, not to the tool's output.
                let log = n
                    .run(
                        HostCommand::new("tail")
                            .arg("-n")
                            .arg("30")
                            .arg(&l.error_log),
                        SHORT,
                    )
                    .await
                    .unwrap_or_default();
                let why = crate::node::failure_summary(&log, "");
                return Err(OpError::Invalid(format!(
                    "{}: initialising the data directory failed: {e}{}",
                    n.endpoint,
                    if why.is_empty() {
                        String::new()
                    } else {
                        format!("; {}: {why}", l.error_log)
                    }
                )));
            }
            h.run(&write_file_command(&done, b"", 0o640).sudo(true), SHORT)
                .await
                .and_then(|o| o.check())
                .map_err(|e| err("writing the initialisation marker", e))?;
        }
    }
    reporter
        .info(&format!(
            "{}: prepared {} (config {})",
            n.endpoint, l.datadir, l.config_file
        ))
        .await;
    Ok(())
}

/// Writes a node's configuration file: owned by root, readable by the mysql group (the
/// server's state transfer and backup tools read it as mysql).
pub async fn write_config(n: &NodeTarget, config: &str) -> Result<(), OpError> {
    let path = &n.settings.layout.config_file;
    n.host
        .run(
            &write_file_command(path, config.as_bytes(), 0o640).sudo(true),
            SHORT,
        )
        .await
        .and_then(|o| o.check())
        .map_err(|e| OpError::Invalid(format!("{}: writing the configuration: {e}", n.endpoint)))?;
    n.run(HostCommand::new("chown").arg("root:mysql").arg(path), SHORT)
        .await?;
    Ok(())
}

/// Removes anonymous accounts on this node only (not replicated).
fn local_cleanup_sql() -> String {
    "SET SESSION sql_log_bin=0; DELETE FROM mysql.global_priv WHERE User=''; FLUSH PRIVILEGES;"
        .to_string()
}

/// Creates (or re-passwords) nines's accounts and the user's admin.
pub fn accounts_sql(a: &Accounts, galera: bool) -> String {
    let mut s = String::new();
    let mut user = |acc: &Account, grants: &str| {
        // Quoted and escaped even though the API admits no quote or backslash in either.
        s.push_str(&format!(
            "CREATE USER IF NOT EXISTS {u}@'%' IDENTIFIED BY {p};\
             ALTER USER {u}@'%' IDENTIFIED BY {p};\
             GRANT {grants} ON *.* TO {u}@'%';",
            u = sql_str(&acc.user),
            p = sql_str(&acc.password)
        ));
    };
    user(&a.admin, "ALL PRIVILEGES");
    user(&a.monitor, "PROCESS, SLAVE MONITOR, BINLOG MONITOR");
    user(&a.replication, "REPLICATION SLAVE, SLAVE MONITOR");
    user(&a.user_admin, "ALL PRIVILEGES");
    s.push_str(&format!(
        "GRANT ALL PRIVILEGES ON *.* TO {}@'%' WITH GRANT OPTION;GRANT ALL PRIVILEGES ON *.* TO {}@'%' WITH GRANT OPTION;",
        sql_str(&a.admin.user),
        sql_str(&a.user_admin.user)
    ));
    if galera {
        // Galera's mariabackup state transfer authenticates as the OS user mysql over the socket.
        s.push_str(
            "CREATE USER IF NOT EXISTS 'mysql'@'localhost' IDENTIFIED VIA unix_socket;\
             GRANT RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR ON *.* TO 'mysql'@'localhost';",
        );
    }
    s
}

async fn start_galera(d: &Deploy<'_>, reporter: &dyn Reporter) -> Result<(), OpError> {
    let first = &d.nodes[0];
    reporter
        .info(&format!(
            "{}: bootstrapping a new Galera cluster",
            first.endpoint
        ))
        .await;
    first.start(&["--wsrep-new-cluster"]).await?;
    first.wait_ready(READY_TIMEOUT).await?;
    first.wait_synced(READY_TIMEOUT, reporter).await?;
    first.sql(&local_cleanup_sql()).await?;
    first.sql(&accounts_sql(d.accounts, true)).await?;
    let n = d.nodes.len();
    for (i, node) in d.nodes.iter().enumerate().skip(1) {
        check_cancel(reporter)?;
        reporter
            .progress("join", u8::try_from(50 + 35 * i / n).unwrap_or(85))
            .await;
        reporter
            .info(&format!(
                "{}: joining (state transfer by mariabackup)",
                node.endpoint
            ))
            .await;
        if !node.is_running().await? {
            crate::galera::start_joiner(node, &[], d.nodes, reporter).await?;
        }
        node.wait_synced(JOIN_TIMEOUT, reporter).await?;
        reporter.info(&format!("{}: Synced", node.endpoint)).await;
    }
    let size = first.status_var("wsrep_cluster_size").await?;
    if size != n.to_string() {
        return Err(OpError::Invalid(format!(
            "wsrep_cluster_size is {size} on {}, expected {n}",
            first.endpoint
        )));
    }
    Ok(())
}

async fn start_replication(d: &Deploy<'_>, reporter: &dyn Reporter) -> Result<(), OpError> {
    try_join_all(d.nodes.iter().map(|n| async move {
        if !n.is_running().await? {
            n.start(&[]).await?;
        }
        n.wait_ready(READY_TIMEOUT).await?;
        n.sql(&local_cleanup_sql()).await
    }))
    .await?;
    let primary = &d.nodes[0];
    // No replica is connected yet: a semi-sync primary would wait out its timeout on every
    // write. Acknowledgements are switched on once the replicas replicate.
    if d.semi_sync {
        primary
            .sql("SET GLOBAL rpl_semi_sync_master_enabled=OFF")
            .await?;
    }
    primary.sql(&accounts_sql(d.accounts, false)).await?;
    primary.sql("SET GLOBAL read_only=OFF").await?;
    reporter
        .info(&format!("{}: primary, writable", primary.endpoint))
        .await;
    for r in &d.nodes[1..] {
        r.sql(&change_master_sql(primary, &d.accounts.replication))
            .await?;
        reporter
            .info(&format!(
                "{}: replicating from {}",
                r.endpoint, primary.endpoint
            ))
            .await;
    }
    for r in &d.nodes[1..] {
        wait_replicating(r, Duration::from_secs(120)).await?;
    }
    if d.semi_sync {
        primary
            .sql("SET GLOBAL rpl_semi_sync_master_enabled=ON")
            .await?;
        reporter
            .info(&format!(
                "{}: semi-synchronous replication on",
                primary.endpoint
            ))
            .await;
    }
    Ok(())
}

/// Points a replica at a source with GTID auto-position and starts replication (every
/// value quoted as a SQL string literal).
pub fn change_master_sql(source: &NodeTarget, repl: &Account) -> String {
    let account = nines_access::server::Credentials {
        user: repl.user.clone(),
        password: repl.password.clone(),
    };
    nines_access::server::replication::Dialect(nines_model::replication::Flavor::MariaDb)
        .change_source(&source.endpoint, Some(&account), false)
}

/// Polls until the replica's IO and SQL threads both run.
pub async fn wait_replicating(r: &NodeTarget, timeout: Duration) -> Result<(), OpError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let running = r.status_var("Slave_running").await.unwrap_or_default();
        if running == "ON" {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            let err = r.sql("SHOW SLAVE STATUS\\G").await.unwrap_or_default();
            return Err(OpError::Invalid(format!(
                "{}: replication not running after {timeout:?} {}",
                r.endpoint,
                err.lines()
                    .map(str::trim)
                    .filter(|l| l.starts_with("Last_IO_Error") || l.starts_with("Last_SQL_Error"))
                    .collect::<Vec<_>>()
                    .join("; ")
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every node answers over TCP with nines's admin account.
async fn verify(d: &Deploy<'_>, reporter: &dyn Reporter) -> Result<(), OpError> {
    let creds = Credentials {
        user: d.accounts.admin.user.clone(),
        password: d.accounts.admin.password.clone(),
    };
    let timeouts = Timeouts {
        connect: Duration::from_secs(5),
        query: Duration::from_secs(10),
    };
    for n in d.nodes {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            match ServerConn::connect(&n.endpoint, &creds, timeouts).await {
                Ok(mut c) => {
                    c.query_rows("SELECT 1").await?;
                    c.close().await;
                    break;
                }
                Err(e) if tokio::time::Instant::now() >= deadline => return Err(e.into()),
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
    reporter
        .info(&format!("all {} nodes answer over TCP", d.nodes.len()))
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_nodes_share_one_machine() {
        assert!(same_machine("127.0.0.11", "127.0.0.12"));
        assert!(same_machine("localhost", "127.0.0.1"));
        assert!(same_machine("::1", "127.0.0.9"));
        assert!(same_machine("DB1", "db1"));
        assert!(!same_machine("10.0.0.1", "10.0.0.2"));
        assert!(!same_machine("127.0.0.1", "10.0.0.1"));
    }

    #[test]
    fn account_sql_quotes_names_and_passwords() {
        let acc = |u: &str, p: &str| Account {
            user: u.into(),
            password: p.into(),
        };
        let a = Accounts {
            admin: acc("nines_admin", "a'b\\c"),
            monitor: acc("nines_monitor", "m"),
            replication: acc("nines_repl", "r"),
            user_admin: acc("o'x", "p"),
        };
        let sql = accounts_sql(&a, false);
        assert!(sql.contains("IDENTIFIED BY 'a''b\\\\c'"), "{sql}");
        assert!(sql.contains("TO 'o''x'@'%' WITH GRANT OPTION"), "{sql}");
        assert!(!sql.contains("'a'b"), "{sql}");
    }
}
