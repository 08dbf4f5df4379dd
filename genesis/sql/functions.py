"""The astronomy functions queries may call (DuckDB macros): see :mod:`genesis.sql._functions`.

``install(con)`` defines them in a DuckDB connection of your own, to run the same SQL on a
Parquet archive: ``duckdb.sql("SELECT * FROM 'alerts/*.parquet' WHERE cone(...)")``.
"""

from ._functions import MACROS, install

__all__ = ["install", "MACROS"]
