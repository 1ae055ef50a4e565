-- Shadow mode and recovery confirmation (issue 15): a window may be in shadow (nothing
-- acts on its own) and carries how long to watch the restored version after a rollback.
-- Windows from before this migration never confirm (0 seconds).
ALTER TABLE windows ADD COLUMN shadow INTEGER NOT NULL DEFAULT 0;

ALTER TABLE windows ADD COLUMN confirm_for REAL NOT NULL DEFAULT 0;
