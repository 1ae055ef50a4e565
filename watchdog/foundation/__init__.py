"""The nouns and rules every layer shares: the domain model, errors that carry the retry
decision, the injected clock, durations, the backoff rule, RE2 regexes, bounded YAML,
Alertmanager's alert records, secret strength, the judge state a rule's state persists. No
I/O; imports no other watchdog package.
"""
