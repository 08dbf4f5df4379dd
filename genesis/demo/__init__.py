"""The demo of the streaming notebook: its topics, the alerts they hold, and a walk through its cells.

* :mod:`genesis.demo.data`: where the real alert packets are (``$GENESIS_ALERTS`` or ``../shared/data``)
  and the notebooks (``copy_notebooks``, ``genesis notebooks``);
* :mod:`genesis.demo.samples`: alerts derived from those real packets (new ids, every time shifted
  together), for the demo topics and the benchmarks;
* :mod:`genesis.demo.simulate`: schema-valid ZTF alerts, only where no real packets exist (it says so);
* :mod:`genesis.demo.topics`: the topics ``small``, ``medium`` and ``lsst`` (``genesis cluster up --demo``);
* :mod:`genesis.demo.walkthrough`: ``python -m genesis.demo``, the notebook's cells run unattended.

``genesis.samples`` and ``genesis.simulate`` are older names of the two modules above.
"""

from .data import alert_data_dir, copy_notebooks, notebook_dir, require_data_dir
from .topics import (
    LSST_RETENTION,
    PARTITIONS,
    create_demo_topics,
    demo_messages,
    load_demo_topic,
    load_messages,
    prepare_demo_sets,
    topic_size,
)
from .walkthrough import main, walkthrough

__all__ = [
    "alert_data_dir",
    "require_data_dir",
    "notebook_dir",
    "copy_notebooks",
    "LSST_RETENTION",
    "PARTITIONS",
    "create_demo_topics",
    "demo_messages",
    "load_demo_topic",
    "load_messages",
    "prepare_demo_sets",
    "topic_size",
    "main",
    "walkthrough",
]
