//! Server settings sized from the node's share of its host: memory and CPUs divided
//! among the nodes that run there.

use serde::{Deserialize, Serialize};

const MIB: u64 = 1024 * 1024;

/// One node's share of a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostShare {
    pub memory_bytes: u64,
    pub cpus: u32,
    /// Nodes of this deploy (and others nines knows) on the host.
    pub nodes_on_host: u32,
}

/// Sized settings, in bytes and counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sizing {
    pub innodb_buffer_pool_size: u64,
    pub innodb_log_file_size: u64,
    pub max_connections: u32,
    pub gcache_size: u64,
    pub innodb_io_capacity: u32,
    pub wsrep_slave_threads: u32,
}

fn round_down(v: u64, to: u64) -> u64 {
    (v / to).max(1) * to
}

/// Sizes a node: half its memory share for the buffer pool (at least 128 MiB), a redo log
/// of an eighth of that (96 MiB-1 GiB), 100 connections per GiB of share (100-1000), a
/// Galera cache of 1/32 of the share (128 MiB-1 GiB), applier threads per CPU.
pub fn size_for(h: HostShare) -> Sizing {
    let nodes = u64::from(h.nodes_on_host.max(1));
    let share = h.memory_bytes / nodes;
    let bp = round_down((share / 2).max(128 * MIB), 128 * MIB);
    let log = round_down((bp / 8).clamp(96 * MIB, 1024 * MIB), 16 * MIB);
    let conns = u32::try_from((share / (1024 * MIB)) * 100)
        .unwrap_or(1000)
        .clamp(100, 1000);
    let gcache = round_down((share / 32).clamp(128 * MIB, 1024 * MIB), 16 * MIB);
    let cpus = (h.cpus / h.nodes_on_host.max(1)).max(1);
    Sizing {
        innodb_buffer_pool_size: bp,
        innodb_log_file_size: log,
        max_connections: conns,
        gcache_size: gcache,
        innodb_io_capacity: 200 * cpus.min(10),
        wsrep_slave_threads: (cpus * 2).clamp(1, 16),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_by_share() {
        let big = size_for(HostShare {
            memory_bytes: 64 * 1024 * MIB,
            cpus: 16,
            nodes_on_host: 1,
        });
        assert_eq!(big.innodb_buffer_pool_size, 32 * 1024 * MIB);
        assert_eq!(big.innodb_log_file_size, 1024 * MIB);
        assert_eq!(big.max_connections, 1000);
        assert_eq!(big.wsrep_slave_threads, 16);
        let shared = size_for(HostShare {
            memory_bytes: 24 * 1024 * MIB,
            cpus: 2,
            nodes_on_host: 3,
        });
        assert_eq!(shared.innodb_buffer_pool_size, 4096 * MIB);
        assert_eq!(shared.max_connections, 800);
        assert_eq!(shared.gcache_size, 256 * MIB);
        assert_eq!(shared.wsrep_slave_threads, 2);
        let tiny = size_for(HostShare {
            memory_bytes: 512 * MIB,
            cpus: 1,
            nodes_on_host: 4,
        });
        assert_eq!(tiny.innodb_buffer_pool_size, 128 * MIB);
        assert_eq!(tiny.innodb_log_file_size, 96 * MIB);
        assert_eq!(tiny.max_connections, 100);
    }
}
