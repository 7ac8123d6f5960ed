-- Deployed clusters: how nines laid them out, their accounts, and each node's desired state.

-- JSON ClusterSettings (datadir template, semi-sync, config template…); NULL for imported clusters.
ALTER TABLE clusters ADD COLUMN settings TEXT;
-- deploying | failed | deployed; NULL for imported clusters.
ALTER TABLE clusters ADD COLUMN deploy_state TEXT;

-- JSON NodeSettings (layout, server id, service kind); NULL for imported nodes.
ALTER TABLE nodes ADD COLUMN settings TEXT;
-- running | stopped: what the operator wants the node to be.
ALTER TABLE nodes ADD COLUMN desired TEXT NOT NULL DEFAULT 'running';

CREATE TABLE cluster_accounts (
    cluster_id  INTEGER NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
    purpose     TEXT    NOT NULL,  -- admin | monitor | replication | user_admin
    user_name   TEXT    NOT NULL,
    secret_id   INTEGER NOT NULL REFERENCES secrets(id),
    PRIMARY KEY (cluster_id, purpose)
);
