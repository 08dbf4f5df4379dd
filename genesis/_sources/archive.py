"""Alert archives through the same API as live streams: ``gs.open("file:///path")``.

The path may be one ``.avro`` file, a directory (searched recursively for ``.avro``
files and ``.tar``/``.tar.gz``/``.tgz`` archives), or such an archive itself (ZTF
publishes nightly tarballs of one-alert ``.avro`` files). Each file is one
"message", decoded exactly as a Kafka message would be, so a filter developed on
an archive runs unchanged on the live stream, with the same
``stream(timeout=, limit=, filter=, pool=, progress=)``.

An archive has an end: iteration stops there. Its one "partition" is the path;
``commit()`` is accepted and remembers nothing (there is no group).
"""

from __future__ import annotations

import itertools
import os
import tarfile
import time
from collections.abc import Generator
from pathlib import Path

from .._urls import StreamSpec
from ..errors import ConfigError
from . import Listener, Message
from . import TopicPartition as TP

_TARS = (".tar", ".tar.gz", ".tgz")
_BATCH = 100


def _is_tar(name: str) -> bool:
    return name.endswith(_TARS)


def archive_files(path: Path) -> Generator[tuple[str, bytes], None, None]:
    """(name, bytes) of every alert file under ``path``, in sorted order."""
    if path.is_dir():
        for name, full in _alert_files(path):
            if _is_tar(name):
                yield from _tar_members(Path(full))
            else:
                with open(full, "rb") as fh:
                    yield name, fh.read()
    elif _is_tar(path.name):
        yield from _tar_members(path)
    else:
        yield path.name, path.read_bytes()


def _tar_members(path: Path) -> Generator[tuple[str, bytes], None, None]:
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                if member.isfile() and member.name.endswith(".avro"):
                    extracted = tar.extractfile(member)
                    if extracted is not None:
                        yield f"{path.name}:{member.name}", extracted.read()
    except tarfile.TarError as exc:
        raise ConfigError(f"cannot read the archive {path}: {exc}") from None


def _alert_files(root: Path) -> list[tuple[str, str]]:
    """``(name, path)`` of the ``.avro`` files and tar archives under ``root`` (not through links to
    directories), in the order of their paths' parts (``Path``'s order, without a ``Path`` per file:
    an archive of a night holds tens of thousands)."""
    found: list[tuple[list[str], str, str]] = []
    pending: list[tuple[list[str], str]] = [([], str(root))]
    while pending:
        parts, directory = pending.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(([*parts, entry.name], entry.path))
                elif (os.path.splitext(entry.name)[1] == ".avro" or _is_tar(entry.name)) and entry.is_file():
                    found.append(([*parts, entry.name], entry.name, entry.path))
    found.sort(key=lambda item: item[0])
    return [(name, full) for _, name, full in found]


class ArchiveSource:
    """Every message is one file (or tar member), keyed by its name; the source ends with the archive."""

    bounded = True
    atomic_commits = False
    group = None

    def __init__(self, spec: StreamSpec) -> None:
        self.spec = spec
        self.path = Path(spec.path or "")
        if not self.path.exists():
            raise ConfigError(f"no such file or directory: {self.path} (from {spec.url()})")
        self._files = archive_files(self.path)
        self._offsets = itertools.count()
        self._exhausted = False
        self._tp = (str(self.path), 0)
        self.assigned_at: float | None = None
        self.started_at_end: set[TP] = set()  # an archive starts at its beginning

    def bind(self, listener: Listener) -> None:
        listener.assigned([self._tp])
        self.assigned_at = time.monotonic()

    def fetch(self) -> list[Message]:
        batch = [
            Message(self._tp, next(self._offsets), name.encode(), data, None, None)
            for name, data in itertools.islice(self._files, _BATCH)
        ]
        if not batch:
            self._exhausted = True
        return batch

    def handed_back(self) -> None:
        pass  # nothing to keep: an archive waits

    def caught_up(self) -> bool:
        return self._exhausted

    def idle_for(self, last_message: float) -> float:
        return time.monotonic() - last_message

    def backlog(self) -> int:
        return 0

    def lag(self) -> dict[TP, int]:
        return {}

    def commit(self, offsets: dict[TP, int], asynchronous: bool) -> bool:
        return True  # nothing to remember: an archive is read from its start every time

    @property
    def assignment(self) -> set[TP]:
        return {self._tp}

    def close(self) -> None:
        self._files.close()

    def describe(self) -> str:
        return self.spec.url()
