-- Keys seen once, kept until they expire: a Slack request's signature for its five
-- minutes, so a captured click is refused after a restart or on another replica
-- (issue 13 item 4). Pruned as new keys arrive.
CREATE TABLE seen_once (
    key        TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
);

CREATE INDEX seen_once_expires ON seen_once (expires_at);

-- Status page sessions: a random id per sign-in, its server-side expiry, revocable
-- (issue 13 item 9). Only a hash of the id is stored.
CREATE TABLE status_sessions (
    id_hash    TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL
);

CREATE INDEX status_sessions_expires ON status_sessions (expires_at);
