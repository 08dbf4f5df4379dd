"""Decode and filter a chunk of raw messages: the work done inline or in pool workers.

Only this runs in the workers; what travels back is the filter's verdict on
each record, never the whole decoded alert unless the filter keeps it (pickling
a 60 KB alert costs more than decoding it). Results travel cloudpickled, so an
exception class or a return value defined in ``__main__`` or a notebook comes
back intact also from *spawn* workers, where plain pickle would fail on it.
"""

from __future__ import annotations

import pickle
import traceback
from dataclasses import dataclass
from typing import Any, Callable

import cloudpickle

from .errors import DecodeError

#: (key, value) of one Kafka message
Raw = tuple[bytes | None, bytes | None]


@dataclass(slots=True)
class Outcome:
    """What became of one message: ``n`` records, of which ``kept`` (record index, value) passed.

    ``decode_error`` is set when the message could not be decoded; ``filter_error``
    (the exception, or its text if it cannot be pickled) when the filter raised on
    record ``failed_at``.
    """

    n: int = 0
    kept: list[tuple[int, Any]] | None = None
    decode_error: DecodeError | None = None
    filter_error: BaseException | str | None = None
    filter_traceback: str = ""
    failed_at: int = 0


class Processor:
    """Decoder + filter, callable on a list of raw messages, picklable by value.

    The filter is serialised with cloudpickle, so a function defined in a notebook
    or in ``__main__`` also reaches workers started with *spawn* (macOS, Windows).
    """

    def __init__(self, decoder: Any, filter: Callable[[dict], Any] | None) -> None:
        self.decoder = decoder
        self.filter = filter
        self._blob: bytes | None = None

    def __reduce__(self):
        if self._blob is None:
            self._blob = cloudpickle.dumps((self.decoder, self.filter))
        return _restore, (self._blob,)

    def __call__(self, chunk: list[Raw]) -> bytes:
        """Process a chunk in a worker; the outcomes, pickled (read them with :func:`load_outcomes`)."""
        outcomes = [self.process(key, value) for key, value in chunk]
        try:  # plain pickle is faster; it fails on classes made by value (a spawn worker's __main__)
            return pickle.dumps(outcomes, pickle.HIGHEST_PROTOCOL)
        except Exception:
            pass
        try:
            return cloudpickle.dumps(outcomes)
        except Exception:  # find the culprit, so the error names its message
            return cloudpickle.dumps([_sendable(o) for o in outcomes])

    def process(self, key: bytes | None, value: bytes | None) -> Outcome:
        try:
            records = self.decoder.decode(value, key)
        except DecodeError as exc:
            return Outcome(decode_error=exc)
        flt = self.filter
        if flt is None:
            return Outcome(len(records), list(enumerate(records)))
        kept = []
        for i, record in enumerate(records):
            try:
                verdict = flt(record)
            except Exception as exc:  # the user's code: report it with its position
                return Outcome(
                    len(records),
                    kept,
                    filter_error=_portable(exc),
                    filter_traceback=traceback.format_exc(),
                    failed_at=i,
                )
            if verdict is None or verdict is False:
                continue
            kept.append((i, record if verdict is True else verdict))
        return Outcome(len(records), kept)


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
        for i, value in outcome.kept or ():
            try:
                cloudpickle.dumps(value)
            except Exception:
                return Outcome(
                    outcome.n,
                    good,
                    filter_error=f"the filter returned a value that cannot be sent "
                    f"back from the worker process ({type(exc).__name__}: {exc})",
                    failed_at=i,
                )
            good.append((i, value))
        return Outcome(
            outcome.n,
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
        decoder, flt = cloudpickle.loads(blob)
        proc = _WORKER_CACHE[blob] = Processor(decoder, flt)
        proc._blob = blob
    return proc


def _portable(exc: BaseException) -> BaseException | str:
    """The exception itself if it survives cloudpickling (to cross back from a worker), else its text."""
    try:
        cloudpickle.loads(cloudpickle.dumps(exc))
        return exc
    except Exception:
        return f"{type(exc).__name__}: {exc}"
