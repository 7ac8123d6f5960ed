//! The server configuration file, rendered from a template (minijinja syntax) with the
//! node's settings. The default template below is what nines deploys; `cluster create
//! --config-template FILE` replaces it, with the same variables available.

use serde::Serialize;

use super::layout::NodeLayout;
use super::sizing::Sizing;
use crate::topology::ClusterType;

/// The template nines deploys unless told otherwise.
pub const DEFAULT_TEMPLATE: &str = r#"# Written by nines for cluster {{ cluster }}, node {{ address }}.
# nines rewrites this file when it changes the node; keep local changes in a template
# (nines cluster create --config-template).
[mysqld]
user                            = mysql
bind_address                    = {{ host }}
port                            = {{ port }}
datadir                         = {{ datadir }}
socket                          = {{ socket }}
pid_file                        = {{ pid_file }}
log_error                       = {{ error_log }}
tmpdir                          = {{ tmpdir }}
skip_name_resolve               = ON
max_connections                 = {{ max_connections }}

server_id                       = {{ server_id }}
report_host                     = {{ host }}
report_port                     = {{ port }}
log_bin                         = {{ datadir }}/binlog
log_slave_updates               = ON
binlog_format                   = ROW
sync_binlog                     = 1
gtid_strict_mode                = ON
gtid_domain_id                  = {{ gtid_domain_id }}
{%- if cluster_type != "galera" %}
# Every replication node starts read-only; nines makes the primary writable.
read_only                       = {{ "ON" if read_only else "OFF" }}
relay_log                       = {{ datadir }}/relay
slave_net_timeout               = 10
{%- endif %}
{%- if semi_sync %}
# Only the primary waits for acknowledgements (a replica waiting for replicas of its own
# would stall its applier): nines switches the master side on at run time on whichever
# node is the primary, so this file stays right after a failover or switchover.
rpl_semi_sync_master_enabled    = OFF
rpl_semi_sync_slave_enabled     = ON
rpl_semi_sync_master_wait_point = AFTER_SYNC
rpl_semi_sync_master_timeout    = {{ semi_sync_timeout_ms }}
# After a crash, roll back and cut from the binlog the transactions no replica had
# acknowledged (MDEV-21117): a failed-over primary then holds nothing the cluster lacks,
# and no client was told they committed. nines starts a primary that stays the primary
# (restarted in place) with --init-rpl-role=MASTER, which keeps its binlog whole.
init_rpl_role                   = SLAVE
{%- endif %}

# The query monitor reads statement digests here (nines query top).
performance_schema              = ON
performance_schema_digests_size = 5000

innodb_buffer_pool_size         = {{ innodb_buffer_pool_size }}
innodb_log_file_size            = {{ innodb_log_file_size }}
innodb_flush_log_at_trx_commit  = 1
innodb_io_capacity              = {{ innodb_io_capacity }}
{%- if cluster_type == "galera" %}

wsrep_on                        = ON
wsrep_provider                  = {{ wsrep_provider }}
wsrep_cluster_name              = {{ cluster }}
wsrep_cluster_address           = {{ cluster_address }}
wsrep_node_address              = {{ host }}
wsrep_node_name                 = {{ address }}
wsrep_sst_method                = mariabackup
wsrep_sst_receive_address       = {{ host }}:4444
wsrep_provider_options          = "gmcast.listen_addr=tcp://{{ host }}:4567;ist.recv_addr={{ host }}:4568;gcache.size={{ gcache_size }}"
wsrep_slave_threads             = {{ wsrep_slave_threads }}
wsrep_gtid_mode                 = ON
wsrep_gtid_domain_id            = {{ wsrep_gtid_domain_id }}
innodb_autoinc_lock_mode        = 2

[sst]
# The state transfer listens on (and connects from) this node's own address only.
sockopt                         = bind={{ host }}
{%- endif %}
"#;

/// Everything a template can use.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigInput {
    pub cluster: String,
    pub cluster_type: ClusterType,
    /// `host:port`.
    pub address: String,
    pub host: String,
    pub port: u16,
    pub datadir: String,
    pub socket: String,
    pub pid_file: String,
    pub error_log: String,
    /// Temporary files: the node's own directory, never shared with another node.
    pub tmpdir: String,
    pub server_id: u32,
    pub gtid_domain_id: u32,
    pub read_only: bool,
    /// The replication primary (semi-sync master side on).
    pub primary: bool,
    pub semi_sync: bool,
    pub semi_sync_timeout_ms: u64,
    pub innodb_buffer_pool_size: u64,
    pub innodb_log_file_size: u64,
    pub max_connections: u32,
    pub innodb_io_capacity: u32,
    pub gcache_size: u64,
    pub wsrep_slave_threads: u32,
    pub wsrep_provider: String,
    /// `gcomm://a:4567,b:4567,…` (Galera only).
    pub cluster_address: String,
    pub wsrep_gtid_domain_id: u32,
}

impl ConfigInput {
    /// The input for a node from its layout and sizing; Galera and semi-sync fields filled by the caller.
    pub fn new(
        cluster: &str,
        cluster_type: ClusterType,
        address: &crate::Endpoint,
        layout: &NodeLayout,
        sizing: &Sizing,
        server_id: u32,
    ) -> Self {
        Self {
            cluster: cluster.to_string(),
            cluster_type,
            address: address.to_string(),
            host: address.host.clone(),
            port: address.port,
            datadir: layout.datadir.clone(),
            socket: layout.socket.clone(),
            pid_file: layout.pid_file.clone(),
            error_log: layout.error_log.clone(),
            tmpdir: layout.node_dir.clone(),
            server_id,
            gtid_domain_id: 0,
            read_only: cluster_type == ClusterType::Replication,
            primary: false,
            semi_sync: false,
            semi_sync_timeout_ms: 10_000,
            innodb_buffer_pool_size: sizing.innodb_buffer_pool_size,
            innodb_log_file_size: sizing.innodb_log_file_size,
            max_connections: sizing.max_connections,
            innodb_io_capacity: sizing.innodb_io_capacity,
            gcache_size: sizing.gcache_size,
            wsrep_slave_threads: sizing.wsrep_slave_threads,
            wsrep_provider: "/usr/lib/galera/libgalera_smm.so".to_string(),
            cluster_address: String::new(),
            wsrep_gtid_domain_id: 1,
        }
    }
}

/// A template that does not render.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration template: {0}")]
pub struct ConfigError(pub String);

/// Longest configuration template a person may give.
pub const MAX_TEMPLATE_LEN: usize = 64 * 1024;
/// Longest configuration a template may render to.
pub const MAX_RENDERED_LEN: usize = 256 * 1024;
/// Work a template may do while rendering (minijinja's fuel: about one unit per
/// instruction); the default template uses a few hundred.
pub const RENDER_FUEL: u64 = 50_000;

/// A writer that refuses to grow past its limit, so that a template cannot fill memory.
struct Bounded {
    out: Vec<u8>,
    overflowed: bool,
}

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.out.len() + buf.len() > MAX_RENDERED_LEN {
            self.overflowed = true;
            return Err(std::io::Error::other(format!(
                "the rendered configuration would be longer than {MAX_RENDERED_LEN} bytes"
            )));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Renders `template` (or the default) with the node's input. Undefined variables are
/// errors; the template's size, its work ([`RENDER_FUEL`]) and its output
/// ([`MAX_RENDERED_LEN`]) are bounded, each limit named in the error.
pub fn render_config(template: Option<&str>, input: &ConfigInput) -> Result<String, ConfigError> {
    if let Some(t) = template
        && t.len() > MAX_TEMPLATE_LEN
    {
        return Err(ConfigError(format!(
            "the template is {} bytes long; the most allowed is {MAX_TEMPLATE_LEN}",
            t.len()
        )));
    }
    let mut env = minijinja::Environment::new();
    env.set_fuel(Some(RENDER_FUEL));
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .build()
        .map_err(|e| ConfigError(e.to_string()))?;
    env.set_syntax(syntax);
    env.add_template("my.cnf", template.unwrap_or(DEFAULT_TEMPLATE))
        .map_err(|e| ConfigError(e.to_string()))?;
    let t = env
        .get_template("my.cnf")
        .map_err(|e| ConfigError(e.to_string()))?;
    let mut out = Bounded {
        out: Vec::new(),
        overflowed: false,
    };
    t.render_captured_to(minijinja::value::Serde(input), &mut out)
        .map_err(|e| {
            let msg = match e.kind() {
                _ if out.overflowed => format!(
                    "the rendered configuration would be longer than {MAX_RENDERED_LEN} bytes"
                ),
                minijinja::ErrorKind::OutOfFuel => {
                    format!("the template does more work than allowed ({RENDER_FUEL} steps): {e}")
                }
                _ => e.to_string(),
            };
            ConfigError(msg)
        })?;
    String::from_utf8(out.out).map_err(|e| ConfigError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::{HostShare, size_for};

    fn input(t: ClusterType) -> ConfigInput {
        let ep: crate::Endpoint = "127.0.0.11:3306".parse().unwrap();
        let layout = NodeLayout::from_template("/srv/db/{host}_{port}", &ep).unwrap();
        let sizing = size_for(HostShare {
            memory_bytes: 8 << 30,
            cpus: 4,
            nodes_on_host: 1,
        });
        ConfigInput::new("shop", t, &ep, &layout, &sizing, 7)
    }

    #[test]
    fn galera_config_has_wsrep_and_no_read_only() {
        let mut i = input(ClusterType::Galera);
        i.cluster_address = "gcomm://127.0.0.11:4567,127.0.0.12:4567".into();
        let c = render_config(None, &i).unwrap();
        assert!(
            c.contains("wsrep_cluster_address           = gcomm://127.0.0.11:4567,127.0.0.12:4567")
        );
        assert!(c.contains(
            "gmcast.listen_addr=tcp://127.0.0.11:4567;ist.recv_addr=127.0.0.11:4568;gcache.size="
        ));
        assert!(c.contains("wsrep_sst_method                = mariabackup"));
        assert!(c.contains("[sst]\n"));
        assert!(c.contains("sockopt                         = bind=127.0.0.11\n"));
        assert!(c.contains("datadir                         = /srv/db/127.0.0.11_3306\n"));
        assert!(!c.contains("read_only"));
        assert!(c.contains("server_id                       = 7"));
    }

    #[test]
    fn replication_config_is_read_only_with_optional_semi_sync() {
        let mut i = input(ClusterType::Replication);
        assert!(!render_config(None, &i).unwrap().contains("semi_sync"));
        i.semi_sync = true;
        let c = render_config(None, &i).unwrap();
        assert!(c.contains("read_only                       = ON"));
        assert!(c.contains("rpl_semi_sync_master_enabled    = OFF"));
        assert!(c.contains("rpl_semi_sync_slave_enabled     = ON"));
        assert!(c.contains("init_rpl_role                   = SLAVE"));
        // Role-independent: the primary's file says the same (nines turns it on live).
        i.primary = true;
        let c = render_config(None, &i).unwrap();
        assert!(c.contains("rpl_semi_sync_master_enabled    = OFF"));
        assert!(!c.contains("wsrep"));
    }

    #[test]
    fn user_templates_render_and_unknown_variables_fail() {
        let i = input(ClusterType::Standalone);
        let c = render_config(
            Some("[mysqld]\nport={{ port }}\nbuffer={{ innodb_buffer_pool_size }}\n"),
            &i,
        )
        .unwrap();
        assert_eq!(
            c,
            format!(
                "[mysqld]\nport=3306\nbuffer={}\n",
                i.innodb_buffer_pool_size
            )
        );
        // Templates that would run away: loops (work), growth (output), sheer size.
        let e = render_config(
            Some("{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}"),
            &i,
        )
        .unwrap_err();
        assert!(e.0.contains("more work than allowed"), "{e}");
        let e = render_config(Some("{{ 'x' * 10000000 }}"), &i).unwrap_err();
        assert!(!e.0.is_empty(), "{e}");
        let e = render_config(
            Some("{% for a in range(100) %}{{ 'y' * 9000 }}{% endfor %}"),
            &i,
        )
        .unwrap_err();
        assert!(e.0.contains("longer than"), "{e}");
        let huge = "#".repeat(MAX_TEMPLATE_LEN + 1);
        assert!(
            render_config(Some(&huge), &i)
                .unwrap_err()
                .0
                .contains("bytes long")
        );
        let e = render_config(Some("x={{ no_such_thing }}"), &i).unwrap_err();
        assert!(e.0.contains("undefined"), "{e}");
        assert!(render_config(Some("{% if %}"), &i).is_err());
    }
}
