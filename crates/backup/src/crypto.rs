//! Keys and sealed chunks. Every backup has its own random data key; it is stored in the
//! backup's manifest wrapped (AES-256-GCM) by the repository key, which the controller
//! keeps sealed in its store. A chunk is zstd-compressed, then encrypted with the data key
//! (AES-256-GCM, nonce = the chunk's index, so chunks cannot be reordered or swapped
//! unnoticed); the 16-byte tag authenticates it.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;

/// zstd level of the chunks: fast (the backup must keep up with mariabackup) and still
/// compressing InnoDB pages well.
pub const ZSTD_LEVEL: i32 = 3;

/// Bound on one chunk's plaintext, whatever a (corrupt) manifest claims.
pub const MAX_CHUNK_PLAIN: usize = 256 << 20;

/// Authenticated, not encrypted, with every chunk: names the format.
const CHUNK_AAD: &[u8] = b"nines-backup-chunk-v1";
const WRAP_AAD: &[u8] = b"nines-backup-key-v1";

/// A 256-bit key. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Key([u8; 32]);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(***)")
    }
}

impl Key {
    pub fn generate() -> Self {
        let mut k = [0u8; 32];
        rand::rng().fill_bytes(&mut k);
        Self(k)
    }

    /// From 64 hex digits (as the controller stores it, sealed).
    pub fn from_hex(s: &str) -> Result<Self, String> {
        let bytes = hex::decode(s.trim()).map_err(|_| "the key is not hex".to_string())?;
        let k: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "the key is not 32 bytes".to_string())?;
        Ok(Self(k))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    fn cipher(&self) -> Aes256Gcm {
        // A 32-byte key is always valid for AES-256.
        Aes256Gcm::new((&self.0).into())
    }
}

/// `data` encrypted by `by` with a random nonce: hex of nonce, ciphertext and tag.
pub fn wrap(by: &Key, data: &Key) -> String {
    let mut nonce = [0u8; 12];
    rand::rng().fill_bytes(&mut nonce);
    let ct = by
        .cipher()
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: &data.0,
                aad: WRAP_AAD,
            },
        )
        .unwrap_or_default();
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    hex::encode(out)
}

/// The key [`wrap`] wrapped; an error when `by` is not the key it was wrapped with.
pub fn unwrap(by: &Key, wrapped: &str) -> Result<Key, String> {
    let bytes = hex::decode(wrapped).map_err(|_| "the wrapped key is not hex".to_string())?;
    if bytes.len() != 12 + 32 + 16 {
        return Err("the wrapped key has the wrong length".into());
    }
    let (nonce, ct) = bytes.split_at(12);
    let plain = by
        .cipher()
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ct,
                aad: WRAP_AAD,
            },
        )
        .map_err(|_| "the repository key does not open this backup's key (wrong key, or the manifest was altered)".to_string())?;
    let k: [u8; 32] = plain
        .try_into()
        .map_err(|_| "the unwrapped key is not 32 bytes".to_string())?;
    Ok(Key(k))
}

fn chunk_nonce(index: u32) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&u64::from(index).to_be_bytes());
    n
}

/// Compresses and encrypts chunk `index` of a backup.
pub fn seal_chunk(key: &Key, index: u32, plain: &[u8]) -> Result<Vec<u8>, String> {
    let packed =
        zstd::bulk::compress(plain, ZSTD_LEVEL).map_err(|e| format!("compression: {e}"))?;
    key.cipher()
        .encrypt(
            Nonce::from_slice(&chunk_nonce(index)),
            Payload {
                msg: &packed,
                aad: CHUNK_AAD,
            },
        )
        .map_err(|_| "encryption failed".to_string())
}

/// Decrypts and decompresses chunk `index` (`plain_len` bytes once opened).
pub fn open_chunk(key: &Key, index: u32, stored: &[u8], plain_len: u64) -> Result<Vec<u8>, String> {
    let packed = key
        .cipher()
        .decrypt(
            Nonce::from_slice(&chunk_nonce(index)),
            Payload {
                msg: stored,
                aad: CHUNK_AAD,
            },
        )
        .map_err(|_| {
            "it does not decrypt (altered, truncated, out of place, or another key)".to_string()
        })?;
    let cap = usize::try_from(plain_len)
        .ok()
        .filter(|n| *n <= MAX_CHUNK_PLAIN)
        .ok_or_else(|| format!("the manifest claims {plain_len} bytes for it"))?;
    let plain =
        zstd::bulk::decompress(&packed, cap).map_err(|e| format!("it does not decompress: {e}"))?;
    if plain.len() as u64 != plain_len {
        return Err(format!(
            "it holds {} bytes, the manifest says {plain_len}",
            plain.len()
        ));
    }
    Ok(plain)
}

/// Length of a wrapped key in hex: nonce, key and tag.
pub const WRAPPED_HEX_LEN: usize = 2 * (12 + 32 + 16);

/// A self-contained sealed object (an archived binlog run): a fresh data key wrapped by
/// `repo_key` (hex, [`WRAPPED_HEX_LEN`] bytes), then the data sealed as chunk 1.
pub fn seal_object(repo_key: &Key, plain: &[u8]) -> Result<Vec<u8>, String> {
    let data_key = Key::generate();
    let mut out = wrap(repo_key, &data_key).into_bytes();
    out.extend(seal_chunk(&data_key, 1, plain)?);
    Ok(out)
}

/// Opens what [`seal_object`] sealed (`plain_len` bytes once opened).
pub fn open_object(repo_key: &Key, stored: &[u8], plain_len: u64) -> Result<Vec<u8>, String> {
    if stored.len() < WRAPPED_HEX_LEN {
        return Err("it is shorter than its key".into());
    }
    let (wrapped, sealed) = stored.split_at(WRAPPED_HEX_LEN);
    let wrapped = std::str::from_utf8(wrapped).map_err(|_| "its key is not hex".to_string())?;
    let data_key = unwrap(repo_key, wrapped)?;
    open_chunk(&data_key, 1, sealed, plain_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_round_trip_and_refuse_what_was_touched() {
        let k = Key::generate();
        let plain = b"INSERT INTO t VALUES ('secret row'), ('secret row');".repeat(100);
        let sealed = seal_chunk(&k, 7, &plain).unwrap();
        assert!(sealed.len() < plain.len(), "compressed");
        assert!(
            !sealed.windows(10).any(|w| w == b"secret row"),
            "no row in plain text"
        );
        assert_eq!(
            open_chunk(&k, 7, &sealed, plain.len() as u64).unwrap(),
            plain
        );
        // (what was done to it, the error it must give)
        let mut flipped = sealed.clone();
        flipped[10] ^= 1;
        let cases: Vec<(&str, Key, u32, Vec<u8>)> = vec![
            ("a flipped bit", k.clone(), 7, flipped),
            (
                "truncated",
                k.clone(),
                7,
                sealed[..sealed.len() - 5].to_vec(),
            ),
            ("another chunk's place", k.clone(), 8, sealed.clone()),
            ("another key", Key::generate(), 7, sealed.clone()),
        ];
        for (what, key, idx, bytes) in cases {
            let e = open_chunk(&key, idx, &bytes, plain.len() as u64).unwrap_err();
            assert!(e.contains("does not decrypt"), "{what}: {e}");
        }
        assert!(open_chunk(&k, 7, &sealed, 5).is_err(), "wrong length");
    }

    #[test]
    fn objects_carry_their_own_key() {
        let repo = Key::generate();
        let plain = b"binlog events".repeat(50);
        let o = seal_object(&repo, &plain).unwrap();
        assert_eq!(open_object(&repo, &o, plain.len() as u64).unwrap(), plain);
        assert!(open_object(&Key::generate(), &o, plain.len() as u64).is_err());
        assert!(open_object(&repo, &o[..50], 1).is_err());
    }

    #[test]
    fn keys_wrap_and_only_their_key_unwraps_them() {
        let repo = Key::generate();
        let data = Key::generate();
        let w = wrap(&repo, &data);
        assert_eq!(unwrap(&repo, &w).unwrap(), data);
        assert!(
            unwrap(&Key::generate(), &w)
                .unwrap_err()
                .contains("does not open")
        );
        assert_eq!(Key::from_hex(&repo.to_hex()).unwrap(), repo);
        assert!(Key::from_hex("abcd").is_err());
        assert_eq!(format!("{repo:?}"), "Key(***)");
    }
}
