"""Notifiers: the port and its always-available implementations."""

from watchdog.notify.base import FanoutNotifier, LogNotifier, NoopNotifier, Notifier

__all__ = ["FanoutNotifier", "LogNotifier", "NoopNotifier", "Notifier"]
