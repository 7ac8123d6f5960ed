//! Repositories: where backups are kept, a directory or an S3-compatible bucket, behind
//! `object_store`. A backup is a prefix `<cluster>/<id>/` holding `chunks/NNNNNN` (sealed
//! chunks) and `manifest.json`, written last: a backup without a manifest is unfinished.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use nines_model::backup::Manifest;
use object_store::ObjectStore;
use object_store::path::Path;

/// An S3-compatible bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Config {
    /// `http(s)://host:port` of the service.
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
}

/// Chunks larger than this go up in parts (multipart upload), each retried on its own.
pub const MULTIPART_THRESHOLD: usize = 8 << 20;

/// A repository, opened.
#[derive(Clone)]
pub struct Repository {
    store: Arc<dyn ObjectStore>,
    /// What it is, for messages: `directory /srv/backups` or `s3 http://…/bucket`.
    pub describe: String,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe)
    }
}

fn repo_err(what: &str, e: impl std::fmt::Display) -> String {
    format!("{what}: {e}")
}

impl Repository {
    /// A directory on the controller (created, mode 0700, when missing).
    pub fn directory(dir: &std::path::Path) -> Result<Self, String> {
        use std::os::unix::fs::DirBuilderExt;
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| repo_err(&format!("create {}", dir.display()), e))?;
        }
        let store = object_store::local::LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| repo_err(&format!("open {}", dir.display()), e))?
            // A deleted backup leaves no empty directories behind.
            .with_automatic_cleanup(true);
        Ok(Self {
            store: Arc::new(store),
            describe: format!("directory {}", dir.display()),
        })
    }

    /// An S3-compatible bucket (path-style requests; plain HTTP allowed for endpoints on
    /// a private network), with retries and backoff on every request.
    pub fn s3(c: &S3Config) -> Result<Self, String> {
        let retry = object_store::RetryConfig {
            max_retries: 10,
            retry_timeout: Duration::from_secs(300),
            backoff: object_store::BackoffConfig::default(),
        };
        let store = object_store::aws::AmazonS3Builder::new()
            .with_endpoint(&c.endpoint)
            .with_bucket_name(&c.bucket)
            .with_region(&c.region)
            .with_access_key_id(&c.access_key)
            .with_secret_access_key(&c.secret_key)
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
            .with_retry(retry)
            .build()
            .map_err(|e| repo_err("configure S3", e))?;
        Ok(Self {
            store: Arc::new(store),
            describe: format!("s3 {}/{}", c.endpoint.trim_end_matches('/'), c.bucket),
        })
    }

    fn backup_prefix(cluster: &str, id: i64) -> Path {
        Path::from(format!("{cluster}/{id:08}"))
    }

    fn chunk_path(cluster: &str, id: i64, index: u32) -> Path {
        Path::from(format!("{cluster}/{id:08}/chunks/{index:06}"))
    }

    fn manifest_path(cluster: &str, id: i64) -> Path {
        Path::from(format!("{cluster}/{id:08}/manifest.json"))
    }

    /// An object's bytes.
    async fn get_bytes(&self, path: &Path) -> Result<Bytes, object_store::Error> {
        self.store.get(path).await?.bytes().await
    }

    /// Stores one sealed chunk (in parts when large).
    pub async fn put_chunk(
        &self,
        cluster: &str,
        id: i64,
        index: u32,
        data: Vec<u8>,
    ) -> Result<(), String> {
        let path = Self::chunk_path(cluster, id, index);
        self.put(&path, data).await.map_err(|e| {
            repo_err(
                &format!("store chunk {index} of backup {id} in {}", self.describe),
                e,
            )
        })
    }

    async fn put(&self, path: &Path, data: Vec<u8>) -> Result<(), object_store::Error> {
        if data.len() <= MULTIPART_THRESHOLD {
            self.store.put(path, Bytes::from(data).into()).await?;
            return Ok(());
        }
        let upload = self.store.put_multipart(path).await?;
        let mut w = object_store::WriteMultipart::new_with_chunk_size(upload, MULTIPART_THRESHOLD);
        w.write(&data);
        w.finish().await?;
        Ok(())
    }

    pub async fn get_chunk(&self, cluster: &str, id: i64, index: u32) -> Result<Bytes, String> {
        let path = Self::chunk_path(cluster, id, index);
        self.get_bytes(&path).await.map_err(|e| {
            repo_err(
                &format!("read chunk {index} of backup {id} from {}", self.describe),
                e,
            )
        })
    }

    pub async fn put_manifest(&self, m: &Manifest) -> Result<(), String> {
        let json = serde_json::to_vec_pretty(m).map_err(|e| repo_err("encode manifest", e))?;
        self.put(&Self::manifest_path(&m.cluster, m.backup_id), json)
            .await
            .map_err(|e| {
                repo_err(
                    &format!(
                        "store the manifest of backup {} in {}",
                        m.backup_id, self.describe
                    ),
                    e,
                )
            })
    }

    pub async fn get_manifest(&self, cluster: &str, id: i64) -> Result<Manifest, String> {
        let path = Self::manifest_path(cluster, id);
        let bytes = self.get_bytes(&path).await.map_err(|e| {
            repo_err(
                &format!("read the manifest of backup {id} from {}", self.describe),
                e,
            )
        })?;
        serde_json::from_slice(&bytes).map_err(|e| {
            format!(
                "the manifest of backup {id} in {} is damaged: {e}",
                self.describe
            )
        })
    }

    /// Deletes everything of a backup (chunks first, the manifest last).
    pub async fn delete_backup(&self, cluster: &str, id: i64) -> Result<u64, String> {
        let prefix = Self::backup_prefix(cluster, id);
        let mut paths: Vec<Path> = self
            .store
            .list(Some(&prefix))
            .map_ok(|m| m.location)
            .try_collect()
            .await
            .map_err(|e| repo_err(&format!("list backup {id} in {}", self.describe), e))?;
        paths.sort_by_key(|p| p.as_ref().ends_with("manifest.json"));
        let n = paths.len() as u64;
        for p in paths {
            match self.store.delete(&p).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(repo_err(&format!("delete {p} from {}", self.describe), e)),
            }
        }
        Ok(n)
    }

    /// Writes, reads back and deletes a small object: the repository is usable.
    pub async fn check(&self) -> Result<(), String> {
        let path = Path::from(".nines-check");
        let probe = b"nines repository check".to_vec();
        self.put(&path, probe.clone())
            .await
            .map_err(|e| repo_err(&format!("write to {}", self.describe), e))?;
        let back = self
            .get_bytes(&path)
            .await
            .map_err(|e| repo_err(&format!("read from {}", self.describe), e))?;
        if back.as_ref() != probe.as_slice() {
            return Err(format!(
                "{} returned other bytes than were written",
                self.describe
            ));
        }
        self.store
            .delete(&path)
            .await
            .map_err(|e| repo_err(&format!("delete from {}", self.describe), e))
    }

    fn segment_path(cluster: &str, epoch: i64, server: &str, file: &str, offset: u64) -> Path {
        let server = server.replace([':', '[', ']'], "_");
        Path::from(format!(
            "{cluster}/binlogs/e{epoch}/{server}/{file}/{offset:012}"
        ))
    }

    /// Stores a sealed run of binlog events of `file` from `server` at `offset`.
    pub async fn put_segment(
        &self,
        cluster: &str,
        epoch: i64,
        server: &str,
        file: &str,
        offset: u64,
        data: Vec<u8>,
    ) -> Result<(), String> {
        self.put(
            &Self::segment_path(cluster, epoch, server, file, offset),
            data,
        )
        .await
        .map_err(|e| {
            repo_err(
                &format!(
                    "store binlog {file}@{offset} of {server} in {}",
                    self.describe
                ),
                e,
            )
        })
    }

    pub async fn get_segment(
        &self,
        cluster: &str,
        epoch: i64,
        server: &str,
        file: &str,
        offset: u64,
    ) -> Result<Bytes, String> {
        let path = Self::segment_path(cluster, epoch, server, file, offset);
        self.get_bytes(&path).await.map_err(|e| {
            repo_err(
                &format!(
                    "read binlog {file}@{offset} of {server} from {}",
                    self.describe
                ),
                e,
            )
        })
    }

    pub async fn delete_segment(
        &self,
        cluster: &str,
        epoch: i64,
        server: &str,
        file: &str,
        offset: u64,
    ) -> Result<(), String> {
        let path = Self::segment_path(cluster, epoch, server, file, offset);
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(repo_err(
                &format!("delete {path} from {}", self.describe),
                e,
            )),
        }
    }

    /// Raw access for tests that damage a stored chunk on purpose.
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        Arc::clone(&self.store)
    }

    /// Where chunk `index` of a backup lives, for the same tests and for docs.
    pub fn chunk_location(cluster: &str, id: i64, index: u32) -> String {
        Self::chunk_path(cluster, id, index).to_string()
    }
}
