//! Pre-flight checks before a deploy or a node add changes anything: every host is
//! reachable, runs a supported OS with root or sudo, has (or can install) the packages;
//! every node's ports are free on its address and its directories are absent or empty
//! (or left by an earlier attempt of the same cluster) and creatable, with enough disk.
//! All problems are collected and reported together, each naming its host or node.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use nines_access::host::{
    HostAccess, HostCommand, HostFacts, PackageManager, fs, host_facts, packages, ports,
};
use nines_model::{ClusterType, Endpoint};

use crate::node::NodeTarget;
use crate::{OpError, Reporter};

/// Free bytes a data directory's file system must have.
pub const MIN_FREE_BYTES: u64 = 1 << 30;
const T: Duration = Duration::from_secs(30);

/// Name of the marker file in a node's directory: the cluster that created it.
pub const MARKER: &str = "nines-cluster";

/// Packages a node of this cluster type needs.
pub fn packages_for(cluster_type: ClusterType) -> Vec<&'static str> {
    match cluster_type {
        ClusterType::Galera => vec!["mariadb-server", "mariadb-backup", "galera-4", "socat"],
        // socat carries the mariabackup stream that provisions new replicas.
        _ => vec!["mariadb-server", "mariadb-backup", "socat"],
    }
}

/// Ports a node listens on.
pub fn ports_for(cluster_type: ClusterType, ep: &Endpoint) -> Vec<u16> {
    match cluster_type {
        ClusterType::Galera => vec![ep.port, 4567, 4568, 4444],
        _ => vec![ep.port],
    }
}

/// What pre-flight learnt of a host, for the deploy that follows.
#[derive(Debug, Clone)]
pub struct HostReady {
    pub facts: HostFacts,
    pub package_manager: PackageManager,
    /// Packages to install (missing but installable).
    pub missing: Vec<String>,
}

/// Hosts checked at once by a pre-flight.
pub const PREFLIGHT_CONCURRENCY: usize = 8;

/// Checks every host and node; returns each host's facts, or every problem found.
pub async fn preflight(
    cluster: &str,
    cluster_type: ClusterType,
    nodes: &[NodeTarget],
    extra_ports: &[u16],
    reporter: &dyn Reporter,
) -> Result<BTreeMap<String, HostReady>, OpError> {
    let mut by_host: BTreeMap<String, Vec<&NodeTarget>> = BTreeMap::new();
    for n in nodes {
        by_host.entry(n.endpoint.host.clone()).or_default().push(n);
    }
    let pkgs = packages_for(cluster_type);
    // At most PREFLIGHT_CONCURRENCY hosts at once: each check may start an ssh process.
    let permits = tokio::sync::Semaphore::new(PREFLIGHT_CONCURRENCY);
    let permits = &permits;
    let checks = by_host.iter().map(|(host, ns)| {
        let host = host.clone();
        let access = Arc::clone(&ns[0].host);
        let pkgs = pkgs.clone();
        async move {
            // The semaphore is never closed, so acquiring only waits.
            let _permit = permits.acquire().await.ok();
            let r = check_host(
                cluster,
                cluster_type,
                &host,
                access.as_ref(),
                ns,
                &pkgs,
                extra_ports,
            )
            .await;
            (host, r)
        }
    });
    let mut ready = BTreeMap::new();
    let mut problems = Vec::new();
    for (host, result) in join_all(checks).await {
        match result {
            Ok(r) => {
                reporter
                    .info(&format!(
                        "pre-flight {host}: {}, {} CPUs, {} MiB, {}{}",
                        r.facts.os.pretty_name,
                        r.facts.cpu_count,
                        r.facts.memory_total_bytes >> 20,
                        if r.facts.systemd {
                            "systemd"
                        } else {
                            "no systemd"
                        },
                        if r.missing.is_empty() {
                            String::new()
                        } else {
                            format!(", to install: {}", r.missing.join(" "))
                        }
                    ))
                    .await;
                ready.insert(host, r);
            }
            Err(mut p) => problems.append(&mut p),
        }
    }
    if problems.is_empty() {
        return Ok(ready);
    }
    for p in &problems {
        reporter.warn(&format!("pre-flight: {p}")).await;
    }
    Err(OpError::Invalid(format!(
        "pre-flight failed, nothing was changed: {}",
        problems.join("; ")
    )))
}

async fn check_host(
    cluster: &str,
    cluster_type: ClusterType,
    host: &str,
    h: &dyn HostAccess,
    nodes: &[&NodeTarget],
    pkgs: &[&str],
    extra_ports: &[u16],
) -> Result<HostReady, Vec<String>> {
    let facts = host_facts(h, &nodes[0].settings.layout.datadir, T)
        .await
        .map_err(|e| {
            vec![format!(
                "host {host} is not reachable over {}: {e}",
                h.describe()
            )]
        })?;
    let mut problems = Vec::new();
    let supported = [
        "debian",
        "ubuntu",
        "rhel",
        "centos",
        "rocky",
        "almalinux",
        "fedora",
        "ol",
    ];
    let os_ok = supported
        .iter()
        .any(|id| facts.os.id == *id || facts.os.id_like.split_whitespace().any(|l| l == *id));
    if !os_ok {
        problems.push(format!(
            "host {host}: unsupported operating system `{}` (supported: Debian, Ubuntu, RHEL and rebuilds)",
            facts.os.pretty_name
        ));
    }
    let pm = match facts.package_manager {
        Some(pm @ (PackageManager::Apt | PackageManager::Dnf | PackageManager::Yum)) => Some(pm),
        other => {
            problems.push(format!(
                "host {host}: no supported package manager (found {other:?}; need apt, dnf or yum)"
            ));
            None
        }
    };
    match h.run(&HostCommand::new("id").arg("-u").sudo(true), T).await {
        Ok(o) if o.success() && o.stdout_text().trim() == "0" => {}
        Ok(o) => problems.push(format!(
            "host {host}: needs root or passwordless sudo for `{}` ({})",
            h.describe(),
            o.stderr_text().trim()
        )),
        Err(e) => problems.push(format!("host {host}: cannot check for root: {e}")),
    }
    let mut missing = Vec::new();
    if let Some(pm) = pm {
        match packages::installed(h, pm, pkgs, T).await {
            Ok(list) => {
                let absent: Vec<&str> = list
                    .iter()
                    .filter(|(_, ok)| !ok)
                    .map(|(p, _)| p.as_str())
                    .collect();
                if !absent.is_empty() {
                    match packages::installable(h, pm, &absent, T).await {
                        Ok(cands) => {
                            for (p, cand) in cands {
                                match cand {
                                    Some(_) => missing.push(p),
                                    None => problems.push(format!(
                                        "host {host}: package {p} is not installed and cannot be installed (no candidate in the package sources)"
                                    )),
                                }
                            }
                        }
                        Err(e) => problems.push(format!("host {host}: cannot check packages: {e}")),
                    }
                }
            }
            Err(e) => problems.push(format!("host {host}: cannot check packages: {e}")),
        }
    }
    match ports::listening(h, T).await {
        Ok(listeners) => {
            for n in nodes {
                for port in ports_for(cluster_type, &n.endpoint)
                    .into_iter()
                    .chain(extra_ports.iter().copied())
                {
                    if let Some(l) = ports::port_taken(&listeners, &n.endpoint.host, port) {
                        problems.push(format!(
                            "node {}: port {port} on {} is already in use (listener {l})",
                            n.endpoint, n.endpoint.host
                        ));
                    }
                }
            }
        }
        Err(e) => problems.push(format!("host {host}: cannot list listening ports: {e}")),
    }
    for n in nodes {
        let l = &n.settings.layout;
        let ours = fs::file_exists(h, &format!("{}/{MARKER}", l.node_dir), T)
            .await
            .unwrap_or(false)
            && marker_matches(h, &l.node_dir, cluster).await;
        for (what, dir) in [
            ("data directory", &l.datadir),
            ("node directory", &l.node_dir),
        ] {
            match fs::probe_dir(h, dir, T).await {
                Ok(p) => {
                    if p.exists && !p.is_dir {
                        problems.push(format!(
                            "node {}: {what} {dir} exists and is not a directory",
                            n.endpoint
                        ));
                    } else if p.exists && !p.empty && !ours {
                        problems.push(format!(
                            "node {}: {what} {dir} exists and is not empty",
                            n.endpoint
                        ));
                    } else if !p.exists && !p.ancestor_writable {
                        problems.push(format!(
                            "node {}: cannot create {what} {dir}: {} is not writable",
                            n.endpoint, p.nearest_existing_ancestor
                        ));
                    }
                    if let Some(free) = p.free_bytes
                        && free < MIN_FREE_BYTES
                    {
                        problems.push(format!(
                            "node {}: only {} MiB free for {dir} (need {} MiB)",
                            n.endpoint,
                            free >> 20,
                            MIN_FREE_BYTES >> 20
                        ));
                    }
                }
                Err(e) => problems.push(format!("node {}: cannot check {dir}: {e}", n.endpoint)),
            }
        }
    }
    match (problems.is_empty(), pm) {
        (true, Some(package_manager)) => Ok(HostReady {
            facts,
            package_manager,
            missing,
        }),
        _ => Err(problems),
    }
}

async fn marker_matches(h: &dyn HostAccess, node_dir: &str, cluster: &str) -> bool {
    h.read_file(&format!("{node_dir}/{MARKER}"), T)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim() == cluster)
        .unwrap_or(false)
}
