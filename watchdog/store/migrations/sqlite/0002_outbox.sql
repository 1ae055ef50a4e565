-- The notification outbox: a notification is stored before it is sent, then retried.
-- Statements end with ';' at the end of a line (the runner splits on that).

CREATE TABLE outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    window_id  TEXT NOT NULL,
    channel    TEXT NOT NULL,
    event_seq  INTEGER NOT NULL,
    payload    TEXT NOT NULL,
    status     TEXT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    due_at     REAL NOT NULL,
    created_at REAL NOT NULL,
    last_error TEXT,
    UNIQUE (channel, event_seq)
);

CREATE INDEX outbox_status_id ON outbox (status, id);

-- Per (window, channel) reference a channel keeps, e.g. the Slack message ts of a thread.
CREATE TABLE notify_threads (
    window_id TEXT NOT NULL,
    channel   TEXT NOT NULL,
    ref       TEXT NOT NULL,
    PRIMARY KEY (window_id, channel)
);
