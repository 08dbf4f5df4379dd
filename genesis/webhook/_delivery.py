"""POSTing bodies to one URL with bounded concurrency, retries with backoff, and an outcome per body.

Retried without limit by default (``max_retries`` caps it): 5xx, 408, 429 (after its ``Retry-After``),
timeouts, refused or reset connections and answers that are not HTTP. Any other status that is not
2xx is final: the body was *refused*. Between attempts the wait doubles from 0.1 s to at most 5 s,
with "equal jitter" (half the wait fixed, half random), so many senders retrying a server that came
back do not hit it in step.
"""

from __future__ import annotations

import email.utils
import queue
import random
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    import httpx

#: the first and the longest wait between attempts, in seconds
BACKOFF_FIRST = 0.1
BACKOFF_MAX = 5.0
#: a Retry-After longer than this is cut to it (a server asking for an hour is not waited for blindly)
RETRY_AFTER_MAX = 300.0
#: how much of a refusing server's answer is kept for the error message and the dead letter's headers
RESPONSE_KEPT = 1000

_RETRIED_STATUSES = frozenset({408, 429})


OK, REFUSED, GAVE_UP, ABANDONED = "ok", "refused", "gave up", "abandoned"


@dataclass(frozen=True)
class Outcome:
    """What became of one body (``result``): ``"ok"`` (a 2xx); ``"refused"`` (a final status, in
    ``status``/``response``); ``"gave up"`` after ``max_retries`` (``error`` says the last failure);
    ``"abandoned"`` when the delivery stopped first (not delivered, not refused: it is sent again next
    run). ``attempts`` counts every try."""

    token: Any
    result: str
    attempts: int
    status: int | None = None
    response: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.result == OK

    @property
    def reason(self) -> str:
        if self.result == REFUSED:
            return f"HTTP {self.status}: {self.response[:200]!r}" if self.response else f"HTTP {self.status}"
        return self.error


def backoff(attempt: int, rng: random.Random | None = None) -> float:
    """Seconds to wait before attempt ``attempt + 1`` (``attempt`` >= 1 failed tries so far)."""
    base = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (attempt - 1))
    return base / 2 + (rng or random).uniform(0, base / 2)


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delay-seconds or an HTTP date); None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(RETRY_AFTER_MAX, float(value))
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return min(RETRY_AFTER_MAX, max(0.0, when - (time.time() if now is None else now)))


def tls_verify(ca: str | None, insecure: bool) -> ssl.SSLContext | bool:
    """httpx's ``verify=``: the system's CAs, a CA file of your own (``ca``), or no check (``insecure``)."""
    if insecure:
        return False
    if ca is None:
        return True
    try:
        return ssl.create_default_context(cafile=ca)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot read the CA file {ca!r} for the webhook: {exc}") from None


def _proxy(url: str) -> str | None:
    """The proxy the environment names for ``url`` (``HTTPS_PROXY``, ``HTTP_PROXY``; ``NO_PROXY`` honoured):
    an explicit transport does not read them itself."""
    import urllib.parse
    import urllib.request

    parts = urllib.parse.urlsplit(url)
    if parts.hostname is None or urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)


class Delivery:
    """Sends bodies to ``url`` from ``concurrency`` threads; each finished body's :class:`Outcome` is put
    on :attr:`done`. At most ``concurrency`` bodies are in flight (waiting to retry counts)."""

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        concurrency: int = 16,
        timeout: float = 10.0,
        max_retries: int | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        if not isinstance(concurrency, int) or concurrency < 1:
            raise ConfigError(f"concurrency must be a positive whole number, not {concurrency!r}")
        if max_retries is not None and (not isinstance(max_retries, int) or max_retries < 0):
            raise ConfigError(f"max_retries must be a whole number >= 0 or None (no limit), not {max_retries!r}")
        if not timeout > 0:
            raise ConfigError(f"the request timeout must be positive, not {timeout!r}")
        self.url, self.concurrency, self.max_retries = url, concurrency, max_retries
        self.done: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
        self.retries = 0  # attempts after the first, over all bodies
        import httpx  # here, not at the top: every genesis command would pay for importing it

        self._httpx = httpx
        self._headers = {"Content-Type": "application/json", **(headers or {})}
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        # TCP_NODELAY: a request goes out as headers then body; with Nagle's algorithm the body would
        # wait for the server's delayed ACK of the headers (40 ms on Linux) on every request
        nodelay = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
        self._client: httpx.Client = httpx.Client(
            timeout=timeout,
            follow_redirects=True,
            transport=httpx.HTTPTransport(verify=verify, limits=limits, socket_options=nodelay, proxy=_proxy(url)),
        )
        self._slots = threading.BoundedSemaphore(concurrency)
        self._threads = ThreadPoolExecutor(concurrency, thread_name_prefix="genesis-webhook")
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._rng = random.Random()

    def send(self, token: Any, body: bytes, headers: Mapping[str, str]) -> None:
        """Queue one body (blocks while ``concurrency`` are in flight); its outcome comes on :attr:`done`."""
        self._slots.acquire()
        try:
            self._threads.submit(self._deliver, token, body, {**self._headers, **headers})
        except BaseException:
            self._slots.release()
            raise

    def wait_for_slot(self, timeout: float) -> bool:
        """True once a body could be sent without blocking (a slot is free), False after ``timeout``."""
        if self._slots.acquire(timeout=timeout):
            self._slots.release()
            return True
        return False

    def _deliver(self, token: Any, body: bytes, headers: dict[str, str]) -> None:
        try:
            self.done.put(self._attempts(token, body, headers))
        except BaseException as exc:  # never leave a body without an outcome
            self.done.put(Outcome(token, ABANDONED, 0, error=f"{type(exc).__name__}: {exc}"))
        finally:
            self._slots.release()

    def _attempts(self, token: Any, body: bytes, headers: dict[str, str]) -> Outcome:
        attempt = 0
        while True:
            attempt += 1
            wait: float | None = None
            try:
                answer = self._client.post(self.url, content=body, headers=headers)
            except self._httpx.TimeoutException as exc:
                error = f"no answer within the timeout ({type(exc).__name__})"
            except self._httpx.TransportError as exc:  # refused, reset, not HTTP
                error = f"{type(exc).__name__}: {exc}"
            else:
                status = answer.status_code
                if 200 <= status < 300:
                    return Outcome(token, OK, attempt, status)
                text = answer.text[:RESPONSE_KEPT]
                if status < 500 and status not in _RETRIED_STATUSES:
                    return Outcome(token, REFUSED, attempt, status, text)
                error = f"HTTP {status}: {text[:200]!r}" if text else f"HTTP {status}"
                wait = retry_after(answer.headers.get("Retry-After"))
            if self._stopping.is_set():
                return Outcome(token, ABANDONED, attempt, error=error)
            if self.max_retries is not None and attempt > self.max_retries:
                return Outcome(token, GAVE_UP, attempt, error=f"{error} (after {attempt} attempts)")
            with self._lock:
                self.retries += 1
                delay = backoff(attempt, self._rng)
            if self._stopping.wait(max(delay, wait or 0.0)):
                return Outcome(token, ABANDONED, attempt, error=f"stopped while retrying ({error})")

    def stop(self) -> None:
        """Make bodies being retried give up (their outcome says so) instead of trying again."""
        self._stopping.set()

    def close(self) -> None:
        """Stop retrying, wait for the requests in flight (each at most one timeout), close the connections."""
        self.stop()
        self._threads.shutdown(wait=True, cancel_futures=True)
        self._client.close()
