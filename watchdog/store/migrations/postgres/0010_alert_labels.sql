-- Alert labels by name and value (issue 25 M1): a rule's alerts are found through an
-- index on the window's service and the rule's labels, never by reading the newest N
-- alerts of every service. Alertmanager derives a fingerprint from the labels, so they
-- never change for one: one row per (fingerprint, name). Existing alerts are indexed.
CREATE TABLE alert_labels (
    fingerprint text NOT NULL,
    name        text NOT NULL,
    value       text NOT NULL,
    PRIMARY KEY (fingerprint, name)
);

CREATE INDEX alert_labels_name_value ON alert_labels (name, value, fingerprint);

INSERT INTO alert_labels (fingerprint, name, value)
    SELECT DISTINCT a.fingerprint, j.key, j.value
    FROM alerts AS a, jsonb_each_text(a.labels) AS j
    ON CONFLICT DO NOTHING;

-- The size cap drops the oldest resolved occurrences first.
CREATE INDEX alerts_status_last_seen ON alerts (status, last_seen);
