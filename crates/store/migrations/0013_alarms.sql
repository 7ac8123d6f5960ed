-- Alarms (one row per condition while it lasts, kept after it clears), the silences a
-- person set, notification channels and the deliveries queued for them.

CREATE TABLE alarms (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster         TEXT    NOT NULL,
    node            TEXT    NOT NULL DEFAULT '',   -- host:port, or '' for the cluster
    kind            TEXT    NOT NULL,              -- node_down, … or advisor.<rule>
    severity        TEXT    NOT NULL,              -- critical | warning | info
    title           TEXT    NOT NULL,
    message         TEXT    NOT NULL,
    raised_at       INTEGER NOT NULL,              -- unix ms
    updated_at      INTEGER NOT NULL,
    cleared_at      INTEGER,
    acknowledged_by TEXT,
    acknowledged_at INTEGER,
    ack_note        TEXT
);
-- One condition, one active alarm.
CREATE UNIQUE INDEX alarms_active ON alarms(cluster, node, kind) WHERE cleared_at IS NULL;
CREATE INDEX alarms_by_time ON alarms(raised_at);

CREATE TABLE alarm_silences (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT    NOT NULL,
    cluster     TEXT,                              -- NULL: every cluster
    until_at    INTEGER NOT NULL,
    created_by  TEXT    NOT NULL,
    note        TEXT    NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL
);

CREATE TABLE notify_channels (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT    NOT NULL UNIQUE,
    kind            TEXT    NOT NULL,              -- webhook | slack | email
    target_secret   INTEGER NOT NULL,              -- sealed URL, or the e-mail recipients
    shown_target    TEXT    NOT NULL,              -- what lists show (no credentials)
    smtp            TEXT,                          -- host:port (email)
    from_addr       TEXT,                          -- sender (email)
    hmac_secret     INTEGER,                       -- sealed signing key (webhook)
    min_severity    TEXT    NOT NULL,
    cluster         TEXT,                          -- NULL: every cluster
    created_at      INTEGER NOT NULL
);

CREATE TABLE notify_deliveries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    channel_id  INTEGER NOT NULL REFERENCES notify_channels(id) ON DELETE CASCADE,
    alarm_id    INTEGER,
    notice      TEXT    NOT NULL,                  -- the notice as JSON, as of queueing
    state       TEXT    NOT NULL,                  -- pending | sent | failed
    attempts    INTEGER NOT NULL DEFAULT 0,
    queued_at   INTEGER NOT NULL,
    next_at     INTEGER NOT NULL,
    last_error  TEXT,
    sent_at     INTEGER
);
CREATE INDEX notify_deliveries_pending ON notify_deliveries(state, next_at);
CREATE INDEX notify_deliveries_by_channel ON notify_deliveries(channel_id, id);
