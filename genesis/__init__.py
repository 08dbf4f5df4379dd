"""genesis: receive, filter and act on real-time astronomical alert streams over Apache Kafka.

The public surface::

    import genesis.streaming as gs          # gs.open, gs.Pool (the notebook's API)
    from genesis import errors              # the exception hierarchy
    from genesis.cluster import LocalCluster  # a real local Kafka cluster
"""

from . import errors
from .auth import Auth
from .streaming import Metadata, Pool, Stats, Stream, Writer, dedup, open

__version__ = "0.1.0"

__all__ = ["open", "Pool", "dedup", "Stream", "Writer", "Metadata", "Stats", "Auth", "errors", "__version__"]
