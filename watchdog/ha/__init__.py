"""High availability: who may act (a leader with a fencing token), and finishing
what a crash interrupted.

``coord`` is the Coordinator port with its single-node default, ``lease`` the Redis lease
behind it, ``recovery`` the pass that resumes claimed but unfinished rollbacks.
"""
