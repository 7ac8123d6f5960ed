-- nines controller store, first schema. Times are unix milliseconds (UTC).

CREATE TABLE secrets (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    -- nonce (12 bytes) || ChaCha20-Poly1305 ciphertext, under the data directory's key file
    sealed      BLOB    NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE clusters (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    name                TEXT    NOT NULL UNIQUE,
    cluster_type        TEXT    NOT NULL,
    host_access         TEXT    NOT NULL,  -- JSON HostAccessSpec
    db_user             TEXT    NOT NULL,
    db_password_secret  INTEGER NOT NULL REFERENCES secrets(id),
    state               TEXT,
    state_reason        TEXT    NOT NULL DEFAULT '',
    created_at          INTEGER NOT NULL
);

CREATE TABLE nodes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster_id  INTEGER NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
    host        TEXT    NOT NULL,
    port        INTEGER NOT NULL,
    role        TEXT    NOT NULL,
    state       TEXT,
    created_at  INTEGER NOT NULL,
    UNIQUE (host, port)
);

CREATE TABLE jobs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT    NOT NULL,
    cluster_name  TEXT    NOT NULL,
    spec          TEXT    NOT NULL,  -- JSON JobSpec (secrets by reference only)
    state         TEXT    NOT NULL,
    requested_by  TEXT    NOT NULL,
    phase         TEXT    NOT NULL DEFAULT '',
    percent       INTEGER NOT NULL DEFAULT 0,
    error         TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    started_at    INTEGER,
    finished_at   INTEGER
);
CREATE INDEX jobs_by_state ON jobs(state, id);
CREATE INDEX jobs_by_cluster ON jobs(cluster_name, id);

CREATE TABLE job_logs (
    job_id   INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    seq      INTEGER NOT NULL,
    at       INTEGER NOT NULL,
    level    TEXT    NOT NULL,
    message  TEXT    NOT NULL,
    PRIMARY KEY (job_id, seq)
);

CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    cluster     TEXT    NOT NULL,
    node        TEXT,
    kind        TEXT    NOT NULL,
    message     TEXT    NOT NULL
);
CREATE INDEX events_by_cluster ON events(cluster, id);

CREATE TABLE api_tokens (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL UNIQUE,
    token_hash  TEXT    NOT NULL UNIQUE,  -- SHA-256 hex of the bearer token
    role        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);

-- Per-minute rollups of node metrics (avg/min/max), kept for the retention period.
CREATE TABLE metric_rollups (
    node     TEXT    NOT NULL,
    metric   TEXT    NOT NULL,
    minute   INTEGER NOT NULL,  -- unix ms at the start of the minute
    avg      REAL    NOT NULL,
    min      REAL    NOT NULL,
    max      REAL    NOT NULL,
    samples  INTEGER NOT NULL,
    PRIMARY KEY (node, metric, minute)
);
CREATE INDEX metric_rollups_by_minute ON metric_rollups(minute);
