"""The decision pipeline: :class:`Decision`, the :class:`Stage` protocol, :class:`Pipeline`.

The stages live in :mod:`watchdog.pipeline.stages` and :mod:`watchdog.pipeline.grace`;
they are composed, with recovery beside the live path, in one place:
:func:`watchdog.pipeline.build.build_pipeline`.
"""

from __future__ import annotations

from watchdog.pipeline.base import Decision, Pipeline, Stage

__all__ = ["Decision", "Pipeline", "Stage"]
