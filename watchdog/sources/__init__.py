"""Sources: one module per kind behind the small :class:`Source` Protocol."""

from __future__ import annotations

from collections.abc import Mapping

from watchdog.foundation.errors import PermanentError
from watchdog.sources.base import SampleContext, Source

__all__ = ["SampleContext", "Source", "Sources"]


class Sources:
    """The sources the engine samples through, by rule kind (``prometheus``, ``http``...)."""

    def __init__(self, mapping: Mapping[str, Source]) -> None:
        self._by_kind = dict(mapping)

    def get(self, kind: str) -> Source:
        """The source for ``kind``; PermanentError when none is configured."""
        try:
            return self._by_kind[kind]
        except KeyError:
            known = ", ".join(sorted(self._by_kind)) or "none"
            raise PermanentError(
                f"no source configured for kind {kind!r} (configured: {known})"
            ) from None

    @property
    def kinds(self) -> frozenset[str]:
        """The configured kinds."""
        return frozenset(self._by_kind)

    async def close(self) -> None:
        """Close every source, even when one of them fails to close."""
        errors: list[Exception] = []
        for source in self._by_kind.values():
            try:
                await source.close()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise ExceptionGroup("closing sources failed", errors)
