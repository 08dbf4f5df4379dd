"""Decode and filter a chunk of raw messages: the work done inline or in pool workers.

Only this runs in the workers; what travels back is the filter's verdict on
each record: with the compiled decoder, an alert kept as decoded is decoded again
in the parent (cheaper than pickling a 60 KB alert there and back), otherwise it
travels itself; what the filter returns instead of an alert always travels.
Results travel cloudpickled, so an exception class or a return value defined in
``__main__`` or a notebook comes back intact also from *spawn* workers, where plain
pickle would fail on it.
"""

from __future__ import annotations

import pickle
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cloudpickle

from ._codecs import MessageDecoder, Prefix, Whole
from ._fields import DeclaredFields, fields_of
from .errors import DecodeError

#: (key, value) of one Kafka message
Raw = tuple[bytes | None, bytes | None]


#: ``filter(alert)``: None/False drops the alert, True keeps it, anything else is yielded instead
Filter = Callable[[dict[str, Any]], Any]


@dataclass(slots=True)
class Outcome:
    """What became of one message: it held ``records`` alerts, of which ``kept`` passed the filter.

    ``kept`` lists ``(index of the record in the message, what to yield)``. ``decode_error``
    is set when the message could not be decoded; ``filter_error`` (the exception, or its
    text if it cannot be pickled) when the filter raised on record ``failed_at``.
    """

    records: int = 0
    kept: list[tuple[int, Any]] = field(default_factory=list)
    decode_error: DecodeError | None = None
    filter_error: BaseException | str | None = None
    filter_traceback: str = ""
    failed_at: int = 0


class Processor:
    """Decoder + filter (+ the fields a yielded alert holds), callable on a list of raw messages.

    Picklable by value: the filter is serialised with cloudpickle, so a function defined in a
    notebook or in ``__main__`` also reaches workers started with *spawn* (macOS, Windows).

    How far an alert is decoded: whole, unless the filter declares its fields
    (:class:`~genesis.Filter`) or the stream was asked for some fields only (``fields=``); then up
    to the last of those, and a kept alert is finished from there (or cut to ``fields``).
    """

    def __init__(
        self,
        decoder: MessageDecoder,
        filter: Filter | None,
        fields: tuple[str, ...] | None = None,
        blob: bytes | None = None,
        *,
        mark_unchanged: bool = False,
    ) -> None:
        self.decoder = decoder
        self.filter = filter
        self.fields = fields
        #: always give an alert kept unchanged as None (stream.outcomes(): the message stands for it)
        self.mark_unchanged = mark_unchanged
        self._blob = blob  # the pickled (decoder, filter, fields), made once
        self._declared = fields_of(filter)
        self._keep = frozenset(fields or ())
        prefix: tuple[str, ...] | None
        if filter is not None and self._declared is None:
            prefix = None  # the filter may read anything
        elif self._declared is None:
            prefix = fields
        else:
            prefix = self._declared + tuple(f for f in fields or () if f not in self._declared)
        self._prefixes = getattr(decoder, "decode_prefixes", None) if prefix is not None else None
        self._prefix = prefix
        #: in pool workers: send "kept as decoded" instead of the alert, which the parent decodes
        #: again from the message, where that costs less than pickling the alert there and back
        #: (the compiled decoder: ~50 us per ZTF alert, against ~140 us for a pickle round trip;
        #: fastavro: ~560 us, so then the alert itself travels). bench/parallel.py measures both.
        self.decode_in_parent = bool(getattr(decoder, "compiled", False))

    def same_work(self, other: Processor) -> bool:
        """Whether ``other`` would give the same outcomes (then a processed message need not be redone)."""
        return (
            self.filter is other.filter
            and self.fields == other.fields
            and self.decoder is other.decoder
            and self.mark_unchanged == other.mark_unchanged
        )

    def __reduce__(self) -> tuple[Any, ...]:
        if self._blob is None:
            self._blob = cloudpickle.dumps((self.decoder, self.filter, self.fields, self.mark_unchanged))
        return _restore, (self._blob,)

    def __call__(self, chunk: list[Raw]) -> bytes:
        """Process a chunk in a worker; the outcomes, pickled (read them with :func:`load_outcomes`)."""
        outcomes = [self.process(key, value, in_worker=True) for key, value in chunk]
        try:  # plain pickle is faster; it fails on classes made by value (a spawn worker's __main__)
            return pickle.dumps(outcomes, pickle.HIGHEST_PROTOCOL)
        except Exception:
            pass
        try:
            return cloudpickle.dumps(outcomes)
        except Exception:  # find the culprit, so the error names its message
            return cloudpickle.dumps([_sendable(o) for o in outcomes])

    def process(self, key: bytes | None, value: bytes | None, in_worker: bool = False) -> Outcome:
        """What becomes of one message. In a worker (``in_worker``), an alert kept as decoded may be
        sent as ``None``, to be decoded again by :meth:`decoded` in the parent."""
        try:
            if self._prefixes is not None:
                prefixes: list[Prefix] = self._prefixes(value, key, self._prefix)
            else:
                prefixes = [Whole(record) for record in self.decoder.decode(value, key)]
        except DecodeError as exc:
            return Outcome(decode_error=exc)
        try:
            return self._filter(prefixes, self.mark_unchanged or (in_worker and self.decode_in_parent))
        except DecodeError as exc:  # a kept alert's tail (decoded only once it passed) is corrupt
            return Outcome(decode_error=exc)

    def _filter(self, prefixes: list[Prefix], marker: bool) -> Outcome:
        flt, declared = self.filter, self._declared
        kept: list[tuple[int, Any]] = []
        for i, prefix in enumerate(prefixes):
            if flt is None:
                kept.append((i, None if marker else self._output(prefix)))
                continue
            seen = prefix.partial if declared is None else DeclaredFields(prefix.partial, declared)
            try:
                verdict = flt(seen)
            except Exception as exc:  # the user's code: report it with its position
                return Outcome(
                    len(prefixes),
                    kept,
                    filter_error=_portable(exc),
                    filter_traceback=traceback.format_exc(),
                    failed_at=i,
                )
            if verdict is None or verdict is False:
                continue
            if verdict is True or verdict is seen:
                kept.append((i, None if marker else self._output(prefix)))
            else:
                kept.append((i, verdict))
        return Outcome(len(prefixes), kept)

    def _output(self, prefix: Prefix) -> dict[str, Any]:
        """A kept alert as it is yielded: whole, or holding just the stream's ``fields``."""
        if self.fields is None:
            return prefix.complete()
        return {k: v for k, v in prefix.partial.items() if k in self._keep}

    def decoded(self, key: bytes | None, value: bytes | None) -> list[dict[str, Any]]:
        """Every alert of a message as :meth:`process` yields it (for those a worker sent as ``None``)."""
        if self._prefixes is not None and self.fields is not None:
            return [self._output(p) for p in self._prefixes(value, key, self.fields)]
        return [self._output(Whole(r)) for r in self.decoder.decode(value, key)]


def load_outcomes(blob: bytes) -> list[Outcome]:
    """The outcomes a worker sent back (:meth:`Processor.__call__`)."""
    return pickle.loads(blob)


def _sendable(outcome: Outcome) -> Outcome:
    """``outcome``, or a filter error at its first kept value that cannot be sent back."""
    try:
        cloudpickle.dumps(outcome)
        return outcome
    except Exception as exc:
        good: list[tuple[int, Any]] = []
        for i, value in outcome.kept:
            try:
                cloudpickle.dumps(value)
            except Exception:
                return Outcome(
                    outcome.records,
                    good,
                    filter_error=f"the filter returned a value that cannot be sent "
                    f"back from the worker process ({type(exc).__name__}: {exc})",
                    failed_at=i,
                )
            good.append((i, value))
        return Outcome(
            outcome.records,
            good,
            filter_error=f"the outcome cannot be sent back from the worker process ({type(exc).__name__}: {exc})",
            failed_at=0,
        )


_WORKER_CACHE: dict[bytes, Processor] = {}


def _restore(blob: bytes) -> Processor:
    """Unpickle a Processor once per worker (schema caches stay warm across chunks)."""
    proc = _WORKER_CACHE.get(blob)
    if proc is None:
        if len(_WORKER_CACHE) >= 8:
            _WORKER_CACHE.clear()
        decoder, flt, fields, mark = cloudpickle.loads(blob)
        proc = _WORKER_CACHE[blob] = Processor(decoder, flt, fields, blob, mark_unchanged=mark)
    return proc


def _portable(exc: BaseException) -> BaseException | str:
    """The exception itself if it survives cloudpickling (to cross back from a worker), else its text."""
    try:
        cloudpickle.loads(cloudpickle.dumps(exc))
        return exc
    except Exception:
        return f"{type(exc).__name__}: {exc}"
