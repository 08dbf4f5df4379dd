"""The options of a reading stream (``gs.open(url)``, ``gs.pipe(in_url, ...)``): checked once, turned into parts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ._codecs import Decoder
from ._kafka import Credentials
from ._policies import Policy, decode_error_policy
from .errors import ConfigError

WRITE_OPTIONS = frozenset({"schema", "schema_id", "schema_registry", "connect_timeout", "auth", "config"})


@dataclass(frozen=True)
class ReadOptions:
    """What ``gs.open(url, **options)`` accepts for reading (see its docstring for each)."""

    start_at: Any = "latest"
    connect_timeout: float | None = None
    schemas: str | Path | None = None
    schema_registry: str | None = None
    auth: Credentials = None
    on_decode_error: str | Policy = "raise"
    errors: str | Policy | None = None  # the older spelling of on_decode_error
    quarantine: str | Path | None = None
    config: Mapping[str, Any] | None = None
    max_hold: float | None = None
    stall_timeout: float | None = None

    @classmethod
    def of(cls, options: Mapping[str, Any], what: str = "reading") -> ReadOptions:
        """The options, or :class:`~genesis.errors.ConfigError` naming the unknown ones and the valid ones."""
        check(options, names(), what)
        if options.get("errors") is not None and options.get("on_decode_error", "raise") != "raise":
            raise ConfigError("give on_decode_error= or its older spelling errors=, not both")
        return cls(**options)

    @property
    def choice(self) -> str | Policy:
        """What to do with undecodable packets (``errors=`` honoured as the older spelling)."""
        return self.errors if self.errors is not None else self.on_decode_error

    def decoder(self) -> Decoder:
        return Decoder(schemas=self.schemas, schema_registry=self.schema_registry)

    def policy(self) -> Policy | None:
        return decode_error_policy(self.choice, self.quarantine)

    def source_options(self) -> dict[str, Any]:
        """The keyword arguments of a Kafka source."""
        options: dict[str, Any] = {
            "start_at": self.start_at,
            "connect_timeout": self.connect_timeout,
            "config": self.config,
            "auth": self.auth,
        }
        for name in ("max_hold", "stall_timeout"):  # unset: the source's defaults
            if getattr(self, name) is not None:
                options[name] = getattr(self, name)
        return options


def names() -> frozenset[str]:
    """The names of the reading options."""
    return frozenset(f.name for f in fields(ReadOptions))


def check(options: Mapping[str, Any], allowed: frozenset[str], what: str) -> None:
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ConfigError(
            f"unknown option(s) for {what}: {', '.join(unknown)}; valid options are {', '.join(sorted(allowed))}"
        )
