"""Credentials for secured brokers (SASL over TLS, as the public alert brokers run them).

Where ``gs.open(url)`` finds them, first match wins:

1. ``auth=`` — an :class:`Auth` (``Auth("alice", "secret")``, ``Auth.oidc(...)``) or a dict of
   librdkafka settings;
2. the environment: ``GENESIS_USERNAME`` and ``GENESIS_PASSWORD``, with optional
   ``GENESIS_MECHANISM`` and ``GENESIS_CA``;
3. the credentials file (:func:`auth_file`: ``$GENESIS_AUTH_FILE``, else
   ``$XDG_CONFIG_HOME/genesis/auth.toml``, else ``~/.config/genesis/auth.toml``), whose entries
   are matched by broker host and, when an entry names one, port. ``genesis auth add/list/remove``
   maintain it; a file that group or others may read is refused.

The ``group@`` part of a stream URL stays the consumer group; it never selects credentials.
Passwords and client secrets never appear in ``repr``, ``str``, logs or error messages.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._urls import StreamSpec
from .errors import ConfigError

MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN", "OAUTHBEARER")
DEFAULT_MECHANISM = "SCRAM-SHA-512"
_FILE_KEYS = {"host", "port", "username", "password", "mechanism", "ssl", "ca", "token_url", "scope"}


@dataclass(frozen=True, repr=False)
class Auth:
    """A SASL login: user name and password (SCRAM, PLAIN), or OIDC client credentials (OAUTHBEARER).

    ``ssl``: TLS to the broker (SASL_SSL; ``False``: SASL_PLAINTEXT). ``ca``: a PEM file of the CA
    that signed the broker's certificate; ``None`` trusts the system's CA store. For
    OAUTHBEARER, ``username``/``password`` are the client id/secret and ``token_url`` the
    identity provider's token endpoint (see :meth:`oidc`).
    """

    username: str
    password: str
    mechanism: str = DEFAULT_MECHANISM
    ssl: bool = True
    ca: str | None = None
    token_url: str | None = None
    scope: str | None = None

    def __post_init__(self) -> None:
        mechanism = self.mechanism.upper()
        object.__setattr__(self, "mechanism", mechanism)
        if mechanism not in MECHANISMS:
            raise ConfigError(f"unknown SASL mechanism {self.mechanism!r}; use one of {', '.join(MECHANISMS)}")
        if not self.username:
            raise ConfigError("credentials need a user name (or, for OIDC, a client id)")
        if not self.password:
            raise ConfigError(f"the credentials of {self.username!r} have an empty password")
        if mechanism == "OAUTHBEARER" and not self.token_url:
            raise ConfigError(
                "OAUTHBEARER (OIDC) credentials need token_url, the token endpoint of the "
                "identity provider; make them with Auth.oidc(client_id, client_secret, token_url)"
            )
        if self.ca is not None:
            ca = str(Path(self.ca).expanduser())
            if not Path(ca).is_file():
                raise ConfigError(
                    f"the CA file {ca} does not exist; give the PEM file of the CA that signed "
                    "the broker's certificate, or no CA to trust the system's CA store"
                )
            object.__setattr__(self, "ca", ca)

    @classmethod
    def oidc(
        cls,
        client_id: str,
        client_secret: str,
        token_url: str,
        scope: str | None = None,
        *,
        ca: str | None = None,
        ssl: bool = True,
    ) -> Auth:
        """OIDC client credentials (SASL/OAUTHBEARER, over TLS unless ``ssl=False``), as NASA GCN's Kafka
        uses; librdkafka itself fetches the token from ``token_url`` and renews it before it expires
        (also while the stream is idle: its keeper polls the consumer, which runs the renewal)."""
        return cls(client_id, client_secret, mechanism="OAUTHBEARER", ssl=ssl, ca=ca, token_url=token_url, scope=scope)

    @property
    def trust(self) -> str:
        """Which CA certificates the client trusts, in words (for messages)."""
        if not self.ssl:
            return "no TLS"
        return f"CA file {self.ca}" if self.ca else "the system's CA store"

    def librdkafka_config(self) -> dict[str, Any]:
        """The librdkafka properties for this login."""
        conf: dict[str, Any] = {
            "security.protocol": "SASL_SSL" if self.ssl else "SASL_PLAINTEXT",
            "sasl.mechanism": self.mechanism,
        }
        if self.mechanism == "OAUTHBEARER":
            conf.update(
                {
                    "sasl.oauthbearer.method": "oidc",
                    "sasl.oauthbearer.client.id": self.username,
                    "sasl.oauthbearer.client.secret": self.password,
                    "sasl.oauthbearer.token.endpoint.url": self.token_url,
                }
            )
            if self.scope:
                conf["sasl.oauthbearer.scope"] = self.scope
        else:
            conf.update({"sasl.username": self.username, "sasl.password": self.password})
        if self.ssl and self.ca:
            conf["ssl.ca.location"] = self.ca
        return conf

    def __repr__(self) -> str:
        extra = f", token_url={self.token_url!r}" if self.token_url else ""
        return (
            f"Auth(username={self.username!r}, password='***', mechanism={self.mechanism!r}, "
            f"ssl={self.ssl}, ca={self.ca!r}{extra})"
        )

    __str__ = __repr__


@dataclass(frozen=True)
class Entry:
    """One entry of the credentials file: the login for a broker host (and port, if given)."""

    host: str
    auth: Auth
    port: int | None = None

    def matches(self, host: str, port: int | None) -> bool:
        return self.host.lower() == host.lower() and (self.port is None or self.port == port)

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}" if self.port else self.host


@dataclass(frozen=True)
class Found:
    """Credentials found for a URL, and where they came from (for ``genesis doctor``)."""

    auth: Auth
    source: str


# ------------------------------------------------------------------------ the file
def auth_file() -> Path:
    """The credentials file: ``$GENESIS_AUTH_FILE``, else ``$XDG_CONFIG_HOME/genesis/auth.toml``,
    else ``~/.config/genesis/auth.toml``."""
    if os.environ.get("GENESIS_AUTH_FILE"):
        return Path(os.environ["GENESIS_AUTH_FILE"]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base).expanduser() / "genesis" / "auth.toml"


def read_entries(path: Path | None = None) -> list[Entry]:
    """The entries of the credentials file ([] when there is none); :class:`ConfigError` if it is
    readable by group or others, or malformed."""
    path = path or auth_file()
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return []
    if mode & 0o077:
        raise ConfigError(
            f"the credentials file {path} may be read by other users (mode {mode & 0o777:o}); "
            f"genesis will not use it until you run: chmod 600 {path}"
        )
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"the credentials file {path} is not valid TOML: {exc}") from None
    raw = data.get("auth", [])
    if not isinstance(raw, list):
        raise ConfigError(f"{path}: 'auth' must be a list of [[auth]] tables")
    return [_entry(item, path, n) for n, item in enumerate(raw, 1)]


def _entry(item: Any, path: Path, n: int) -> Entry:
    where = f"{path}, entry {n}"
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: not a table")
    unknown = set(item) - _FILE_KEYS
    missing = {"host", "username", "password"} - set(item)
    if unknown or missing:
        raise ConfigError(
            f"{where}: "
            + "; ".join(
                ([f"unknown keys {', '.join(sorted(unknown))}"] if unknown else [])
                + ([f"missing {', '.join(sorted(missing))}"] if missing else [])
            )
        )
    port = item.get("port")
    if port is not None and not (isinstance(port, int) and 0 < port < 65536):
        raise ConfigError(f"{where}: port must be a number from 1 to 65535")
    try:
        auth = Auth(
            str(item["username"]),
            str(item["password"]),
            str(item.get("mechanism", DEFAULT_MECHANISM)),
            bool(item.get("ssl", True)),
            item.get("ca"),
            item.get("token_url"),
            item.get("scope"),
        )
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return Entry(str(item["host"]), auth, port)


def _toml_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    escaped = "".join(c if ord(c) >= 0x20 and c != "\x7f" else f"\\u{ord(c):04x}" for c in escaped)
    return f'"{escaped}"'


def render_entries(entries: Iterable[Entry]) -> str:
    """The credentials file's text (a small TOML subset: ``[[auth]]`` tables of strings, ints, booleans)."""
    out = ["# genesis credentials (genesis auth add/list/remove). Keep this file private: chmod 600.\n"]
    for e in entries:
        a = e.auth
        values: list[tuple[str, Any]] = [
            ("host", e.host),
            ("port", e.port),
            ("username", a.username),
            ("password", a.password),
            ("mechanism", a.mechanism),
            ("ssl", a.ssl),
            ("ca", a.ca),
            ("token_url", a.token_url),
            ("scope", a.scope),
        ]
        out.append("\n[[auth]]\n")
        for key, value in values:
            if value is None:
                continue
            text = (
                ("true" if value else "false")
                if isinstance(value, bool)
                else (str(value) if isinstance(value, int) else _toml_string(value))
            )
            out.append(f"{key} = {text}\n")
    return "".join(out)


def write_entries(entries: Iterable[Entry], path: Path | None = None) -> Path:
    """Write the credentials file atomically, 0600 (its directory 0700 when created)."""
    path = path or auth_file()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(render_entries(entries))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def add_entry(entry: Entry, path: Path | None = None) -> Path:
    """Add ``entry``, replacing the one for the same host and port."""
    entries = [e for e in read_entries(path) if (e.host.lower(), e.port) != (entry.host.lower(), entry.port)]
    return write_entries([*entries, entry], path)


def remove_entries(host: str, port: int | None = None, path: Path | None = None) -> int:
    """Remove the entries for ``host`` (only the one with ``port`` when given); return how many."""
    entries = read_entries(path)
    keep = [e for e in entries if not (e.host.lower() == host.lower() and (port is None or e.port == port))]
    if len(keep) != len(entries):
        write_entries(keep, path)
    return len(entries) - len(keep)


# ------------------------------------------------------------------------ lookup
def _split(broker: str) -> tuple[str, int | None]:
    host, _, port = broker.rpartition(":")
    return (host.strip("[]"), int(port)) if host else (broker, None)


def _from_file(spec: StreamSpec) -> Found | None:
    path = auth_file()
    entries = read_entries(path)
    for broker in spec.brokers:
        host, port = _split(broker)
        hits = [e for e in entries if e.matches(host, port)]
        if not hits:
            continue
        exact = [e for e in hits if e.port is not None] or hits  # host:port beats host alone
        if len({e.auth.username for e in exact}) > 1:
            raise ConfigError(
                f"{path} holds several logins for {broker} "
                f"({', '.join(e.auth.username for e in exact)}); keep one (genesis auth remove) "
                "or pass auth= to gs.open"
            )
        return Found(exact[0].auth, f"{path} [{exact[0].where}]")
    return None


def _from_environment() -> Found | None:
    user, password = os.environ.get("GENESIS_USERNAME"), os.environ.get("GENESIS_PASSWORD")
    if not (user and password):
        return None
    return Found(
        Auth(
            user,
            password,
            mechanism=os.environ.get("GENESIS_MECHANISM", DEFAULT_MECHANISM),
            ca=os.environ.get("GENESIS_CA") or None,
        ),
        "environment (GENESIS_USERNAME)",
    )


def find(spec: StreamSpec) -> Found | None:
    """The credentials to use for ``spec`` when none were passed: the environment, then the file."""
    return _from_environment() or _from_file(spec)


def lookup(spec: StreamSpec) -> Auth | None:
    """:func:`find`, without saying where from."""
    found = find(spec)
    return found.auth if found else None
