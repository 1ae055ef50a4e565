"""rollback-watchdog: guards the minutes after a production deploy and rolls it back once."""

__version__ = "0.1.0"
