-- Alerts received from Alertmanager's webhook. One row per alert occurrence: the
-- fingerprint names the label set, starts_at the occurrence, so repeated group
-- notifications and HA peers sending the same group update one row.

CREATE TABLE alerts (
    fingerprint   text NOT NULL,
    starts_at     double precision NOT NULL,
    status        text NOT NULL,
    ends_at       double precision,
    labels        jsonb NOT NULL DEFAULT '{}',
    annotations   jsonb NOT NULL DEFAULT '{}',
    generator_url text NOT NULL DEFAULT '',
    receiver      text NOT NULL DEFAULT '',
    first_seen    double precision NOT NULL,
    last_seen     double precision NOT NULL,
    notifications integer NOT NULL DEFAULT 1,
    PRIMARY KEY (fingerprint, starts_at)
);

CREATE INDEX alerts_status_starts ON alerts (status, starts_at);

CREATE INDEX alerts_last_seen ON alerts (last_seen);
