"""``genesis inject``: write LSST-sized alerts into a topic at the survey's pace, for demos and benchmarks.

::

    from genesis.inject import inject

    report = inject("kafka://localhost/lsst", rate="10000/40s", visits=3, burst=5)
    print(report.summary())

**Pace.** ``rate="N/Ts"`` is N alerts per visit, one visit every T seconds (Rubin: about
10,000 per 39-40 s, so 250 alerts/s on average). Without ``burst`` the alerts are spread
evenly (alert k leaves at k*T/N s); with ``burst=S`` each visit's N alerts leave evenly within
the first S seconds of its T-second window (``burst=0``: as fast as possible), then the
injector waits for the next visit, as the survey's alert production does. The run lasts
``visits`` visits or ``duration`` seconds (``round(N * duration / T)`` alerts).

**Payloads, and what is unique.** Encoding one 82 KB alert costs milliseconds (more than the
400 us an alert may take at 10x the LSST rate), so every payload is built *before* the clock
starts: a set of ``payloads`` distinct alerts from :func:`genesis.demo.samples.lsst_sized` (real
packets: ZTF ones lengthened to ~82 KB, or real Rubin ones converted to the schema version asked
for, see there), each encoded once, as a ZTF Avro container (``format="ztf"``) or in Rubin's
Confluent wire format (``format="lsst"``) with the schema id of ``schema_version`` (default: the
newest schema of ``lsst-alert-packet``, the extra ``genesis-streaming[rubin]``; 11.1 is id 1101),
which ``gs.open`` decodes with no option when that extra is installed.
Message k is payload ``k % payloads`` with its alert id replaced: ``candid`` and
``candidate.candid`` (ZTF) or ``diaSourceId`` and ``diaSource.diaSourceId`` (LSST) become
``first_id + k``. Those ids are in the reserved range 8*10**18 .. 9.2*10**18, where every Avro
``long`` takes exactly 10 bytes, so the new id overwrites the old one in place and the Avro
stays valid (each payload is decoded once to check the patch). **Unique per message:** the
alert id (also the Kafka key's text), and the headers ``genesis.id``, ``genesis.seq`` (k),
``genesis.visit`` and ``genesis.sent_ns`` (``time.time_ns()`` just before the message is handed
to the producer: consumers compute their latency as ``now - sent_ns``). **Shared** by
messages of one payload: everything else (objectId, history, cutouts, observation times,
which are those of the moment the payloads were built).

**Delivery.** Through :func:`genesis.streaming.open` ``(url, "w")``: ``acks=all``, idempotent.
Only an existing topic is written. Before the clock starts the disk is checked when the
brokers run on this machine: the bytes the run leaves on disk (all replicas; capped by the
topic's ``retention.bytes``, plus what arrives between two retention checks) must fit, with a
reserve, or :class:`~genesis.errors.ConfigError` is raised.

**Stopping.** Pass ``stop=threading.Event()`` and set it (e.g. from a notebook cell) to end
the run early; :func:`start` runs :func:`inject` in a background thread for you.
"""

from __future__ import annotations

import math
import re
import shutil
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from ._urls import StreamSpec
from .errors import ConfigError, DeliveryError

__all__ = [
    "Rate",
    "Schedule",
    "InjectReport",
    "Payloads",
    "MessagePool",
    "parse_rate",
    "make_schedule",
    "inject",
    "start",
    "check_disk",
    "LSST_RATE",
]

#: Rubin's average: 10,000 alerts per visit, a visit every 40 s (DMTN-102; 39 s in DMTN-028)
LSST_RATE = "10000/40s"
#: first alert ids are taken from here on: 10-byte Avro longs up to 2**63 - 1
_ID_BASE = 8 * 10**18
_ID_MAX = 2**63 - 1
_IDS_PER_RUN = 10**8
_DISK_RESERVE = 2 * 1024**3


# --------------------------------------------------------------------------- rate and schedule


@dataclass(frozen=True)
class Rate:
    """``alerts`` alerts per visit, one visit every ``seconds`` seconds."""

    alerts: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.alerts / self.seconds

    def __str__(self) -> str:
        return f"{self.alerts}/{self.seconds:g}s"


_UNITS = {"": 1.0, "s": 1.0, "sec": 1.0, "ms": 0.001, "m": 60.0, "min": 60.0, "h": 3600.0}
_RATE = re.compile(r"\s*(\d+)\s*/\s*(\d*\.?\d*)\s*([a-z]*)\s*")


def parse_rate(text: str | Rate) -> Rate:
    """``"10000/40s"`` -> ``Rate(10000, 40.0)``; also ``"250/s"``, ``"500/1.5s"``, ``"600/1min"``."""
    if isinstance(text, Rate):
        return text
    match = _RATE.fullmatch(str(text).lower())
    if not match or match[3] not in _UNITS:
        raise ConfigError(
            f"rate {text!r} is not understood: write ALERTS/SECONDS, e.g. 10000/40s "
            "(10,000 alerts per 40-second visit) or 250/s"
        )
    alerts, number, unit = int(match[1]), match[2], match[3]
    if number in ("", "."):
        if not unit:
            raise ConfigError(f"rate {text!r} has no time: write e.g. 10000/40s or 250/s")
        number = "1"
    seconds = float(number) * _UNITS[unit]
    if alerts <= 0 or seconds <= 0:
        raise ConfigError(f"rate {text!r} must have a positive number of alerts and of seconds")
    return Rate(alerts, seconds)


@dataclass(frozen=True)
class Schedule:
    """When each alert of a run leaves, in seconds from the start: :meth:`at`."""

    rate: Rate
    total: int
    burst: float | None = None

    def at(self, k: int) -> float:
        """The planned send time of alert ``k`` (0-based)."""
        visit, j = divmod(k, self.rate.alerts)
        spread = self.rate.seconds if self.burst is None else self.burst
        return visit * self.rate.seconds + j * spread / self.rate.alerts

    def visit_of(self, k: int) -> int:
        return k // self.rate.alerts

    @property
    def visits(self) -> int:
        return math.ceil(self.total / self.rate.alerts)

    @property
    def seconds(self) -> float:
        """Planned time from the first to the last alert."""
        return self.at(self.total - 1) if self.total else 0.0


def make_schedule(
    rate: str | Rate, visits: int | None = None, duration: float | None = None, burst: float | None = None
) -> Schedule:
    """The schedule of ``visits`` visits (or ``duration`` seconds) at ``rate``, evenly or in bursts."""
    rate = parse_rate(rate)
    if (visits is None) == (duration is None):
        raise ConfigError("give either visits= (number of visits) or duration= (seconds), not both or neither")
    if visits is not None:
        if isinstance(visits, bool) or not isinstance(visits, int) or visits <= 0:
            raise ConfigError(f"visits must be a positive integer, not {visits!r}")
        total = visits * rate.alerts
    else:
        if not isinstance(duration, (int, float)) or isinstance(duration, bool) or duration <= 0:
            raise ConfigError(f"duration must be a positive number of seconds, not {duration!r}")
        total = round(rate.alerts * duration / rate.seconds)
        if total == 0:
            raise ConfigError(f"a {duration:g} s run at {rate} sends no alert; run longer")
    if burst is not None:
        if isinstance(burst, bool) or not isinstance(burst, (int, float)) or not 0 <= burst <= rate.seconds:
            raise ConfigError(f"burst must be between 0 and the visit interval ({rate.seconds:g} s), not {burst!r}")
        burst = float(burst)
    return Schedule(rate, total, burst)


# --------------------------------------------------------------------------- payloads


def _varint(value: int) -> bytes:
    from ._codecs import write_long

    return write_long(value)


class Payloads:
    """``size`` encoded LSST-sized alerts whose alert id can be replaced cheaply: :meth:`message`.

    Each entry is kept as the bytes around the places where its id is written; a message is
    those pieces joined with the new id's 10-byte varint (one copy of ~82 KB).
    """

    def __init__(
        self,
        format: Literal["ztf", "lsst"] = "ztf",
        size: int = 256,
        data_dir: str | Path | None = None,
        target_bytes: int | None = None,
        schema_version: str | None = None,
    ) -> None:
        if format not in ("ztf", "lsst"):
            raise ConfigError(f"format must be 'ztf' or 'lsst', not {format!r}")
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise ConfigError(f"the number of payloads must be a positive integer, not {size!r}")
        from ._codecs import Decoder, encode_container, encode_wire, rubin
        from .demo import samples

        self.format = format
        #: the Rubin schema version of format "lsst" (None for "ztf": each alert keeps its own)
        self.schema_version: str | None = None
        if format == "lsst":
            self.schema_version = rubin.check_version(schema_version)
        elif schema_version is not None:
            raise ConfigError("a schema version is for the lsst format (ZTF alerts keep their own writer schemas)")
        decoder = Decoder()  # Rubin's schemas built in
        options: dict[str, Any] = {} if target_bytes is None else {"target_bytes": target_bytes}
        if self.schema_version is not None:
            options["schema_version"] = self.schema_version
        self._pieces: list[tuple[bytes, ...]] = []
        for number in range(size):
            schema, record = samples.lsst_sized(format, data_dir, number=number, **options)
            old = record["candid"] if format == "ztf" else record["diaSourceId"]
            value = (
                encode_container(record, schema)
                if self.schema_version is None
                else encode_wire(record, schema, rubin.schema_id(self.schema_version))
            )
            pieces = tuple(value.split(_varint(old)))
            if len(pieces) < 2 or len(_varint(old)) != len(_varint(_ID_BASE)):
                raise RuntimeError(f"alert id {old} of payload {number} is not a patchable 10-byte Avro long")
            self._pieces.append(pieces)
            self._check(decoder, number)
        self.sizes = [sum(map(len, p)) + (len(p) - 1) * 10 for p in self._pieces]

    def message(self, k: int, alert_id: int) -> bytes:
        """Pool entry ``k % size`` with ``alert_id`` as its alert id."""
        return _varint(alert_id).join(self._pieces[k % len(self._pieces)])

    def _check(self, decoder: Any, number: int) -> None:
        probe = _ID_MAX - number
        (record,) = decoder.decode(self.message(number, probe))
        ids = (
            (record["candid"], record["candidate"]["candid"])
            if self.format == "ztf"
            else (record["diaSourceId"], record["diaSource"]["diaSourceId"])
        )
        if ids != (probe, probe):
            raise RuntimeError(f"patching the alert id of payload {number} failed (got {ids})")

    @property
    def mean_bytes(self) -> float:
        return sum(self.sizes) / len(self.sizes)

    def __len__(self) -> int:
        return len(self._pieces)


#: the older name of :class:`Payloads`
MessagePool = Payloads


# --------------------------------------------------------------------------- disk


@dataclass(frozen=True)
class DiskCheck:
    """What the run leaves on this machine's disks, and what is free there (``None``: not checked)."""

    needed: int | None
    free: int | None
    note: str


def check_disk(
    spec: StreamSpec, topic: str, run_bytes: float, bytes_per_second: float, *, auth: Any = None
) -> DiskCheck:
    """Refuse (:class:`ConfigError`) a run whose data would not fit on the local brokers' disks.

    Per partition, the run leaves ``run_bytes / partitions``, at most ``retention.bytes`` plus
    one segment plus what arrives between two retention checks (Kafka deletes whole
    segments, every ``log.retention.check.interval.ms``); every replica on a broker of this
    machine counts, per filesystem. Brokers elsewhere are not checked (said in the note).
    """
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import ConfigResource

    from ._kafka import new_admin, translate

    bootstrap = spec.bootstrap_servers
    admin = new_admin(spec, auth=auth)
    try:
        meta = admin.list_topics(topic, timeout=15)
    except KafkaException as exc:
        raise translate(exc, brokers=bootstrap, topic=topic) from None
    info = meta.topics.get(topic)
    if info is None or info.error is not None or not info.partitions:
        raise ConfigError(
            f"topic {topic!r} does not exist on {bootstrap}: genesis inject writes only to an "
            "existing topic (create it with a retention limit, e.g. the demo's 'lsst')"
        )

    def describe(kind: str, name: str) -> dict[str, Any]:  # one broker per call is all Kafka allows
        (future,) = admin.describe_configs([ConfigResource(kind, name)]).values()
        return future.result(timeout=15)

    configs: dict[Any, dict[str, Any]] = {b: describe("broker", str(b)) for b in meta.brokers}
    topic_conf = describe("topic", topic)
    retention = int(topic_conf["retention.bytes"].value)
    segment = int(topic_conf["segment.bytes"].value)
    partitions = len(info.partitions)
    per_partition = run_bytes / partitions
    if retention >= 0:
        interval = max(int(configs[b]["log.retention.check.interval.ms"].value) for b in meta.brokers) / 1000
        per_partition = min(per_partition, retention + segment + bytes_per_second / partitions * interval)
    per_device: dict[int, tuple[str, float]] = {}
    remote = []
    for broker_id, broker in meta.brokers.items():
        hosted = sum(1 for p in info.partitions.values() if broker_id in p.replicas)
        log_dir = configs[broker_id]["log.dirs"].value or configs[broker_id]["log.dir"].value
        path = Path(log_dir.split(",")[0])
        if not _is_local(broker.host or "") or not path.exists():
            remote.append(broker_id)
            continue
        device = path.stat().st_dev
        where, total = per_device.get(device, (str(path), 0.0))
        per_device[device] = (where, total + hosted * per_partition)
    needed: int | None = None
    free: int | None = None
    for where, total in per_device.values():
        have = shutil.disk_usage(where).free
        if total + _DISK_RESERVE > have:
            raise ConfigError(
                f"not enough disk for this run: it would leave {total / 1e9:.1f} GB on {where} (all replicas, "
                f"capped by {topic!r}'s retention) and {have / 1e9:.1f} GB are free, of which "
                f"{_DISK_RESERVE / 1e9:.0f} GB stay in reserve; inject fewer alerts or lower retention.bytes"
            )
        needed, free = int(total) + (needed or 0), have if free is None else min(free, have)
    note = f"disk: {needed / 1e9:.2f} GB needed, {(free or 0) / 1e9:.1f} GB free" if needed is not None else ""
    if remote:
        note += (
            "; " if note else ""
        ) + f"brokers {sorted(remote)} are not on this machine: their disks are not checked"
    return DiskCheck(needed, free, note)


def _is_local(host: str) -> bool:
    try:
        address = socket.gethostbyname(host)
    except OSError:
        return False
    return address.startswith("127.") or address in {socket.gethostbyname(socket.gethostname())}


# --------------------------------------------------------------------------- the run


@dataclass
class InjectReport:
    """What a run did. ``ok`` is False only when alerts could not be delivered."""

    url: str
    format: str
    rate: str
    burst: float | None
    planned: int
    sent: int = 0
    delivered: int = 0
    bytes: int = 0
    first_id: int = 0
    target_rate: float = 0.0
    achieved_rate: float = 0.0  # alerts/s from the first send to the last
    send_seconds: float = 0.0  # first send to last send
    ack_seconds: float = 0.0  # last send until every alert was acknowledged
    planned_seconds: float = 0.0  # planned first-to-last send time
    max_late: float = 0.0  # worst delay of a send behind its planned time
    late: int = 0  # sends more than `tolerance` behind
    tolerance: float = 1.0
    longest_visit: float = 0.0  # worst first-to-last send time of one visit
    stopped: bool = False
    payloads: int = 0
    mean_bytes: float = 0.0  # bytes per alert (the Kafka message value), over the payloads
    schema_version: str | None = None  # Rubin's schema of format "lsst"
    disk: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return self.sent - self.delivered

    @property
    def ok(self) -> bool:
        return self.failed == 0 and not self.errors

    @property
    def kept_schedule(self) -> bool:
        """Every alert left within ``tolerance`` seconds of its planned time (and the run was not cut short)."""
        return self.late == 0 and not self.stopped and self.sent == self.planned

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / self.send_seconds if self.send_seconds > 0 else 0.0

    def summary(self) -> str:
        """Two lines for people."""
        kept = (
            "kept the schedule"
            if self.kept_schedule
            else ("stopped early" if self.stopped else f"fell behind ({self.late} alerts > {self.tolerance:g} s late)")
        )
        schema = f", Rubin schema {self.schema_version}" if self.schema_version else ""
        lines = [
            f"sent {self.sent:,} of {self.planned:,} alerts ({self.mean_bytes:,.0f} bytes each{schema}) at {self.rate}"
            + (f" in bursts of {self.burst:g} s" if self.burst is not None else " evenly")
            + f": {self.achieved_rate:,.0f} alerts/s ({self.mb_per_s:,.0f} MB/s) for a target of "
            f"{self.target_rate:,.0f}/s; {kept}; worst lateness {self.max_late:.3f} s"
            + (f", longest visit {self.longest_visit:.2f} s" if self.burst is not None else ""),
            f"delivered {self.delivered:,}, failed {self.failed:,}; acks done {self.ack_seconds:.2f} s after the last "
            f"send; ids {self.first_id}..{self.first_id + max(self.sent - 1, 0)}"
            + (f"; {self.disk}" if self.disk else ""),
        ]
        return "\n".join(lines + [f"error: {e}" for e in self.errors])

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "failed": self.failed,
            "ok": self.ok,
            "kept_schedule": self.kept_schedule,
            "mb_per_s": self.mb_per_s,
        }


def _first_id() -> int:
    """A run's first alert id: the clock in ms, so runs do not overlap unless one sends 10**8 alerts."""
    return _ID_BASE + (time.time_ns() // 10**6 % 10**10) * _IDS_PER_RUN


def inject(
    url: str,
    rate: str | Rate = LSST_RATE,
    *,
    visits: int | None = None,
    duration: float | None = None,
    burst: float | None = None,
    format: Literal["ztf", "lsst"] = "ztf",
    payloads: int | Payloads = 256,
    stop: threading.Event | None = None,
    tolerance: float = 1.0,
    first_id: int | None = None,
    data_dir: str | Path | None = None,
    config: dict[str, Any] | None = None,
    auth: Any = None,
    on_visit: Callable[[int, InjectReport], None] | None = None,
    pool: int | Payloads | None = None,
    schema_version: str | None = None,
) -> InjectReport:
    """Send ``visits`` visits (or ``duration`` seconds) of LSST-sized alerts to ``url`` at ``rate``.

    ``burst``: seconds within which each visit is sent (None: evenly paced). ``payloads``: how many
    distinct payloads to pre-encode (or a :class:`Payloads` to reuse; ``pool=`` is its older name). ``stop``: set it to
    end early. ``tolerance``: how late (s) a send may be and still count as on schedule.
    ``first_id``: the first alert id (default: from the clock). ``schema_version``: Rubin's
    schema of ``format="lsst"`` (default: the newest of ``lsst-alert-packet``). ``auth``: as for ``gs.open`` (by
    default the environment or the credentials file). ``on_visit(visit, report)`` is
    called as each visit's last alert was handed to the producer. Never raises for failed
    deliveries: they are counted in the report (``report.ok``); raises
    :class:`~genesis.errors.ConfigError` for bad arguments, a missing topic or too little disk.
    """
    from ._urls import parse_url
    from .streaming import open as gs_open

    plan = make_schedule(rate, visits, duration, burst)
    if not isinstance(tolerance, (int, float)) or tolerance <= 0:
        raise ConfigError(f"tolerance must be a positive number of seconds, not {tolerance!r}")
    first = _first_id() if first_id is None else first_id
    if not (_ID_BASE <= first and first + plan.total - 1 <= _ID_MAX):
        raise ConfigError(f"first_id must be in {_ID_BASE}..{_ID_MAX - plan.total + 1}, not {first}")
    spec = parse_url(url)
    if len(spec.topics) != 1:
        raise ConfigError(f"inject writes to exactly one topic, not {', '.join(spec.topics)}")
    if pool is not None:  # the older name of payloads=
        payloads = pool
    if isinstance(payloads, Payloads):
        messages = payloads
        if schema_version is not None and schema_version != messages.schema_version:
            raise ConfigError(
                f"schema_version={schema_version!r}, but the payloads given are of {messages.schema_version}"
            )
    else:
        messages = Payloads(format, payloads, data_dir, schema_version=schema_version)
    disk = check_disk(
        spec,
        spec.topics[0],
        plan.total * messages.mean_bytes,
        plan.rate.per_second * messages.mean_bytes,
        auth=auth,
    )
    report = InjectReport(
        url=url,
        format=messages.format,
        rate=str(plan.rate),
        burst=plan.burst,
        planned=plan.total,
        first_id=first,
        target_rate=plan.rate.per_second,
        tolerance=tolerance,
        payloads=len(messages),
        mean_bytes=messages.mean_bytes,
        schema_version=messages.schema_version,
        planned_seconds=plan.seconds,
        disk=disk.note,
    )
    stop = stop or threading.Event()
    with gs_open(url, "w", config=config or {}, auth=auth) as writer:
        try:
            _send_all(writer, plan, messages, first, stop, report, on_visit)
        finally:
            _finish(writer, report)
    return report


def _send_all(
    writer: Any,
    plan: Schedule,
    messages: Payloads,
    first: int,
    stop: threading.Event,
    report: InjectReport,
    on_visit: Callable[[int, InjectReport], None] | None,
) -> None:
    """The paced loop: each alert waits for its planned time, then goes to the producer at once."""
    clock = time.monotonic
    start = clock() + 0.05
    visit_start = first_sent = last_sent = start
    per_visit = plan.rate.alerts
    for k in range(plan.total):
        due = start + plan.at(k)
        wait = due - clock()
        if wait > 0 and stop.wait(wait):
            report.stopped = True
            break
        if stop.is_set():
            report.stopped = True
            break
        now = clock()
        late = now - due
        if late > report.max_late:
            report.max_late = late
        if late > report.tolerance:
            report.late += 1
        if k % per_visit == 0:
            visit_start = due
        alert_id = first + k
        value = messages.message(k, alert_id)
        headers = [
            ("genesis.id", b"%d" % alert_id),
            ("genesis.seq", b"%d" % k),
            ("genesis.visit", b"%d" % (k // per_visit)),
            ("genesis.sent_ns", b"%d" % time.time_ns()),
        ]
        try:
            writer.write(value, key=b"%d" % alert_id, headers=headers)
        except DeliveryError as exc:  # an earlier alert failed: count it, and still send this one
            report.errors.append(str(exc))
            writer.write(value, key=b"%d" % alert_id, headers=headers)
        report.sent += 1
        report.bytes += len(value)
        if k == 0:
            first_sent = now
        last_sent = now
        if (k + 1) % per_visit == 0 or k + 1 == plan.total:
            report.longest_visit = max(report.longest_visit, clock() - visit_start)
            if on_visit is not None:
                on_visit(k // per_visit, report)
    report.send_seconds = last_sent - first_sent
    if report.sent > 1 and report.send_seconds > 0:
        report.achieved_rate = (report.sent - 1) / report.send_seconds


def _finish(writer: Any, report: InjectReport) -> None:
    """Wait for the acknowledgements; what is not delivered counts as failed, not as an exception."""
    t0 = time.monotonic()
    try:
        writer.flush()
    except DeliveryError as exc:
        report.errors.append(str(exc))
    report.ack_seconds = time.monotonic() - t0
    report.delivered = writer.delivered


def start(
    url: str, rate: str | Rate = LSST_RATE, **options: Any
) -> tuple[threading.Thread, threading.Event, list[InjectReport]]:
    """Run :func:`inject` in a background thread (for a notebook): ``thread, stop, result = start(...)``.

    ``stop.set()`` ends it early; after ``thread.join()``, ``result[0]`` is the report (or
    ``result`` holds nothing when it raised; the exception is then in ``thread.error``).
    """
    stop = options.pop("stop", None) or threading.Event()
    result: list[InjectReport] = []

    def run() -> None:
        try:
            result.append(inject(url, rate, stop=stop, **options))
        except BaseException as exc:  # handed to the caller through the thread
            thread.error = exc  # type: ignore[attr-defined]

    thread = threading.Thread(target=run, name="genesis-inject", daemon=True)
    thread.error = None  # type: ignore[attr-defined]
    thread.start()
    return thread, stop, result
