"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from genesis._paths import alert_data_dir


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real alert packets (``$GENESIS_ALERTS`` or ``../shared/data``); tests never invent alerts."""
    path = alert_data_dir()
    if path is None:
        pytest.fail("real alert data not found: set GENESIS_ALERTS or check out beside ../shared/data")
    return path
