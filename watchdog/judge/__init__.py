"""The statistical judge: error proportions weighed by an always-valid sequential test.

``state`` (what a window remembers) is light; ``stats`` and ``evaluate`` pull in scipy
and are imported only when a judge rule is evaluated (see watchdog/evaluate.py).
"""
