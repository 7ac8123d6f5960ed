//! placeholder until GTID sets land
