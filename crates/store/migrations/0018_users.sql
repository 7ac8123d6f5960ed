-- People who use nines: users with a role and a password (argon2id), their API tokens,
-- their browser sessions, and the audit log of every change made through the API or UI.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT    NOT NULL UNIQUE,
    role          TEXT    NOT NULL,             -- admin | operator | viewer
    password_hash TEXT    NOT NULL,             -- argon2id, PHC string
    created_at    INTEGER NOT NULL
);

-- Tokens now belong to a user (NULL: the bootstrap admin token of <data-dir>/admin.token);
-- a label is unique per user. SQLite cannot drop the old UNIQUE(name): the table is rebuilt.
CREATE TABLE api_tokens_v2 (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT    NOT NULL,
    token_hash   TEXT    NOT NULL UNIQUE,       -- SHA-256 hex of the bearer token
    role         TEXT    NOT NULL,              -- the bootstrap token's; a user's token has its user's
    created_at   INTEGER NOT NULL,
    user_name    TEXT,
    last_used_at INTEGER
);
INSERT INTO api_tokens_v2 (id, name, token_hash, role, created_at)
    SELECT id, name, token_hash, role, created_at FROM api_tokens;
DROP TABLE api_tokens;
ALTER TABLE api_tokens_v2 RENAME TO api_tokens;
CREATE UNIQUE INDEX api_tokens_user_label ON api_tokens (COALESCE(user_name, ''), name);

CREATE TABLE web_sessions (
    id_hash      TEXT    PRIMARY KEY,           -- SHA-256 hex of the cookie's value
    user_name    TEXT    NOT NULL,
    csrf         TEXT    NOT NULL,              -- the forms' token for this session
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,              -- absolute end
    from_addr    TEXT    NOT NULL
);
CREATE INDEX web_sessions_user ON web_sessions (user_name);

CREATE TABLE audit (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,                 -- unix milliseconds
    who       TEXT    NOT NULL,                 -- user, token label, or `anonymous`
    action    TEXT    NOT NULL,                 -- e.g. `POST /api/v1/clusters/{name}/failover`
    target    TEXT    NOT NULL,                 -- the path asked for
    from_addr TEXT    NOT NULL,
    outcome   TEXT    NOT NULL,                 -- the answer's status, e.g. `202 Accepted`
    via       TEXT    NOT NULL                  -- api | ui
);
CREATE INDEX audit_at ON audit (at);
