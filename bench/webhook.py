"""Benchmark: webhook delivery (``gs.pipe(in, "http://...")``) to a loopback receiver answering in 20 ms.

The receiver (tests/webhook_server.py) runs in a process of its own and answers every POST with a
200 after 20 ms, so one request at a time could deliver 50 alerts/s at most and the default 16 in
flight 800/s. Rows, each over the first 5,000 alerts of ``medium`` (real ZTF alerts, ~70 KB of JSON
each with the cutouts), best of 3: the webhook pipe with the default concurrency (JSON with cutouts,
without them, Slack messages) and a plain loop (``gs.open`` + one ``httpx.post`` per alert, then
commit). Target: >= 500 alerts/s with the default concurrency.

    python bench/webhook.py [--bootstrap B]
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

from _common import Context, Section, machine_busy, standalone

TOPIC = "medium"
ALERTS = 5000
ROUNDS = 3
TARGET = 500.0
DELAY = 0.02
SERVER = Path(__file__).resolve().parents[1] / "tests" / "webhook_server.py"


class Receiver:
    """tests/webhook_server.py in its own process; ``url`` once it listens."""

    def __enter__(self) -> Receiver:
        self.proc = subprocess.Popen(
            [sys.executable, str(SERVER), "--delay", str(DELAY)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.url = f"http://127.0.0.1:{int(self.proc.stdout.readline())}/alerts"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def _webhook(ctx: Context, url: str, **options: object) -> tuple[int, float]:
    import genesis.streaming as gs

    group = f"bench-hook-{uuid.uuid4().hex[:6]}"
    with gs.pipe(ctx.url(TOPIC).replace("kafka://", f"kafka://{group}@"), url, start_at="earliest", **options) as hook:
        warm = hook.run(limit=50).delivered  # joining the group and the first fetch are not timed
        started = time.monotonic()
        stats = hook.run(limit=ALERTS + 50)
        return stats.delivered - warm, time.monotonic() - started


def _plain_loop(ctx: Context, url: str) -> tuple[int, float]:
    """What a user would write without genesis.webhook: one POST at a time, commit every 1,000."""
    import httpx

    import genesis.streaming as gs
    from genesis import alerts

    group = f"bench-loop-{uuid.uuid4().hex[:6]}"
    with gs.open(ctx.url(TOPIC).replace("kafka://", f"kafka://{group}@"), start_at="earliest") as stream:
        with httpx.Client(timeout=10) as client:
            for _ in stream(limit=1):  # joining the group and the first fetch are not timed
                pass
            started, n = time.monotonic(), 0
            for _, alert in stream(limit=ALERTS // 10):  # 500: at 50/s that is 10 s already
                body = json.dumps(alerts.jsonable(alert), allow_nan=False)
                client.post(url, content=body, headers={"Content-Type": "application/json"}).raise_for_status()
                n += 1
                if n % 1000 == 0:
                    stream.commit()
            stream.commit()
            return n, time.monotonic() - started


def run(ctx: Context) -> Section:
    load_before = machine_busy()
    kinds = {
        "webhook pipe, JSON with cutouts (default, 16 in flight)": {},
        "webhook pipe, JSON without cutouts": {"drop_bytes": True},
        "webhook pipe, Slack messages": {"format": "slack", "link": "https://alerce.online/object/{objectId}"},
        "webhook pipe, JSON, 64 in flight": {"concurrency": 64},
    }
    best: dict[str, float] = {}
    with Receiver() as receiver:
        for round_ in range(ROUNDS):
            for label, options in kinds.items():
                n, seconds = _webhook(ctx, receiver.url, **options)
                best[label] = max(best.get(label, 0.0), n / seconds)
                print(f"  round {round_ + 1} {label}: {n} in {seconds:.1f} s = {n / seconds:,.0f}/s", flush=True)
        n, seconds = _plain_loop(ctx, receiver.url)
        best["plain loop: gs.open + httpx.post, one at a time"] = n / seconds
    default = best["webhook pipe, JSON with cutouts (default, 16 in flight)"]
    loop = best["plain loop: gs.open + httpx.post, one at a time"]
    rows = [[label, rate, rate / loop] for label, rate in best.items()]
    notes = [
        f"default webhook pipe: {default:,.0f} alerts/s (target >= {TARGET:,.0f}: "
        f"{'met' if default >= TARGET else 'NOT met'}); {default / loop:.1f}x the plain loop",
        f"receiver: tests/webhook_server.py in its own process, a 200 after {DELAY * 1000:.0f} ms per request "
        f"(ceiling: 16 in flight / {DELAY} s = {16 / DELAY:,.0f}/s); first {ALERTS:,} alerts of {TOPIC}, "
        f"best of {ROUNDS}",
        f"load average before {load_before:.1f}, after {machine_busy():.1f} (2 cores)",
    ]
    return Section(
        "Webhook delivery (loopback receiver, 20 ms per answer)", ["how", "alerts/s", "x plain loop"], rows, notes
    )


def main() -> int:
    return standalone(run)


if __name__ == "__main__":
    raise SystemExit(main())
