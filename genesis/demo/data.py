"""Where the real alert packets are (``$GENESIS_ALERTS``, else ``../shared/data`` beside the checkout),
and where the demo notebooks are (installed with the package)."""

from __future__ import annotations

import os
from pathlib import Path

from .._paths import repo_root
from ..errors import ConfigError


def alert_data_dir() -> Path | None:
    """The directory of real alert packets: ``$GENESIS_ALERTS``, else ``../shared/data`` beside the checkout.

    ``None`` when neither exists (then the demo falls back to the simulator and says so).
    """
    env = os.environ.get("GENESIS_ALERTS")
    if env:
        path = Path(env).expanduser()
        return path if path.is_dir() else None
    path = repo_root().parent / "shared" / "data"
    return path if path.is_dir() else None


def require_data_dir(data_dir: str | Path | None = None) -> Path:
    """``data_dir``, or the real alert packets found by :func:`alert_data_dir`; a clear error when neither exists."""
    path = Path(data_dir) if data_dir is not None else alert_data_dir()
    if path is None or not path.is_dir():
        where = (
            f"{data_dir} is not a directory" if data_dir is not None else "neither $GENESIS_ALERTS nor ../shared/data"
        )
        raise ConfigError(
            f"real alert data not found ({where}): set GENESIS_ALERTS to a directory holding ztf/ and lsst/ "
            "alert packets (as ../shared/data does)"
        )
    return path.resolve()


def notebook_dir() -> Path:
    """The directory of the demo notebooks (``*.ipynb``): ``genesis/notebooks`` of an installed wheel,
    else ``notebooks/`` of the source checkout; a clear error when neither holds them."""
    for path in (Path(__file__).resolve().parent.parent / "notebooks", repo_root() / "notebooks"):
        if any(path.glob("*.ipynb")):
            return path
    raise ConfigError("the demo notebooks are not installed with this genesis; reinstall genesis-streaming")


def copy_notebooks(destination: str | Path, *, overwrite: bool = False) -> list[Path]:
    """Copy the demo notebooks into ``destination`` (created if needed); return the copies.

    A notebook already there is kept (it may hold your edits) unless ``overwrite``.
    """
    import shutil

    target = Path(destination).expanduser()
    if target.exists() and not target.is_dir():
        raise ConfigError(f"{target} is not a directory")
    target.mkdir(parents=True, exist_ok=True)
    copies = []
    for source in sorted(notebook_dir().glob("*.ipynb")):
        copy = target / source.name
        if copy.exists() and not overwrite:
            raise ConfigError(f"{copy} exists; remove it or pass --overwrite to replace it")
        shutil.copyfile(source, copy)
        copies.append(copy)
    return copies
