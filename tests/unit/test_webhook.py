"""genesis.webhook's delivery and bodies against a real HTTP server on loopback (tests/webhook_server.py):
retries of what may succeed later (5xx, 408, 429 after Retry-After, timeouts, resets, answers that
are not HTTP), final refusals, the bound on requests in flight, and the JSON/Slack bodies of real alerts."""

from __future__ import annotations

import email.utils
import json
import threading
import time

import pytest
from webhook_server import GARBAGE, HANG, OK, RESET, Reply, WebhookServer

from genesis import alerts
from genesis.errors import ConfigError
from genesis.samples import real_lsst_alerts, real_ztf_alerts
from genesis.webhook import backoff, retry_after
from genesis.webhook._delivery import ABANDONED, GAVE_UP, REFUSED, Delivery
from genesis.webhook._delivery import OK as DELIVERED
from genesis.webhook._ledger import InFlight
from genesis.webhook._payload import Payloads


def deliver(server: WebhookServer, bodies: int = 1, **options) -> list:
    """Send ``bodies`` bodies (key i) and wait for every outcome."""
    delivery = Delivery(server.url, **options)
    try:
        for i in range(bodies):
            delivery.send(i, json.dumps({"i": i}).encode(), {"Idempotency-Key": str(i)})
        outcomes = [delivery.done.get(timeout=60) for _ in range(bodies)]
    finally:
        delivery.close()
    return sorted(outcomes, key=lambda o: o.token)


def nth(replies: dict[int, Reply]):
    """A script answering request n with replies[n], OK otherwise."""
    return lambda n, key, body: replies.get(n, OK)


@pytest.mark.parametrize(
    "fault",
    [Reply(503), Reply(500, body=b"boom"), Reply(408), Reply(429), RESET, GARBAGE],
    ids=["503", "500", "408", "429", "reset", "garbage"],
)
def test_what_may_succeed_later_is_retried_until_acknowledged(fault):
    with WebhookServer(nth({0: fault, 1: fault})) as server:
        (outcome,) = deliver(server)
    assert outcome.result == DELIVERED and outcome.attempts == 3
    assert server.keys() == ["0", "0", "0"] and server.acked == ["0"]


def test_a_hanging_server_is_timed_out_and_tried_again():
    with WebhookServer(nth({0: HANG}), hang=5) as server:
        (outcome,) = deliver(server, timeout=0.5)
    assert outcome.ok and outcome.attempts == 2 and server.acked == ["0"]


def test_retry_after_is_honoured():
    with WebhookServer(nth({0: Reply(429, headers={"Retry-After": "1"})})) as server:
        (outcome,) = deliver(server)
    first, second = server.seen
    assert outcome.ok and second.at - first.at >= 0.95  # waited what the server asked, not 0.1 s


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422])
def test_other_refusals_are_final_with_status_and_response(status):
    with WebhookServer(nth({0: Reply(status, body=b"not this one")})) as server:
        (outcome,) = deliver(server)
    assert (outcome.result, outcome.status, outcome.response, outcome.attempts) == (REFUSED, status, "not this one", 1)
    assert f"HTTP {status}" in outcome.reason and "not this one" in outcome.reason


def test_max_retries_caps_the_attempts():
    with WebhookServer(lambda n, key, body: Reply(503)) as server:
        (outcome,) = deliver(server, max_retries=2)
    assert outcome.result == GAVE_UP and outcome.attempts == 3 and "HTTP 503" in outcome.error
    assert len(server.seen) == 3


def test_stop_makes_retries_give_up_as_abandoned():
    with WebhookServer(lambda n, key, body: Reply(503)) as server:
        delivery = Delivery(server.url)
        delivery.send("x", b"{}", {})
        while not server.seen:
            time.sleep(0.01)
        delivery.stop()
        outcome = delivery.done.get(timeout=30)
        delivery.close()
    assert outcome.result == ABANDONED and not outcome.ok


def test_no_more_than_concurrency_requests_are_in_flight():
    with WebhookServer(lambda n, key, body: Reply(delay=0.05)) as server:
        outcomes = deliver(server, bodies=40, concurrency=4)
    assert all(o.ok for o in outcomes) and len(server.acked) == 40
    assert server.max_in_flight == 4


def test_headers_and_body_reach_the_server():
    with WebhookServer() as server:
        deliver(server, headers={"Authorization": "Bearer s3cret"})
    (seen,) = server.seen
    assert seen.headers["Authorization"] == "Bearer s3cret"
    assert seen.headers["Content-Type"] == "application/json" and seen.headers["Idempotency-Key"] == "0"
    assert json.loads(seen.body) == {"i": 0}


def test_a_closed_port_is_retried_not_raised():
    with WebhookServer() as server:
        url = server.url
    delivery = Delivery(url, max_retries=1)  # nothing listens there any more
    delivery.send(1, b"{}", {})
    outcome = delivery.done.get(timeout=30)
    delivery.close()
    assert outcome.result == GAVE_UP and "ConnectError" in outcome.error


def test_backoff_doubles_from_a_tenth_of_a_second_to_five_with_jitter():
    for attempt, base in ((1, 0.1), (2, 0.2), (3, 0.4), (7, 5.0), (30, 5.0)):
        waits = [backoff(attempt) for _ in range(200)]
        assert base / 2 <= min(waits) and max(waits) <= base
        assert len(set(waits)) > 1


def test_retry_after_reads_seconds_and_dates():
    now = time.time()
    assert retry_after("3") == 3.0
    assert retry_after(email.utils.formatdate(now + 10, usegmt=True), now=now) == pytest.approx(10, abs=1)
    assert retry_after("99999") == 300.0  # capped
    assert retry_after("soon") is None and retry_after(None) is None


def test_bad_options_are_config_errors():
    for options in ({"concurrency": 0}, {"max_retries": -1}, {"timeout": 0}):
        with pytest.raises(ConfigError):
            Delivery("http://127.0.0.1:1/", **options)


def test_in_flight_holds_the_first_unfinished_offset_per_partition():
    ledger = InFlight()
    for offset in (5, 6, 6, 9):
        ledger.add(("t", 0), offset)
    ledger.add(("t", 1), 2)
    assert ledger.hold() == {("t", 0): 5, ("t", 1): 2} and len(ledger) == 5
    ledger.settle(("t", 0), 6)
    ledger.settle(("t", 0), 5)
    assert ledger.hold() == {("t", 0): 6, ("t", 1): 2}
    ledger.settle(("t", 1), 2)
    ledger.settle(("t", 0), 6)
    ledger.settle(("t", 0), 9)
    assert ledger.hold() == {} and len(ledger) == 0
    with pytest.raises(KeyError):
        ledger.settle(("t", 0), 9)


def test_json_bodies_are_genesis_consume_json(data_dir):
    ztf = real_ztf_alerts(data_dir)[0].record
    body = Payloads().body(ztf)
    assert json.loads(body) == json.loads(json.dumps(alerts.jsonable(ztf), allow_nan=False))
    assert isinstance(json.loads(body)["candid"], int)  # integers stay integers
    slim = json.loads(Payloads(drop_bytes=True).body(ztf))
    assert "stampData" not in slim["cutoutScience"] and slim["candid"] == ztf["candid"]  # as --no-cutouts


def test_slack_bodies_summarise_with_a_link(data_dir):
    ztf = real_ztf_alerts(data_dir)[0].record
    lsst = real_lsst_alerts(data_dir)[0].record
    slack = Payloads("slack", link="https://alerce.online/object/{objectId}")
    text = json.loads(slack.body(ztf))["text"]
    assert ztf["objectId"] in text and f"<https://alerce.online/object/{ztf['objectId']}>" in text
    assert f"{ztf['candidate']['magpsf']:.2f}" in text
    rubin = json.loads(Payloads("slack", link="https://example.org/{diaObjectId}").body(lsst))["text"]
    assert str(lsst["diaSource"]["diaObjectId"]) in rubin and rubin.startswith("LSST")
    assert json.loads(Payloads("slack").body({"objectId": "ZTF1", "score": 0.9}))["text"] == json.dumps(
        {"objectId": "ZTF1", "score": 0.9}
    )  # what a filter returned instead of an alert, as JSON
    with pytest.raises(ConfigError, match="nosuch"):
        Payloads("slack", link="https://x/{nosuch}").body(ztf)
    with pytest.raises(ConfigError):
        Payloads("xml")
    with pytest.raises(ConfigError):
        Payloads("json", link="https://x/{objectId}")


def test_sends_block_while_every_slot_is_taken():
    release = threading.Event()
    with WebhookServer(lambda n, key, body: (release.wait(10), OK)[1]) as server:
        delivery = Delivery(server.url, concurrency=2)
        delivery.send(0, b"{}", {})
        delivery.send(1, b"{}", {})
        assert not delivery.wait_for_slot(0.2)
        release.set()
        assert delivery.wait_for_slot(10)
        delivery.close()


def test_each_process_of_a_webhook_pipe_gets_every_webhook_option_again():
    """``genesis pipe --processes N`` starts N pipes: each parses the webhook options it was given."""
    from genesis.cli import _webhook, build_parser

    given = [
        "pipe",
        "kafka://g@localhost/small",
        "https://example.org/hook",
        "--header",
        "Authorization: Bearer t",
        "--header",
        "X-Team: sn",
        "--concurrency",
        "4",
        "--max-retries",
        "3",
        "--request-timeout",
        "2.5",
        "--dead-letter",
        "kafka://localhost/refused",
        "--format",
        "slack",
        "--link",
        "https://alerce.online/object/{objectId}",
        "--no-cutouts",
        "--ca",
        "/tmp/ca.pem",
        "--insecure",
    ]
    parser = build_parser()
    first = parser.parse_args(given)
    again = parser.parse_args([*given[:3], *_webhook.child_argv(first)])
    assert _webhook.options(again) == _webhook.options(first)
    assert _webhook.options(first)["headers"] == {"Authorization": "Bearer t", "X-Team": "sn"}
    assert _webhook.options(first)["drop_bytes"] is True and _webhook.options(first)["max_retries"] == 3
    defaults = parser.parse_args(given[:3])
    assert parser.parse_args([*given[:3], *_webhook.child_argv(defaults)]) == defaults
