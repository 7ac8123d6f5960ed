//! Loading a cluster for a job: its record, its nodes, and a [`NodeTarget`] per node
//! nines can control (deployed nodes, whose files and service it knows).

use nines_model::job::{HostAccessSpec, JobError};
use nines_model::{ClusterType, Endpoint, Role};
use nines_ops::lifecycle::NodePart;
use nines_ops::node::NodeTarget;
use nines_store::{ClusterRecord, NodeRecord};

use super::JobEnv;

/// A cluster as a job sees it.
pub(super) struct Loaded {
    pub record: ClusterRecord,
    pub nodes: Vec<NodeRecord>,
}

/// A missing cluster or node, or one nines cannot control, is a refusal (the same job
/// fails the same way until a person changes something); a store error is a failure.
pub(super) async fn load(env: &JobEnv, name: &str) -> Result<Loaded, JobError> {
    let record = env
        .store
        .get_cluster(name)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| JobError::refused(format!("cluster `{name}` not found")))?;
    let nodes = env
        .store
        .list_nodes(Some(record.id))
        .await
        .map_err(|e| e.to_string())?;
    Ok(Loaded { record, nodes })
}

impl Loaded {
    /// How nines reaches the node's host; a refusal when the cluster has none.
    fn host(
        &self,
        env: &JobEnv,
        node: &NodeRecord,
    ) -> Result<std::sync::Arc<dyn nines_access::host::HostAccess>, JobError> {
        crate::hosts::host_access(
            &self.record.host_access,
            &node.endpoint.host,
            env.settings.ssh_config.as_deref(),
        )
        .ok_or_else(|| {
            JobError::refused(format!("cluster `{}` has no host access", self.record.name))
        })
    }

    pub fn node(&self, ep: &Endpoint) -> Result<&NodeRecord, JobError> {
        self.nodes
            .iter()
            .find(|n| &n.endpoint == ep)
            .ok_or_else(|| {
                JobError::refused(format!(
                    "node {ep} is not part of cluster `{}`",
                    self.record.name
                ))
            })
    }

    /// The node's target; an error for nodes nines did not deploy.
    pub fn target(&self, env: &JobEnv, node: &NodeRecord) -> Result<NodeTarget, JobError> {
        let Some(settings) = node.settings.clone() else {
            return Err(JobError::refused(format!(
                "node {} was imported, not deployed by nines: its files and service are unknown to nines",
                node.endpoint
            )));
        };
        let host = self.host(env, node)?;
        Ok(NodeTarget::new(node.endpoint.clone(), settings, host))
    }

    /// A node to back up (or archive binlogs from, or verify a backup on): a deployed
    /// node as [`Self::target`]; an imported node through the cluster's host access, with
    /// the account it was registered with (see [`NodeTarget::imported`]).
    pub async fn backup_target(
        &self,
        env: &JobEnv,
        node: &NodeRecord,
    ) -> Result<NodeTarget, JobError> {
        if node.settings.is_some() {
            return self.target(env, node);
        }
        if self.record.host_access == HostAccessSpec::None {
            return Err(JobError::refused(format!(
                "cluster `{}` was imported without host access: backups run mariabackup or mariadb-dump on the node's host; import it again with --local or --ssh-user/--ssh-key",
                self.record.name
            )));
        }
        let host = self.host(env, node)?;
        let password = env
            .store
            .get_secret(self.record.db_password_secret)
            .await
            .map_err(|e| e.to_string())?
            .expose()
            .to_string();
        NodeTarget::imported(
            node.endpoint.clone(),
            host,
            self.record.db_user.clone(),
            password,
        )
        .await
        .map_err(|e| JobError::Failed(e.to_string()))
    }

    pub fn targets(&self, env: &JobEnv) -> Result<Vec<(NodeTarget, NodePart)>, JobError> {
        self.nodes
            .iter()
            .map(|n| Ok((self.target(env, n)?, part(&self.record, n))))
            .collect()
    }
}

/// A node's part in its cluster: for replication, the designated primary (nines keeps it
/// through failovers and switchovers; the role last seen only when none is designated),
/// a fenced node, or a replica.
pub(super) fn part(record: &ClusterRecord, node: &NodeRecord) -> NodePart {
    match record.cluster_type {
        ClusterType::Galera => NodePart::Galera,
        ClusterType::Standalone => NodePart::Standalone,
        ClusterType::Replication if node.fenced.is_some() => NodePart::Fenced,
        ClusterType::Replication => {
            let primary = match &record.primary {
                Some(p) => *p == node.endpoint,
                None => node.role == Role::Primary,
            };
            if primary {
                NodePart::Primary
            } else {
                NodePart::Replica
            }
        }
    }
}
