"""The one table of notification channel kinds, from the ``CHANNELS`` each channel
module exports (:class:`~watchdog.notify.channel.ChannelKind`): the channels the app
builds from settings (:mod:`watchdog.wiring`), in this order."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from watchdog.notify import markers, pagerduty, slack, webhook
from watchdog.notify.channel import Channel, ChannelKind, ChannelParts


def _table(*kinds: ChannelKind) -> Mapping[str, ChannelKind]:
    by_name = {k.name: k for k in kinds}
    if len(by_name) != len(kinds):
        raise ValueError("two channel kinds share a name")
    return MappingProxyType(by_name)


CHANNEL_KINDS = _table(*slack.CHANNELS, *webhook.CHANNELS, *pagerduty.CHANNELS, *markers.CHANNELS)


def channels(parts: ChannelParts) -> dict[str, Channel]:
    """The configured channels, by name."""
    built = {name: kind.build(parts) for name, kind in CHANNEL_KINDS.items()}
    return {name: channel for name, channel in built.items() if channel is not None}
