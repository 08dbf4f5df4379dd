"""genesis: receive, filter and act on real-time astronomical alert streams over Apache Kafka.

The public surface::

    import genesis.streaming as gs            # gs.open, gs.Pool, gs.dedup (the notebook's API)
    from genesis import Decoder, decode_file  # alert packets without Kafka
    from genesis import errors                # the exception hierarchy
    from genesis.cluster import LocalCluster  # a real local Kafka cluster

Everything else public lives in its own module: ``genesis.alerts`` (light curves, cutouts),
``genesis.filters``, ``genesis.inject``, ``genesis.scaleout``, ``genesis.doctor``,
``genesis.auth``, ``genesis.demo``. Modules and names starting with ``_`` are private.
"""

from . import errors
from ._codecs import Decoder, decode_file
from .auth import Auth
from .streaming import (
    Filter,
    Metadata,
    Pipe,
    Pool,
    Processed,
    Stats,
    Stream,
    Writer,
    dedup,
    open,
    persistent_query,
    pipe,
    query,
)

__version__ = "0.1.0"

__all__ = [
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
]

# reprs, tracebacks and help() name the public home of these, not the private module defining them
for _public in (Stream, Writer, Metadata, Stats, Processed, Pool, Filter, Pipe, Decoder, decode_file):
    _public.__module__ = __name__
del _public
