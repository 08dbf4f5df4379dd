"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

import signal
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


def pytest_configure(config: pytest.Config) -> None:
    """A SIGTERM (CI's time limit, a killed job) ends the run like Ctrl-C, so fixtures tear down
    their Kafka clusters and processes instead of leaving them behind."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
