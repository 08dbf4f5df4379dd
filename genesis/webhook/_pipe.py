"""The webhook pipe: alerts of a consumer group POSTed to a URL, at least once, committed behind the acknowledged."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._batch_loop import run_batches
from .._models import Metadata, Processed
from .._parallel import PoolLike
from .._processing import Filter
from .._urls import parse_url
from ..errors import ConfigError, WebhookError
from ._delivery import ABANDONED, OK, Delivery, Outcome, tls_verify
from ._ledger import InFlight
from ._payload import Payloads, idempotency_key

log = logging.getLogger("genesis.webhook")

#: commits follow the acknowledged deliveries this often (alerts, seconds)
COMMIT_EVERY = 1000
COMMIT_SECONDS = 1.0
#: messages are taken from the stream in batches of up to this many alerts (fewer when no more wait)
BATCH = 500


@dataclass
class WebhookStats:
    """What a webhook pipe did: input alerts and messages read, outputs delivered (a 2xx), attempts
    retried, outputs dead-lettered, deliveries abandoned by a stop (sent again next run), commits."""

    alerts: int = 0
    messages: int = 0
    delivered: int = 0
    retried: int = 0
    dead_lettered: int = 0
    abandoned: int = 0
    commits: int = 0


@dataclass(frozen=True)
class _Output:
    """One body on its way: where it came from (for the commit, the error and the dead letter)."""

    meta: Metadata
    index: int
    body: bytes

    @property
    def tp(self) -> tuple[str, int]:
        return (self.meta.topic, self.meta.partition)

    @property
    def key(self) -> str:
        return idempotency_key(self.meta, self.index)


class WebhookPipe:
    """Alerts of ``in_url`` (a group's) POSTed as JSON to ``url``; made by ``gs.pipe(in_url, "https://...")``.

    Delivery is at least once: a partition's offset is committed only past messages all of whose
    outputs were acknowledged with a 2xx (or dead-lettered), in order, so a crash or a rebalance
    sends again exactly what was not acknowledged (the ``Idempotency-Key`` header,
    ``topic/partition/offset/index``, lets the receiver drop repeats). See ``genesis.webhook``.
    """

    def __init__(
        self,
        in_url: str,
        url: str,
        *,
        filter: Filter | None = None,
        pool: PoolLike | None = None,
        headers: Mapping[str, str] | None = None,
        concurrency: int = 16,
        request_timeout: float = 10.0,
        max_retries: int | None = None,
        dead_letter: str | None = None,
        format: str = "json",
        link: str | None = None,
        drop_bytes: bool = False,
        ca: str | None = None,
        insecure: bool = False,
        commit_every: int = COMMIT_EVERY,
        commit_seconds: float = COMMIT_SECONDS,
        **read_options: Any,
    ) -> None:
        from ..streaming import open as open_stream

        spec = parse_url(in_url)
        if spec.scheme != "kafka" or spec.group is None:
            raise ConfigError(
                f"a webhook pipe reads a group's topic (kafka://GROUP@{spec.bootstrap_servers or 'host'}/...): "
                "the group's commits say which alerts were delivered, so a restart sends only the rest"
            )
        if not isinstance(commit_every, int) or commit_every < 1 or not commit_seconds > 0:
            raise ConfigError("commit_every must be a positive integer and commit_seconds a positive number")
        self.url, self.in_spec = url, spec
        self.filter, self.pool = filter, pool
        self.commit_every, self.commit_seconds = commit_every, commit_seconds
        self.payloads = Payloads(format, link=link, drop_bytes=drop_bytes)
        self.stats = WebhookStats()
        self._in_flight = InFlight()
        self._sent = 0  # bodies handed to the delivery whose outcome has not come back
        self._failing = False
        self._stop = threading.Event()
        self._dead = None
        self.stream = open_stream(in_url, **read_options)
        try:
            if dead_letter is not None:
                if not dead_letter.startswith("kafka://"):
                    raise ConfigError(f"the dead letter is a kafka://host/topic URL, not {dead_letter!r}")
                auth = read_options.get("auth")
                self._dead = open_stream(dead_letter, "w", auth=auth, config=read_options.get("config"))
            self.delivery = Delivery(
                url,
                headers=headers,
                concurrency=concurrency,
                timeout=request_timeout,
                max_retries=max_retries,
                verify=tls_verify(ca, insecure),
            )
        except BaseException:
            self.stream.close()
            raise

    # ------------------------------------------------------------------ running
    def run(self, limit: int | None = None, timeout: float | None = None, until_eos: bool = False) -> WebhookStats:
        """Deliver until ``limit`` input alerts, ``timeout`` seconds without input, the end of every
        partition (``until_eos``) or :meth:`stop`; then wait for the deliveries in flight (after a stop:
        only for the attempts under way) and commit what was acknowledged.

        Raises :class:`~genesis.errors.WebhookError` for an output the server refused (a 4xx other than
        408/429) or that ran out of ``max_retries``, when there is no dead letter; what was acknowledged
        before it is committed, the refused alert and everything after it in its partition are not.
        """
        try:
            self._run(limit, timeout, until_eos)
        except BaseException:
            self._failing = True
            self.delivery.stop()
            try:
                self._finish()
            except Exception as exc:  # the first failure is the one to report
                log.warning("could not commit what was delivered before the failure: %s", exc)
            raise
        self._finish()
        return self.stats

    def _run(self, limit: int | None, timeout: float | None, until_eos: bool) -> None:
        run_batches(
            self._stop,
            batch_size=lambda: BATCH if limit is None else max(1, min(BATCH, limit - self.stats.alerts)),
            batches=lambda size: self.stream.batches(
                size, self.commit_seconds, self.filter, self.pool, until_eos=until_eos, forwarding=False
            ),
            hand_on=self._hand_on,
            commit=self._commit_acknowledged,
            reached=lambda: limit is not None and self.stats.alerts >= limit,
            at_end=self.stream.caught_up,
            commit_every=self.commit_every,
            commit_seconds=self.commit_seconds,
            timeout=timeout,
            until_eos=until_eos,
        )

    def _hand_on(self, batch: Sequence[Processed]) -> None:
        # the whole batch counts as handed over: each message holds its offset until its
        # outputs are on their way, so a failure half-way never commits past one not sent
        for processed in batch:
            self._in_flight.add((processed.meta.topic, processed.meta.partition), processed.meta.offset)
        for processed in batch:
            self._send(processed)
        self._collect()

    def _commit_acknowledged(self) -> None:
        self._collect()
        self.commit()

    def _send(self, processed: Processed) -> None:
        meta = processed.meta
        tp = (meta.topic, meta.partition)
        self.stats.messages += 1
        self.stats.alerts += processed.records
        for (index, _), output in zip(processed.kept, processed.survivors(), strict=True):
            item = _Output(meta, index, self.payloads.body(output))
            while not self.delivery.wait_for_slot(0.05):
                self._collect()
            self._in_flight.add(tp, meta.offset)
            self.delivery.send(item, item.body, {"Idempotency-Key": item.key})
            self._sent += 1
            self._collect()
        self._in_flight.settle(tp, meta.offset)  # its mark from _run (if this raised, it holds on)

    def _collect(self, wait: float | None = None) -> None:
        """Take the outcomes that arrived (with ``wait``: the first may take that long)."""
        while True:
            try:
                outcome = self.delivery.done.get(timeout=wait) if wait else self.delivery.done.get_nowait()
            except queue.Empty:
                return
            wait = None
            self._sent -= 1
            self._settle(outcome)

    def _settle(self, outcome: Outcome) -> None:
        item: _Output = outcome.token
        if outcome.result == ABANDONED:  # stays in flight: never committed, sent again next run
            self.stats.abandoned += 1
            return
        if outcome.result != OK:
            if self._failing:  # already stopping for an error: this one stays uncommitted too
                log.warning("%s did not take %s either: %s", self.url, item.key, outcome.reason)
                return
            if self._dead is None:
                raise WebhookError(
                    f"{self.url} did not take the alert at {item.meta.topic}[{item.meta.partition}]@"
                    f"{item.meta.offset} (output {item.index}): {outcome.reason}. Nothing from it on in its "
                    "partition is committed: fix the receiver (or the filter) and run again, or give a dead "
                    "letter (--dead-letter kafka://host/topic) to keep such alerts aside and go on",
                    topic=item.meta.topic,
                    partition=item.meta.partition,
                    offset=item.meta.offset,
                    status=outcome.status,
                    response=outcome.response,
                )
            self._dead_letter(item, outcome)
        else:
            self.stats.delivered += 1
        self._in_flight.settle(item.tp, item.meta.offset)

    def _dead_letter(self, item: _Output, outcome: Outcome) -> None:
        """Keep a refused output (its JSON body) in the dead-letter topic, acknowledged before going on."""
        assert self._dead is not None
        headers = [
            ("genesis.topic", item.meta.topic),
            ("genesis.partition", str(item.meta.partition)),
            ("genesis.offset", str(item.meta.offset)),
            ("genesis.index", str(item.index)),
            ("webhook.url", self.url),
            ("webhook.status", "" if outcome.status is None else str(outcome.status)),
            ("webhook.response", outcome.response),
            ("webhook.error", outcome.error),
            ("webhook.attempts", str(outcome.attempts)),
        ]
        self._dead.write(item.body, key=item.meta.key, headers=headers)
        self._dead.flush()
        self.stats.dead_lettered += 1
        log.warning("dead-lettered the output of %s: %s", item.key, outcome.reason)

    def commit(self) -> None:
        """Commit, per partition, up to the first message with an output not yet acknowledged."""
        self.stream.commit(hold=self._in_flight.hold())
        self.stats.commits += 1
        self.stats.retried = self.delivery.retries

    def _finish(self) -> None:
        """Wait for the deliveries in flight (a stop makes retries give up), then commit."""
        try:
            while self._sent:
                self._collect(wait=0.5)
        except BaseException:
            self._failing = True
            self.delivery.stop()
            while self._sent:
                self._collect(wait=0.5)
            raise
        finally:
            self.commit()

    def stop(self) -> None:
        """End :meth:`run` soon (safe from another thread or a signal handler): no new deliveries start,
        retries give up; what was acknowledged is committed."""
        self._stop.set()
        self.stream.stop()
        self.delivery.stop()

    def close(self) -> None:
        try:
            self.delivery.close()
        finally:
            try:
                self.stream.close()
            finally:
                if self._dead is not None:
                    self._dead.close()

    def __enter__(self) -> WebhookPipe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<genesis WebhookPipe {self.in_spec.url()} -> {self.url}>"
