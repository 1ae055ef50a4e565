-- High availability (issue 13 item 0).
-- Outbox rows are claimed by one replica before they are sent: a claim names its owner
-- and lasts until claimed_until (epoch seconds), after which another replica may take
-- the row (its claimer crashed or froze).
-- Statements end with ';' at the end of a line (the runner splits on that).
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;

ALTER TABLE outbox ADD COLUMN claimed_until REAL;

-- A manual rollback asked of a replica that does not lead, kept for the leader to run.
CREATE TABLE rollback_requests (
    window_id   TEXT PRIMARY KEY,
    actor       TEXT NOT NULL,
    reason      TEXT,
    approved_by TEXT,
    at          REAL NOT NULL
);
