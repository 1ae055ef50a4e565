-- The notification outbox: a notification is stored before it is sent, then retried.

CREATE TABLE outbox (
    id         bigserial PRIMARY KEY,
    window_id  text NOT NULL,
    channel    text NOT NULL,
    event_seq  bigint NOT NULL,
    payload    text NOT NULL,
    status     text NOT NULL,
    attempts   integer NOT NULL DEFAULT 0,
    due_at     double precision NOT NULL,
    created_at double precision NOT NULL,
    last_error text,
    UNIQUE (channel, event_seq)
);

CREATE INDEX outbox_status_id ON outbox (status, id);

-- Per (window, channel) reference a channel keeps, e.g. the Slack message ts of a thread.
CREATE TABLE notify_threads (
    window_id text NOT NULL,
    channel   text NOT NULL,
    ref       text NOT NULL,
    PRIMARY KEY (window_id, channel)
);
