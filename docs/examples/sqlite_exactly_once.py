"""Alerts into SQLite exactly once: the rows and the input positions in one SQLite transaction.

Kafka's transactions (genesis' pipe) cover Kafka to Kafka. Into a database, exactly once comes
from the database's own transaction: write each batch of rows together with the position after
it, and start the next run from the stored positions instead of a consumer group's. A crash
anywhere leaves the database at the end of a whole batch, and the next run goes on from there::

    python docs/examples/sqlite_exactly_once.py kafka://localhost/small alerts.db
"""

from __future__ import annotations

import sqlite3
import sys

import genesis.streaming as gs

BATCH = 500


def load(url: str, path: str, limit: int | None = None) -> int:
    """Read ``url`` from where ``path`` stopped; return how many alerts this run stored."""
    db = sqlite3.connect(path)
    with db:
        db.execute("CREATE TABLE IF NOT EXISTS alerts (candid INTEGER PRIMARY KEY, object TEXT, mag REAL)")
        db.execute(
            "CREATE TABLE IF NOT EXISTS positions (topic TEXT, part INTEGER, next INTEGER, PRIMARY KEY (topic, part))"
        )
    positions = {(t, p): n for t, p, n in db.execute("SELECT topic, part, next FROM positions")}
    rows, moved, stored = [], {}, 0

    def flush() -> None:  # one transaction: the rows, and where to go on after them
        with db:
            db.executemany("INSERT INTO alerts VALUES (?, ?, ?)", rows)
            db.executemany(
                "INSERT OR REPLACE INTO positions VALUES (?, ?, ?)", [(t, p, n) for (t, p), n in moved.items()]
            )
        rows.clear()
        moved.clear()

    # no group: the positions live in the database; where none is stored, from the beginning
    with gs.open(url, start_at=positions or "earliest") as stream:
        for _, alert, meta in stream(
            until_eos=True, limit=limit, metadata=True, fields=("objectId", "candid", "candidate")
        ):
            rows.append((alert["candid"], alert["objectId"], alert["candidate"]["magpsf"]))
            moved[(meta.topic, meta.partition)] = meta.offset + 1  # one alert per message (ZTF)
            stored += 1
            if len(rows) >= BATCH:
                flush()
    flush()
    db.close()
    return stored


if __name__ == "__main__":
    print(f"stored {load(sys.argv[1], sys.argv[2])} alerts")
