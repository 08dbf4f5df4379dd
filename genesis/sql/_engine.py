"""Run a planned query over micro-batches of alerts in DuckDB.

One in-process DuckDB connection per query holds the user's tables (loaded once, then the
connection is cut off from files and the network: ``enable_external_access=false``), the
astronomy macros and the bucketed watchlists. Each batch of alerts becomes one Arrow table per
writer schema it holds (a stream may switch from ZTF 3.3 to 4.02 mid-night: each schema's
alerts keep their own types), with the referenced top-level fields only and the alert's
position in ``__genesis_row``; the query runs over it and the rows come back in alert order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._codecs import arrow_schema, require_pyarrow
from .._models import Metadata
from .._tables import is_parquet, table_file
from ..errors import ConfigError, DecodeError, QueryError
from . import _functions, _watchlist
from ._parse import ALERTS, ROW, Plan

#: what a table of ``tables=`` may be: a CSV or Parquet file, or a pyarrow Table / pandas DataFrame
TableSource = str | Path | Any


def require_duckdb() -> Any:
    """The ``duckdb`` module, or a :class:`ConfigError` that says how to install it."""
    try:
        import duckdb
    except ImportError as exc:
        raise ConfigError(
            f"queries need DuckDB, a dependency of genesis ({exc}): reinstall it (pip install genesis-streaming)"
        ) from None
    return duckdb


class Engine:
    """A query's DuckDB connection; :meth:`run` turns one batch of alerts into its result rows."""

    def __init__(self, plan: Plan, tables: Mapping[str, TableSource] | None = None) -> None:
        duckdb = require_duckdb()
        self.plan = plan
        self._duckdb = duckdb
        self._pa = require_pyarrow()
        self._con = duckdb.connect(":memory:", config={"threads": 1})
        _functions.install(self._con)
        given = dict(tables or {})
        for name in plan.tables:
            self._load(name, given[name])
        #: rows of each bucketed watchlist (cells x positions), for the stats
        self.bucketed = {cone.table: _watchlist.bucket(self._con, cone) for cone in plan.cones}
        self._con.execute("SET enable_external_access = false")
        self._con.execute("SET lock_configuration = true")
        self._schemas: dict[int, tuple[Any, Any]] = {}  # id(writer schema) -> (it, its Arrow schema)
        self._shared: dict[Any, Any] = {}  # an Arrow schema -> the first equal one, which groups alerts
        self._family: str | None = None  # of the first alerts: ZTF, Rubin, ...

    def _load(self, name: str, source: TableSource) -> None:
        ident = '"' + name.replace('"', '""') + '"'
        path = table_file(name, source)
        if path is not None:
            reader = "read_parquet" if is_parquet(path) else "read_csv"
            try:
                self._con.execute(f"CREATE TABLE {ident} AS SELECT * FROM {reader}(?)", [str(path)])
            except self._duckdb.Error as exc:
                raise ConfigError(f"the table {name!r} could not be read from {path}: {exc}") from None
            return
        try:
            self._con.register("__genesis_load", source)
        except (TypeError, ValueError, self._duckdb.Error) as exc:
            raise ConfigError(
                f"the table {name!r} must be a CSV or Parquet path, a pyarrow Table or a pandas DataFrame, "
                f"not {type(source).__name__} ({exc})"
            ) from None
        self._con.execute(f"CREATE TABLE {ident} AS SELECT * FROM __genesis_load")
        self._con.unregister("__genesis_load")

    def run(self, alerts: Sequence[dict[str, Any]], writer_schemas: Sequence[Any]) -> list[tuple[int, dict[str, Any]]]:
        """The result rows of one batch as ``(position of the alert in the batch, row)``, in alert order.

        ``writer_schemas[i]`` is the Avro schema ``alerts[i]`` was written with (one object per
        schema), or None (JSON alerts: types are inferred from the values).
        """
        tables = self.run_arrow(alerts, writer_schemas)
        out = [(r.pop(ROW), r) for table in tables for r in table.to_pylist()]
        if len(tables) > 1:
            out.sort(key=lambda r: r[0])
        return out

    def run_arrow(self, alerts: Sequence[dict[str, Any]], writer_schemas: Sequence[Any]) -> list[Any]:
        """The result of one batch as Arrow tables, one per Arrow schema of the alerts' columns (the
        writer schemas' types may differ), each with the alert's position in the batch as its first
        column ``__genesis_row``.

        Alerts whose writer schemas differ only in what the query does not read (ZTF's versions and
        Fink's variants, 17 writer schemas in ``medium`` for 4 column types of a three-column query)
        share one table, so a batch costs one DuckDB query per column type, not per writer schema.
        """
        groups: dict[int, tuple[Any, Any, list[int]]] = {}
        for i, schema in enumerate(writer_schemas):
            arrow = self._arrow(schema)
            group = groups.get(id(arrow))
            if group is None:
                group = groups[id(arrow)] = (arrow, schema, [])
            group[2].append(i)
        return [self._run_one(alerts, positions, arrow, schema) for arrow, schema, positions in groups.values()]

    def _check_family(self, schema: Any) -> None:
        """One query reads one schema family: ZTF's alerts and Rubin's have different fields."""
        family = schema_family(schema)
        if self._family is None:
            self._family = family
        elif family != self._family:
            raise QueryError(
                f"the stream {self.plan.source} holds {self._family} alerts and {family} alerts: a query reads "
                f"one schema family (their fields differ); run one query per family, each FROM its own topics"
            )

    def _run_one(self, alerts: Sequence[dict[str, Any]], positions: list[int], arrow: Any, schema: Any) -> Any:
        """The query over the alerts at ``positions``: all of Arrow schema ``arrow`` (None: JSON alerts,
        types inferred from the values); ``schema``, the writer schema of one of them, names them in errors."""
        pa = self._pa
        batch = [alerts[i] for i in positions]
        fields = self.plan.fields
        if arrow is not None:
            table = pa.Table.from_pylist(batch, schema=arrow)
        else:
            rows = batch if fields is None else [{f: a.get(f) for f in fields} for a in batch]
            table = pa.Table.from_pylist(rows)
        row = pa.array(positions, pa.int64())
        # a query reading no field the schema has (an error DuckDB then names) gives no columns
        table = table.append_column(ROW, row) if table.num_columns else pa.table({ROW: row})
        self._con.register(ALERTS, table)
        try:
            return self._con.sql(self.plan.sql).to_arrow_table()
        except self._duckdb.Error as exc:
            label = f"schema {schema.get('name')}" if isinstance(schema, dict) else "their JSON"
            raise QueryError(
                f"DuckDB could not run the query over alerts of {label}: {exc}\n  {self.plan.sql}"
            ) from None
        finally:
            self._con.unregister(ALERTS)

    def _arrow(self, schema: Any) -> Any:
        """The Arrow schema of the query's columns of alerts written with ``schema`` (None for JSON
        alerts), checked to be of the query's family; equal ones are one object."""
        if schema is None:
            self._check_family(None)
            return None
        found = self._schemas.get(id(schema))
        if found is None or found[0] is not schema:
            self._check_family(schema)
            arrow = self._narrowed(arrow_schema(schema, fields=self.plan.fields))
            found = (schema, self._shared.setdefault(arrow, arrow))
            self._schemas[id(schema)] = found
        return found[1]

    def _narrowed(self, arrow: Any) -> Any:
        """``arrow`` with each struct the query reads only in parts cut to those members (pyarrow then
        skips the others of each alert's dict). A member the struct lacks leaves it whole, so that
        DuckDB's error names the member and its neighbours.

        Every column is made nullable and the columns put in the query's order: schema versions
        that differ only there (ZTF's declare ``null`` unions, Fink's Spark-written ones do not)
        then give one Arrow schema, and their alerts one table.
        """
        pa = self._pa
        members = dict(self.plan.members)
        out = []
        for f in arrow:
            wanted = members.get(f.name)
            if wanted is not None and pa.types.is_struct(f.type):
                kept = [c for c in f.type if c.name.lower() in wanted]
                if len(kept) == len(wanted):
                    f = f.with_type(pa.struct(kept))
            out.append(pa.field(f.name, _nullable(pa, f.type), nullable=True, metadata=f.metadata))
        order = {name: i for i, name in enumerate(self.plan.fields or ())}
        out.sort(key=lambda f: order.get(f.name, len(order)))  # stable: the rest keep the writer's order
        return pa.schema(out)

    def close(self) -> None:
        self._con.close()


def _nullable(pa: Any, arrow_type: Any) -> Any:
    """``arrow_type`` with every member of its structs and every list's items nullable."""
    if pa.types.is_struct(arrow_type):
        return pa.struct([pa.field(c.name, _nullable(pa, c.type), nullable=True) for c in arrow_type])
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        item = pa.field(arrow_type.value_field.name, _nullable(pa, arrow_type.value_type), nullable=True)
        return pa.list_(item) if pa.types.is_list(arrow_type) else pa.large_list(item)
    return arrow_type


def schema_family(schema: Any) -> str:
    """``ZTF`` or ``Rubin`` for their writer schemas (any version, Fink's enriched ones too: known by
    their fields, ``candidate`` or ``diaSource``), ``JSON`` for alerts without one, else the schema's name."""
    if not isinstance(schema, dict):
        return "JSON"
    fields = {f.get("name") for f in schema.get("fields", ()) if isinstance(f, dict)}
    if "candidate" in fields:
        return "ZTF"
    if "diaSource" in fields:
        return "Rubin"
    return str(schema.get("name") or "unnamed")


def writer_schema(decoder: Any, meta: Metadata) -> Any:
    """The Avro schema of an alert's message (one object per schema); None for JSON alerts or a
    decoder of the user's that cannot say (DuckDB then infers the types from the values)."""
    of = getattr(decoder, "writer_schema", None)
    if of is None or meta.value is None:
        return None
    try:
        return of(meta.value, meta.key)
    except DecodeError:
        return None
