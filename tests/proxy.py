"""A TCP proxy for tests, with faults on demand: every connection dropped, traffic black-holed, throttled.

Used by ``test_hostile_network.py`` and ``test_nemesis.py``: a private cluster gets an extra listener
advertised at the proxy's ports, so clients bootstrapping through it reach every broker through it.
"""

from __future__ import annotations

import selectors
import socket
import threading
import time


class Proxy:
    """TCP forwarding from ``127.0.0.1:listen[i]`` to ``127.0.0.1:target[i]``, with faults on demand."""

    def __init__(self, pairs: list[tuple[int, int]]) -> None:
        self.pairs = pairs
        self.to_client = 0  # bytes relayed from the brokers to the clients
        self.connections = 0
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._hole = threading.Event()  # black-holed: nothing is read or relayed
        self._rate: float | None = None  # bytes/s from brokers to clients, shared by all connections
        self._budget = 0.0
        self._stamp = time.monotonic()
        self._stop = threading.Event()
        self._servers = []
        for listen, target in pairs:
            server = socket.socket()
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind(("127.0.0.1", listen))
            server.listen(64)
            self._servers.append(server)
            threading.Thread(target=self._accept, args=(server, target), daemon=True).start()

    # ------------------------------------------------------------------ faults
    def drop_all(self) -> int:
        """Close every open connection, both ways (clients see a reset and reconnect)."""
        with self._lock:
            dropped, self._open = self._open, []
        for sock in dropped:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        return len(dropped) // 2

    def black_hole(self, on: bool) -> None:
        """Relay nothing (and accept nothing) while on; connections stay open, nothing is reset."""
        (self._hole.set if on else self._hole.clear)()

    def throttle(self, bytes_per_second: float | None) -> None:
        with self._lock:
            self._rate, self._budget, self._stamp = bytes_per_second, 0.0, time.monotonic()

    def close(self) -> None:
        self._stop.set()
        for server in self._servers:
            server.close()
        self.drop_all()

    # ------------------------------------------------------------------ relaying
    def _accept(self, server: socket.socket, target: int) -> None:
        while not self._stop.is_set():
            if self._hole.is_set():  # connection attempts wait in the backlog, unanswered
                time.sleep(0.05)
                continue
            try:
                client, _ = server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", target), timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open += [client, upstream]
                self.connections += 1
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _allow(self, n: int) -> int:
        """How many of ``n`` bytes may go to the client now (token bucket), waiting for at least one."""
        while True:
            with self._lock:
                if self._rate is None:
                    return n
                now = time.monotonic()
                self._budget = min(self._rate / 4, self._budget + (now - self._stamp) * self._rate)
                self._stamp = now
                if self._budget >= 1:
                    grant = int(min(n, self._budget))
                    self._budget -= grant
                    return grant
            time.sleep(0.01)

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        selector.register(client, selectors.EVENT_READ, upstream)
        selector.register(upstream, selectors.EVENT_READ, client)
        try:
            while not self._stop.is_set():
                if self._hole.is_set():
                    time.sleep(0.05)
                    continue
                for key, _ in selector.select(timeout=0.2):
                    src, dst = key.fileobj, key.data
                    want = 65536 if src is client else self._allow(65536)
                    data = src.recv(want)
                    if not data:
                        return
                    dst.sendall(data)
                    if src is upstream:
                        with self._lock:
                            self.to_client += len(data)
        except OSError:
            return
        finally:
            selector.close()
            for sock in (client, upstream):
                sock.close()
