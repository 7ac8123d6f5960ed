//! A real Galera cluster of MariaDB nodes.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

use crate::lease::lease_addresses;
use crate::mariadb::{GaleraOptions, MariaDbServer, ServerOptions};
use crate::util::{next_counter, random_password, wait_until};

/// How long a cluster gets to have every node Synced.
const SYNC_TIMEOUT: Duration = Duration::from_secs(90);

/// A Galera cluster of `n` real MariaDB nodes on distinct addresses, each
/// with the standard ports (3306, 4567 group communication, 4568 IST, 4444
/// rsync SST).
///
/// The first node bootstraps the cluster (`--wsrep-new-cluster`); the others
/// join it with a state transfer. All nodes share the admin account (created
/// once, copied by SST). Dropping the cluster kills all nodes.
#[derive(Debug)]
pub struct GaleraCluster {
    nodes: Vec<MariaDbServer>,
    cluster_name: String,
}

impl GaleraCluster {
    /// Starts an `n`-node cluster (`n >= 1`) and waits until every node is
    /// `Synced` with `wsrep_cluster_size = n`.
    pub async fn start(n: usize) -> Result<GaleraCluster> {
        if n == 0 {
            bail!("a Galera cluster needs at least one node");
        }
        let leases = tokio::task::spawn_blocking(move || lease_addresses(n))
            .await
            .context("join lease task")??;
        let addresses: Vec<String> = leases.iter().map(|l| l.addr()).collect();
        let cluster_name = format!("nines-test-{}-{}", std::process::id(), next_counter());
        let password = random_password(20);
        let opts: Vec<ServerOptions> = leases
            .into_iter()
            .enumerate()
            .map(|(i, lease)| {
                ServerOptions::new()
                    .lease(lease)
                    .password(password.clone())
                    .galera(GaleraOptions {
                        cluster_name: cluster_name.clone(),
                        cluster_addresses: addresses.clone(),
                        bootstrap: i == 0,
                    })
            })
            .collect();
        let mut opts = opts.into_iter();
        let first_opts = opts.next().context("no node options")?;
        let first = MariaDbServer::start(first_opts).await?;
        let mut cluster = GaleraCluster {
            nodes: vec![first],
            cluster_name,
        };
        cluster
            .wait_node_synced(0, 1, SYNC_TIMEOUT)
            .await
            .context("bootstrapping the first Galera node")?;
        // Joiners start one after the other: joining together makes the
        // group membership churn for several seconds (slower overall).
        for (k, o) in opts.enumerate() {
            let node = MariaDbServer::start(o).await?;
            cluster.nodes.push(node);
            cluster.wait_node_synced(k + 1, k + 2, SYNC_TIMEOUT).await?;
        }
        cluster.wait_synced(n, SYNC_TIMEOUT).await?;
        Ok(cluster)
    }

    /// All nodes, in start order (`nodes()[0]` bootstrapped the cluster).
    pub fn nodes(&self) -> &[MariaDbServer] {
        &self.nodes
    }

    /// Node `i`.
    pub fn node(&self, i: usize) -> &MariaDbServer {
        &self.nodes[i]
    }

    /// The nodes' addresses.
    pub fn addresses(&self) -> Vec<String> {
        self.nodes.iter().map(MariaDbServer::address).collect()
    }

    /// `wsrep_cluster_name`.
    pub fn cluster_name(&self) -> &str {
        &self.cluster_name
    }

    /// Waits until every *running* node is `Synced`, sees
    /// `wsrep_cluster_size = size` and is in the primary component.
    pub async fn wait_synced(&self, size: usize, timeout: Duration) -> Result<()> {
        for i in 0..self.nodes.len() {
            if self.nodes[i].is_running() {
                self.wait_node_synced(i, size, timeout).await?;
            }
        }
        Ok(())
    }

    /// Waits until node `i` is `Synced`, in the primary component, with
    /// `wsrep_cluster_size = size`.
    pub async fn wait_node_synced(&self, i: usize, size: usize, timeout: Duration) -> Result<()> {
        let node = &self.nodes[i];
        wait_until(
            timeout,
            &format!("{} to be Synced in a cluster of {size}", node.endpoint()),
            || async move {
                let state = node.global_status("wsrep_local_state_comment").await?;
                let got = node.global_status("wsrep_cluster_size").await?;
                let status = node.global_status("wsrep_cluster_status").await?;
                let ok = state.as_deref() == Some("Synced")
                    && got.as_deref() == Some(size.to_string().as_str())
                    && status.as_deref() == Some("Primary");
                if ok {
                    Ok(Some(()))
                } else {
                    Err(anyhow!(
                        "wsrep_local_state_comment={state:?} wsrep_cluster_size={got:?} wsrep_cluster_status={status:?}"
                    ))
                }
            },
        )
        .await
        .with_context(|| {
            format!(
                "--- {} ---\n{}",
                node.error_log().display(),
                crate::util::tail_file(&node.error_log(), 30)
            )
        })
    }

    /// Number of nodes whose mariadbd is running.
    pub fn running_nodes(&self) -> usize {
        self.nodes.iter().filter(|n| n.is_running()).count()
    }

    /// Starts a stopped or killed node again (no `--wsrep-new-cluster`, so it
    /// rejoins by IST or SST) and waits until all running nodes are Synced.
    pub async fn start_node_again(&self, i: usize) -> Result<()> {
        self.nodes[i].start_again().await?;
        self.wait_synced(self.running_nodes(), SYNC_TIMEOUT).await
    }

    /// Bootstraps a new primary component from node `i` after the whole
    /// cluster went down: sets `safe_to_bootstrap: 1` in its `grastate.dat`,
    /// starts it with `--wsrep-new-cluster` and waits until it is Synced.
    /// Start the other nodes afterwards with [`start_node_again`](Self::start_node_again).
    pub async fn bootstrap_node_again(&self, i: usize) -> Result<()> {
        let node = &self.nodes[i];
        let grastate = node.datadir().join("grastate.dat");
        if let Ok(text) = std::fs::read_to_string(&grastate) {
            let text = text.replace("safe_to_bootstrap: 0", "safe_to_bootstrap: 1");
            std::fs::write(&grastate, text)
                .with_context(|| format!("writing {}", grastate.display()))?;
        }
        node.start_again_with_args(&["--wsrep-new-cluster"]).await?;
        self.wait_node_synced(i, 1, SYNC_TIMEOUT).await
    }
}
