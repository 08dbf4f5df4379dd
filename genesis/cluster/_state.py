"""``cluster.json``: what a running local cluster is (ports, pids, id), so any process can find and stop it.

The file lives in the cluster's state directory. It is written before the JVMs start and
updated whenever a broker's pid changes, so even when the process that started the cluster has
died, ``genesis cluster down`` knows exactly which processes to stop.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ._config import Layout

STATE_FILE = "cluster.json"
FORMAT = "genesis-local-cluster/1"


@dataclass
class ClusterState:
    """The persistent record of one local cluster."""

    brokers: int
    port: int
    controller_port: int
    cluster_id: str
    version: str
    heap: str
    libs: str
    #: node id -> pid of its JVM (absent: never started or stopped)
    pids: dict[int, int] = field(default_factory=dict)
    #: SASL_SSL + SCRAM client listener and ACLs (see _config.Security); absent in older files
    secure: bool = False
    #: the brokers' JVM profile (a name of _config.JVM_PROFILES, or a list of flags); absent in older files
    jvm: str | list[str] | None = None

    @property
    def layout(self) -> Layout:
        return Layout(self.brokers, self.port, self.controller_port)


def state_path(directory: Path) -> Path:
    return directory / STATE_FILE


def read_state(directory: Path) -> ClusterState | None:
    """The state recorded in ``directory``, or ``None`` when it holds no genesis cluster."""
    path = state_path(directory)
    try:
        raw = json.loads(path.read_text())
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, ValueError):
        return None
    if not isinstance(raw, dict) or raw.pop("format", None) != FORMAT:
        return None
    raw["pids"] = {int(k): int(v) for k, v in raw.get("pids", {}).items()}
    return ClusterState(**raw)


def write_state(directory: Path, state: ClusterState) -> None:
    """Write ``cluster.json`` atomically (a reader never sees half a file)."""
    data = {"format": FORMAT, **asdict(state)}
    data["pids"] = {str(k): v for k, v in sorted(state.pids.items())}
    tmp = state_path(directory).with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, state_path(directory))
