"""Where genesis keeps its caches, and the source checkout it runs from."""

from __future__ import annotations

import os
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    """genesis' cache: ``$GENESIS_CACHE``, else ``$XDG_CACHE_HOME/genesis``, else ``~/.cache/genesis``."""
    if os.environ.get("GENESIS_CACHE"):
        return Path(os.environ["GENESIS_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "genesis"


def repo_root() -> Path:
    """The source checkout genesis runs from when installed editable (an installed wheel: its site-packages)."""
    return _REPO
