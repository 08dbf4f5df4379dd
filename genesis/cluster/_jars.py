"""Find the tools (``java`` 17+, ``mvn``) and the Kafka jars the local cluster runs on.

The broker is Apache Kafka's own code taken from Maven Central: ``pom.xml`` beside this module
(package data, so an installed wheel has it too) lists it, and ``mvn dependency:copy-dependencies``
copies its runtime classpath once into ``cache_dir()/kafka-<version>/libs``. No Docker, no tarball
download. ``$KAFKA_HOME/libs`` (an unpacked Kafka release) is used instead when ``KAFKA_HOME`` is
set.
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

from .._paths import cache_dir
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
    """The POM that names the Kafka broker and its logging binding (installed with the package)."""
    path = Path(__file__).with_name("pom.xml")
    if not path.is_file():
        raise ClusterError(f"{path} is missing: this genesis installation is incomplete; reinstall genesis-streaming")
    return path


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
    return pom_property(pom_path(), "kafka.version")


def pom_property(pom: Path, name: str) -> str:
    """The value of ``<properties><name>`` in ``pom`` (a version genesis pins there)."""
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    node = ET.parse(pom).getroot().find(f"m:properties/m:{name}", ns)
    value = (node.text or "").strip() if node is not None else ""
    if not value:
        raise ClusterError(f"{pom} has no <{name}> property: this genesis installation is incomplete; reinstall it")
    return value


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


@functools.cache
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

    ``$KAFKA_HOME/libs`` when ``KAFKA_HOME`` is set, else ``cache_dir()/kafka-<version>/libs``
    (see :func:`maven_classpath`).
    """
    if os.environ.get("KAFKA_HOME"):
        kafka_version()  # validates that KAFKA_HOME holds a Kafka release
        return Path(os.environ["KAFKA_HOME"]) / "libs"
    return maven_classpath(pom_path(), cache_dir() / f"kafka-{kafka_version()}", "kafka_2.13-*.jar", "the Kafka jars")


def maven_classpath(pom: Path, home: Path, expect: str, what: str) -> Path:
    """``home/libs``: the runtime classpath of ``pom``, copied there by ``mvn`` the first time.

    A marker file written after a successful copy tells a finished cache from a half-finished one
    (which is redone); a lock file keeps two processes from fetching at the same time. ``expect``
    is a glob of a jar the copy must hold, ``what`` names the jars in errors. The Kafka broker's
    jars and Spark's Kafka connector (``genesis.spark``) are fetched this way.
    """
    libs = home / "libs"
    if (home / _MARKER).exists():
        return libs
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (home / _MARKER).exists():  # another process may have finished while we waited
            _copy_dependencies(pom, libs, expect, what)
            (home / _MARKER).write_text(home.name + "\n")
    return libs


def _copy_dependencies(pom: Path, libs: Path, expect: str, what: str) -> None:
    mvn = shutil.which("mvn")
    if not mvn:
        raise ToolMissingError(
            f"`mvn` was not found: it is needed once to fetch {what} from Maven Central into {libs}; {_MVN_HINT}"
        )
    partial = libs.with_name("libs.partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(libs, ignore_errors=True)
    # mvn runs on a copy beside the jars: the installed package may be read-only, and the cache
    # then records which POM the jars came from
    copy = libs.with_name("pom.xml")
    shutil.copyfile(pom, copy)
    pom = copy
    cmd = [
        mvn,
        "-B",
        "-q",
        "-f",
        str(pom),
        _DEPENDENCY_PLUGIN,
        "-DincludeScope=runtime",
        f"-DoutputDirectory={partial}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not any(partial.glob(expect)):
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        raise ClusterError(
            f"fetching {what} with Maven failed (exit {proc.returncode}); "
            f"is Maven Central reachable?\n$ {' '.join(cmd)}\n{tail}"
        )
    partial.rename(libs)
