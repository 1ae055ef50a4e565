"""Fixtures that start real servers (PostgreSQL, Redis, Prometheus, Alertmanager) on
free loopback ports, and local fakes for SaaS that cannot be reached from here."""
