//! Backups: their methods and states, the manifest that describes one in a repository,
//! and the decisions about them — which node a backup reads from, which backup an
//! incremental builds on.
//!
//! The repository format itself (chunks, compression, encryption) is `nines-backup`'s;
//! docs/backups.md describes it for a person restoring without nines.

pub mod retention;
pub mod schedule;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::endpoint::Endpoint;
use crate::topology::{ClusterType, NodeState, Role};

/// How a backup reads the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BackupMethod {
    /// mariabackup, every page.
    Full,
    /// mariabackup, the pages changed since its parent (a full or an incremental).
    Incremental,
    /// mariadb-dump of every database in one transaction, with the GTID position.
    Logical,
}

impl BackupMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Incremental => "incremental",
            Self::Logical => "logical",
        }
    }

    /// Whether the backup is a mariabackup stream (restored with mbstream and
    /// `--prepare`), not a SQL dump.
    pub fn is_physical(self) -> bool {
        matches!(self, Self::Full | Self::Incremental)
    }
}

impl fmt::Display for BackupMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BackupMethod {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "full" => Ok(Self::Full),
            "incremental" => Ok(Self::Incremental),
            "logical" => Ok(Self::Logical),
            other => Err(format!(
                "unknown backup method `{other}` (full, incremental or logical)"
            )),
        }
    }
}

/// Where a backup is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BackupState {
    Running,
    Completed,
    Failed,
}

impl BackupState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }
}

impl fmt::Display for BackupState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BackupState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "running" => Ok(Self::Running),
            "completed" => Ok(Self::Completed),
            "failed" => Ok(Self::Failed),
            other => Err(format!("unknown backup state `{other}`")),
        }
    }
}

/// The manifest's format version; a reader refuses versions it does not know.
pub const MANIFEST_FORMAT: u32 = 1;

/// One chunk of a backup as stored: `chunks/NNNNNN` under the backup's prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkEntry {
    pub index: u32,
    /// Bytes of the backup stream in this chunk, before compression.
    pub plain_bytes: u64,
    /// Bytes of the stored object (compressed, encrypted, with its tag).
    pub stored_bytes: u64,
    /// SHA-256 of the stored object, hex.
    pub sha256: String,
}

/// Everything a restore needs to know about a backup, stored beside its chunks as
/// `manifest.json` (no row data, no key in the clear: the data key is wrapped by the
/// repository key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub backup_id: i64,
    pub cluster: String,
    pub method: BackupMethod,
    /// The node it was read from, `host:port`.
    pub node: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// The GTID position the backup is consistent at (empty when the server logs none).
    pub gtid_position: String,
    /// Incrementals: the backup they build on.
    pub parent_id: Option<i64>,
    /// Physical backups: InnoDB's checkpoint LSNs (from, to) of the copy.
    pub from_lsn: Option<u64>,
    pub to_lsn: Option<u64>,
    /// The server's version string.
    pub server_version: String,
    /// Compression of each chunk before encryption.
    pub compression: String,
    /// Encryption of each chunk.
    pub cipher: String,
    /// The backup's data key, encrypted with the repository key (hex of nonce and
    /// ciphertext with tag).
    pub wrapped_key: String,
    pub plain_bytes: u64,
    pub stored_bytes: u64,
    pub chunks: Vec<ChunkEntry>,
}

/// A node as the source choice sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceCandidate {
    pub endpoint: Endpoint,
    pub role: Role,
    pub state: NodeState,
    /// Galera: Synced in the Primary component; replicas: both threads running.
    pub serving: bool,
    /// Replicas: seconds behind their primary, when known.
    pub lag_seconds: Option<f64>,
}

/// Which node a backup reads from.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceChoice {
    pub node: Endpoint,
    /// Galera: desync the node from flow control while the backup runs.
    pub desync: bool,
    /// Why this node, for the job's log.
    pub reason: String,
}

/// Chooses the node a backup reads from: the one asked for (when it serves); else a
/// serving replica (the least behind) or a Synced Galera node, never the writer of a
/// replication cluster unless asked; a standalone server is its own source. An
/// incremental must read the node its parent was read from (LSNs are per server).
pub fn choose_source(
    cluster_type: ClusterType,
    nodes: &[SourceCandidate],
    asked: Option<&Endpoint>,
    parent_node: Option<&Endpoint>,
) -> Result<SourceChoice, String> {
    let desync = cluster_type == ClusterType::Galera;
    let usable = |n: &SourceCandidate| n.state != NodeState::Offline && n.serving;
    if let Some(p) = parent_node {
        if asked.is_some_and(|a| a != p) {
            return Err(format!(
                "an incremental backup must read the node its parent was read from ({p}); take a full backup to change nodes"
            ));
        }
        return match nodes.iter().find(|n| &n.endpoint == p) {
            Some(n) if usable(n) => Ok(SourceChoice {
                node: p.clone(),
                desync,
                reason: format!("{p} holds the parent backup's pages"),
            }),
            Some(_) => Err(format!(
                "{p}, where the parent backup was taken, does not serve now; take a full backup from another node"
            )),
            None => Err(format!(
                "{p}, where the parent backup was taken, is no longer a node of the cluster; take a full backup"
            )),
        };
    }
    if let Some(a) = asked {
        return match nodes.iter().find(|n| &n.endpoint == a) {
            Some(n) if usable(n) => Ok(SourceChoice {
                node: a.clone(),
                desync,
                reason: format!("{a} was asked for"),
            }),
            Some(n) => Err(format!(
                "{a} cannot be backed up now: it is {} and {}",
                n.state,
                if n.serving { "serving" } else { "not serving" }
            )),
            None => Err(format!("{a} is not a node of the cluster")),
        };
    }
    match cluster_type {
        ClusterType::Standalone => nodes
            .iter()
            .find(|n| usable(n))
            .map(|n| SourceChoice {
                node: n.endpoint.clone(),
                desync: false,
                reason: "the cluster's only server".into(),
            })
            .ok_or_else(|| "the server does not answer".to_string()),
        ClusterType::Replication => {
            let mut replicas: Vec<&SourceCandidate> = nodes
                .iter()
                .filter(|n| n.role == Role::Replica && usable(n))
                .collect();
            replicas.sort_by(|a, b| {
                let lag = |n: &SourceCandidate| n.lag_seconds.unwrap_or(f64::MAX);
                lag(a)
                    .total_cmp(&lag(b))
                    .then_with(|| a.endpoint.cmp(&b.endpoint))
            });
            replicas
                .first()
                .map(|n| SourceChoice {
                    node: n.endpoint.clone(),
                    desync: false,
                    reason: format!(
                        "a serving replica (the least behind{})",
                        n.lag_seconds
                            .map(|l| format!(": {l:.0} s"))
                            .unwrap_or_default()
                    ),
                })
                .ok_or_else(|| {
                    "no replica serves: nines does not back up the primary unless asked (--node PRIMARY)".to_string()
                })
        }
        ClusterType::Galera => {
            // The last serving node in address order: deterministic, and applications
            // configured with a node list usually favour the first.
            nodes
                .iter()
                .filter(|n| usable(n))
                .max_by(|a, b| a.endpoint.cmp(&b.endpoint))
                .map(|n| SourceChoice {
                    node: n.endpoint.clone(),
                    desync: true,
                    reason: "a Synced node, desynced from flow control for the backup".into(),
                })
                .ok_or_else(|| "no Galera node is Synced".to_string())
        }
    }
}

/// What an incremental builds on: the newest completed physical backup of the cluster in
/// the same repository (full or incremental). `backups` are (id, method, state, repo,
/// node), any order.
pub fn incremental_parent<'a>(
    backups: &'a [(i64, BackupMethod, BackupState, &'a str, &'a str)],
    repo: &str,
) -> Option<(i64, &'a str)> {
    backups
        .iter()
        .filter(|(_, m, s, r, _)| m.is_physical() && *s == BackupState::Completed && *r == repo)
        .max_by_key(|(id, ..)| *id)
        .map(|(id, _, _, _, node)| (*id, *node))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(n: u8) -> Endpoint {
        format!("127.0.0.{n}:3306").parse().unwrap()
    }

    fn node(n: u8, role: Role, serving: bool, lag: Option<f64>) -> SourceCandidate {
        SourceCandidate {
            endpoint: ep(n),
            role,
            state: if serving {
                NodeState::Online
            } else {
                NodeState::Offline
            },
            serving,
            lag_seconds: lag,
        }
    }

    #[test]
    fn source_choice() {
        use ClusterType::*;
        let repl = vec![
            node(1, Role::Primary, true, None),
            node(2, Role::Replica, true, Some(5.0)),
            node(3, Role::Replica, true, Some(1.0)),
        ];
        let galera = vec![
            node(1, Role::Galera, true, None),
            node(2, Role::Galera, true, None),
            node(3, Role::Galera, false, None),
        ];
        // (name, type, nodes, asked, parent, Ok(node, desync) or Err(needle))
        type Want = Result<(u8, bool), &'static str>;
        type Case = (
            &'static str,
            ClusterType,
            Vec<SourceCandidate>,
            Option<u8>,
            Option<u8>,
            Want,
        );
        let cases: Vec<Case> = vec![
            (
                "the least lagging replica",
                Replication,
                repl.clone(),
                None,
                None,
                Ok((3, false)),
            ),
            (
                "asked for the primary",
                Replication,
                repl.clone(),
                Some(1),
                None,
                Ok((1, false)),
            ),
            (
                "no serving replica: not the writer",
                Replication,
                vec![
                    node(1, Role::Primary, true, None),
                    node(2, Role::Replica, false, None),
                ],
                None,
                None,
                Err("unless asked"),
            ),
            (
                "Galera: a Synced node, desynced",
                Galera,
                galera.clone(),
                None,
                None,
                Ok((2, true)),
            ),
            (
                "Galera: asked for a dead node",
                Galera,
                galera.clone(),
                Some(3),
                None,
                Err("cannot be backed up now"),
            ),
            (
                "standalone",
                Standalone,
                vec![node(1, Role::Primary, true, None)],
                None,
                None,
                Ok((1, false)),
            ),
            (
                "a node not in the cluster",
                Replication,
                repl.clone(),
                Some(9),
                None,
                Err("not a node"),
            ),
            (
                "incremental: the parent's node",
                Replication,
                repl.clone(),
                None,
                Some(2),
                Ok((2, false)),
            ),
            (
                "incremental: another node asked",
                Replication,
                repl.clone(),
                Some(3),
                Some(2),
                Err("parent was read from"),
            ),
            (
                "incremental: the parent's node is down",
                Galera,
                galera.clone(),
                None,
                Some(3),
                Err("does not serve"),
            ),
        ];
        for (name, t, nodes, asked, parent, want) in cases {
            let got = choose_source(t, &nodes, asked.map(ep).as_ref(), parent.map(ep).as_ref());
            match (want, got) {
                (Ok((n, d)), Ok(c)) => {
                    assert_eq!((c.node, c.desync), (ep(n), d), "{name}");
                }
                (Err(needle), Err(e)) => assert!(e.contains(needle), "{name}: {e}"),
                (w, g) => panic!("{name}: wanted {w:?}, got {g:?}"),
            }
        }
    }

    #[test]
    fn incrementals_build_on_the_newest_physical_backup_of_the_repo() {
        use BackupMethod::*;
        use BackupState::*;
        let b = vec![
            (1, Full, Completed, "local", "n1"),
            (2, Incremental, Completed, "local", "n1"),
            (3, Logical, Completed, "local", "n2"),
            (4, Full, Failed, "local", "n2"),
            (5, Full, Completed, "s3", "n3"),
        ];
        assert_eq!(incremental_parent(&b, "local"), Some((2, "n1")));
        assert_eq!(incremental_parent(&b, "s3"), Some((5, "n3")));
        assert_eq!(incremental_parent(&b, "other"), None);
    }

    #[test]
    fn names_round_trip() {
        for m in [
            BackupMethod::Full,
            BackupMethod::Incremental,
            BackupMethod::Logical,
        ] {
            assert_eq!(m.as_str().parse::<BackupMethod>(), Ok(m));
        }
        for s in [
            BackupState::Running,
            BackupState::Completed,
            BackupState::Failed,
        ] {
            assert_eq!(s.as_str().parse::<BackupState>(), Ok(s));
        }
        assert!("diff".parse::<BackupMethod>().is_err());
    }
}
