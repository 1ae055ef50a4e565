-- High availability (issue 13 item 0).
-- Outbox rows are claimed by one replica before they are sent: a claim names its owner
-- and lasts until claimed_until (epoch seconds), after which another replica may take
-- the row (its claimer crashed or froze).
ALTER TABLE outbox ADD COLUMN claimed_by text;

ALTER TABLE outbox ADD COLUMN claimed_until double precision;

-- A manual rollback asked of a replica that does not lead, kept for the leader to run.
CREATE TABLE rollback_requests (
    window_id   text PRIMARY KEY,
    actor       text NOT NULL,
    reason      text,
    approved_by text,
    at          double precision NOT NULL
);
