"""``module:function`` names of user code (filters, handlers), as the command line and ``run_group`` take them."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from .errors import ConfigError


def load_callable(spec: str | Callable[..., Any], what: str = "function") -> Callable[..., Any]:
    """The function named ``"module:function"`` (the module must be importable), or ``spec`` if callable.

    ``what`` names it in errors ("--filter", "handler").
    """
    if callable(spec):
        return spec
    module, sep, name = str(spec).partition(":")
    if not sep or not module or not name:
        raise ConfigError(f"{what} {spec!r}: write it as module:function, e.g. genesis.filters:filter_asteroids")
    try:
        func = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot load {what} {spec!r}: {exc}") from None
    if not callable(func):
        raise ConfigError(f"{what} {spec!r} is not a function")
    return func
