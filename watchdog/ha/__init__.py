"""High availability: who may act (a leader with a fencing token), and for how long.

``coord`` is the Coordinator port with its single-node default, ``lease`` the Redis lease
behind it, ``fencing`` what a deposed leader does, ``patience`` the writes a rollback
cannot lose, ``health`` the store probe. Recovery of interrupted rollbacks re-enters the
pipeline and lives beside it (:mod:`watchdog.pipeline.recovery`); nothing here imports
:mod:`watchdog.pipeline`.
"""
