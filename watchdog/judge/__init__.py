"""The statistical judge: error proportions weighed by an always-valid sequential test.

``state`` (what a window remembers) is light; ``stats`` and ``evaluate`` (with the beta
functions of ``special``) are imported only when a judge rule is evaluated (see
watchdog/evaluation/evaluate.py).
"""
