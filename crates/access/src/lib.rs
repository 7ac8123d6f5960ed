//! Access to the things nines manages: database servers over the MySQL protocol
//! ([`server`]) and the hosts they run on, over SSH or locally ([`host`]).
//!
//! Every call here has a timeout; nothing waits forever on a hung peer.

pub mod host;
pub mod server;
