-- Each evaluation's value and verdict, per (window, rule): what the status page and
-- `deploy status` draw. Bounded: the store keeps the newest points per rule (see
-- watchdog/store/base.py, KEEP_POINTS). A non-finite value is stored as NULL.
CREATE TABLE rule_samples (
    window_id TEXT NOT NULL REFERENCES windows (id) ON DELETE CASCADE,
    rule      TEXT NOT NULL,
    at        REAL NOT NULL,
    value     REAL,
    verdict   TEXT NOT NULL
);

CREATE INDEX rule_samples_window_rule_at ON rule_samples (window_id, rule, at);
