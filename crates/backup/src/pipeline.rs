//! The backup stream in and out of a repository: read the server's stream in chunks,
//! seal each (compress, encrypt, checksum) on a blocking thread and store it, a few in
//! flight while the next is read; and back: fetch, check, open and write in order. Nothing
//! is written to any disk in between.

use std::collections::VecDeque;

use nines_model::backup::ChunkEntry;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::task::JoinHandle;

use crate::crypto::{Key, open_chunk, seal_chunk};
use crate::repo::Repository;

/// Plaintext bytes per chunk.
pub const CHUNK_SIZE: usize = 16 << 20;
/// Chunks sealed or stored at once while the stream goes on.
pub const IN_FLIGHT: usize = 3;
/// How much of the stream's start and end [`write_stream`] keeps for the caller (a dump
/// names its GTID position in its header or at its end).
pub const HEAD_BYTES: usize = 64 << 10;

/// What a stream became in the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub chunks: Vec<ChunkEntry>,
    pub plain_bytes: u64,
    pub stored_bytes: u64,
    /// The first [`HEAD_BYTES`] of the stream.
    pub head: Vec<u8>,
    /// The last [`HEAD_BYTES`] of the stream (a dump's GTID position comes at its end).
    pub tail: Vec<u8>,
}

/// Why a backup cannot be read back: names the backup and, when it is one, the chunk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("backup {backup}, chunk {chunk}: {why}")]
    Chunk {
        backup: i64,
        chunk: u32,
        why: String,
    },
    #[error("backup {backup}: {why}")]
    Backup { backup: i64, why: String },
}

/// Reads `reader` to its end into the repository as backup `id` of `cluster`, sealed
/// with `key`; `progress` gets the plaintext bytes read so far after each chunk.
pub async fn write_stream<R: AsyncRead + Unpin>(
    repo: &Repository,
    key: &Key,
    cluster: &str,
    id: i64,
    reader: &mut R,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<Written, String> {
    let mut pending: VecDeque<JoinHandle<Result<ChunkEntry, String>>> = VecDeque::new();
    let mut out = Written {
        chunks: Vec::new(),
        plain_bytes: 0,
        stored_bytes: 0,
        head: Vec::new(),
        tail: Vec::new(),
    };
    let mut index: u32 = 0;
    loop {
        let mut buf = Vec::with_capacity(CHUNK_SIZE);
        let n = (&mut *reader)
            .take(CHUNK_SIZE as u64)
            .read_to_end(&mut buf)
            .await
            .map_err(|e| format!("reading the backup stream: {e}"))?;
        if n == 0 {
            break;
        }
        if out.head.len() < HEAD_BYTES {
            let take = (HEAD_BYTES - out.head.len()).min(buf.len());
            out.head.extend_from_slice(&buf[..take]);
        }
        let keep = buf.len().min(HEAD_BYTES);
        out.tail.extend_from_slice(&buf[buf.len() - keep..]);
        let excess = out.tail.len().saturating_sub(HEAD_BYTES);
        out.tail.drain(..excess);
        out.plain_bytes += n as u64;
        index += 1;
        let (repo, key, cluster, i) = (repo.clone(), key.clone(), cluster.to_string(), index);
        pending.push_back(tokio::spawn(async move {
            let plain_bytes = buf.len() as u64;
            let sealed = tokio::task::spawn_blocking(move || seal_chunk(&key, i, &buf))
                .await
                .map_err(|e| format!("sealing chunk {i}: {e}"))??;
            let sha256 = hex::encode(Sha256::digest(&sealed));
            let stored_bytes = sealed.len() as u64;
            repo.put_chunk(&cluster, id, i, sealed).await?;
            Ok(ChunkEntry {
                index: i,
                plain_bytes,
                stored_bytes,
                sha256,
            })
        }));
        while pending.len() >= IN_FLIGHT {
            collect_one(&mut pending, &mut out).await?;
        }
        progress(out.plain_bytes);
        if n < CHUNK_SIZE {
            break;
        }
    }
    while !pending.is_empty() {
        collect_one(&mut pending, &mut out).await?;
    }
    Ok(out)
}

async fn collect_one(
    pending: &mut VecDeque<JoinHandle<Result<ChunkEntry, String>>>,
    out: &mut Written,
) -> Result<(), String> {
    let Some(task) = pending.pop_front() else {
        return Ok(());
    };
    let entry = task.await.map_err(|e| format!("storing a chunk: {e}"))??;
    out.stored_bytes += entry.stored_bytes;
    out.chunks.push(entry);
    Ok(())
}

/// Fetches, checks and opens every chunk of a backup in order, writing the stream to
/// `writer` (None: only check). The next chunks are fetched while one is written.
pub async fn read_stream(
    repo: &Repository,
    key: &Key,
    cluster: &str,
    id: i64,
    chunks: &[ChunkEntry],
    mut writer: Option<&mut (dyn AsyncWrite + Send + Unpin)>,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<u64, ReadError> {
    let mut pending: VecDeque<JoinHandle<Result<Vec<u8>, ReadError>>> = VecDeque::new();
    let mut next = 0usize;
    let mut done: u64 = 0;
    for (expect, c) in chunks.iter().enumerate() {
        if c.index as usize != expect + 1 {
            return Err(ReadError::Backup {
                backup: id,
                why: format!(
                    "the manifest lists chunk {} where chunk {} belongs",
                    c.index,
                    expect + 1
                ),
            });
        }
    }
    loop {
        while next < chunks.len() && pending.len() < IN_FLIGHT {
            let c = chunks[next].clone();
            let (repo, key, cluster) = (repo.clone(), key.clone(), cluster.to_string());
            pending.push_back(tokio::spawn(async move {
                let chunk = |why: String| ReadError::Chunk {
                    backup: id,
                    chunk: c.index,
                    why,
                };
                let bytes = repo.get_chunk(&cluster, id, c.index).await.map_err(chunk)?;
                let sum = hex::encode(Sha256::digest(&bytes));
                if sum != c.sha256 {
                    return Err(chunk(format!(
                        "its checksum is {sum}, the manifest says {} ({} bytes stored, {} expected)",
                        c.sha256,
                        bytes.len(),
                        c.stored_bytes
                    )));
                }
                tokio::task::spawn_blocking(move || open_chunk(&key, c.index, &bytes, c.plain_bytes))
                    .await
                    .map_err(|e| chunk(e.to_string()))?
                    .map_err(chunk)
            }));
            next += 1;
        }
        let Some(task) = pending.pop_front() else {
            break;
        };
        let plain = task.await.map_err(|e| ReadError::Backup {
            backup: id,
            why: e.to_string(),
        })??;
        done += plain.len() as u64;
        if let Some(w) = writer.as_deref_mut() {
            w.write_all(&plain).await.map_err(|e| ReadError::Backup {
                backup: id,
                why: format!("writing the restored stream: {e}"),
            })?;
        }
        progress(done);
    }
    if let Some(w) = writer {
        w.shutdown().await.map_err(|e| ReadError::Backup {
            backup: id,
            why: format!("closing the restored stream: {e}"),
        })?;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Key;

    /// A stream of `len` bytes that compresses but is not all the same.
    fn stream(len: usize) -> Vec<u8> {
        (0..len).map(|i| ((i / 7) % 251) as u8).collect()
    }

    #[tokio::test]
    async fn a_stream_round_trips_through_a_directory_and_damage_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::directory(dir.path()).unwrap();
        repo.check().await.unwrap();
        let key = Key::generate();
        let data = stream(CHUNK_SIZE * 2 + 12345);
        let seen = std::sync::Mutex::new(0u64);
        let w = write_stream(&repo, &key, "c", 1, &mut data.as_slice(), &|n| {
            *seen.lock().unwrap() = n;
        })
        .await
        .unwrap();
        assert_eq!(w.chunks.len(), 3);
        assert_eq!(w.plain_bytes, data.len() as u64);
        assert_eq!(*seen.lock().unwrap(), data.len() as u64);
        assert_eq!(w.head.len(), HEAD_BYTES);
        assert_eq!(w.tail.as_slice(), &data[data.len() - HEAD_BYTES..]);
        assert!(w.stored_bytes < w.plain_bytes);

        let mut back: Vec<u8> = Vec::new();
        let n = read_stream(&repo, &key, "c", 1, &w.chunks, Some(&mut back), &|_| {})
            .await
            .unwrap();
        assert_eq!(n, data.len() as u64);
        assert!(back == data, "the stream came back different");

        // Another key: refused, naming the backup and the first chunk.
        let e = read_stream(&repo, &Key::generate(), "c", 1, &w.chunks, None, &|_| {})
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                ReadError::Chunk {
                    backup: 1,
                    chunk: 1,
                    ..
                }
            ),
            "{e}"
        );

        // One flipped byte in chunk 2 on disk: its checksum names it.
        let file = dir.path().join(Repository::chunk_location("c", 1, 2));
        let mut bytes = std::fs::read(&file).unwrap();
        bytes[100] ^= 0xff;
        std::fs::write(&file, &bytes).unwrap();
        let e = read_stream(&repo, &key, "c", 1, &w.chunks, None, &|_| {})
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                ReadError::Chunk {
                    backup: 1,
                    chunk: 2,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("checksum"), "{e}");

        // A missing chunk, and a manifest out of order.
        std::fs::remove_file(&file).unwrap();
        let e = read_stream(&repo, &key, "c", 1, &w.chunks, None, &|_| {})
            .await
            .unwrap_err();
        assert!(matches!(e, ReadError::Chunk { chunk: 2, .. }), "{e}");
        let mut swapped = w.chunks.clone();
        swapped.swap(0, 2);
        let e = read_stream(&repo, &key, "c", 1, &swapped, None, &|_| {})
            .await
            .unwrap_err();
        assert!(matches!(e, ReadError::Backup { backup: 1, .. }), "{e}");

        assert_eq!(repo.delete_backup("c", 1).await.unwrap(), 2);
    }

    #[tokio::test]
    async fn an_empty_stream_is_an_empty_backup() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::directory(dir.path()).unwrap();
        let key = Key::generate();
        let w = write_stream(&repo, &key, "c", 2, &mut [].as_slice(), &|_| {})
            .await
            .unwrap();
        assert!(w.chunks.is_empty());
        let n = read_stream(&repo, &key, "c", 2, &w.chunks, None, &|_| {})
            .await
            .unwrap();
        assert_eq!(n, 0);
    }
}
