"""The files a query may join (``tables={"watchlist": "mylist.csv"}``, ``--table NAME=FILE``), for
DuckDB (genesis.sql) and Spark (genesis.spark) alike: which file, and read as what."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import ConfigError


def table_file(name: str, source: Any) -> Path | None:
    """The file a table names (None: the table is data, e.g. a DataFrame, not a path), or the
    ConfigError saying it is not a file."""
    if not isinstance(source, (str, Path)):
        return None
    path = Path(source)
    if not path.is_file():
        raise ConfigError(f"the table {name!r} names {str(path)!r}, which is not a file (give a CSV or Parquet file)")
    return path


def is_parquet(path: Path) -> bool:
    """A table file read as Parquet (else as CSV)."""
    return path.suffix.lower() in (".parquet", ".pq")
