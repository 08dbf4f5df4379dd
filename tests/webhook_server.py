"""A real HTTP server on loopback for the webhook tests and bench: it answers each POST as a script says.

``script(n, key, body)`` (n counts requests from 0; key is the Idempotency-Key) returns a
:class:`Reply`: a status (with headers, a body and a delay before answering), ``HANG`` (answer only
after the client gave up), ``RESET`` (close the connection without a word, with a TCP RST) or
``GARBAGE`` (bytes that are not HTTP). Every request is recorded; ``acked`` lists the keys answered
with a 2xx, in order. ``python tests/webhook_server.py --delay 0.02`` serves 200s after 20 ms and
prints its port (the bench's receiver, in a process of its own).
"""

from __future__ import annotations

import argparse
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    delay: float = 0.0
    action: str = "answer"  # answer | hang | reset | garbage


OK = Reply()
HANG = Reply(action="hang")
RESET = Reply(action="reset")
GARBAGE = Reply(action="garbage")

Script = Callable[[int, str, bytes], Reply]


@dataclass
class Seen:
    n: int
    key: str
    body: bytes
    headers: dict[str, str]
    reply: Reply
    at: float


class WebhookServer:
    """Serves on 127.0.0.1 (a free port) from a thread per connection; a context manager."""

    def __init__(self, script: Script = lambda n, key, body: OK, hang: float = 30.0) -> None:
        self.script, self.hang = script, hang
        self.seen: list[Seen] = []
        self.acked: list[str] = []
        self.in_flight = self.max_in_flight = 0
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real service
            disable_nagle_algorithm = True  # TCP_NODELAY, as real servers set it

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                owner._answer(self, body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.base}/alerts"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def _answer(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        key = handler.headers.get("Idempotency-Key", "")
        with self._lock:
            n = len(self.seen)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            reply = self.script(n, key, body)
            with self._lock:
                self.seen.append(Seen(n, key, body, dict(handler.headers), reply, time.monotonic()))
            if reply.action == "hang":
                self._stopped.wait(self.hang)
                handler.close_connection = True
                return
            if reply.action == "reset":
                handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                handler.close_connection = True
                return
            if reply.action == "garbage":
                handler.wfile.write(b"\x00\x01 this is not HTTP \xff\r\n\r\n")
                handler.close_connection = True
                return
            if reply.delay:
                time.sleep(reply.delay)
            handler.send_response(reply.status)
            for name, value in reply.headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(reply.body)))
            handler.end_headers()
            handler.wfile.write(reply.body)
            if 200 <= reply.status < 300:
                with self._lock:
                    self.acked.append(key)
        finally:
            with self._lock:
                self.in_flight -= 1

    def keys(self, status: int | None = None) -> list[str]:
        """Keys of the requests seen (with ``status``: answered with it)."""
        with self._lock:
            return [
                s.key for s in self.seen if status is None or (s.reply.action == "answer" and s.reply.status == status)
            ]

    def __enter__(self) -> WebhookServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--delay", type=float, default=0.0, help="seconds before each 200")
    args = p.parse_args()
    reply = Reply(delay=args.delay)
    with WebhookServer(lambda n, key, body: reply) as server:
        print(server.port, flush=True)
        try:
            sys.stdin.read()  # until the bench closes our stdin
        except KeyboardInterrupt:
            pass
        print(len(server.acked), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
