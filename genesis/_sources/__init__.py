"""Where a stream's messages come from: the :class:`Source` protocol and the :class:`Message` it yields.

:class:`genesis.Stream` owns everything a stream keeps (buffer, offset tracker,
assignment generations, counters, the pool pipeline); a source only moves bytes:
it fetches messages, says whether it is caught up, commits positions the stream
gives it, and tells the stream (its :class:`Listener`) when partitions come and go.
Two sources exist: :class:`~genesis._sources.kafka.KafkaSource` (a consumer group)
and :class:`~genesis._sources.archive.ArchiveSource` (``file://`` archives). A test
source in ``tests/unit/test_stream.py`` drives the loop without Kafka, as httpx's
``MockTransport`` drives its client.

A transactional commit (exactly-once pipes) or a consumer that keeps polling while
the user works replace :meth:`Source.commit` and :meth:`Source.fetch`; the stream
does not change.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .._processing import Outcome, Processor

#: (topic, partition)
TopicPartition = tuple[str, int]


@dataclass(slots=True)
class Message:
    """A fetched message on its way to the user.

    A source fills the first six fields. The stream sets ``generation`` (which
    assignment of the partition it was fetched under: a message of an earlier one is
    dropped, its partition having moved to another consumer) and, once it was decoded
    and filtered, ``outcome`` (by ``processor``). ``cursor`` is the index of the next
    record of the message to hand over, ``kept_at`` the index into ``outcome.kept`` of
    the next kept record: a message holding several alerts may be handed over across
    several calls of ``stream(...)`` (``limit=``).
    """

    tp: TopicPartition
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int | None  #: milliseconds since 1970 (Kafka's message timestamp), or None
    headers: list[tuple[str, bytes]] | None
    generation: int = 0
    outcome: Outcome | None = None
    processor: Processor | None = None
    cursor: int = 0
    kept_at: int = 0
    #: the message's alerts decoded in this process, for those a pool worker kept without sending them
    alerts: list[dict[str, Any]] | None = None


class Listener(Protocol):
    """What a source tells its stream about partitions (implemented by :class:`genesis.Stream`).

    ``owner`` is held by the thread running the stream except while the user holds an alert: a
    source that works in the background (keeping a consumer in its group) takes it first, so the
    stream's state and the client are never used by two threads at once.
    """

    owner: threading.RLock

    def assigned(self, tps: Iterable[TopicPartition]) -> None:
        """These partitions are now read by this stream."""

    def revoking(self, tps: set[TopicPartition]) -> None:
        """These partitions go to another consumer: commit what is owed for them, then forget them."""

    def lost(self, tps: set[TopicPartition]) -> None:
        """These partitions already belong to another consumer: forget them without committing."""

    def handed_out(self, tps: set[TopicPartition]) -> dict[TopicPartition, int]:
        """Per partition of ``tps``, the position after what this stream handed over (and filtered
        out) so far, committed or not; partitions it handed nothing of are absent."""


class Source(Protocol):
    """A supply of messages for :class:`genesis.Stream`.

    ``fetch`` returns promptly (within a fraction of a second) so that ``stop()``,
    Ctrl-C and ``timeout=`` are honoured; rebalance callbacks reach the listener only
    from inside ``fetch``, i.e. between two alerts handed to the user.
    """

    @property
    def bounded(self) -> bool:
        """True when the source has an end (an archive): ``stream(...)`` then stops there."""

    @property
    def atomic_commits(self) -> bool:
        """True when a commit also commits what was produced since the last one (a Kafka
        transaction): it must then carry the position of every partition, never some only."""

    @property
    def group(self) -> str | None:
        """The consumer group (``None`` for an archive)."""

    @property
    def assigned_at(self) -> float | None:
        """``time.monotonic()`` when partitions were last assigned (``None``: not yet)."""

    @property
    def started_at_end(self) -> set[TopicPartition]:
        """Partitions where the group had no commit and that started at the end
        (``start_at="latest"``): a read of them until the end of the stream finds nothing."""

    def bind(self, listener: Listener) -> None:
        """Attach the stream that receives the partition callbacks (before the first fetch)."""

    def fetch(self) -> list[Message]:
        """The next messages of assigned partitions (empty when none arrived in a short while)."""

    def handed_back(self) -> None:
        """The user is done with an alert (the generator resumed): raise if the source could not
        keep its place meanwhile (a consumer that had to leave its group)."""

    def caught_up(self) -> bool:
        """Whether every assigned partition is read to its end."""

    def idle_for(self, last_message: float) -> float:
        """Seconds the stream has waited for a message (``last_message``: monotonic time of the last one)."""

    def backlog(self) -> int:
        """Messages between the current positions and the ends of the assigned partitions."""

    def lag(self) -> dict[TopicPartition, int]:
        """Per assigned partition, the messages not yet fetched."""

    def commit(self, offsets: dict[TopicPartition, int], asynchronous: bool) -> bool:
        """Commit these positions; True when they are acknowledged (or, asynchronously, sent).

        False means they were not committed and should be sent again later (the group
        moved on meanwhile): duplicates, never loss.
        """

    @property
    def assignment(self) -> set[TopicPartition]:
        """The partitions currently read."""

    def close(self) -> None:
        """Release the connection (the stream has flushed its commits before)."""

    def describe(self) -> str:
        """A short description for ``repr()``."""
