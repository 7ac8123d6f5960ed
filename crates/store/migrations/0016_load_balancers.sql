-- Load balancers nines deployed in front of a cluster.

CREATE TABLE load_balancers (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster     TEXT    NOT NULL,
    kind        TEXT    NOT NULL,              -- haproxy
    host        TEXT    NOT NULL,
    rw_port     INTEGER NOT NULL,
    ro_port     INTEGER NOT NULL,
    stats_port  INTEGER NOT NULL,
    dir         TEXT    NOT NULL,              -- configuration, socket, pid file
    host_access TEXT    NOT NULL,              -- JSON, as clusters keep it
    state       TEXT    NOT NULL,              -- deploying | running | failed
    error       TEXT,
    created_at  INTEGER NOT NULL,
    UNIQUE (host, rw_port),
    UNIQUE (host, ro_port)
);
