-- Alerts received from Alertmanager's webhook. One row per alert occurrence: the
-- fingerprint names the label set, starts_at the occurrence, so repeated group
-- notifications and HA peers sending the same group update one row.

CREATE TABLE alerts (
    fingerprint   TEXT NOT NULL,
    starts_at     REAL NOT NULL,
    status        TEXT NOT NULL,
    ends_at       REAL,
    labels        TEXT NOT NULL DEFAULT '{}',
    annotations   TEXT NOT NULL DEFAULT '{}',
    generator_url TEXT NOT NULL DEFAULT '',
    receiver      TEXT NOT NULL DEFAULT '',
    first_seen    REAL NOT NULL,
    last_seen     REAL NOT NULL,
    notifications INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (fingerprint, starts_at)
);

CREATE INDEX alerts_status_starts ON alerts (status, starts_at);

CREATE INDEX alerts_last_seen ON alerts (last_seen);
