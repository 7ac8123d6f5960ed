-- Maintenance windows: while one is active for a cluster (node IS NULL) or a node, nines
-- takes no automatic action there.
CREATE TABLE maintenance (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster_id  INTEGER NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
    node        TEXT,               -- host:port, or NULL for the whole cluster
    reason      TEXT    NOT NULL,
    set_by      TEXT    NOT NULL,
    since       INTEGER NOT NULL,
    until       INTEGER             -- NULL: until switched off
);
CREATE UNIQUE INDEX maintenance_scope ON maintenance(cluster_id, COALESCE(node, ''));
