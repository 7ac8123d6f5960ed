//! Replication lag in transactions: what a replica still lacks of its source, by GTID.

use crate::gtid::{MariaDbGtidPos, MySqlGtidSet};
use crate::replication::Flavor;
use crate::snapshot::ServerSample;

/// Transactions the source has and the replica has not executed yet; None when either
/// GTID position cannot be read.
///
/// MariaDB positions name the last GTID per domain, so the lag is the sum over the
/// source's domains of how far the replica's seqno trails. MySQL sets are compared exactly.
pub fn transactions_behind(source: &ServerSample, replica: &ServerSample) -> Option<u64> {
    match source.version.flavor {
        Flavor::MariaDb => {
            let s = MariaDbGtidPos::parse(&source.gtid_binlog_pos).ok()?;
            let r = MariaDbGtidPos::parse(&replica.gtid_executed).ok()?;
            Some(s.domains().map(|d| s.seq(d).saturating_sub(r.seq(d))).sum())
        }
        Flavor::MySql => {
            let s = MySqlGtidSet::parse(&source.gtid_executed).ok()?;
            let r = MySqlGtidSet::parse(&replica.gtid_executed).ok()?;
            Some(s.difference(&r).count())
        }
    }
}
