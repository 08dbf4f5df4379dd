"""Alert archives through the same API as live streams: ``gs.open("file:///path")``.

The path may be one ``.avro`` file, a directory (searched recursively for ``.avro``
files and ``.tar``/``.tar.gz``/``.tgz`` archives), or such an archive itself (ZTF
publishes nightly tarballs of one-alert ``.avro`` files). Each file is one
"message", decoded exactly as a Kafka message would be, so a filter developed on
an archive runs unchanged on the live stream, with the same
``stream(timeout=, limit=, filter=, pool=, progress=)``.

An archive has an end: iteration stops there. ``commit()`` is accepted and does
nothing (there is no group to remember positions for).
"""

from __future__ import annotations

import itertools
import tarfile
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import ConfigError
from ._stream import AlertStream, _Message
from ._urls import StreamSpec

_TARS = (".tar", ".tar.gz", ".tgz")
_BATCH = 100


def _is_tar(path: Path) -> bool:
    return path.name.endswith(_TARS)


def _members(path: Path) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of every alert file under ``path``, in sorted order."""
    if path.is_dir():
        for f in sorted(p for p in path.rglob("*") if p.is_file() and (p.suffix == ".avro" or _is_tar(p))):
            yield from _members(f)
    elif _is_tar(path):
        try:
            with tarfile.open(path, "r:*") as tar:
                for member in tar:
                    if member.isfile() and member.name.endswith(".avro"):
                        yield f"{path.name}:{member.name}", tar.extractfile(member).read()
        except tarfile.TarError as exc:
            raise ConfigError(f"cannot read the archive {path}: {exc}") from None
    else:
        yield path.name, path.read_bytes()


class ArchiveStream(AlertStream):
    """Alerts from files: every message is one file (or tar member); ends at the end of the archive."""

    def __init__(self, spec: StreamSpec, *, decoder: Any, errors_policy: Callable[..., None] | None) -> None:
        super().__init__(decoder, errors_policy)
        self.spec = spec
        self.path = Path(spec.path or "")
        if not self.path.exists():
            raise ConfigError(f"no such file or directory: {self.path} (from {spec.url()})")
        self._source = _members(self.path)
        self._offset = itertools.count()
        self._exhausted = False
        self._tp = (str(self.path), 0)
        self._generation[self._tp] = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Iterator[tuple]:
        """As for a Kafka stream; ``until_eos`` is always on: an archive ends."""
        kwargs["until_eos"] = True
        return super().__call__(*args, **kwargs)

    def _fetch(self) -> list[_Message]:
        batch = []
        for name, data in itertools.islice(self._source, _BATCH):
            offset = next(self._offset)
            self._tracker.fetched(self._tp, offset)
            self._stats.received += 1
            self._stats.bytes += len(data)
            batch.append(_Message(self._tp, offset, name.encode(), data, None, None))
        if not batch:
            self._exhausted = True
        return batch

    def _caught_up(self) -> bool:
        return self._exhausted

    @property
    def stats(self):
        return self._stats

    def commit(self, asynchronous: bool = False) -> None:
        """Nothing to remember for an archive; accepted so code runs unchanged on live streams."""

    def __repr__(self) -> str:
        return f"<genesis ArchiveStream {self.spec.url()}>"
