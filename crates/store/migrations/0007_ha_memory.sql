-- What the reconciler remembers between ticks and across controller restarts: the
-- attempts of each automatic repair (their retry budget counts them per outage) and the
-- alarms it raised (raised once per condition, cleared when the condition ends).

CREATE TABLE ha_attempts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster_id  INTEGER NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
    repair      TEXT    NOT NULL,  -- node_restart | failover | rejoin | galera_recovery
    subject     TEXT    NOT NULL,  -- the node's host:port, or '' for the whole cluster
    at          INTEGER NOT NULL   -- unix ms
);
CREATE INDEX ha_attempts_by_cluster ON ha_attempts(cluster_id, repair, subject, at);

CREATE TABLE ha_alarms (
    cluster_id  INTEGER NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
    alarm       TEXT    NOT NULL,  -- the condition: node_restart, failover, galera_recovery, semi_sync
    subject     TEXT    NOT NULL,  -- the node's host:port, or '' for the whole cluster
    raised_at   INTEGER NOT NULL,  -- unix ms
    message     TEXT    NOT NULL,
    PRIMARY KEY (cluster_id, alarm, subject)
);
