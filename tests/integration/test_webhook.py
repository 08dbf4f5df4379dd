"""Webhooks: ``genesis pipe IN https://...`` / ``gs.pipe(in, "http://...")`` against the shared cluster's
``small`` (100 real ZTF alerts, 6 partitions) and a real HTTP server on loopback that fails as
scripted. Checked from the server's records and the group's commits: every alert acknowledged at
least once (0 lost), repeats only of what was not acknowledged, commits never past an unacknowledged
output, refusals dead-lettered with their status or stopping the pipe naming the alert."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import pytest
from helpers import fault_row, read_topic, record
from webhook_server import GARBAGE, HANG, OK, RESET, Reply, WebhookServer

import genesis.streaming as gs
from genesis import alerts, errors
from genesis.demo import PARTITIONS
from genesis.samples import DEMO_SIZES

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def small(demo) -> dict[str, dict]:
    """Idempotency-Key -> alert, for every alert of ``small`` (one alert per message)."""
    with gs.open(demo.url("small"), start_at="earliest") as stream:
        return {f"{m.topic}/{m.partition}/{m.offset}/0": a for _, a, m in stream(until_eos=True, metadata=True)}


def group() -> str:
    return f"hook-{uuid.uuid4().hex[:8]}"


def offset_of(key: str) -> tuple[int, int]:
    _, partition, offset, _ = key.split("/")
    return int(partition), int(offset)


def candid_of(body: bytes) -> int:
    return json.loads(body)["candid"]


def assert_all_committed(demo, name: str) -> None:
    """The group committed every partition of ``small`` to its end (offsets from 0, one alert each)."""
    committed = demo.committed("small", name)
    assert len(committed) == PARTITIONS and sum(committed.values()) == DEMO_SIZES["small"], committed


FAULTS = {  # request n (0-based, in arrival order) -> what the server does first
    "HTTP 503": ({0, 9, 17}, Reply(503, body=b"busy")),
    "HTTP 500": ({4, 40}, Reply(500)),
    "HTTP 408": ({21}, Reply(408)),
    "HTTP 429, Retry-After: 1": ({30}, Reply(429, headers={"Retry-After": "1"})),
    "connection reset": ({12, 55}, RESET),
    "garbage answer": ({25, 61}, GARBAGE),
    "no answer (timeout 2 s)": ({35}, HANG),
    "slow answer (0.5 s)": ({44, 70}, Reply(delay=0.5)),
}


def test_every_alert_of_small_is_acknowledged_through_every_fault(demo, small):
    plan = {n: reply for ns, reply in FAULTS.values() for n in ns}
    name = group()
    with WebhookServer(lambda n, key, body: plan.get(n, OK), hang=10) as server:
        with gs.pipe(demo.url("small", name), server.url, start_at="earliest", request_timeout=2.0) as hook:
            stats = hook.run(until_eos=True)
    assert set(server.acked) == set(small)  # 0 lost
    assert len(server.acked) == len(set(server.acked))  # nothing acknowledged was sent again
    for seen in server.seen:
        assert json.loads(seen.body) == json.loads(json.dumps(alerts.jsonable(small[seen.key]), allow_nan=False))
        assert seen.headers["Content-Type"] == "application/json"
    assert (stats.alerts, stats.delivered, stats.dead_lettered) == (DEMO_SIZES["small"], DEMO_SIZES["small"], 0)
    assert stats.retried == sum(
        len(ns) for ns, reply in FAULTS.values() if reply.action != "answer" or reply.status >= 400
    )
    assert_all_committed(demo, name)
    by_n = {s.n: s.key for s in server.seen}
    for fault, (ns, _) in FAULTS.items():
        keys = {by_n[n] for n in ns}
        record(
            "webhook_faults",
            {
                **fault_row(fault, len(ns), keys, [k for k in server.acked if k in keys]),
                "alerts": len(keys),
                "acknowledged": len({k for k in server.acked if k in keys}),
                "retried": sum(1 for s in server.seen if s.key in keys) - len(keys),
                "dead-lettered": 0,
            },
        )


def test_refused_alerts_go_to_the_dead_letter_with_status_and_response(demo, small):
    refused = sorted(small)[::10]  # 10 of the 100
    refused_candids = {small[k]["candid"] for k in refused}
    dead = f"dead-{uuid.uuid4().hex[:8]}"
    demo.create_topic(dead, partitions=1)
    try:
        script = lambda n, key, body: Reply(422, body=b"unprocessable: no thanks") if key in refused else OK
        name = group()
        with WebhookServer(script) as server:
            with gs.pipe(demo.url("small", name), server.url, start_at="earliest", dead_letter=demo.url(dead)) as hook:
                stats = hook.run(until_eos=True)
        letters = read_topic(demo.bootstrap_servers, dead, settle=0.5)
        assert sorted(candid_of(m.value()) for m in letters) == sorted(refused_candids)
        for m in letters:
            headers = {k: v.decode() for k, v in m.headers()}
            assert headers["webhook.status"] == "422" and headers["webhook.response"] == "unprocessable: no thanks"
            assert f"small/{headers['genesis.partition']}/{headers['genesis.offset']}/0" in refused
            assert headers["webhook.url"] == server.url and headers["webhook.attempts"] == "1"
        assert set(server.acked) == set(small) - set(refused) and stats.dead_lettered == len(refused)
        assert_all_committed(demo, name)
        record(
            "webhook_faults",
            {
                **fault_row(
                    "HTTP 422 (dead letter)", len(refused), refused_candids, [candid_of(m.value()) for m in letters]
                ),
                "alerts": len(refused),
                "acknowledged": 0,
                "retried": 0,
                "dead-lettered": len(letters),
            },
        )
    finally:
        demo.delete_topic(dead)


def test_a_refusal_without_dead_letter_stops_naming_the_alert_and_a_rerun_delivers_the_rest(demo, small):
    bad = sorted(small)[37]
    bad_partition, bad_offset = offset_of(bad)
    name = group()
    with WebhookServer(lambda n, key, body: Reply(400, body=b"bad alert") if key == bad else OK) as server:
        with pytest.raises(errors.WebhookError) as caught:
            with gs.pipe(demo.url("small", name), server.url, start_at="earliest") as hook:
                hook.run(until_eos=True)
    error = caught.value
    assert (error.topic, error.partition, error.offset, error.status) == ("small", bad_partition, bad_offset, 400)
    assert f"small[{bad_partition}]@{bad_offset}" in str(error) and "bad alert" in str(error)
    assert "--dead-letter" in str(error)
    committed = demo.committed("small", name)
    assert committed.get(bad_partition, 0) <= bad_offset  # never past the refused alert
    first = set(server.acked)
    with WebhookServer() as server:  # the receiver was fixed: run again
        with gs.pipe(demo.url("small", name), server.url, start_at="earliest") as hook:
            hook.run(until_eos=True)
    assert bad in server.acked and first | set(server.acked) == set(small)  # 0 lost
    again = set(server.acked) & first
    assert all(offset_of(k)[1] >= committed.get(offset_of(k)[0], 0) for k in again)  # repeats: uncommitted only
    assert_all_committed(demo, name)


def test_max_retries_gives_up_into_the_dead_letter(demo, small):
    dead = f"dead-{uuid.uuid4().hex[:8]}"
    demo.create_topic(dead, partitions=1)
    victim = sorted(small)[3]
    try:
        with WebhookServer(lambda n, key, body: Reply(503) if key == victim else OK) as server:
            with gs.pipe(
                demo.url("small", group()), server.url, start_at="earliest", max_retries=2, dead_letter=demo.url(dead)
            ) as hook:
                stats = hook.run(until_eos=True)
        (letter,) = read_topic(demo.bootstrap_servers, dead, settle=0.5)
        headers = {k: v.decode() for k, v in letter.headers()}
        assert headers["webhook.status"] == "" and "HTTP 503" in headers["webhook.error"]
        assert headers["webhook.attempts"] == "3" and candid_of(letter.value()) == small[victim]["candid"]
        assert stats.dead_lettered == 1 and stats.delivered == len(small) - 1
    finally:
        demo.delete_topic(dead)


def test_slack_messages_with_a_filter_and_a_link(demo, small):
    from genesis.filters import filter_asteroids

    name = group()
    with WebhookServer() as server:
        with gs.pipe(
            demo.url("small", name),
            server.url,
            filter=filter_asteroids,
            format="slack",
            link="https://alerce.online/object/{objectId}",
            start_at="earliest",
        ) as hook:
            hook.run(until_eos=True)
    wanted = {k for k, a in small.items() if filter_asteroids(a) is not None}
    assert wanted and set(server.acked) == wanted
    for seen in server.seen:
        text = json.loads(seen.body)["text"]
        assert small[seen.key]["objectId"] in text and "alerce.online/object/ZTF" in text
    assert_all_committed(demo, name)  # filtered-out alerts are committed too


def test_the_command_line_webhook_sigkilled_mid_run_then_restarted(demo, small):
    """A slow receiver (50 ms per answer, 4 in flight), the pipe SIGKILLed after 30 acknowledgements,
    run again: every alert acknowledged; a repeat only at or after its partition's committed offset."""
    name = group()
    with WebhookServer(lambda n, key, body: Reply(delay=0.05, headers={"X-Seen": key})) as server:
        argv = [sys.executable, "-m", "genesis", "pipe", demo.url("small", name), server.url]
        argv += ["--start-at", "earliest", "--until-eos", "--concurrency", "4", "--header", "Authorization: Bearer t0k"]
        victim = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 120
            while len(server.acked) < 30 and victim.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            assert victim.poll() is None, victim.communicate()
        finally:
            victim.kill()
            victim.communicate(timeout=30)
        committed = demo.committed("small", name)
        first = list(server.acked)
        done = subprocess.run(argv + ["--json"], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    stats = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(server.acked) == set(small)  # 0 lost
    again = [k for k in server.acked[len(first) :] if k in first]
    assert all(offset_of(k)[1] >= committed.get(offset_of(k)[0], 0) for k in again), (again, committed)
    assert stats["alerts"] == len(small) - sum(committed.values())
    assert all(s.headers["Authorization"] == "Bearer t0k" for s in server.seen)
    assert_all_committed(demo, name)
    record(
        "webhook_faults",
        {
            **fault_row("pipe SIGKILLed mid-run", 1, set(small), server.acked),
            "alerts": len(small),
            "acknowledged": len(set(server.acked)),
            "retried": 0,
            "dead-lettered": 0,
        },
    )


def test_bad_webhook_options_are_config_errors(demo):
    with pytest.raises(errors.ConfigError, match="group"):
        gs.pipe(demo.url("small"), "http://127.0.0.1:9/x")
    with pytest.raises(errors.ConfigError, match="schema"):
        gs.pipe(demo.url("small", group()), "http://127.0.0.1:9/x", schema={"type": "string"})
    with pytest.raises(errors.ConfigError, match="kafka://"):
        gs.pipe(demo.url("small", group()), "http://127.0.0.1:9/x", dead_letter="/tmp/dead")
    done = subprocess.run(
        [sys.executable, "-m", "genesis", "pipe", demo.url("small", group()), "http://127.0.0.1:9/", "--header", "x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0 and "NAME:VALUE" in done.stderr
