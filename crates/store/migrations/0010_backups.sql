-- Backup repositories and the backups in them. A repository's key (hex, sealed like the
-- other secrets) wraps each backup's own data key in the backup's manifest; S3
-- credentials are secrets too. Backups name their cluster by name: they outlive it.
CREATE TABLE backup_repos (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('directory', 's3')),
    path TEXT,
    s3_endpoint TEXT,
    s3_bucket TEXT,
    s3_region TEXT,
    s3_access_key_secret INTEGER REFERENCES secrets(id),
    s3_secret_key_secret INTEGER REFERENCES secrets(id),
    key_secret INTEGER NOT NULL REFERENCES secrets(id),
    created_at INTEGER NOT NULL
);

CREATE TABLE backups (
    id INTEGER PRIMARY KEY,
    cluster_name TEXT NOT NULL,
    repo TEXT NOT NULL,
    method TEXT NOT NULL CHECK (method IN ('full', 'incremental', 'logical')),
    state TEXT NOT NULL CHECK (state IN ('running', 'completed', 'failed')),
    node TEXT NOT NULL,
    parent_id INTEGER REFERENCES backups(id),
    job_id INTEGER,
    size_bytes INTEGER NOT NULL DEFAULT 0,
    stored_bytes INTEGER NOT NULL DEFAULT 0,
    gtid_position TEXT,
    to_lsn INTEGER,
    verified INTEGER,
    verified_at INTEGER,
    verify_note TEXT,
    error TEXT,
    started_at INTEGER NOT NULL,
    finished_at INTEGER
);
CREATE INDEX backups_by_cluster ON backups (cluster_name, id);
