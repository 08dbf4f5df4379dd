"""A walk through the streaming notebook's cells against the demo topics: ``python -m genesis.demo``."""

from __future__ import annotations

import argparse
import random
import string
import time


def walkthrough(host: str = "localhost") -> None:
    """The notebook's cells from "Simple Streaming" to "Robustness", bounded so they run unattended."""
    import genesis.streaming as gs

    from ..filters import filter_asteroids, is_transient

    base = f"kafka://{host}"
    print("# The first cell waits for new alerts (a fresh group starts at the end); bounded to 5 s here:")
    with gs.open(f"{base}/small") as stream:
        n = sum(1 for _ in stream(timeout=5))
    print(f"received {n} alerts (nothing new was injected)\n")

    print("# start_at='earliest': everything the topic has")
    with gs.open(f"{base}/small", start_at="earliest") as stream:
        alerts = [alert["candid"] for _, alert in stream(timeout=10, progress=True)]
    alerts.sort()
    print(f"Read {len(alerts)} alerts.\nFirst few candidate IDs: {alerts[:3]}\n")

    id = "".join(random.choices(string.ascii_uppercase + string.digits, k=8))
    broker_url = f"kafka://{id}@{host}/small"
    print(f"# Remembering offsets with consumer ID {id}: 25 alerts, commit, then the rest")
    with gs.open(broker_url, start_at="earliest") as stream:
        alerts1 = [alert["candid"] for _, alert in stream(limit=25, progress=True)]
        stream.commit()
    with gs.open(broker_url, start_at="earliest") as stream:
        alerts2 = [alert["candid"] for _, alert in stream(timeout=10, progress=True)]
        stream.commit()
    print(f"Read {len(alerts1)} then {len(alerts2)} alerts; nothing lost: {set(alerts) == set(alerts1 + alerts2)}\n")

    print("# Filtering medium for asteroids")
    with gs.open(f"{base}/medium", start_at="earliest") as stream:
        for idx, alert in stream(limit=10, timeout=10, progress=True, filter=filter_asteroids):
            print(f"[{idx}] Candidate ID: {alert['candid']} {alert['candidate']['ssnamenr']}")

    print("\n# Bellm's transient filter, on 2 worker processes")
    with gs.Pool(2) as workers:
        with gs.open(f"{base}/medium", start_at="earliest") as stream:
            for idx, alert in stream(pool=workers, limit=10, timeout=10, progress=True, filter=is_transient):
                print(f"[{idx}] Candidate ID: {alert['candid']}")

    print("\n# All of medium")
    t0 = time.monotonic()
    with gs.open(f"{base}/medium", start_at="earliest") as stream:
        n = sum(1 for _ in stream(timeout=10, progress=True))
    took = time.monotonic() - t0 - 10  # the stream ends after 10 idle seconds
    print(f"read {n} alerts ({n / max(took, 1e-3):,.0f} alerts/s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genesis.demo", description=walkthrough.__doc__)
    parser.add_argument("--host", default="localhost", help="broker host[:port] (default: localhost)")
    walkthrough(parser.parse_args(argv).host)
    return 0
