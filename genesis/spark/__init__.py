"""genesis.spark: the filters written for ``gs.open``, unchanged, on Apache Spark (Structured Streaming).

::

    import genesis.spark as gsp
    from genesis.filters import filter_asteroids

    spark = gsp.session("local[2]")                      # the connector's jars on the classpath
    df = gsp.read(spark, "kafka://localhost/medium")     # decoded alerts + topic/partition/offset/timestamp
    kept = gsp.apply(df, filter_asteroids)               # the filter runs on the executors
    query = gsp.write(kept, "asteroids/", checkpoint="asteroids.ckpt")   # Parquet, exactly once
    rows = gsp.query(spark, "SELECT objectId, candidate.magpsf AS mag FROM 'kafka://localhost/medium' "
                            "WHERE candidate.magpsf < 16")          # gs.query's SQL, as a DataFrame

The alerts are decoded on the executors by genesis' own decoder (``mapInArrow``), and the filter
sees the very dict ``gs.open`` yields, decoded from the message bytes (prefix decoding and
declared fields included). Extra ``genesis-streaming[spark]`` (pyspark, pinned to the connector's
release); the connector's jars come from Maven Central into genesis' cache (``genesis/spark/pom.xml``),
never at run time. Running on a real cluster: ``docs/spark.md`` and ``genesis spark --help``.

Sinks: Parquet (files) is exactly-once: Spark commits each micro-batch's files to the sink's log
in the output directory only after writing them, and a restarted query redoes an uncommitted
batch, so readers of the directory see every alert once. Kafka is at-least-once: a batch cut
short is written again after a restart, so a consumer may see an alert twice
(``gs.dedup`` removes such repeats).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import sys
import warnings
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._codecs import Decoder
from .._fields import check_fields
from .._kafka import Credentials
from .._processing import Processor
from .._tables import is_parquet, table_file
from .._urls import parse_url
from ..errors import ConfigError, DecodeError, FilterError, QueryError, SchemaMismatchError
from ._jars import check_java, check_pyspark, connector_jars, package, spark_version
from ._options import sink_options, source_options
from ._topic import inspect, writer_schemas
from ._types import META, RAW, as_struct, avro_to_spark, merge
from ._udf import INPUT, Columns, Work, filter_name, meta_names, tagging

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.streaming import StreamingQuery

__all__ = [
    "session",
    "read",
    "apply",
    "query",
    "write",
    "wait",
    "translate",
    "submit_command",
    "connector_jars",
    "package",
    "spark_version",
]

log = logging.getLogger("genesis")

#: the metadata key, on a DataFrame's ``value`` column, of how genesis decodes its messages
_META_KEY = "genesis.spark"


@dataclass
class _Read:
    """What :func:`read` made a DataFrame of: the Kafka frame under it and how it decodes."""

    raw: DataFrame
    decoder: Decoder
    fields: tuple[str, ...] | None
    columns: Columns
    config: dict[str, Any]  #: how to make the decoder again (recorded on the value column)


#: DataFrames made by read()/apply() -> their Kafka frame, so apply() decodes once, not twice
_READS: weakref.WeakKeyDictionary[Any, _Read] = weakref.WeakKeyDictionary()


# ---------------------------------------------------------------------------- the session
def session(master: str | None = None, **conf: Any) -> SparkSession:
    """A SparkSession with Spark's Kafka connector on its classpath, for local runs and notebooks.

    ``master``: ``local[2]``, ``spark://host:7077``, ... (default: what ``spark-submit`` set, else
    ``local[*]``). ``conf``: Spark settings, with dots (``**{"spark.executor.memory": "4g"}``) or
    underscores (``spark_executor_memory="4g"``). Local masters run their Python workers with this
    interpreter (``PYSPARK_PYTHON``, unless set), so they import the same genesis and filters. Timestamps
    are shown in UTC (``spark.sql.session.timeZone``) unless set otherwise. On a real cluster,
    a session of your own works as well, given the connector (``spark-submit --packages``, see
    :func:`package`).
    """
    check_pyspark()
    check_java()
    from pyspark.sql import SparkSession

    settings = {k.replace("_", ".") if "." not in k else k: str(v) for k, v in conf.items()}
    under_submit = "PYSPARK_GATEWAY_PORT" in os.environ  # spark-submit started this Python
    builder = SparkSession.builder.appName(settings.pop("spark.app.name", "genesis"))
    if master is None and not under_submit:
        master = "local[*]"
    if master is not None:
        builder = builder.master(master)
    if not under_submit:  # under spark-submit, --packages (or --jars) brought the connector
        jars = [str(p) for p in connector_jars()]
        if settings.get("spark.jars"):
            jars.append(settings.pop("spark.jars"))
        builder = builder.config("spark.jars", ",".join(jars))
    if master is not None and master.startswith("local") and "spark.pyspark.python" not in settings:
        # pyspark takes the workers' Python from PYSPARK_PYTHON (default: python3 on PATH)
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    settings.setdefault("spark.sql.session.timeZone", "UTC")
    for key, value in settings.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


# ---------------------------------------------------------------------------- reading
def read(
    spark: SparkSession,
    url: str,
    *,
    start_at: Any = "earliest",
    until_eos: bool = False,
    fields: tuple[str, ...] | list[str] | None = None,
    schema: Any = None,
    schemas: str | os.PathLike[str] | None = None,
    schema_registry: str | None = None,
    auth: Credentials = None,
    options: Mapping[str, Any] | None = None,
) -> DataFrame:
    """A DataFrame of the alerts of a ``kafka://`` URL, decoded on the executors by genesis' decoder.

    Streaming (``spark.readStream``); with ``until_eos=True`` a batch of what the topics hold now.
    Columns: the alert's fields (only ``fields``, when given), then Kafka's ``topic``, ``partition``,
    ``offset``, ``timestamp``, and the message's ``key`` and ``value`` bytes (for :func:`apply` and
    for writing unchanged alerts on; a Kafka column whose name an alert field has is ``kafka_<name>``).

    schema: the columns' type: an Avro record schema (dict or JSON), a ``StructType`` or a DDL
        string. Default: the newest writer schema in the topic when this is called (nested records
        and arrays kept), merged with the other writer schemas among the last 32 messages of each
        partition (topics that mix record types, as Fink's re-published streams and the demo topics
        do; a field of different types there becomes a string column). An alert written with an
        older schema gets nulls where it lacks a field; an alert holding a field the columns lack
        fails the query naming it
        (:class:`~genesis.errors.SchemaMismatchError`).
    start_at: ``"earliest"`` (default), ``"latest"`` (streaming only), a ``datetime`` or ``-N``
        (the last N messages of each partition).
    schemas / schema_registry: where the schemas of Confluent wire-format alerts (Rubin) are,
        as for ``gs.open``; the executors read them (so a directory must exist there too).
    auth: a :class:`genesis.Auth` or librdkafka settings; default: the environment or the
        credentials file, as for ``gs.open``. They become the Java client's ``kafka.*`` options.
    options: more options of Spark's Kafka source (``maxOffsetsPerTrigger``, ``kafka.*``), last.

    Aborted transactions are never read (``kafka.isolation.level=read_committed``); consumer groups
    are ``<user>-...`` (``groupIdPrefix``), or the URL's ``group@``. Spark keeps the position in
    the query's checkpoint, not in the group.
    """
    check_pyspark()
    spec = parse_url(url)
    if spec.scheme != "kafka":
        raise ConfigError(f"genesis.spark reads kafka:// URLs, not {url!r}; Spark reads files itself (spark.read)")
    wanted = check_fields(fields)
    decoder = Decoder(schemas=schemas, schema_registry=schema_registry)
    explicit_n = isinstance(start_at, int) and not isinstance(start_at, bool)
    state = inspect(spec, auth, want_tail=schema is None) if (schema is None or explicit_n) else None
    converted: set[tuple[str, ...]] = set()
    if schema is None:
        assert state is not None
        typed = [avro_to_spark(s) for s in writer_schemas(decoder, state, spec)]
        converted = set().union(*(c for _, c in typed))
        alert = _select(merge([struct for struct, _ in typed], (), converted), wanted)
    else:
        alert = _select(as_struct(schema), wanted)
    opts = source_options(
        spec,
        start_at=start_at,
        until_eos=until_eos,
        auth=auth,
        last_offsets=state.last(-start_at) if (explicit_n and state is not None) else None,
        options=options,
    )
    reader = spark.read if until_eos else spark.readStream
    raw = reader.format("kafka").options(**opts).load().select(*INPUT)
    names = meta_names(alert.fieldNames())
    clashing = [n for n, v in names.items() if v != n]
    if clashing:
        log.warning("alert fields %s hide Kafka's columns of that name: those are kafka_<name>", clashing)
    columns = Columns(alert, converted, names, raw=True, large_types=_large_types(spark))
    config = {"schemas": _plain(schemas), "schema_registry": schema_registry, "fields": wanted}
    return _decoded(raw, Processor(decoder, None, wanted), columns, _Read(raw, decoder, wanted, columns, config))


def _select(struct: Any, fields: tuple[str, ...] | None) -> Any:
    if fields is None:
        return struct
    from pyspark.sql.types import StructType

    missing = [f for f in fields if f not in struct.fieldNames()]
    if missing:
        raise ConfigError(f"fields={fields!r}: schema= has no field {', '.join(map(repr, missing))}")
    return StructType([f for f in struct.fields if f.name in fields])


def _plain(schemas: Any) -> str | None:
    return None if schemas is None else os.fspath(schemas)


def _large_types(spark: SparkSession) -> bool:
    return str(spark.conf.get("spark.sql.execution.arrow.useLargeVarTypes", "false")).lower() == "true"


def _decoded(frame: DataFrame, processor: Processor, columns: Columns, source: _Read, name: str = "") -> DataFrame:
    """``frame`` (the :data:`INPUT` columns) through a :class:`Work` whose rows are alerts with their
    message bytes; how they decode is recorded on the ``value`` column (for DataFrames derived from
    this one) and in :data:`_READS` (for this one)."""
    from pyspark.sql.functions import col

    out = _map(frame, Work(processor, columns, name=name), columns.spark_schema())
    value = columns.names["value"]
    meta = {_META_KEY: json.dumps({**source.config, "converted": sorted(map(list, columns.converted))})}
    out = out.withColumn(value, col(value).alias(value, metadata=meta))
    _READS[out] = source
    return out


# ---------------------------------------------------------------------------- filtering
def apply(df: DataFrame, filter: Any, *, schema: Any = None) -> DataFrame:
    """The alerts of ``df`` (made by :func:`read`) that a genesis filter keeps, filtered on the executors.

    The filter (``genesis.filters.filter_asteroids``, or a function of your own, also one defined
    in a notebook: it travels cloudpickled) sees the dict ``gs.open`` yields, decoded from the
    message's bytes; a :class:`genesis.Filter` is handed only its declared fields, decoded only so
    far. Verdicts as for ``stream(filter=...)``: None/False drops, True or the alert keeps (with
    its columns, its Kafka position and its original bytes). A filter that returns something else
    needs ``schema=`` (a ``StructType``, DDL string or Avro schema) for it: the result then has
    those columns and Kafka's position, and no message bytes. A filter that raises fails the query
    with a :class:`~genesis.errors.FilterError` naming the alert's topic, partition and offset.
    """
    if not callable(filter):
        raise ConfigError(f"apply() needs a filter function taking an alert, not {type(filter).__name__}")
    source = _READS.get(df) or _from_columns(df)
    processor = Processor(source.decoder, tagging(filter), source.fields)
    if schema is None:
        return _decoded(source.raw, processor, source.columns, source, filter_name(filter))
    struct = as_struct(schema)
    shaped = Columns(struct, set(), meta_names(struct.fieldNames()), raw=False, large_types=source.columns.large_types)
    work = Work(processor, shaped, name=filter_name(filter), transformed=True)
    return _map(source.raw, work, shaped.spark_schema())


def _map(frame: DataFrame, work: Work, schema: Any) -> DataFrame:
    """``frame.mapInArrow(work, schema)``, without pyspark's warning about pandas 3 (the work uses
    Arrow only, no pandas)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*pandas >= 3", category=FutureWarning)
        return frame.mapInArrow(work, schema)


def _from_columns(df: DataFrame) -> _Read:
    """How to decode a DataFrame derived from :func:`read` (selected or filtered by Spark): from the
    decoding recorded on its ``value`` column."""
    from pyspark.sql.functions import col
    from pyspark.sql.types import StructType

    value = next((f for f in df.schema.fields if _META_KEY in (f.metadata or {})), None)
    if value is None:
        raise ConfigError(
            "apply() takes a DataFrame made by genesis.spark.read() (or derived from one, keeping its "
            "key, value, topic, partition, offset and timestamp columns)"
        )
    config = json.loads(value.metadata[_META_KEY])
    converted = {tuple(p) for p in config.pop("converted", [])}
    prefix = value.name[: -len("value")]
    names = {n: prefix + n if prefix + n in df.columns else n for n in (*META, *RAW)}
    missing = [names[n] for n in INPUT if names[n] not in df.columns]
    if missing:
        raise ConfigError(f"apply() needs the columns {', '.join(missing)} of genesis.spark.read() to decode again")
    frame = df.select(*[col(names[n]).alias(n) for n in INPUT])
    alert = StructType([f for f in df.schema.fields if f.name not in set(names.values())])
    fields = tuple(config["fields"]) if config.get("fields") else None
    columns = Columns(alert, converted, meta_names(alert.fieldNames()), raw=True, large_types=False)
    decoder = Decoder(schemas=config.get("schemas"), schema_registry=config.get("schema_registry"))
    return _Read(frame, decoder, fields, columns, config)


# ---------------------------------------------------------------------------- SQL
def query(
    spark: SparkSession,
    sql: str,
    tables: Mapping[str, Any] | None = None,
    *,
    start_at: Any = "earliest",
    until_eos: bool = False,
    **read_options: Any,
) -> DataFrame:
    """The SQL of ``gs.query`` (DuckDB's dialect, genesis' functions) over a ``kafka://`` stream, on Spark.

    A streaming DataFrame of the rows (with ``until_eos=True`` a batch of what the topics hold
    now), the same rows ``gs.query(sql)`` gives: the text is checked by genesis' planner (what a
    stream query refuses, it refuses here too), translated by sqlglot to Spark SQL with genesis'
    functions written out (``genesis.spark._sql``) and run by ``spark.sql`` over :func:`read`'s
    alert columns (only the fields the query reads are decoded). ``tables``: names the query joins,
    each a CSV or Parquet path, a pandas DataFrame or a Spark DataFrame (a cone join is a
    broadcast nested-loop join here, not bucketed). ``read_options`` are :func:`read`'s.
    """
    from sqlglot import exp

    from ..sql import plan
    from ._sql import is_list_in, to_spark

    check_pyspark()
    the_plan = plan(sql, tuple(tables or ()))
    if the_plan.create is not None:
        raise QueryError(
            f"CREATE STREAM {the_plan.create} runs with gs.persistent_query or genesis query (exactly once); on "
            "Spark, write this query's DataFrame with genesis.spark.write"
        )
    df = read(spark, the_plan.source, start_at=start_at, until_eos=until_eos, fields=the_plan.fields, **read_options)
    meta = set(_READS[df].columns.names.values())
    alerts = df.select(*[c for c in df.columns if c not in meta])
    view = f"genesis_alerts_{abs(hash((sql, id(df)))) % 10**12}"
    alerts.createOrReplaceTempView(view)
    for name, source in (tables or {}).items():
        _table(spark, source, name).createOrReplaceTempView(name)
    tree = the_plan.parsed.copy()  # the planner's parse of the text, changed here
    aliases = {view}
    for table in tree.find_all(exp.Table):
        if table.name == the_plan.source:
            if table.alias:
                aliases.add(table.alias.lower())
            table.replace(exp.Table(this=exp.to_identifier(view), alias=table.args.get("alias")))
    text = to_spark(tree, is_list_in(alerts.schema, aliases))
    try:
        return spark.sql(text)
    except Exception as exc:
        raise QueryError(f"Spark could not run the query ({_first_line(exc)}):\n  {text}") from None


def _table(spark: SparkSession, source: Any, name: str) -> DataFrame:
    """A table of ``query(tables=...)`` as a Spark DataFrame."""
    path = table_file(name, source)
    if path is not None:
        if is_parquet(path):
            return spark.read.parquet(str(path))
        return spark.read.csv(str(path), header=True, inferSchema=True)
    if hasattr(source, "schema") and hasattr(source, "createOrReplaceTempView"):
        return source
    try:
        return spark.createDataFrame(source)
    except Exception as exc:
        raise ConfigError(
            f"the table {name!r} must be a CSV or Parquet path, a pandas or a Spark DataFrame, not "
            f"{type(source).__name__} ({_first_line(exc)})"
        ) from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


# ---------------------------------------------------------------------------- writing
def write(
    df: DataFrame,
    out: str | os.PathLike[str],
    *,
    checkpoint: str | os.PathLike[str] | None = None,
    trigger: str | None = None,
    auth: Credentials = None,
    options: Mapping[str, Any] | None = None,
    block: bool = False,
) -> StreamingQuery | None:
    """Write alerts to a Kafka topic (``kafka://host/topic``) or as Parquet files (a directory).

    Kafka: each kept alert as its original message (key and value bytes unchanged; an alert of a
    container that held several becomes a container of its own), acks from all in-sync replicas.
    At-least-once: after a failure, the batch that was cut short is written again.
    Parquet: the alert columns and Kafka's position (not the message bytes). Exactly-once: a
    batch's files count only once Spark's sink log (``_spark_metadata``) lists them, and a
    restarted query redoes the batch that was cut short; read the directory with Spark.

    A streaming DataFrame needs ``checkpoint`` (a directory: on a real cluster a shared one, HDFS or
    S3), where the query keeps its progress: restarted with the same checkpoint it goes on where it
    stopped. ``trigger``: ``None`` (micro-batches as fast as they come), ``"available_now"`` (what
    is there now, then stop) or an interval (``"10 seconds"``). Returns the started
    ``StreamingQuery`` (``block=True``: waits for it to end, see :func:`wait`); a batch DataFrame is
    written at once (None is returned). Failures raise the genesis error they come from
    (:class:`~genesis.errors.FilterError`, :class:`~genesis.errors.DecodeError`, ...).
    """
    text = os.fspath(out)
    kafka = text.startswith("kafka://")
    if kafka:
        frame = _raw_bytes(df)
        opts = sink_options(parse_url(text), auth, options)
        fmt = "kafka"
    else:
        path = text[len("file://") :] if text.startswith("file://") else text
        frame = df.drop(*_raw_columns(df))
        opts = {"path": path, **{k: str(v) for k, v in (options or {}).items()}}
        fmt = "parquet"
    if not df.isStreaming:
        try:
            frame.write.format(fmt).options(**opts).mode("append").save()
        except Exception as exc:
            raise translate(exc) from exc
        return None
    if checkpoint is None:
        raise ConfigError(
            "a streaming write needs checkpoint= (a directory where the query keeps its progress; "
            "restart with the same one to go on where it stopped)"
        )
    writer = frame.writeStream.format(fmt).options(**opts).option("checkpointLocation", os.fspath(checkpoint))
    writer = _trigger(writer, trigger)
    query = writer.start()
    if block:
        wait(query)
    return query


def _trigger(writer: Any, trigger: str | None) -> Any:
    if trigger is None:
        return writer
    if trigger == "available_now":
        return writer.trigger(availableNow=True)
    if trigger == "once":
        return writer.trigger(once=True)
    if re.fullmatch(r"\d+(\.\d+)?\s*\w+", trigger):
        return writer.trigger(processingTime=trigger)
    raise ConfigError(f"trigger={trigger!r}: use None, 'available_now', 'once' or an interval such as '10 seconds'")


def _raw_columns(df: DataFrame) -> list[str]:
    """The names of the message-bytes columns (``key``, ``value``) of a DataFrame from :func:`read`."""
    value = next((f.name for f in df.schema.fields if _META_KEY in (f.metadata or {})), None)
    if value is None:
        return []
    prefix = value[: -len("value")]
    return [c for c in (prefix + "key", prefix + "value") if c in df.columns]


def _raw_bytes(df: DataFrame) -> DataFrame:
    raw = _raw_columns(df)
    if len(raw) != 2:
        raise ConfigError(
            "writing to Kafka forwards the alerts' original messages: the DataFrame must come from "
            "genesis.spark.read()/apply() and keep its key and value columns (what a filter returned "
            "instead of alerts has no original bytes: write it to Parquet)"
        )
    from pyspark.sql.functions import col

    return df.select(col(raw[0]).alias("key"), col(raw[1]).alias("value"))


def wait(query: StreamingQuery, timeout: float | None = None) -> bool:
    """Wait for a streaming query to end (``timeout`` seconds at most); True if it ended.

    A query that failed raises the genesis error it failed with (see :func:`translate`).
    """
    try:
        if timeout is None:
            query.awaitTermination()
            return True
        return bool(query.awaitTermination(max(1, math.ceil(timeout))))
    except Exception as exc:
        raise translate(exc) from exc


_ERROR = re.compile(r"genesis\.errors\.(FilterError|DecodeError|SchemaNotFoundError|SchemaMismatchError): (.+)")
_WHERE = r"(?P<topic>[A-Za-z0-9._-]+)\[(?P<partition>\d+)\]@(?P<offset>\d+)"
#: how each error's text begins (genesis.errors' __str__), the rest being its reason
_TEXTS = {
    "FilterError": re.compile(rf".*? at {_WHERE}"),
    "DecodeError": re.compile(rf"cannot decode the message at {_WHERE}: (?P<reason>.+?)\. Open the stream with"),
    "SchemaMismatchError": re.compile(rf"the alert at {_WHERE} (?P<reason>.+)"),
}
_TEXTS["SchemaNotFoundError"] = _TEXTS["DecodeError"]


def translate(exc: BaseException) -> BaseException:
    """The genesis error a failed Spark job carries (its Python traceback names it), else ``exc``.

    Executors raise genesis errors; Spark hands the driver a Java or Python exception whose text
    holds their traceback. The error is made again on the driver, with the alert's topic,
    partition and offset (and, for a :class:`~genesis.errors.SchemaMismatchError`, the field).
    """
    found = _ERROR.search(str(exc))
    if found is None:
        return exc
    kind, text = found.group(1), found.group(2).strip()
    parts = _TEXTS[kind].match(text)
    if parts is None:
        return exc
    topic, partition, offset = str(parts["topic"]), int(parts["partition"]), int(parts["offset"])
    if kind == "FilterError":
        return FilterError(text, topic=topic, partition=partition, offset=offset)
    reason = str(parts["reason"])
    if kind == "SchemaMismatchError":
        field = re.search(r"field '([^']+)'", reason)
        return SchemaMismatchError(
            reason, field=field.group(1) if field else None, topic=topic, partition=partition, offset=offset
        )
    return DecodeError(reason, topic=topic, partition=partition, offset=offset)


def submit_command(argv: list[str], *, master: str = "spark://HOST:7077", python: str = "python3") -> list[str]:
    """The ``spark-submit`` command line that runs ``genesis spark ARGV`` on a real cluster: the
    connector from ``--packages``, genesis' job script, the executors' Python (``python``, which
    must have genesis-streaming[spark] and the filter's module installed)."""
    script = Path(__file__).with_name("__main__.py")
    return [
        "spark-submit",
        "--master",
        master,
        "--packages",
        package(),
        "--conf",
        f"spark.pyspark.python={python}",
        "--conf",
        "spark.sql.session.timeZone=UTC",
        str(script),
        *argv,
    ]
