//! Domain types of nines: clusters, nodes, roles and states, GTID sets, replication and
//! wsrep status, monitoring snapshots, jobs, and the API's data shapes.
//!
//! Everything here is plain data and pure logic; no I/O. Every other crate depends on
//! this one, and the CLI depends on nothing else, so API types live here too.

pub mod advisor;
pub mod alarm;
pub mod api;
pub mod auth;
pub mod backup;
pub mod binlog;
pub mod deploy;
pub mod endpoint;
pub mod event;
pub mod galera;
pub mod gtid;
pub mod ha;
pub mod health;
pub mod input;
pub mod job;
pub mod lag;
pub mod lanes;
pub mod lb;
pub mod query;
pub mod replication;
pub mod series;
pub mod snapshot;
pub mod topology;

pub use endpoint::{Endpoint, EndpointError};
pub use topology::{ClusterState, ClusterType, DeployState, Desired, NodeState, Role};
