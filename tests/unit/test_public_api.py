"""The public surface, pinned: what ``genesis`` and ``genesis.streaming`` export (as httpx pins its ``__all__``).

A name added to or removed from the public API must change this test too, on purpose.
"""

from __future__ import annotations

import genesis
import genesis.streaming as gs

GENESIS = {
    "open",
    "Pool",
    "Filter",
    "dedup",
    "Stream",
    "Writer",
    "Metadata",
    "Stats",
    "Processed",
    "pipe",
    "Pipe",
    "query",
    "persistent_query",
    "Auth",
    "Decoder",
    "decode_file",
    "errors",
    "__version__",
}
STREAMING = {
    "open",
    "Pool",
    "Filter",
    "dedup",
    "Stream",
    "Writer",
    "Metadata",
    "Stats",
    "Processed",
    "pipe",
    "Pipe",
    "query",
    "persistent_query",
    "StreamSpec",
    "parse_url",
    "errors",
}


def test_genesis_exports() -> None:
    assert set(genesis.__all__) == GENESIS
    assert len(genesis.__all__) == len(GENESIS)  # no name listed twice
    for name in genesis.__all__:
        assert hasattr(genesis, name), name


def test_streaming_exports() -> None:
    assert set(gs.__all__) == STREAMING and len(gs.__all__) == len(STREAMING)
    for name in gs.__all__:
        assert hasattr(gs, name), name


def test_the_two_surfaces_are_the_same_objects() -> None:
    for name in set(genesis.__all__) & set(gs.__all__):
        assert getattr(genesis, name) is getattr(gs, name), name


def test_public_classes_name_their_public_home() -> None:
    """reprs, tracebacks and ``help()`` name ``genesis.Stream``, not the private module it is defined in."""
    for name in ("Stream", "Writer", "Metadata", "Stats", "Pool", "Filter", "Decoder"):
        assert getattr(genesis, name).__module__ == "genesis", name


def test_older_spellings_still_work(data_dir) -> None:
    import genesis.samples
    import genesis.simulate
    from genesis.demo import samples, simulate
    from genesis.inject import MessagePool, Payloads

    assert genesis.samples is samples and genesis.simulate is simulate
    assert MessagePool is Payloads
    archive = f"file://{data_dir}/ztf/raw/fink-client"
    for spelling in ({"on_decode_error": "skip"}, {"errors": "skip"}):  # errors=: the older spelling
        with gs.open(archive, **spelling) as stream:
            assert sum(1 for _ in stream()) > 0
            assert stream.stats.lag == stream.lag() == {}  # stats.lag: the older spelling of stream.lag()


def test_the_webhook_package_exports() -> None:
    """genesis.webhook (gs.pipe to an http(s):// URL): its own surface, and WebhookError in the one tree."""
    import genesis.webhook as webhook

    assert set(webhook.__all__) == {
        "WebhookPipe",
        "WebhookStats",
        "FORMATS",
        "COMMIT_EVERY",
        "COMMIT_SECONDS",
        "idempotency_key",
        "backoff",
        "retry_after",
    }
    assert issubclass(genesis.errors.WebhookError, genesis.errors.DeliveryError)
    assert "WebhookError" in genesis.errors.__all__ and "QueryError" in genesis.errors.__all__
