-- Advisors: each rule's latest results per cluster (one row per rule and node, '' for the
-- cluster), the history of each rule's verdict, and the user rules (SQL with thresholds).

CREATE TABLE advisor_results (
    cluster     TEXT    NOT NULL,
    rule        TEXT    NOT NULL,
    node        TEXT    NOT NULL DEFAULT '',
    status      TEXT    NOT NULL,              -- ok | warning | critical
    message     TEXT    NOT NULL,
    advice      TEXT    NOT NULL,
    checked_at  INTEGER NOT NULL,              -- unix ms
    PRIMARY KEY (cluster, rule, node)
);

CREATE TABLE advisor_history (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster     TEXT    NOT NULL,
    rule        TEXT    NOT NULL,
    status      TEXT    NOT NULL,              -- the rule's worst verdict from then on
    message     TEXT    NOT NULL,
    at          INTEGER NOT NULL
);
CREATE INDEX advisor_history_by_cluster ON advisor_history(cluster, at);

CREATE TABLE advisor_user_rules (
    cluster     TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    spec        TEXT    NOT NULL,              -- the rule as JSON
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (cluster, name)
);
