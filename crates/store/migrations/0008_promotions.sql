-- A failover or switchover writes its intent here before it changes anything, and its
-- outcome (designated primary, roles, fences, the failovers row) replaces the intent in
-- one transaction. An intent still open at start-up belongs to a controller that died in
-- the middle: the new controller completes or rolls back that promotion.
CREATE TABLE promotion_intents (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster_id        INTEGER NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
    job_id            INTEGER REFERENCES jobs(id) ON DELETE SET NULL,
    kind              TEXT    NOT NULL CHECK (kind IN ('failover', 'switchover')),
    old_primary       TEXT    NOT NULL,  -- host:port
    candidate         TEXT    NOT NULL,  -- host:port
    planned_position  TEXT    NOT NULL DEFAULT '',  -- the candidate's GTID set when planned
    primary_sample    TEXT,              -- JSON: the old primary's last good sample the plan relied on
    created_at        INTEGER NOT NULL   -- unix ms
);
CREATE INDEX promotion_intents_by_cluster ON promotion_intents(cluster_id);
