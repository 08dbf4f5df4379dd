"""Token logins (SASL/OAUTHBEARER with OIDC client credentials) on a real listener.

The private cluster gets an OAUTHBEARER listener with Kafka's unsecured JWS validator, which
makes clients re-authenticate every 30 s; the test serves the OIDC token endpoint on loopback,
handing out unsigned tokens that live 30 s. genesis logs in with librdkafka's own OIDC method
(``sasl.oauthbearer.method=oidc``), which fetches and renews tokens on librdkafka's threads —
not with a Python ``oauth_cb``, which runs only inside ``poll()`` and so left idle clients
without a valid token (gcn-kafka-python #49). A stream not iterated for two minutes (four token
lifetimes, four re-authentications) then receives new alerts with no user action, and the
endpoint saw the renewals.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

import genesis.streaming as gs
from genesis import Auth
from genesis.cluster import Listener

pytestmark = pytest.mark.slow

TOKEN_SECONDS = 30
IDLE = 120.0  # the two minutes: four token lifetimes


def _b64(doc: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()


class _TokenEndpoint(BaseHTTPRequestHandler):
    """An OIDC token endpoint (client-credentials grant) issuing unsigned JWTs that live 30 s."""

    issued: list[float] = []

    def do_POST(self) -> None:
        form = parse_qs(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode())
        if form.get("grant_type") != ["client_credentials"]:
            self.send_error(400, "grant_type must be client_credentials")
            return
        now = int(time.time())
        token = ".".join([_b64({"alg": "none"}), _b64({"sub": "alice", "iat": now, "exp": now + TOKEN_SECONDS}), ""])
        body = json.dumps({"access_token": token, "token_type": "bearer", "expires_in": TOKEN_SECONDS}).encode()
        type(self).issued.append(time.monotonic())
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class Endpoint:
    """The running token endpoint: its URL, and when it issued each token (monotonic seconds)."""

    def __init__(self, url: str, issued: list[float]) -> None:
        self.url, self.issued = url, issued


@pytest.fixture
def token_endpoint() -> Iterator[Endpoint]:
    handler = type("Handler", (_TokenEndpoint,), {"issued": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield Endpoint(f"http://127.0.0.1:{server.server_address[1]}/token", handler.issued)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_an_idle_stream_renews_its_token_and_gets_new_alerts(fresh_cluster, free_extra_ports, token_endpoint, data_dir):
    base = free_extra_ports(3)  # away from the cluster's own ports and the ephemeral range
    oauth = Listener("OAUTH", ports=(base, base + 1, base + 2), oauthbearer=True, reauth_ms=30000)
    cluster = fresh_cluster(3, listeners=[oauth])
    cluster.create_topic("tokens", partitions=3)
    alerts = [p.read_bytes() for p in sorted((data_dir / "ztf/raw/kowalski/20231012").glob("*.avro"))]
    first, later = alerts[:8], alerts[8:]
    assert first and later
    with gs.open(cluster.url("tokens"), "w") as writer:  # through the plaintext listener
        for value in first:
            writer.write(value)
    auth = Auth.oidc("genesis-test", "not-checked", token_endpoint.url, ssl=False)
    url = f"kafka://tokens-{uuid.uuid4().hex[:8]}@{oauth.bootstrap_servers()}/tokens"
    with gs.open(url, auth=auth, start_at="earliest") as stream:
        assert len(list(stream(until_eos=True, timeout=30))) == len(first)
        idle_from = time.monotonic()
        time.sleep(IDLE)  # the scenario itself: nobody iterates the stream for two minutes
        with gs.open(cluster.url("tokens"), "w") as writer:
            for value in later:
                writer.write(value)
        got = [a["candid"] for _, a in stream(timeout=30, limit=len(later))]
    assert len(got) == len(later)  # arrived with no user action
    renewed = [t for t in token_endpoint.issued if idle_from < t < idle_from + IDLE]
    # a 30 s token is renewed before it expires: at least three times in two idle minutes
    assert len(renewed) >= 3, token_endpoint.issued
