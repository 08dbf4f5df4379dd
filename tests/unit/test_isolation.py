"""Unit tests keep out of the user's files: genesis' cache is a temporary one (tests/conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path

from genesis.demo import demo_messages


def test_unit_tests_write_their_cache_into_a_private_directory(data_dir: Path, tmp_path_factory) -> None:
    cache = Path(os.environ["GENESIS_CACHE"])
    assert tmp_path_factory.getbasetemp() in cache.parents  # pytest's temporary tree, not ~/.cache/genesis
    assert not list(cache.rglob("*"))  # new for this module
    next(demo_messages("small", data_dir))  # builds the demo set into genesis' cache
    assert [p.parent for p in cache.rglob("small-*.msgs")] == [cache / "demo"]
