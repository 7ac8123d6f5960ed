-- Backup schedules: a cron expression in a time zone; the next run is kept so that a
-- run missed while the controller was down is made once when it starts again.
CREATE TABLE backup_schedules (
    id INTEGER PRIMARY KEY,
    cluster_name TEXT NOT NULL,
    cron TEXT NOT NULL,
    tz TEXT NOT NULL,
    method TEXT NOT NULL CHECK (method IN ('full', 'incremental', 'logical')),
    repo TEXT NOT NULL,
    retention_secs INTEGER,
    next_run_at INTEGER NOT NULL,
    last_run_at INTEGER,
    created_at INTEGER NOT NULL
);
