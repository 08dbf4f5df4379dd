"""Alerts to web services: ``genesis pipe IN_URL https://...`` / ``gs.pipe(in_url, "https://...")``.

Each output of the pipe (the alert, or what the filter returned) is POSTed as JSON, the same JSON
as ``genesis consume --format json`` (bytes as base64, integers as integers), with
``Content-Type: application/json`` and ``Idempotency-Key: topic/partition/offset/index``;
``format="slack"`` posts ``{"text": ...}`` (the alert's summary and a ``link`` template) to a Slack
incoming webhook instead.

Delivery is **at least once**: the group's offsets are committed, per partition, only past messages
every output of which was acknowledged with a 2xx (or dead-lettered), so after a crash or a
rebalance exactly the unacknowledged are sent again. 5xx, 408, 429 (honouring ``Retry-After``),
timeouts, refused and reset connections are retried (without limit unless ``max_retries``),
waiting 0.1 s doubling to 5 s, with jitter. Any other status is final: the output goes to
``dead_letter`` (a ``kafka://host/topic``; the body as value, ``webhook.status``,
``webhook.response`` and where it came from in headers) or, without one, the pipe stops with a
:class:`~genesis.errors.WebhookError` naming the alert. At most ``concurrency`` (16) requests are in
flight, across and within partitions: the server sees them in any order, the commits follow
each partition's order.
"""

from __future__ import annotations

from ._delivery import backoff, retry_after
from ._payload import FORMATS, idempotency_key
from ._pipe import COMMIT_EVERY, COMMIT_SECONDS, WebhookPipe, WebhookStats

__all__ = [
    "WebhookPipe",
    "WebhookStats",
    "FORMATS",
    "COMMIT_EVERY",
    "COMMIT_SECONDS",
    "idempotency_key",
    "backoff",
    "retry_after",
]
