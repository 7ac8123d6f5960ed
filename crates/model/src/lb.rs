//! Load balancers in front of a cluster: which node each HAProxy backend server should
//! be in (`up`, `down`, `drain`, `maint`) for the read-write and read-only pools, decided
//! from what the monitor sees; and HAProxy's configuration file, rendered from the same
//! decision so that a HAProxy restarted without the controller starts right.
//!
//! - Replication: the read-write pool sends to the designated primary only, and only while
//!   it is writable; every other node is `maint` there (never a read-only node). The
//!   read-only pool takes the online replicas within the lag limit; the primary serves
//!   reads only when no replica does (unless that fallback is off).
//! - Galera: one writer at a time (the current one while it is Synced, else the first
//!   Synced member in the configuration's order — the one HAProxy itself would pick among
//!   its backups), the other Synced members ready as backups; the read-only pool takes
//!   every Synced member of the Primary component. A donor or desynced node leaves both.
//! - A node in maintenance is drained (its sessions finish, no new ones); a node that does
//!   not answer is `down`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{ClusterType, NodeState, Role};

/// Where a load balancer stands: being deployed, running (nines keeps it pointed at the
/// right nodes), or failed (its deploy failed; `lb remove` cleans up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LbState {
    Deploying,
    Running,
    Failed,
}

crate::topology::str_enum!(LbState { Deploying => "deploying", Running => "running", Failed => "failed" });

/// A listener's pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Pool {
    Rw,
    Ro,
}

impl Pool {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rw => "rw",
            Self::Ro => "ro",
        }
    }
}

impl fmt::Display for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A backend server's state in HAProxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BackendState {
    /// Takes connections (HAProxy `ready`).
    Up,
    /// Does not answer: HAProxy's checks say so too.
    Down,
    /// Keeps its sessions, takes no new ones (maintenance).
    Drain,
    /// Out of the pool (administratively down).
    Maint,
}

impl BackendState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Down => "down",
            Self::Drain => "drain",
            Self::Maint => "maint",
        }
    }

    /// The state to set through the runtime API (`set server B/S state …`); `down` is
    /// HAProxy's checks' to find, so nines leaves the server ready for them.
    pub fn runtime(self) -> &'static str {
        match self {
            Self::Up | Self::Down => "ready",
            Self::Drain => "drain",
            Self::Maint => "maint",
        }
    }
}

impl fmt::Display for BackendState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BackendState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "up" => Ok(Self::Up),
            "down" => Ok(Self::Down),
            "drain" => Ok(Self::Drain),
            "maint" => Ok(Self::Maint),
            other => Err(format!("`{other}` is not a backend state")),
        }
    }
}

/// What an operator can set per load balancer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LbPolicy {
    /// A replica further behind than this leaves the read-only pool.
    pub max_replica_lag_seconds: u64,
    /// The primary serves the read-only pool when no replica qualifies.
    pub ro_fallback_to_primary: bool,
}

impl Default for LbPolicy {
    fn default() -> Self {
        Self {
            max_replica_lag_seconds: 10,
            ro_fallback_to_primary: true,
        }
    }
}

/// One node as the load balancer decisions see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbNode {
    /// host:port.
    pub address: String,
    pub role: Role,
    /// The monitor's state; None until probed.
    pub state: Option<NodeState>,
    /// read_only as last sampled (None: not answering).
    pub read_only: Option<bool>,
    /// Seconds behind its source (replicas), as last sampled.
    pub lag_seconds: Option<u64>,
    /// Galera: Synced in a Primary component.
    pub synced: bool,
    pub in_maintenance: bool,
    /// Fenced (an old primary waiting for its rejoin).
    pub fenced: bool,
    /// The replication cluster's designated primary.
    pub designated_primary: bool,
}

impl LbNode {
    fn answers(&self) -> bool {
        matches!(self.state, Some(NodeState::Online | NodeState::Degraded))
    }
}

/// One backend server's decided state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    pub address: String,
    pub pool: Pool,
    pub state: BackendState,
    /// Galera read-write pool: a backup (used by HAProxy only when the writer is down).
    pub backup: bool,
    /// Why, for lists and events.
    pub reason: String,
}

/// The decided pools of a cluster, and its Galera writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Every node in both pools, in the nodes' order.
    pub backends: Vec<Backend>,
    /// Galera: the node the read-write pool sends to.
    pub writer: Option<String>,
}

/// Decides both pools (see the module documentation). `writer`: the Galera writer the
/// load balancer has now; `order`: the nodes as the configuration lists them.
pub fn decide(
    cluster_type: ClusterType,
    nodes: &[LbNode],
    writer: Option<&str>,
    policy: LbPolicy,
) -> Decision {
    match cluster_type {
        ClusterType::Galera => galera(nodes, writer),
        _ => replication(nodes, policy),
    }
}

fn b(n: &LbNode, pool: Pool, state: BackendState, reason: &str) -> Backend {
    Backend {
        address: n.address.clone(),
        pool,
        state,
        backup: false,
        reason: reason.to_string(),
    }
}

fn replication(nodes: &[LbNode], policy: LbPolicy) -> Decision {
    use BackendState::*;
    let mut out = Vec::new();
    for n in nodes {
        let rw = if !n.designated_primary {
            b(n, Pool::Rw, Maint, "not the primary")
        } else if !n.answers() {
            b(n, Pool::Rw, Down, "the primary does not answer")
        } else if n.fenced {
            b(n, Pool::Rw, Maint, "fenced")
        } else if n.read_only != Some(false) {
            b(n, Pool::Rw, Maint, "the primary is read-only")
        } else if n.in_maintenance {
            b(n, Pool::Rw, Drain, "in maintenance")
        } else {
            b(n, Pool::Rw, Up, "the writable primary")
        };
        out.push(rw);
    }
    let replica_ok = |n: &LbNode| {
        n.role == Role::Replica
            && !n.designated_primary
            && n.state == Some(NodeState::Online)
            && !n.fenced
            && !n.in_maintenance
            && n.lag_seconds
                .is_some_and(|l| l <= policy.max_replica_lag_seconds)
    };
    let any_replica = nodes.iter().any(replica_ok);
    for n in nodes {
        let ro = if n.designated_primary {
            let primary_up = out
                .iter()
                .any(|x| x.address == n.address && x.pool == Pool::Rw && x.state == Up);
            if primary_up && !any_replica && policy.ro_fallback_to_primary {
                b(
                    n,
                    Pool::Ro,
                    Up,
                    "no replica qualifies: the primary serves reads",
                )
            } else if primary_up {
                b(n, Pool::Ro, Maint, "replicas serve reads")
            } else {
                b(n, Pool::Ro, Maint, "the primary is not writable here")
            }
        } else if replica_ok(n) {
            b(n, Pool::Ro, Up, "an online replica within the lag limit")
        } else if !n.answers() {
            b(n, Pool::Ro, Down, "does not answer")
        } else if n.in_maintenance {
            b(n, Pool::Ro, Drain, "in maintenance")
        } else if n.fenced {
            b(n, Pool::Ro, Maint, "fenced")
        } else if n
            .lag_seconds
            .is_none_or(|l| l > policy.max_replica_lag_seconds)
        {
            b(
                n,
                Pool::Ro,
                Maint,
                "behind its source beyond the lag limit, or not replicating",
            )
        } else {
            b(n, Pool::Ro, Maint, "degraded")
        };
        out.push(ro);
    }
    Decision {
        backends: out,
        writer: None,
    }
}

fn galera(nodes: &[LbNode], writer: Option<&str>) -> Decision {
    use BackendState::*;
    let serves = |n: &LbNode| n.answers() && n.synced && !n.in_maintenance;
    let chosen = writer
        .and_then(|w| nodes.iter().find(|n| n.address == w && serves(n)))
        .or_else(|| nodes.iter().find(|n| serves(n)))
        .map(|n| n.address.clone());
    let mut out = Vec::new();
    for n in nodes {
        let is_writer = chosen.as_deref() == Some(n.address.as_str());
        let mut rw = if is_writer {
            b(n, Pool::Rw, Up, "the writer")
        } else if !n.answers() {
            b(n, Pool::Rw, Down, "does not answer")
        } else if n.in_maintenance {
            b(n, Pool::Rw, Drain, "in maintenance")
        } else if n.synced {
            b(
                n,
                Pool::Rw,
                Up,
                "a backup writer (used only if the writer fails)",
            )
        } else {
            b(
                n,
                Pool::Rw,
                Maint,
                "not Synced (donor, desynced or joining)",
            )
        };
        rw.backup = !is_writer;
        out.push(rw);
    }
    for n in nodes {
        let ro = if serves(n) {
            b(n, Pool::Ro, Up, "Synced")
        } else if !n.answers() {
            b(n, Pool::Ro, Down, "does not answer")
        } else if n.in_maintenance {
            b(n, Pool::Ro, Drain, "in maintenance")
        } else {
            b(
                n,
                Pool::Ro,
                Maint,
                "not Synced (donor, desynced or joining)",
            )
        };
        out.push(ro);
    }
    Decision {
        backends: out,
        writer: chosen,
    }
}

/// Everything HAProxy's configuration needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaproxyConfig {
    pub cluster: String,
    /// The address HAProxy listens on.
    pub host: String,
    pub rw_port: u16,
    pub ro_port: u16,
    /// The Prometheus and stats endpoint's port (on `host`).
    pub stats_port: u16,
    /// The runtime API's unix socket.
    pub socket: String,
    pub pid_file: String,
    /// The virtual IP this HAProxy also listens on (Keepalived moves it between peers;
    /// `transparent` lets HAProxy bind it while another peer holds it).
    pub vip: Option<String>,
    /// The pools as decided, in order.
    pub decision: Decision,
}

/// A backend server's name in HAProxy: the node's address with `:` and `.` made safe.
pub fn server_name(address: &str) -> String {
    address
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// The backend's name of a pool.
pub fn backend_name(pool: Pool) -> &'static str {
    match pool {
        Pool::Rw => "nines_rw",
        Pool::Ro => "nines_ro",
    }
}

/// HAProxy's configuration file. Servers carry their decided state (`disabled` for
/// `maint`, weight 0 for `drain`), health checks every second (the backstop when the
/// controller is away), and the Galera read-write pool's non-writers are `backup`.
pub fn render(c: &HaproxyConfig) -> String {
    let mut s = format!(
        "# Written by nines for cluster {cluster}; nines rewrites it on every change and\n\
         # changes the running HAProxy through its runtime API ({socket}).\n\
         global\n\
         \x20   stats socket {socket} mode 600 level admin\n\
         \x20   pidfile {pid}\n\
         \x20   maxconn 8192\n\
         \x20   log stderr format short local0 notice\n\
         \n\
         defaults\n\
         \x20   mode tcp\n\
         \x20   log global\n\
         \x20   timeout connect 3s\n\
         \x20   timeout client 8h\n\
         \x20   timeout server 8h\n\
         \x20   timeout check 2s\n\
         \x20   default-server inter 1s fall 2 rise 2 on-marked-down shutdown-sessions\n\
         \n\
         frontend nines_rw_in\n\
         \x20   bind {host}:{rw}\n\
         {vip_rw}\
         \x20   default_backend nines_rw\n\
         \n\
         frontend nines_ro_in\n\
         \x20   bind {host}:{ro}\n\
         {vip_ro}\
         \x20   default_backend nines_ro\n",
        cluster = c.cluster,
        socket = c.socket,
        pid = c.pid_file,
        host = c.host,
        rw = c.rw_port,
        ro = c.ro_port,
        vip_rw = vip_bind(c.vip.as_deref(), c.rw_port),
        vip_ro = vip_bind(c.vip.as_deref(), c.ro_port),
    );
    for pool in [Pool::Rw, Pool::Ro] {
        s.push_str(&format!("\nbackend {}\n", backend_name(pool)));
        s.push_str(match pool {
            Pool::Rw => "    balance first\n",
            Pool::Ro => "    balance leastconn\n",
        });
        for be in c.decision.backends.iter().filter(|b| b.pool == pool) {
            let mut line = format!(
                "    server {} {} check",
                server_name(&be.address),
                be.address
            );
            if be.backup {
                line.push_str(" backup");
            }
            match be.state {
                BackendState::Maint => line.push_str(" disabled"),
                BackendState::Drain => line.push_str(" weight 0"),
                BackendState::Up | BackendState::Down => {}
            }
            s.push_str(&line);
            s.push('\n');
        }
    }
    s.push_str(&format!(
        "\nfrontend nines_stats\n\
         \x20   mode http\n\
         \x20   bind {host}:{port}\n\
         \x20   http-request use-service prometheus-exporter if {{ path /metrics }}\n\
         \x20   stats enable\n\
         \x20   stats uri /stats\n\
         \x20   stats refresh 5s\n",
        host = c.host,
        port = c.stats_port
    ));
    s
}

fn vip_bind(vip: Option<&str>, port: u16) -> String {
    vip.map(|v| format!("    bind {v}:{port} transparent\n"))
        .unwrap_or_default()
}

/// Keepalived on one load balancer host: the VRRP instance that holds the virtual IP,
/// tracking the local HAProxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeepalivedConfig {
    pub cluster: String,
    /// The network interface VRRP runs on.
    pub interface: String,
    /// The virtual IP with its prefix length, e.g. `10.0.0.100/24`.
    pub vip: String,
    /// 1-255, the same on every peer of one VIP.
    pub virtual_router_id: u8,
    /// Higher wins; the peers of one VIP differ.
    pub priority: u8,
    /// This host's address on the interface, and its peers' (VRRP by unicast: no
    /// multicast needed between data centers or in clouds).
    pub source: String,
    pub peers: Vec<String>,
    /// HAProxy's pid file: the check fails when HAProxy is gone.
    pub haproxy_pid_file: String,
}

/// Keepalived's configuration: the VIP follows a live HAProxy. A failing check puts the
/// instance in FAULT (it gives the VIP up at once); every peer starts as BACKUP with
/// `nopreempt`, so a peer that recovers does not take the VIP back (one move per failure,
/// not two); the highest priority wins only when peers start together.
pub fn render_keepalived(c: &KeepalivedConfig) -> String {
    // A lone peer (the first of its VIP) has nobody to talk to: unicast without peers is
    // refused by `keepalived -t`; the section comes with the second peer.
    let unicast = if c.peers.is_empty() {
        String::new()
    } else {
        let peers: String = c.peers.iter().map(|p| format!("        {p}\n")).collect();
        format!(
            "    unicast_src_ip {}\n    unicast_peer {{\n{peers}    }}\n",
            c.source
        )
    };
    format!(
        "# Written by nines for cluster {cluster}.\n\
         global_defs {{\n\
         \x20   enable_script_security\n\
         \x20   script_user root\n\
         }}\n\
         \n\
         vrrp_script nines_haproxy {{\n\
         \x20   script \"/bin/sh -c 'kill -0 $(head -n1 {pid})'\"\n\
         \x20   interval 1\n\
         \x20   fall 2\n\
         \x20   rise 2\n\
         \x20   weight 0\n\
         }}\n\
         \n\
         vrrp_instance nines_{id} {{\n\
         \x20   state BACKUP\n\
         \x20   nopreempt\n\
         \x20   interface {iface}\n\
         \x20   virtual_router_id {id}\n\
         \x20   priority {prio}\n\
         \x20   advert_int 1\n\
         {unicast}\
         \x20   virtual_ipaddress {{\n\
         \x20       {vip} dev {iface}\n\
         \x20   }}\n\
         \x20   track_script {{\n\
         \x20       nines_haproxy\n\
         \x20   }}\n\
         }}\n",
        cluster = c.cluster,
        pid = c.haproxy_pid_file,
        id = c.virtual_router_id,
        iface = c.interface,
        prio = c.priority,
        vip = c.vip,
    )
}

/// The VRRP priority of the load balancer ranked `rank` among its VIP's peers (0 = the
/// first deployed): 150, 140, … down to 50.
pub fn vrrp_priority(rank: usize) -> u8 {
    let step = u8::try_from(rank.min(10)).unwrap_or(10) * 10;
    150 - step
}

/// A VRRP router id for a new VIP: the first from 51 up (then from 1) that no other VIP
/// nines manages uses.
pub fn free_router_id(used: &[u8]) -> Option<u8> {
    (51..=255u8).chain(1..51).find(|id| !used.contains(id))
}

/// A VIP as Keepalived takes it, `ADDR/PREFIX`: the prefix of the interface's own
/// address when the VIP is in that network, else /32.
pub fn vip_with_prefix(vip: &str, interface_addr: &str, prefix: u8) -> String {
    let (Ok(v), Ok(a)) = (
        vip.parse::<std::net::Ipv4Addr>(),
        interface_addr.parse::<std::net::Ipv4Addr>(),
    ) else {
        return format!("{vip}/32");
    };
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    };
    if u32::from(v) & mask == u32::from(a) & mask {
        format!("{vip}/{prefix}")
    } else {
        format!("{vip}/32")
    }
}

/// What the watcher saw of one load balancer in one look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbLook {
    /// `host:rw_port`, the alarm's subject.
    pub name: String,
    pub vip: Option<String>,
    /// None: the host did not answer.
    pub haproxy_running: Option<bool>,
    /// Whether this host holds the VIP now (None: unknown or no VIP).
    pub holds_vip: Option<bool>,
    /// Backend servers whose checks went down at least [`FLAP_DOWNS`] times within
    /// [`FLAP_WINDOW_SECS`]: (pool, node address, downs).
    pub flapping: Vec<(Pool, String, u64)>,
}

/// A backend whose checks went down this often within [`FLAP_WINDOW_SECS`] is flapping.
pub const FLAP_DOWNS: u64 = 3;
/// The flapping window.
pub const FLAP_WINDOW_SECS: i64 = 600;

/// How many times a counter of downs (HAProxy's `chkdown`) rose within the window, from
/// samples `(seconds, value)` oldest first; a counter that went back (HAProxy restarted)
/// counts from its new start.
pub fn downs_within(samples: &[(i64, u64)], now: i64, window: i64) -> u64 {
    let recent: Vec<&(i64, u64)> = samples.iter().filter(|(t, _)| now - t <= window).collect();
    recent
        .windows(2)
        .map(|w| {
            let (a, b) = (w[0].1, w[1].1);
            if b >= a { b - a } else { b }
        })
        .sum()
}

/// The load balancer alarms of one cluster from one look at each of its load balancers:
/// `lb_down` for one not running or not answering; `lb_backend_flapping` for one with a
/// flapping backend; `lb_vip` when every peer of a VIP answered and none holds it, or
/// more than one does.
pub fn conditions(cluster: &str, looks: &[LbLook]) -> Vec<crate::alarm::Condition> {
    use crate::alarm::{AlarmKind, Condition};
    let mut out = Vec::new();
    for l in looks {
        match l.haproxy_running {
            Some(true) => {}
            Some(false) => out.push(Condition::new(
                cluster,
                Some(&l.name),
                AlarmKind::LbDown,
                format!(
                    "HAProxy of the load balancer {} is not running; nines starts it again. \
                     Clients of this listener cannot connect{}.",
                    l.name,
                    if l.vip.is_some() {
                        " (the virtual IP moves to a peer)"
                    } else {
                        ""
                    }
                ),
            )),
            None => out.push(Condition::new(
                cluster,
                Some(&l.name),
                AlarmKind::LbDown,
                format!(
                    "the load balancer's host of {} does not answer nines; check the host and \
                     its network.",
                    l.name
                ),
            )),
        }
        if !l.flapping.is_empty() {
            let which: Vec<String> = l
                .flapping
                .iter()
                .map(|(pool, addr, n)| format!("{addr} in {pool} went down {n} times"))
                .collect();
            out.push(Condition::new(
                cluster,
                Some(&l.name),
                AlarmKind::LbBackendFlapping,
                format!(
                    "load balancer {}: {} within {} minutes (HAProxy's checks); look at the \
                     node's network, its connection limit and its error log.",
                    l.name,
                    which.join(", "),
                    FLAP_WINDOW_SECS / 60
                ),
            ));
        }
    }
    let mut vips: Vec<&str> = looks.iter().filter_map(|l| l.vip.as_deref()).collect();
    vips.sort_unstable();
    vips.dedup();
    for vip in vips {
        let peers: Vec<&LbLook> = looks
            .iter()
            .filter(|l| l.vip.as_deref() == Some(vip))
            .collect();
        let holders: Vec<&str> = peers
            .iter()
            .filter(|l| l.holds_vip == Some(true))
            .map(|l| l.name.as_str())
            .collect();
        let all_known = peers.iter().all(|l| l.holds_vip.is_some());
        let message = if holders.is_empty() && all_known {
            Some(format!(
                "no load balancer holds the virtual IP {vip} (peers: {}); clients of the VIP \
                 cannot connect. Check Keepalived and HAProxy on the peers.",
                peers
                    .iter()
                    .map(|l| l.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        } else if holders.len() > 1 {
            Some(format!(
                "the virtual IP {vip} is held by {} at once (the peers do not hear each \
                 other's VRRP adverts); clients reach either. Check the network between them.",
                holders.join(" and ")
            ))
        } else {
            None
        };
        if let Some(m) = message {
            out.push(Condition::new(cluster, Some(vip), AlarmKind::LbVip, m));
        }
    }
    out
}

#[cfg(test)]
mod tests;
