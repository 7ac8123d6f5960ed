-- Load balancers: a virtual IP kept by Keepalived among the peers that share it, and the
-- policy of the read-only pool.

ALTER TABLE load_balancers ADD COLUMN vip TEXT;                -- address, no prefix
ALTER TABLE load_balancers ADD COLUMN router_id INTEGER;       -- VRRP, same on every peer
ALTER TABLE load_balancers ADD COLUMN vrrp_priority INTEGER;
ALTER TABLE load_balancers ADD COLUMN interface TEXT;          -- where the VIP goes
ALTER TABLE load_balancers ADD COLUMN policy TEXT;             -- JSON LbPolicy; NULL: defaults
