"""Process pools for decoding and filtering in parallel.

``stream(pool=...)`` accepts ``gs.Pool(n)``, a ``multiprocessing.Pool`` or a
``concurrent.futures.ProcessPoolExecutor``: anything with ``imap`` or ``map``.
Results come back in submission order, so alerts of a partition reach the user
in offset order whatever order the workers finish in.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from typing import Any, Callable, Iterable, Iterator

from .errors import ConfigError


def _ignore_sigint() -> None:
    # Ctrl-C belongs to the parent: it closes the stream and the pool; workers just go.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class Pool:
    """A process pool whose workers ignore Ctrl-C and are terminated and joined on exit.

    ::

        with gs.Pool(4) as workers:
            for idx, alert in stream(pool=workers, filter=is_transient):
                ...

    ``start_method`` is ``"fork"``, ``"spawn"`` or ``"forkserver"`` (default: the
    platform's). Filters defined in a notebook work with all of them.
    """

    def __init__(self, processes: int | None = None, start_method: str | None = None) -> None:
        self.processes = processes or os.cpu_count() or 1
        ctx = multiprocessing.get_context(start_method)
        self._pool = ctx.Pool(self.processes, initializer=_ignore_sigint)

    def imap(self, func: Callable[[Any], Any], iterable: Iterable[Any], chunksize: int = 1) -> Iterator[Any]:
        return self._pool.imap(func, iterable, chunksize)

    def close(self) -> None:
        """Stop the workers now and wait for them: no orphan processes."""
        self._pool.terminate()
        self._pool.join()

    def __enter__(self) -> "Pool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def pool_size(pool: Any) -> int:
    """How many workers ``pool`` has (a guess of 4 for pools that do not say)."""
    for attr in ("processes", "_processes", "_max_workers"):
        n = getattr(pool, attr, None)
        if isinstance(n, int) and n > 0:
            return n
    return 4


def submit(pool: Any, func: Callable[[Any], Any], chunks: list[Any]) -> Iterator[Any]:
    """Start ``func`` on every chunk in ``pool``; iterate the results in order."""
    if hasattr(pool, "imap"):
        return pool.imap(func, chunks)
    if hasattr(pool, "map"):
        return iter(pool.map(func, chunks))
    raise ConfigError(f"pool= needs an object with imap or map (gs.Pool, multiprocessing.Pool, "
                    f"ProcessPoolExecutor), not {type(pool).__name__}")
