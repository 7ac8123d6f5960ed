-- Replication HA state: the designated primary of each cluster, fenced nodes, and the
-- record of failovers and switchovers.

-- host:port of the designated primary of a replication cluster, kept by nines (deploy,
-- import, failover, switchover); NULL for Galera and standalone clusters, or when unknown.
ALTER TABLE clusters ADD COLUMN primary_node TEXT;

-- Backfill: the node last seen with role 'primary', when a replication cluster has exactly
-- one (with none or several, nothing is designated rather than a guess). IPv6 hosts are
-- written in brackets, as Endpoint displays them.
UPDATE clusters SET primary_node = (
    SELECT CASE WHEN instr(n.host, ':') > 0
                THEN '[' || n.host || ']:' || n.port
                ELSE n.host || ':' || n.port END
    FROM nodes n
    WHERE n.cluster_id = clusters.id AND n.role = 'primary'
)
WHERE cluster_type = 'replication'
  AND (SELECT COUNT(*) FROM nodes n WHERE n.cluster_id = clusters.id AND n.role = 'primary') = 1;

-- Why a node is kept read-only and out of the cluster (errant GTIDs after a failover…);
-- NULL when it is not fenced.
ALTER TABLE nodes ADD COLUMN fenced TEXT;

-- Failovers (the primary was lost) and switchovers (the primary was handed over).
CREATE TABLE failovers (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster_id    INTEGER NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
    at            INTEGER NOT NULL,  -- unix ms
    kind          TEXT    NOT NULL CHECK (kind IN ('failover', 'switchover')),
    automatic     INTEGER NOT NULL,  -- 1: decided by nines, 0: asked by an operator
    old_primary   TEXT    NOT NULL,  -- host:port
    new_primary   TEXT    NOT NULL,  -- host:port
    promoted_at   TEXT    NOT NULL DEFAULT '',  -- GTID set of the new primary when promoted
    job_id        INTEGER REFERENCES jobs(id) ON DELETE SET NULL,
    acknowledged  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX failovers_by_cluster ON failovers(cluster_id, at);
