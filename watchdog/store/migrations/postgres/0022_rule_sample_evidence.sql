-- A judge rule's counts at each evaluation (JSON: errors, requests, baseline_errors,
-- baseline_requests, limit), so the status page can draw the new-vs-baseline difference
-- with its confidence band over time. NULL for other rules and for older rows.
ALTER TABLE rule_samples ADD COLUMN evidence TEXT;
