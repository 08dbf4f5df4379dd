"""Spark's Kafka connector: its Maven coordinates (``genesis/spark/pom.xml``) and its jars in genesis' cache."""

from __future__ import annotations

import functools
import os
import shutil
from pathlib import Path

from .._paths import cache_dir
from ..cluster import maven_classpath, pom_property
from ..errors import ConfigError, ToolMissingError

SCALA = "2.13"
_INSTALL = "pip install 'genesis-streaming[spark]'"


def pom_path() -> Path:
    """The POM naming Spark's Kafka connector (package data, beside this module)."""
    return Path(__file__).with_name("pom.xml")


@functools.cache
def spark_version() -> str:
    """The Spark release the connector is for: ``<spark.version>`` of the POM (= the pinned pyspark)."""
    return pom_property(pom_path(), "spark.version")


def package() -> str:
    """The connector's Maven coordinates, as ``spark-submit --packages`` takes them."""
    return f"org.apache.spark:spark-sql-kafka-0-10_{SCALA}:{spark_version()}"


def check_pyspark() -> str:
    """pyspark's version; :class:`~genesis.errors.ConfigError` when it is missing or not the connector's."""
    try:
        import pyspark
    except ImportError:
        raise ConfigError(f"genesis.spark needs pyspark {spark_version()}: {_INSTALL}") from None
    if pyspark.__version__ != spark_version():
        raise ConfigError(
            f"pyspark {pyspark.__version__} is installed, but genesis' Kafka connector is for Spark "
            f"{spark_version()} (a connector must match its Spark release): {_INSTALL}"
        )
    return pyspark.__version__


def check_java() -> None:
    """Spark runs on the JVM: :class:`~genesis.errors.ToolMissingError` without a ``java``."""
    home = os.environ.get("JAVA_HOME")
    if not (home and (Path(home) / "bin" / "java").exists()) and not shutil.which("java"):
        raise ToolMissingError(
            "`java` was not found: Spark runs on a Java 17 or 21 runtime; install one, e.g. "
            "`sudo apt-get install openjdk-17-jre-headless`, or set JAVA_HOME"
        )


def connector_jars() -> list[Path]:
    """The connector's jars (fetched with Maven into ``cache_dir()/spark-kafka-<version>`` the first
    time; Spark's own jars, which pyspark ships, are left out by the POM)."""
    libs = maven_classpath(
        pom_path(),
        cache_dir() / f"spark-kafka-{spark_version()}",
        f"spark-sql-kafka-0-10_{SCALA}-*.jar",
        "Spark's Kafka connector",
    )
    return sorted(libs.glob("*.jar"))
