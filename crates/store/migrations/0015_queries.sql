-- The query monitor: what each statement digest did on each node between two reads of
-- performance_schema (deltas), and each digest's text.

CREATE TABLE query_samples (
    cluster         TEXT    NOT NULL,
    node            TEXT    NOT NULL,
    at              INTEGER NOT NULL,              -- unix ms of the read
    schema_name     TEXT    NOT NULL,
    digest          TEXT    NOT NULL,
    count           INTEGER NOT NULL,
    sum_timer_ps    INTEGER NOT NULL,
    max_timer_ps    INTEGER NOT NULL,
    rows_examined   INTEGER NOT NULL,
    rows_sent       INTEGER NOT NULL
);
CREATE INDEX query_samples_by_cluster ON query_samples(cluster, at);

CREATE TABLE query_digests (
    schema_name     TEXT    NOT NULL,
    digest          TEXT    NOT NULL,
    text            TEXT    NOT NULL,
    PRIMARY KEY (schema_name, digest)
);
