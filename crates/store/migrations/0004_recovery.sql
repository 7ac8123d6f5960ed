-- Automatic recovery (node restarts, Galera recovery, failover) per cluster: on by default.
ALTER TABLE clusters ADD COLUMN auto_recovery INTEGER NOT NULL DEFAULT 1;
