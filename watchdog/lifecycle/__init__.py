"""A window from open to end: the ``Controller`` port people drive and ``WindowService`` behind
it, the engine's tick, milestones and endings, confirmation after a rollback, escalation, what
is said about sources, rule reload, deploy detection and the alert inbox. Imports nothing from
:mod:`watchdog.web`.
"""
