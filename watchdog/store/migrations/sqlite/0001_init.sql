-- Initial schema (SQLite). Times are float epoch seconds; JSON columns hold text.
-- Statements end with ';' at the end of a line (the runner splits on that).

CREATE TABLE windows (
    id               TEXT PRIMARY KEY,
    service          TEXT NOT NULL,
    environment      TEXT NOT NULL,
    version          TEXT NOT NULL,
    previous_version TEXT,
    labels           TEXT NOT NULL DEFAULT '{}',
    plan             TEXT,
    phase            TEXT NOT NULL,
    started_at       REAL NOT NULL,
    ends_at          REAL NOT NULL,
    updated_at       REAL NOT NULL,
    reason           TEXT,
    baselines        TEXT NOT NULL DEFAULT '{}'
);

CREATE INDEX windows_service_env_phase ON windows (service, environment, phase);

CREATE INDEX windows_started_at ON windows (started_at);

CREATE TABLE rule_states (
    window_id TEXT NOT NULL REFERENCES windows (id) ON DELETE CASCADE,
    rule      TEXT NOT NULL,
    state     TEXT NOT NULL,
    PRIMARY KEY (window_id, rule)
);

-- Append-only journal: rows are inserted, never updated or deleted.
CREATE TABLE events (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    window_id TEXT NOT NULL REFERENCES windows (id) ON DELETE CASCADE,
    at        REAL NOT NULL,
    kind      TEXT NOT NULL,
    rule      TEXT,
    message   TEXT NOT NULL,
    data      TEXT NOT NULL DEFAULT '{}'
);

CREATE INDEX events_window_seq ON events (window_id, seq);

-- The action log: the primary key is what makes an action happen at most once.
CREATE TABLE actions (
    window_id   TEXT NOT NULL,
    action      TEXT NOT NULL,
    status      TEXT NOT NULL,
    token       INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    claimed_at  REAL NOT NULL,
    finished_at REAL,
    detail      TEXT,
    PRIMARY KEY (window_id, action)
);

-- The newest fencing token any claim carried: a single row.
CREATE TABLE fence (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    max_token INTEGER NOT NULL
);

INSERT INTO fence (id, max_token) VALUES (1, 0);
