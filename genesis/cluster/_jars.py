"""Find the tools (``java`` 17+, ``mvn``) and the Kafka jars the local cluster runs on.

The broker is Apache Kafka's own code taken from Maven Central: ``kafka/pom.xml`` lists it, and
``mvn dependency:copy-dependencies`` copies its runtime classpath once into
``cache_dir()/kafka-<version>/libs``. No Docker, no tarball download. ``$KAFKA_HOME/libs`` (an
unpacked Kafka release) is used instead when ``KAFKA_HOME`` is set.
"""

from __future__ import annotations

import fcntl
import functools
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

from .._paths import cache_dir, repo_root
from ..errors import ClusterError, ToolMissingError

#: Kafka 4.x brokers and tools need Java 17 (``minNonClientJavaVersion`` in Kafka's build)
MIN_JAVA = 17

_DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies"
_MARKER = ".complete"
_JAVA_HINT = (
    "install a Java 17+ runtime, e.g. `sudo apt-get install openjdk-17-jre-headless` "
    "(or `brew install openjdk@17`), or set JAVA_HOME"
)
_MVN_HINT = (
    "install Maven, e.g. `sudo apt-get install maven` (or `brew install maven`), "
    "or set KAFKA_HOME to an unpacked Kafka release"
)


def pom_path() -> Path:
    """The POM that names the Kafka broker and its logging binding."""
    return repo_root() / "kafka" / "pom.xml"


def kafka_version() -> str:
    """The Kafka version genesis runs: the jar in ``$KAFKA_HOME/libs``, else ``<kafka.version>`` of the POM."""
    home = os.environ.get("KAFKA_HOME")
    if home:
        for jar in sorted((Path(home) / "libs").glob("kafka_2.13-*.jar")):
            match = re.fullmatch(r"kafka_2\.13-(\d[\w.\-]*?)\.jar", jar.name)
            if match:
                return match.group(1)
        raise ClusterError(
            f"KAFKA_HOME={home} holds no libs/kafka_2.13-<version>.jar; "
            "point it at an unpacked Kafka release or unset it"
        )
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    node = ET.parse(pom_path()).getroot().find("m:properties/m:kafka.version", ns)
    if node is None or not (node.text or "").strip():
        raise ClusterError(f"{pom_path()} has no <kafka.version> property")
    return node.text.strip()


def java_executable() -> str:
    """Path of a ``java`` of version 17 or newer (``$JAVA_HOME/bin/java`` first, then ``PATH``)."""
    home = os.environ.get("JAVA_HOME")
    candidate = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not candidate or not os.access(candidate, os.X_OK):
        raise ToolMissingError(f"`java` was not found: the local Kafka cluster needs it; {_JAVA_HINT}")
    major = _java_major(candidate)
    if major < MIN_JAVA:
        raise ToolMissingError(f"`{candidate}` is Java {major}, Kafka needs Java {MIN_JAVA} or newer; {_JAVA_HINT}")
    return candidate


@functools.lru_cache(maxsize=None)
def _java_major(java: str) -> int:
    """Major version of a java binary (``java -version`` prints e.g. ``version "17.0.15"`` or ``"1.8.0_392"``)."""
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60).stderr
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolMissingError(f"`{java} -version` failed ({exc}); {_JAVA_HINT}") from exc
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        raise ToolMissingError(f"cannot read the version of `{java}` from: {out.strip()[:200]}; {_JAVA_HINT}")
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def ensure_jars() -> Path:
    """Return the directory of Kafka's jars, resolving them with Maven the first time.

    ``$KAFKA_HOME/libs`` when ``KAFKA_HOME`` is set. Otherwise the jars are copied into
    ``cache_dir()/kafka-<version>/libs`` by ``mvn``; a marker file written after a successful copy
    tells a finished cache from a half-finished one (which is redone). A lock file keeps two
    processes from fetching at the same time.
    """
    if os.environ.get("KAFKA_HOME"):
        kafka_version()  # validates that KAFKA_HOME holds a Kafka release
        return Path(os.environ["KAFKA_HOME"]) / "libs"
    home = cache_dir() / f"kafka-{kafka_version()}"
    libs = home / "libs"
    if (home / _MARKER).exists():
        return libs
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (home / _MARKER).exists():  # another process may have finished while we waited
            _copy_dependencies(libs)
            (home / _MARKER).write_text(kafka_version() + "\n")
    return libs


def _copy_dependencies(libs: Path) -> None:
    mvn = shutil.which("mvn")
    if not mvn:
        raise ToolMissingError(
            f"`mvn` was not found: it is needed once to fetch the Kafka jars from "
            f"Maven Central into {libs}; {_MVN_HINT}"
        )
    partial = libs.with_name("libs.partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(libs, ignore_errors=True)
    cmd = [
        mvn,
        "-B",
        "-q",
        "-f",
        str(pom_path()),
        _DEPENDENCY_PLUGIN,
        "-DincludeScope=runtime",
        f"-DoutputDirectory={partial}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not any(partial.glob("kafka_2.13-*.jar")):
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        raise ClusterError(
            f"fetching the Kafka jars with Maven failed (exit {proc.returncode}); "
            f"is Maven Central reachable?\n$ {' '.join(cmd)}\n{tail}"
        )
    partial.rename(libs)
