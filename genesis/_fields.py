"""Filters that say which fields they read, so genesis decodes no more of an alert than that.

An Avro record is read in order, field by field; a ZTF alert holds its own detection
(``candidate``) before the thirty days of history (``prv_candidates``) that cost 80% of a
full decode. A filter declared with the top-level fields it reads::

    asteroids = gs.Filter(lambda a: a["candidate"]["ssnamenr"] != "null", fields=("candidate",))

is handed each alert decoded only as far as the last of those fields; the alerts it keeps are
then decoded to the end (the same dict a full decode gives). It sees exactly the declared
fields: reading any other raises :class:`UndeclaredFieldError`, so a missing declaration is
found at once instead of giving wrong verdicts. A declared name a writer schema lacks is
simply absent (as in a plain dict).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

from .errors import ConfigError, UndeclaredFieldError


class Filter:
    """``fn`` (``fn(alert)`` -> None/False drops, True keeps, anything else is yielded instead), reading
    only the top-level ``fields`` of an alert. Called directly, it is ``fn``; ``name`` (default: fn's)
    is what reprs and error messages call it."""

    __name__: str
    __qualname__: str

    def __init__(self, fn: Callable[[dict[str, Any]], Any], fields: Iterable[str], *, name: str | None = None) -> None:
        if not callable(fn):
            raise ConfigError(f"Filter needs a function taking an alert, not {type(fn).__name__}")
        names = (fields,) if isinstance(fields, str) else tuple(fields)
        if not names or not all(isinstance(f, str) and f for f in names):
            raise ConfigError(f"fields= must name the top-level fields the filter reads, not {fields!r}")
        self.fn = fn
        self.fields: tuple[str, ...] = names
        functools.update_wrapper(self, fn)
        if name is not None:
            self.__name__ = self.__qualname__ = name

    def __call__(self, alert: dict[str, Any]) -> Any:
        return self.fn(alert)

    def __repr__(self) -> str:
        return f"<genesis.Filter {self.__qualname__} fields={self.fields!r}>"


def fields_of(flt: object) -> tuple[str, ...] | None:
    """The fields a filter declares (None: it reads the whole alert)."""
    return flt.fields if isinstance(flt, Filter) else None


def check_fields(fields: Iterable[str] | None) -> tuple[str, ...] | None:
    """``stream(fields=...)``: the top-level fields each yielded alert holds, checked."""
    if fields is None:
        return None
    names = (fields,) if isinstance(fields, str) else tuple(fields)
    if not names or not all(isinstance(f, str) and f for f in names):
        raise ConfigError(f"fields= must name top-level alert fields, e.g. ('objectId', 'candidate'), not {fields!r}")
    return names


class DeclaredFields(dict[str, Any]):
    """The alert as a declared-fields filter sees it: the declared fields only.

    Reading, asking for (``in``) or getting (``.get``) a field that was not declared raises
    :class:`UndeclaredFieldError` naming it; a declared field the alert lacks behaves as in a dict.
    """

    __slots__ = ("declared",)

    def __init__(self, partial: dict[str, Any], declared: tuple[str, ...]) -> None:
        super().__init__((k, partial[k]) for k in declared if k in partial)
        self.declared = declared

    def _undeclared(self, key: object) -> UndeclaredFieldError:
        return UndeclaredFieldError(
            f"the filter read alert[{key!r}], but it declares only fields={self.declared!r}: add {key!r} "
            "to its fields (genesis decodes only the declared fields before filtering)"
        )

    def __missing__(self, key: str) -> Any:
        if key in self.declared:
            raise KeyError(key)
        raise self._undeclared(key)

    def __contains__(self, key: object) -> bool:
        if dict.__contains__(self, key):
            return True
        if key in self.declared:
            return False
        raise self._undeclared(key)

    def get(self, key: str, default: Any = None) -> Any:
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        if key in self.declared:
            return default
        raise self._undeclared(key)

    def __reduce__(self) -> tuple[Any, ...]:
        return DeclaredFields, (dict(self), self.declared)
