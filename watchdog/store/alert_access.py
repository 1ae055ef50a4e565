"""The AlertStore methods of both stores, as mixins (SQL in :mod:`alert_sql`).

Recording keeps the ``alert_labels`` index in step (labels never change for a
fingerprint, so only new ones are written); listing may ask for alerts carrying given
labels (a window's service, a rule's ``equal`` matchers), answered through that index
instead of from the newest N alerts of every service; :meth:`cap_alerts` keeps the
table to a size, dropping the oldest resolved occurrences first.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

from watchdog.foundation.alerts import Alert, AlertStatus
from watchdog.store import alert_sql

ORPHANS = 1000
"""Label rows of alerts no longer stored, deleted per cap run (bounded work)."""


class SqliteAlerts:
    """AlertStore for :class:`~watchdog.store.sqlite.SqliteStore`."""

    def _tx(self) -> AbstractAsyncContextManager[Any]:
        raise NotImplementedError  # provided by SqliteStore

    def _session(self) -> AbstractAsyncContextManager[Any]:
        raise NotImplementedError  # provided by SqliteStore

    async def record_alerts(self, alerts: list[Alert], *, at: float) -> int:
        """Upsert alerts on (fingerprint, starts_at); returns how many were new."""
        async with self._tx() as db:
            known = await db.execute_fetchall(
                alert_sql.SQLITE_KNOWN, (alert_sql.fingerprints_json(alerts),)
            )
            batch = alert_sql.split(alerts, list(known))
            params = [alert_sql.alert_params(a, at) for a in batch.upsert]
            await db.executemany(alert_sql.SQLITE_UPSERT, params)
            await db.executemany(alert_sql.SQLITE_LABELS, alert_sql.label_rows(batch.upsert))
            if batch.seen_again:
                keys = alert_sql.keys_json(batch.seen_again)
                await db.execute(alert_sql.SQLITE_SEEN_AGAIN, (at, keys))
        return batch.new

    async def list_alerts(
        self,
        *,
        status: AlertStatus | None = None,
        active_since: float | None = None,
        started_since: float | None = None,
        labels: Mapping[str, str] | None = None,
        limit: int = 1000,
    ) -> list[Alert]:
        """Alerts, most recently started first, filtered."""
        wanted = None if status is None else status.value
        sql, extra = alert_sql.list_sql(alert_sql.SQLITE_LIST, labels or {}, "?")
        async with self._session() as db:
            found = await db.execute_fetchall(
                sql, (wanted, active_since, started_since, limit, *extra)
            )
        return [alert_sql.alert_from_row(r) for r in found]

    async def cap_alerts(self, keep: int) -> int:
        """Delete all but ``keep`` alerts, oldest resolved first; returns how many went."""
        async with self._tx() as db:
            gone = int((await db.execute(alert_sql.SQLITE_CAP, (keep,))).rowcount)
            await db.execute(alert_sql.SQLITE_ORPHAN_LABELS, (ORPHANS,))
        return gone


class PostgresAlerts:
    """AlertStore for :class:`~watchdog.store.postgres.PostgresStore`."""

    def _conn(self) -> AbstractAsyncContextManager[Any]:
        raise NotImplementedError  # provided by PostgresStore

    async def record_alerts(self, alerts: list[Alert], *, at: float) -> int:
        """Upsert alerts on (fingerprint, starts_at); returns how many were new."""
        async with self._conn() as conn, conn.transaction():
            known = await conn.fetch(alert_sql.POSTGRES_KNOWN, alert_sql.fingerprints(alerts))
            batch = alert_sql.split(alerts, list(known))
            params = [alert_sql.alert_params(a, at) for a in batch.upsert]
            await conn.executemany(alert_sql.POSTGRES_UPSERT, params)
            if rows := alert_sql.label_rows(batch.upsert):
                await conn.execute(alert_sql.POSTGRES_LABELS, *map(list, zip(*rows, strict=True)))
            if batch.seen_again:
                fps, starts = zip(*batch.seen_again, strict=True)
                await conn.execute(alert_sql.POSTGRES_SEEN_AGAIN, at, list(fps), list(starts))
        return batch.new

    async def list_alerts(
        self,
        *,
        status: AlertStatus | None = None,
        active_since: float | None = None,
        started_since: float | None = None,
        labels: Mapping[str, str] | None = None,
        limit: int = 1000,
    ) -> list[Alert]:
        """Alerts, most recently started first, filtered."""
        wanted = None if status is None else status.value
        sql, extra = alert_sql.list_sql(alert_sql.POSTGRES_LIST, labels or {}, "$")
        async with self._conn() as conn:
            found = await conn.fetch(sql, wanted, active_since, started_since, limit, *extra)
        return [alert_sql.alert_from_row(r) for r in found]

    async def cap_alerts(self, keep: int) -> int:
        """Delete all but ``keep`` alerts, oldest resolved first; returns how many went."""
        async with self._conn() as conn, conn.transaction():
            status = await conn.execute(alert_sql.POSTGRES_CAP, keep)
            await conn.execute(alert_sql.POSTGRES_ORPHAN_LABELS, ORPHANS)
        return int(status.rsplit(" ", 1)[-1])
