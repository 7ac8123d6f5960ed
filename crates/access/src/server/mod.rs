//! Server access: connecting to MySQL/MariaDB servers with mysql_async, typed probes,
//! parsers for the SHOW output the monitor and the operations read, and the replication
//! SQL dialects (`replication.rs`).

pub mod advisor;
pub mod conn;
pub mod parse;
pub mod probe;
pub mod replication;

pub use conn::{Credentials, ServerConn, ServerError, Timeouts};
pub use probe::Prober;
