"""Exactly once: filter (or transform) one topic into another with Kafka transactions.

::

    import genesis.streaming as gs
    from genesis.filters import filter_asteroids

    with gs.pipe("kafka://asteroids@localhost/medium", "kafka://localhost/asteroids",
                 filter=filter_asteroids, start_at="earliest") as pipe:
        pipe.run(until_eos=True)
    print(pipe.stats)

For every input alert its output — the alert itself, what the filter returned instead, or
nothing — appears in the output topic exactly once to readers with
``isolation.level=read_committed``, whatever crashes: outputs and the input offsets are
committed in one Kafka transaction every ``commit_every`` alerts or ``commit_seconds``
seconds, and a transaction that fails is aborted and its inputs processed again (never
skipped). genesis' own readers read committed data only; Java and Spark clients default to
``read_uncommitted`` and would also see the outputs of aborted transactions: set
``isolation.level=read_committed`` there.

* The input URL must name a group: the committed offsets are the group's (a fresh random group
  would read everything again after a restart and double the output).
* A message all of whose alerts pass unchanged is forwarded byte for byte (a ZTF container stays
  a container, a Rubin message keeps its schema id); otherwise the survivors are encoded like
  their message (its writer schema), and what a filter returns instead of an alert with
  ``schema=`` (and ``schema_id=`` for the Confluent wire format). The input key is kept; input
  partition *p* goes to output partition *p* (modulo their number), so order per partition holds.
  Headers say where each output came from: ``genesis.topic``, ``genesis.partition``,
  ``genesis.offset``.
* Each pipe slot (``slot=``, the process index of ``genesis pipe --processes N``) has a stable
  transactional id: a restarted slot fences its predecessor and aborts its open transaction at
  once; several processes of one group are fenced by the group's generation (KIP-447), so neither
  a rebalance nor a zombie doubles the output. An abandoned transaction is aborted by the brokers
  after 10 s at the latest (``transaction.timeout.ms``).
* Undecodable input follows ``on_decode_error=`` as in ``gs.open``: a skipped packet's offset is
  committed inside the transaction, and a ``kafka://`` quarantine is written in the transaction
  too. A directory quarantine is at-least-once (a file is written before its transaction commits).

A ``step=`` (:class:`BatchStep`) decides, over batches of messages at once, what each message
becomes: ``genesis.sql``'s persistent queries (``CREATE STREAM name AS SELECT ...``) run their SQL
over each batch in DuckDB that way, inside the same transactions.

Exactly-once covers Kafka to Kafka. To get it into a database or files, store the input offsets
with the data in one local transaction and resume from them: ``docs/exactly-once.md`` shows it
with SQLite.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from confluent_kafka import KafkaException

from . import _topics
from ._batch_loop import run_batches
from ._codecs import Decoder
from ._kafka import Credentials, new_admin, translate
from ._models import Metadata, Processed
from ._parallel import PoolLike
from ._policies import Policy, quarantine_headers
from ._processing import Filter
from ._producer import encode_alerts
from ._reading import ReadOptions
from ._sources.transactional import Transaction, TransactionalKafkaSource
from ._stream import Stream
from ._urls import StreamSpec, is_webhook, parse_url
from .errors import ConfigError, DecodeError, UnknownTopicError

if TYPE_CHECKING:
    from .webhook import WebhookPipe

#: transactions close after this many input alerts, or this many seconds (measured in bench/pipe.py)
COMMIT_EVERY = 2000
COMMIT_SECONDS = 0.5

#: a pipe with a step hands it batches of up to this many alerts (fewer when no more are waiting)
STEP_BATCH = 1000

__all__ = [
    "pipe",
    "Pipe",
    "PipeStats",
    "BatchStep",
    "output_partitions",
    "COMMIT_EVERY",
    "COMMIT_SECONDS",
    "STEP_BATCH",
]


class BatchStep(Protocol):
    """Work a pipe does over a batch of messages at once, before it writes them (a SQL query).

    A batch closes at :data:`STEP_BATCH` alerts or when no more are waiting, so it never holds an
    alert back; the pipe writes its outputs in the open transaction before it fetches again.
    """

    #: the top-level fields the step reads of each alert (None: all); alerts are decoded that far
    fields: tuple[str, ...] | None

    def __call__(self, batch: Sequence[Processed], decoder: Decoder) -> Sequence[Processed | bytes | None]:
        """Per message of ``batch``, in order, what the pipe writes for it: a :class:`~genesis.Processed`
        (its ``kept`` alerts: forwarded byte for byte when all pass, else re-encoded like the
        message), the bytes of one output message, or None (nothing). ``decoder`` is the pipe's."""
        ...

    def close(self) -> None:
        """Let go of what the step holds (the pipe closes it with itself)."""
        ...


@dataclass
class PipeStats:
    """What a pipe did: input alerts and messages, outputs committed, transactions committed and aborted."""

    alerts: int = 0
    messages: int = 0
    outputs: int = 0  #: output messages in committed transactions
    forwarded: int = 0  #: of those, input messages forwarded byte for byte
    quarantined: int = 0
    transactions: int = 0
    aborted: int = 0
    #: input partitions where the group had no commit, started at their end (``start_at="latest"``,
    #: the default): a run until the end of the stream finds nothing there
    started_at_end: tuple[tuple[str, int], ...] = ()


def pipe(
    in_url: str,
    out_url: str,
    *,
    filter: Filter | None = None,
    pool: PoolLike | None = None,
    schema: Any = None,
    schema_id: int | None = None,
    slot: int = 0,
    create: bool = False,
    commit_every: int = COMMIT_EVERY,
    commit_seconds: float = COMMIT_SECONDS,
    step: BatchStep | None = None,
    **read_options: Any,
) -> Pipe | WebhookPipe:
    """Open an exactly-once pipe from ``in_url`` (a group's) to ``out_url`` (one topic).

    ``filter`` as in ``stream(filter=...)``; ``pool`` decodes and filters in worker processes (order
    kept); ``schema``/``schema_id`` encode what the filter returns instead of alerts; ``slot``
    names this process among the group's pipes; ``create`` makes a missing output topic (as many
    partitions as the input's); ``step`` works over batches of messages (:class:`BatchStep`; not
    with ``filter``/``pool``); ``read_options`` are ``gs.open``'s (``start_at``, ``auth``, ...).

    An ``http(s)://`` ``out_url`` POSTs every output to that web service instead, at least once
    (:class:`genesis.webhook.WebhookPipe`; ``read_options`` then also take its ``headers``,
    ``concurrency``, ``max_retries``, ``dead_letter``, ``format``, ...).
    """
    if is_webhook(out_url):
        from .webhook import WebhookPipe

        if schema is not None or schema_id is not None or step is not None or create:
            raise ConfigError(
                "a webhook pipe posts JSON: schema=, schema_id=, step= and create= are for kafka:// outputs"
            )
        return WebhookPipe(in_url, out_url, filter=filter, pool=pool, **read_options)
    return Pipe(
        in_url,
        out_url,
        filter=filter,
        pool=pool,
        schema=schema,
        schema_id=schema_id,
        slot=slot,
        create=create,
        commit_every=commit_every,
        commit_seconds=commit_seconds,
        step=step,
        read_options=ReadOptions.of(read_options, "pipe()"),
    )


def output_partitions(in_spec: StreamSpec, out_spec: StreamSpec, *, create: bool, auth: Credentials = None) -> int:
    """How many partitions the output topic has; with ``create``, make it first if it is missing (as many
    partitions as the input topic, replicated like the cluster's default)."""
    topic = out_spec.topics[0]
    admin = new_admin(out_spec, auth=auth)
    try:
        meta = admin.list_topics(timeout=30)
    except KafkaException as exc:
        raise translate(exc, brokers=out_spec.bootstrap_servers) from None
    if topic in meta.topics and meta.topics[topic].error is None:
        return len(meta.topics[topic].partitions)
    if not create:
        raise UnknownTopicError(
            f"the pipe's output topic {topic!r} does not exist on {out_spec.bootstrap_servers}: create it "
            "(genesis topics create), or let the pipe make it (create=True, genesis pipe --create)",
            topic=topic,
            brokers=out_spec.bootstrap_servers,
        )
    first = in_spec.topics[0]
    partitions = len(meta.topics[first].partitions) if first in meta.topics else 6
    replication = min(3, len(meta.brokers))
    _topics.create_topic(admin, topic, partitions, replication, brokers=out_spec.bootstrap_servers)
    return partitions


class Pipe:
    """An exactly-once pipe (made by :func:`pipe`); a context manager. :meth:`run` moves the alerts."""

    def __init__(
        self,
        in_url: str,
        out_url: str,
        *,
        filter: Filter | None,
        pool: PoolLike | None,
        schema: Any,
        schema_id: int | None,
        slot: int,
        create: bool,
        commit_every: int,
        commit_seconds: float,
        read_options: ReadOptions,
        step: BatchStep | None = None,
    ) -> None:
        spec_in, spec_out = parse_url(in_url), parse_url(out_url)
        if spec_in.scheme != "kafka" or spec_out.scheme != "kafka":
            raise ConfigError("a pipe reads and writes kafka:// URLs")
        if spec_in.group is None:
            raise ConfigError(
                f"a pipe's input URL must name a consumer group (kafka://GROUP@{spec_in.bootstrap_servers}/...): "
                "the group's committed offsets say where a restarted pipe goes on; a fresh random group "
                "would read everything again and double the output"
            )
        if len(spec_out.topics) != 1 or spec_out.topics[0].startswith("^"):
            raise ConfigError(f"a pipe writes to exactly one topic, not {','.join(spec_out.topics)}")
        if not isinstance(commit_every, int) or commit_every < 1 or commit_seconds <= 0:
            raise ConfigError("commit_every must be a positive integer and commit_seconds a positive number")
        if schema_id is not None and schema is None:
            raise ConfigError("schema_id= needs schema=, the schema it stands for")
        if step is not None and (filter is not None or pool is not None):
            raise ConfigError("a pipe with a step= does its work there: give no filter= or pool= with it")
        self.in_spec, self.out_spec, self.topic = spec_in, spec_out, spec_out.topics[0]
        self.filter, self.pool, self.schema, self.schema_id = filter, pool, schema, schema_id
        self.commit_every, self.commit_seconds = commit_every, commit_seconds
        self.step = step
        self.stats = PipeStats()
        self._stop = threading.Event()
        options = read_options.source_options()
        self._partitions = output_partitions(spec_in, spec_out, create=create, auth=read_options.auth)
        self.transaction = Transaction(
            spec_out, f"genesis-pipe.{spec_in.group}.{slot}", auth=read_options.auth, config=read_options.config
        )
        try:
            self._source = TransactionalKafkaSource(spec_in, self.transaction, **options)
            self.decoder = read_options.decoder()
            self.stream = Stream(spec_in, self._source, self.decoder, self._policy(read_options))
        except BaseException:
            self.transaction.close()
            raise
        self.stream.commit_on_revoke = True  # a message is produced before the next fetch
        self._pending = PipeStats()  # what the open transaction holds
        self._failed = False

    # ------------------------------------------------------------------ setup
    def _policy(self, read: ReadOptions) -> Policy | None:
        """The decode-error policy; a ``kafka://`` quarantine is written inside the transaction."""
        if read.choice == "quarantine" and str(read.quarantine or "").startswith("kafka://"):
            target = parse_url(str(read.quarantine))
            if len(target.topics) != 1:
                raise ConfigError("quarantine= names exactly one topic")
            return lambda meta, raw, error: self._quarantine(target.topics[0], meta, raw, error)
        return read.policy()

    def _quarantine(self, topic: str, meta: Metadata, raw: bytes | None, error: DecodeError) -> None:
        headers = quarantine_headers(meta, error)
        self.transaction.produce(topic, raw or b"", meta.key, headers, meta.partition % self._partitions)
        self._pending.quarantined += 1

    # ------------------------------------------------------------------ running
    def run(self, limit: int | None = None, timeout: float | None = None, until_eos: bool = False) -> PipeStats:
        """Move alerts until ``limit`` input alerts, ``timeout`` seconds without input, the end of every
        input partition (``until_eos``), or :meth:`stop`; commits what is done before returning.

        If it raises, the open transaction is aborted (nothing of it becomes visible) and the pipe
        is closed without committing: the inputs since the last commit are processed again next time.
        """
        try:
            return self._run(limit, timeout, until_eos)
        except BaseException:
            self._failed = True
            self.stream.commit_on_revoke = False  # leaving the group must not commit past the failure
            self.transaction.abort()
            raise

    def _run(self, limit: int | None, timeout: float | None, until_eos: bool) -> PipeStats:
        fields = self.step.fields if self.step is not None else None
        run_batches(
            self._stop,
            batch_size=lambda: self._batch_size(limit),
            batches=lambda size: self.stream.batches(
                size, self.commit_seconds, self.filter, self.pool, until_eos=until_eos, fields=fields
            ),
            hand_on=self._hand_on,
            commit=self.commit,  # also when the input paused: an open transaction would hold its outputs back
            reached=lambda: limit is not None and self.stats.alerts + self._pending.alerts >= limit,
            at_end=self._at_end,
            commit_every=self.commit_every,
            commit_seconds=self.commit_seconds,
            timeout=timeout,
            until_eos=until_eos,
        )
        return self.stats

    def _hand_on(self, batch: Sequence[Processed]) -> None:
        with self.stream.owner:  # nothing commits between a message and its output
            outputs = self.step(batch, self.decoder) if self.step is not None else batch
            for processed, output in zip(batch, outputs, strict=True):
                self._move(processed, output)

    def _batch_size(self, limit: int | None) -> int:
        """Alerts per batch: one message at a time without a step; a step's batch, never past ``limit``."""
        if self.step is None:
            return 1
        if limit is None:
            return STEP_BATCH
        return max(1, min(STEP_BATCH, limit - self.stats.alerts - self._pending.alerts))

    def _at_end(self) -> bool:
        """Every assigned input partition read to its end (an aborted transaction rewinds them: a
        quiet moment while they are fetched again is not the end), or none assigned to this pipe."""
        return self._source.caught_up() or not self._source.assignment

    def _move(self, processed: Processed, output: Processed | bytes | None) -> None:
        """Produce what one processed message became (``output``, see :class:`BatchStep`) into the open
        transaction."""
        meta = processed.meta
        self._pending.messages += 1
        self._pending.alerts += processed.records
        if output is None:
            return
        if not isinstance(output, Processed):
            self._produce(meta, bytes(output))
            return
        processed = output
        if not processed.kept:
            return
        if processed.unchanged:  # the message itself is the result
            value = meta.value or b""
            self._pending.forwarded += 1
        elif processed.transformed and self.schema is not None:
            value = encode_alerts(processed.survivors(), self.schema, self.schema_id)
        else:  # some alerts passed: re-encoded with the message's own schema
            value = self.decoder.encode_like(processed.survivors(), meta.value or b"", meta.key)
        self._produce(meta, value)

    def _produce(self, meta: Metadata, value: bytes) -> None:
        """One output message of the input message ``meta``: its key, partition and provenance."""
        headers: list[tuple[str, str | bytes | None]] = [
            *meta.headers,
            ("genesis.topic", meta.topic.encode()),
            ("genesis.partition", str(meta.partition).encode()),
            ("genesis.offset", str(meta.offset).encode()),
        ]
        self.transaction.produce(self.topic, value, meta.key, headers, meta.partition % self._partitions)
        self._pending.outputs += 1

    def commit(self) -> None:
        """Commit the open transaction: its outputs and the inputs they came from, together."""
        aborted = self._source.aborted_transactions
        self.stream.commit()
        if self._source.aborted_transactions == aborted:
            for name in ("alerts", "messages", "outputs", "forwarded", "quarantined"):
                setattr(self.stats, name, getattr(self.stats, name) + getattr(self._pending, name))
        self._pending = PipeStats()
        self.stats.transactions = self._source.committed_transactions
        self.stats.aborted = self._source.aborted_transactions
        self.stats.started_at_end = tuple(sorted(self._source.started_at_end))

    def stop(self) -> None:
        """End :meth:`run` after the current message (safe from another thread or a signal handler)."""
        self._stop.set()
        self.stream.stop()

    def close(self) -> None:
        """Leave the group (committing what :meth:`run` finished) and let the producer (and the step) go."""
        try:
            self.stream.close()
        finally:
            try:
                self.transaction.close()
            finally:
                if self.step is not None:
                    self.step.close()

    def __enter__(self) -> Pipe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<genesis Pipe {self.in_spec.url()} -> {self.out_spec.url()}>"
