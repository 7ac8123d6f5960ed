//! Builds the host transport of a cluster's node from the cluster's host access setting.

use std::sync::Arc;
use std::time::Duration;

use nines_access::host::{HostAccess, LocalHost, SshHost, SshTarget};
use nines_model::job::HostAccessSpec;

/// The transport to `host` (a node's host name or address), or None without host access.
pub fn host_access(
    spec: &HostAccessSpec,
    host: &str,
    ssh_config: Option<&std::path::Path>,
) -> Option<Arc<dyn HostAccess>> {
    match spec {
        HostAccessSpec::None => None,
        HostAccessSpec::Local => Some(Arc::new(LocalHost::new())),
        HostAccessSpec::Ssh {
            user,
            key_path,
            port,
        } => {
            let mut t = SshTarget::new(host.to_string(), user.clone());
            t.port = *port;
            t.key_path = key_path.as_ref().map(Into::into);
            t.config_file = ssh_config.map(Into::into);
            t.connect_timeout = Duration::from_secs(5);
            Some(Arc::new(SshHost::new(t)))
        }
    }
}
