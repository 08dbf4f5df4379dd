"""The stream URL grammar, in one place.

::

    kafka://[group@]host[:port][,host2[:port]...]/topic[,topic2...]
    file:///path/to/alerts            (archives: .avro files, directories, .tar/.tar.gz)

* ``group`` is the Kafka consumer group id: streams opened with the same group
  share its committed offsets (and split the partitions between them).
* the port defaults to 9092; IPv6 hosts are written in brackets: ``[::1]:9092``.
* a topic starting with ``^`` is a regular expression (``^ztf_.*`` follows ZTF's
  nightly topics, new ones included).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from .errors import URLError

DEFAULT_PORT = 9092

_FORM = "kafka://[group@]host[:port][,host2[:port]...]/topic[,topic2...]"
_HOST = re.compile(
    r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<name>[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?))"
    r"(?::(?P<port>\d+))?$"
)
_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_GROUP = re.compile(r"^[^\s/@,]+$")


@dataclass(frozen=True)
class StreamSpec:
    """A parsed stream URL: where to connect, as which group, to which topics."""

    scheme: str
    brokers: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    group: str | None = None
    path: str | None = None

    @property
    def bootstrap_servers(self) -> str:
        """The brokers as librdkafka's ``bootstrap.servers`` wants them."""
        return ",".join(self.brokers)

    @property
    def hosts(self) -> tuple[str, ...]:
        """The broker host names, without ports (to match credentials by host)."""
        return tuple(b.rsplit(":", 1)[0].strip("[]") for b in self.brokers)

    @classmethod
    def for_brokers(cls, bootstrap: str, topics: tuple[str, ...] = ()) -> StreamSpec:
        """The spec of a cluster given as librdkafka's ``bootstrap.servers`` (``host:port,...``)."""
        return cls(scheme="kafka", brokers=tuple(b.strip() for b in bootstrap.split(",") if b.strip()), topics=topics)

    def url(self) -> str:
        """The URL back, normalised (explicit ports)."""
        if self.scheme == "file":
            return f"file://{self.path}"
        group = f"{self.group}@" if self.group else ""
        return f"kafka://{group}{self.bootstrap_servers}/{','.join(self.topics)}"


def is_webhook(url: str) -> bool:
    """An ``http://`` or ``https://`` URL: where a pipe POSTs its outputs (``genesis.webhook``)."""
    return url.lower().startswith(("http://", "https://"))


def _fail(url: str, why: str) -> URLError:
    return URLError(
        f"invalid stream URL {url!r}: {why}. Expected {_FORM}, "
        f"e.g. kafka://localhost/small or kafka://mygroup@host1:9092,host2:9092/ztf_public"
    )


def parse_url(url: str) -> StreamSpec:
    """Parse a stream URL into a :class:`StreamSpec`, or raise :class:`~genesis.errors.URLError`."""
    if not isinstance(url, str):
        raise URLError(f"a stream URL must be a string like {_FORM}, not {type(url).__name__}")
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise _fail(url, "it has no scheme")
    scheme = scheme.lower()
    if scheme == "file":
        path = unquote(rest)
        if not path.startswith("/"):
            raise URLError(f"invalid file URL {url!r}: the path must be absolute, as in file:///data/alerts")
        return StreamSpec(scheme="file", path=path)
    if scheme != "kafka":
        raise _fail(url, f"the scheme is {scheme!r}; genesis reads kafka:// (and file://) URLs")

    netloc, sep, topic_part = rest.partition("/")
    if not sep or not topic_part:
        raise _fail(url, "no topic given after the host")
    if "/" in topic_part:
        raise _fail(url, "only one '/' may separate the hosts from the topics")

    group = None
    if "@" in netloc:
        group, _, netloc = netloc.rpartition("@")
        if not _GROUP.match(group):
            raise _fail(url, f"the group id {group!r} is empty or contains spaces, '/', '@' or ','")
    if not netloc:
        raise _fail(url, "no broker host given")

    brokers = []
    for host in netloc.split(","):
        m = _HOST.match(host)
        if not m:
            raise _fail(url, f"{host!r} is not a host[:port]")
        port = int(m["port"]) if m["port"] else DEFAULT_PORT
        if not 0 < port < 65536:
            raise _fail(url, f"port {port} is out of range")
        name = f"[{m['v6']}]" if m["v6"] else m["name"]
        brokers.append(f"{name}:{port}")

    topics = []
    for topic in topic_part.split(","):
        if topic.startswith("^"):
            try:
                re.compile(topic)
            except re.error as exc:
                raise _fail(url, f"the topic pattern {topic!r} is not a valid regular expression ({exc})") from None
        elif not _TOPIC.match(topic):
            raise _fail(
                url,
                f"{topic!r} is not a valid topic name (letters, digits, '.', '_', '-'; "
                "start with '^' for a regular expression)",
            )
        topics.append(topic)

    return StreamSpec(scheme="kafka", brokers=tuple(brokers), topics=tuple(topics), group=group)
