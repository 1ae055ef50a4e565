-- Shadow mode and recovery confirmation (issue 15): a window may be in shadow (nothing
-- acts on its own) and carries how long to watch the restored version after a rollback.
-- Windows from before this migration never confirm (0 seconds).
ALTER TABLE windows ADD COLUMN shadow boolean NOT NULL DEFAULT false;

ALTER TABLE windows ADD COLUMN confirm_for double precision NOT NULL DEFAULT 0;
