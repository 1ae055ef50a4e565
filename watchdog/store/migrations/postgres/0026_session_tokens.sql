-- Status page sessions bound to the token that opened them (issue 25): a tag derived
-- from the token, so a changed token ends its sessions, and the caps per token (the
-- oldest ends first) count by it. Sessions from before carry no tag: they end.
DELETE FROM status_sessions;

ALTER TABLE status_sessions ADD COLUMN token_tag TEXT NOT NULL DEFAULT '';

CREATE INDEX status_sessions_tag ON status_sessions (token_tag, created_at);
