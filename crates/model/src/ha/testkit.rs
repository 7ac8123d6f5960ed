//! Builders for the HA decision tests: times, addresses, samples and a replication
//! cluster scenario that tests bend into the situation they need.

use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::endpoint::Endpoint;
use crate::ha::view::{KnownTopology, ProbeStatus, ReplicationNode, ReplicationView, TimedSample};
use crate::replication::{Flavor, IoThreadState, ReplicaStatus, ServerVersion};
use crate::snapshot::{ProbeErrorKind, ServerSample};
use crate::topology::Role;

/// MySQL server uuids of the test servers: U[n] belongs to server n.
pub const U: [&str; 5] = [
    "00000000-0000-0000-0000-000000000000",
    "3e11fa47-71ca-11e1-9e33-c80aa9429561",
    "3e11fa47-71ca-11e1-9e33-c80aa9429562",
    "3e11fa47-71ca-11e1-9e33-c80aa9429563",
    "3e11fa47-71ca-11e1-9e33-c80aa9429564",
];

/// `secs` seconds after the tests' reference instant ("now" is `t(0)`).
pub fn t(secs: i64) -> DateTime<Utc> {
    tm(secs * 1000)
}

/// `ms` milliseconds after the reference instant.
pub fn tm(ms: i64) -> DateTime<Utc> {
    let base = Utc
        .with_ymd_and_hms(2025, 6, 1, 12, 0, 0)
        .single()
        .expect("valid date");
    base + Duration::milliseconds(ms)
}

/// Node n's address: 127.0.0.1n:3306.
pub fn ep(n: u8) -> Endpoint {
    Endpoint::new(format!("127.0.0.{}", 10 + n), 3306)
}

/// A server sample of `flavor` whose executed set and binlog are both `executed`.
pub fn sample(flavor: Flavor, server_id: u32, executed: &str) -> ServerSample {
    let (major, text) = match flavor {
        Flavor::MariaDb => (10, "10.11.9-MariaDB"),
        Flavor::MySql => (8, "8.0.40"),
    };
    ServerSample {
        version: ServerVersion {
            flavor,
            major,
            minor: 11,
            patch: 9,
            text: text.into(),
        },
        server_id,
        read_only: false,
        super_read_only: None,
        log_bin: true,
        log_slave_updates: true,
        gtid_executed: executed.into(),
        gtid_binlog_pos: executed.into(),
        replication: vec![],
        wsrep: None,
        binlog_dump_clients: vec![],
        status: Default::default(),
        uptime_seconds: 1000,
        hostname: String::new(),
        port: 3306,
        datadir: String::new(),
    }
}

/// A running channel from `source` having received `received`.
pub fn channel(source: &Endpoint, source_server_id: u32, received: &str) -> ReplicaStatus {
    ReplicaStatus {
        channel: String::new(),
        source_host: source.host.clone(),
        source_port: source.port,
        io_state: IoThreadState::Running,
        sql_running: true,
        seconds_behind: Some(0),
        last_io_errno: 0,
        last_io_error: String::new(),
        last_sql_errno: 0,
        last_sql_error: String::new(),
        using_gtid: "Slave_Pos".into(),
        received_gtids: received.into(),
        executed_gtids: String::new(),
        sql_delay: 0,
        source_server_id,
        heartbeat_period: Some(1.0),
        received_heartbeats: Some(10),
        exec_source_log_file: "bin.000001".into(),
        exec_source_log_pos: 1000,
        read_source_log_file: "bin.000001".into(),
        read_source_log_pos: 1000,
    }
}

/// A replication cluster: primary ep(1) (server 1) and replicas added one by one.
///
/// By default every node is reachable; the primary's one sample is at t(-2); each replica
/// has samples at t(-3) and t(0) whose heartbeat counter and read position move (the
/// replica still receives from the primary). Now is t(0).
#[derive(Clone)]
pub struct Cluster {
    pub view: ReplicationView,
}

impl Cluster {
    pub fn new(flavor: Flavor, primary_executed: &str) -> Self {
        let primary = ReplicationNode {
            endpoint: ep(1),
            role: Role::Primary,
            probe: ProbeStatus::Reachable,
            samples: vec![TimedSample {
                at: t(-2),
                sample: std::sync::Arc::new(sample(flavor, 1, primary_executed)),
            }],
            longest_transaction_secs: Some(0),
        };
        Self {
            view: ReplicationView {
                flavor,
                topology: Some(KnownTopology {
                    primary: ep(1),
                    confirmed_at: t(-2),
                }),
                nodes: vec![primary],
                primary_semi_sync: None,
                failovers: vec![],
                maintenance: vec![],
            },
        }
    }

    pub fn mariadb(primary_executed: &str) -> Self {
        Self::new(Flavor::MariaDb, primary_executed)
    }

    pub fn mysql(primary_executed: &str) -> Self {
        Self::new(Flavor::MySql, primary_executed)
    }

    /// Adds replica ep(n) (server n) that received and executed `received`.
    pub fn replica(mut self, n: u8, received: &str) -> Self {
        let flavor = self.view.flavor;
        let mk = |at, heartbeats, read_pos| {
            let mut s = sample(flavor, u32::from(n), received);
            s.read_only = true;
            let mut ch = channel(&ep(1), 1, received);
            ch.received_heartbeats = Some(heartbeats);
            ch.read_source_log_pos = read_pos;
            s.replication = vec![ch];
            TimedSample {
                at,
                sample: std::sync::Arc::new(s),
            }
        };
        self.view.nodes.push(ReplicationNode {
            endpoint: ep(n),
            role: Role::Replica,
            probe: ProbeStatus::Reachable,
            samples: vec![mk(t(-3), 10, 1000), mk(t(0), 13, 1300)],
            longest_transaction_secs: None,
        });
        self
    }

    fn node_mut(&mut self, n: u8) -> &mut ReplicationNode {
        let e = ep(n);
        self.view
            .nodes
            .iter_mut()
            .find(|x| x.endpoint == e)
            .expect("node in scenario")
    }

    /// Node n's latest probes failed: `consecutive` of them, the first at t(-consecutive).
    pub fn fails(mut self, n: u8, kind: ProbeErrorKind, consecutive: u32) -> Self {
        self.node_mut(n).probe = ProbeStatus::Failing {
            kind,
            consecutive,
            since: t(-i64::from(consecutive)),
        };
        self
    }

    /// The primary's latest probes failed (see [`Self::fails`]).
    pub fn primary_fails(self, kind: ProbeErrorKind, consecutive: u32) -> Self {
        self.fails(1, kind, consecutive)
    }

    /// Replica n's newest sample shows its IO thread in `state` with `errno`.
    pub fn io(self, n: u8, state: IoThreadState, errno: u32) -> Self {
        self.edit_latest(n, |s| {
            let ch = &mut s.replication[0];
            ch.io_state = state;
            ch.last_io_errno = errno;
            ch.last_io_error = format!("error {errno} connecting to master");
        })
    }

    /// Replica n received nothing across its samples: same heartbeats, position, GTIDs.
    pub fn silent(mut self, n: u8) -> Self {
        let node = self.node_mut(n);
        let first = node.samples[0].sample.replication[0].clone();
        for s in &mut node.samples {
            let ch = &mut std::sync::Arc::make_mut(&mut s.sample).replication[0];
            ch.received_heartbeats = first.received_heartbeats;
            ch.read_source_log_pos = first.read_source_log_pos;
            ch.received_gtids = first.received_gtids.clone();
        }
        self
    }

    /// Edits every sample of node n.
    pub fn edit(mut self, n: u8, f: impl Fn(&mut ServerSample)) -> Self {
        for s in &mut self.node_mut(n).samples {
            f(std::sync::Arc::make_mut(&mut s.sample));
        }
        self
    }

    /// Edits the newest sample of node n.
    pub fn edit_latest(mut self, n: u8, f: impl FnOnce(&mut ServerSample)) -> Self {
        let node = self.node_mut(n);
        let last = node.samples.last_mut().expect("a sample");
        f(std::sync::Arc::make_mut(&mut last.sample));
        self
    }

    /// Edits node n itself.
    pub fn node(mut self, n: u8, f: impl FnOnce(&mut ReplicationNode)) -> Self {
        f(self.node_mut(n));
        self
    }

    /// The primary was killed: refused at once, every replica's IO thread reconnecting.
    pub fn primary_killed(mut self) -> Self {
        let replicas: Vec<u8> = self
            .view
            .nodes
            .iter()
            .skip(1)
            .map(|n| n.endpoint.host.rsplit('.').next().unwrap_or("0"))
            .filter_map(|last| last.parse::<u8>().ok())
            .map(|x| x - 10)
            .collect();
        self = self.primary_fails(ProbeErrorKind::Refused, 1);
        for n in replicas {
            self = self.silent(n).io(n, IoThreadState::Connecting, 2003);
        }
        self
    }
}

/// Asserts that some reason contains `needle` (case-insensitive), printing them all.
#[track_caller]
pub fn assert_mentions(reasons: &[String], needle: &str) {
    let n = needle.to_lowercase();
    assert!(
        reasons.iter().any(|r| r.to_lowercase().contains(&n)),
        "no reason mentions `{needle}`:\n  {}",
        reasons.join("\n  ")
    );
}
