"""Notes the commands print to stderr about how a read went, where the user may not expect it."""

from __future__ import annotations

import sys
from collections.abc import Iterable


def started_at_end(command: str, group: str | None, partitions: Iterable[tuple[str, int]]) -> None:
    """Say that ``partitions`` had no commit of ``group`` and were started at their end.

    A new group with the default start (``latest``) read until the end of the stream finishes at
    once with nothing: without this note that looks like an empty topic.
    """
    by_topic: dict[str, list[int]] = {}
    for topic, partition in sorted(partitions):
        by_topic.setdefault(topic, []).append(partition)
    if not by_topic:
        return
    where = ", ".join(f"{topic}[{','.join(map(str, parts))}]" for topic, parts in by_topic.items())
    print(
        f"genesis {command}: the group {group} had no commits on {where}, so it started there at the end "
        "(--start-at latest, the default) and read only what arrived after it joined; to read what the "
        "topic already holds, add --start-at earliest",
        file=sys.stderr,
    )
