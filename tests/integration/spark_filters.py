"""Filters the Spark tests run on the executors, importable there (``tests/integration`` on PYTHONPATH).

``slow_asteroids`` is ``genesis.filters.filter_asteroids`` taking ``SPARK_TEST_DELAY`` seconds per
alert, so that a micro-batch is still being written when the test kills the driver.
"""

from __future__ import annotations

import os
import time

import genesis
from genesis.filters import filter_asteroids


def _slow(alert: dict) -> dict | None:
    time.sleep(float(os.environ.get("SPARK_TEST_DELAY", "0.1")))
    return filter_asteroids(alert)


slow_asteroids = genesis.Filter(_slow, fields=("candidate",), name="slow_asteroids")
