//! Backup repositories and the streams in and out of them: chunks sealed with zstd and
//! AES-256-GCM under a per-backup data key, each checksummed (SHA-256) and listed in the
//! backup's manifest, stored in a directory or an S3-compatible bucket. The controller's
//! backup jobs feed it a server's backup stream (mariabackup or mariadb-dump over the
//! host transport) and take streams back out of it for restores and verification.

pub mod crypto;
pub mod pipeline;
pub mod repo;

pub use crypto::Key;
pub use pipeline::{ReadError, Written, read_stream, write_stream};
pub use repo::{Repository, S3Config};
