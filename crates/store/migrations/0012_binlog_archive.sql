-- Binary logs archived for point-in-time recovery: one row per archived run of whole
-- events of one binlog file of one server, stored sealed in the repository; and per
-- cluster, until when everything the source had written is archived. A restore starts a
-- new epoch (a new history: the servers' binlog files start again); a backup belongs to
-- the epoch it was taken in, and rolls forward with that epoch's binlogs only.
CREATE TABLE binlog_segments (
    id INTEGER PRIMARY KEY,
    cluster_name TEXT NOT NULL,
    repo TEXT NOT NULL,
    epoch INTEGER NOT NULL DEFAULT 0,
    server TEXT NOT NULL,
    file TEXT NOT NULL,
    file_offset INTEGER NOT NULL,
    length INTEGER NOT NULL,
    first_gtid TEXT,
    last_gtid TEXT,
    first_time INTEGER,
    last_time INTEGER,
    created_at INTEGER NOT NULL,
    UNIQUE (cluster_name, repo, epoch, server, file, file_offset)
);
CREATE INDEX binlog_segments_by_cluster ON binlog_segments (cluster_name, repo, id);

CREATE TABLE binlog_archive (
    cluster_name TEXT PRIMARY KEY,
    repo TEXT NOT NULL,
    epoch INTEGER NOT NULL DEFAULT 0,
    server TEXT,
    caught_up_at INTEGER,
    error TEXT
);

ALTER TABLE backups ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
