//! Server access: connecting to MySQL/MariaDB servers with mysql_async, typed probes,
//! and parsers for the SHOW output the monitor and the operations read.

pub mod conn;
pub mod parse;
pub mod probe;

pub use conn::{Credentials, ServerConn, ServerError, Timeouts};
pub use probe::Prober;
