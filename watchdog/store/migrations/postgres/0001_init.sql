-- Initial schema (PostgreSQL). Times are float epoch seconds (double precision).

CREATE TABLE windows (
    id               text PRIMARY KEY,
    service          text NOT NULL,
    environment      text NOT NULL,
    version          text NOT NULL,
    previous_version text,
    labels           jsonb NOT NULL DEFAULT '{}',
    plan             text,
    phase            text NOT NULL,
    started_at       double precision NOT NULL,
    ends_at          double precision NOT NULL,
    updated_at       double precision NOT NULL,
    reason           text,
    baselines        jsonb NOT NULL DEFAULT '{}'
);

CREATE INDEX windows_service_env_phase ON windows (service, environment, phase);

CREATE INDEX windows_started_at ON windows (started_at);

CREATE TABLE rule_states (
    window_id text NOT NULL REFERENCES windows (id) ON DELETE CASCADE,
    rule      text NOT NULL,
    state     text NOT NULL,
    PRIMARY KEY (window_id, rule)
);

-- Append-only journal: rows are inserted, never updated or deleted.
CREATE TABLE events (
    seq       bigserial PRIMARY KEY,
    window_id text NOT NULL REFERENCES windows (id) ON DELETE CASCADE,
    at        double precision NOT NULL,
    kind      text NOT NULL,
    rule      text,
    message   text NOT NULL,
    data      jsonb NOT NULL DEFAULT '{}'
);

CREATE INDEX events_window_seq ON events (window_id, seq);

-- The action log: the primary key is what makes an action happen at most once.
CREATE TABLE actions (
    window_id   text NOT NULL,
    action      text NOT NULL,
    status      text NOT NULL,
    token       bigint NOT NULL,
    actor       text NOT NULL,
    claimed_at  double precision NOT NULL,
    finished_at double precision,
    detail      text,
    PRIMARY KEY (window_id, action)
);

-- The newest fencing token any claim carried: a single row, locked by every claim.
CREATE TABLE fence (
    id        smallint PRIMARY KEY CHECK (id = 1),
    max_token bigint NOT NULL
);

INSERT INTO fence (id, max_token) VALUES (1, 0);
