"""The peers' own venv (bench/.peers, gitignored): adc-streaming and hop-client from PyPI, kept out of genesis' venv."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PEERS = Path(__file__).resolve().parent / ".peers"
#: six: hop-client 0.13.0 imports it (hop/bson) without declaring it
PACKAGES = ["adc-streaming", "hop-client", "fastavro", "six"]


def ensure_peers() -> Path:
    """The peers' python, creating the venv and installing the packages on first use."""
    python = PEERS / "bin" / "python"
    if not python.exists():  # venv bases a venv made from inside genesis' venv on the base interpreter
        subprocess.run([sys.executable, "-m", "venv", str(PEERS)], check=True)
    probe = subprocess.run([str(python), "-c", "import adc, hop.io, fastavro"], capture_output=True)
    if probe.returncode != 0:
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PACKAGES], check=True)
    return python


def peer_versions() -> dict[str, str]:
    """Versions of the peers (and their confluent-kafka) as installed in bench/.peers."""
    code = (
        "import json, importlib.metadata as m; print(json.dumps({p: m.version(p) for p in "
        "['adc-streaming', 'hop-client', 'confluent-kafka', 'fastavro']}))"
    )
    out = subprocess.run([str(ensure_peers()), "-c", code], capture_output=True, text=True, check=True).stdout
    found = json.loads(out)
    return {
        "adc-streaming": found["adc-streaming"],
        "hop-client": found["hop-client"],
        "peers' confluent-kafka / fastavro": f"{found['confluent-kafka']} / {found['fastavro']}",
    }
