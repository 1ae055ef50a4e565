"""Notifications: journal → outbox (routing, one row per channel) → delivery worker → channel.

There is one path: :mod:`watchdog.store.journal` hands each stored event to the
:class:`~watchdog.notify.outbox.Outbox`, the :class:`~watchdog.notify.delivery.DeliveryWorker`
sends the rows through the :class:`~watchdog.notify.channel.Channel` of each destination.
"""
