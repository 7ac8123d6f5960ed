//! Test-support kit for nines: starts **real**, throwaway MariaDB servers,
//! GTID replication topologies, Galera clusters and an `sshd` on distinct
//! loopback addresses (`127.0.0.20..=127.0.0.250`), for integration tests.
//!
//! The kit is built for `cargo nextest` (every test in its own process, many
//! processes in parallel) and for `cargo test` (many tests in one process):
//!
//! * [`lease_addresses`] hands out loopback addresses guarded by OS file locks
//!   in a shared directory (`/tmp/nines-testkit/locks`), so two processes
//!   never get the same address. A lock is released when its process dies;
//!   leftovers of a killed test (servers still listening on a leased address)
//!   are killed through the pid files the kit keeps next to the locks, or the
//!   address is skipped.
//! * Every server listens on the *standard* ports of its own address
//!   (MariaDB 3306, Galera 4567, IST 4568, SST 4444), like on a real host.
//! * Servers are separate process groups; their `Drop` kills the group and
//!   removes the server's directory, also while a test panics. A watchdog in
//!   each group kills the server when the test process dies without running
//!   `Drop` (SIGKILL, a runner's timeout, a server leaked in a `static`).
//!
//! Starting points: [`MariaDbServer::start`], [`ReplicationTopology::start`],
//! [`GaleraCluster::start`], [`Sshd::start`], [`lease_addresses`].
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use nines_testkit::{MariaDbServer, ServerOptions};
//! let server = MariaDbServer::start(ServerOptions::default()).await?;
//! server.exec("CREATE DATABASE app").await?;
//! let one: Vec<u8> = server.query_rows("SELECT 1").await?;
//! # Ok(()) }
//! ```
//!
//! Set `NINES_TESTKIT_KEEP_DIRS=1` to keep server directories (data, logs)
//! after a test for debugging; the servers are killed all the same.

mod browser;
mod galera;
mod lease;
mod mariadb;
mod netns;
mod process;
mod replication;
mod s3;
mod sinks;
mod sshd;
mod util;

pub use browser::Chromedriver;
pub use galera::GaleraCluster;
pub use lease::{
    AddressLease, FIRST_OCTET, GUARDED_PORTS, LAST_OCTET, SSHD_PORTS, lease_address,
    lease_addresses, lock_file_path, try_lease_address,
};
pub use mariadb::{
    ADMIN_USER, GALERA_PROVIDER, GaleraOptions, MARIADB_PORT, MariaDbServer, ServerOptions,
    write_password_file,
};
pub use netns::{LabHost, NetnsLab};
pub use process::Signal;
pub use replication::ReplicationTopology;
pub use s3::S3Server;
pub use sinks::{HttpSink, Received, SmtpSink};
pub use sshd::Sshd;
pub use util::{kit_root, port_is_open, random_password, wait_port_closed, wait_until};
