-- Retention (watchdog/retention.py): the pruning job finds closed windows by phase and
-- age, and deletes a window's outbox rows with it.

CREATE INDEX windows_phase_updated ON windows (phase, updated_at);

CREATE INDEX outbox_window ON outbox (window_id);
