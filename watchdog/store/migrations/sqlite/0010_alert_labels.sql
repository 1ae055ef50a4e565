-- Alert labels by name and value (issue 25 M1): a rule's alerts are found through an
-- index on the window's service and the rule's labels, never by reading the newest N
-- alerts of every service. Alertmanager derives a fingerprint from the labels, so they
-- never change for one: one row per (fingerprint, name). Existing alerts are indexed.
CREATE TABLE alert_labels (
    fingerprint TEXT NOT NULL,
    name        TEXT NOT NULL,
    value       TEXT NOT NULL,
    PRIMARY KEY (fingerprint, name)
);

CREATE INDEX alert_labels_name_value ON alert_labels (name, value, fingerprint);

INSERT OR IGNORE INTO alert_labels (fingerprint, name, value)
    SELECT a.fingerprint, j.key, j.value FROM alerts AS a, json_each(a.labels) AS j;

-- The size cap drops the oldest resolved occurrences first.
CREATE INDEX alerts_status_last_seen ON alerts (status, last_seen);
