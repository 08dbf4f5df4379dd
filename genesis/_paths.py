"""Where genesis keeps its caches and finds the real alert packets."""

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
    """The source checkout genesis runs from (holds ``kafka/pom.xml``) when installed editable."""
    return _REPO


def alert_data_dir() -> Path | None:
    """The directory of real alert packets: ``$GENESIS_ALERTS``, else ``../shared/data`` beside the checkout.

    ``None`` when neither exists (then the demo falls back to the simulator and says so).
    """
    env = os.environ.get("GENESIS_ALERTS")
    if env:
        path = Path(env).expanduser()
        return path if path.is_dir() else None
    path = _REPO.parent / "shared" / "data"
    return path if path.is_dir() else None
