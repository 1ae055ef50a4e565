"""Rollback executors behind one Protocol, and the plan runner."""
