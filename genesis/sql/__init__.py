"""SQL over alert streams: push queries, watchlists, persistent queries into topics.

::

    import genesis.streaming as gs

    with gs.query("SELECT objectId, candidate.magpsf AS mag FROM 'kafka://localhost/ztf' "
                  "WHERE candidate.magpsf < 19", start_at="earliest") as q:
        for idx, row in q(until_eos=True):
            print(row)

The SQL is DuckDB's dialect, run by DuckDB over Arrow micro-batches of alerts (a batch closes at
1,000 alerts or 0.1 s); sqlglot reads which fields a query needs, so alerts are decoded only that
far. ``docs/query.md`` has the dialect with alert examples, the astronomy functions
(:mod:`genesis.sql.functions`), watchlists and persistent queries.
"""

from ._engine import TableSource
from ._parse import Plan, plan
from ._persistent import output_topic, persistent_query
from ._query import Query, query

__all__ = ["query", "Query", "persistent_query", "output_topic", "plan", "Plan", "TableSource"]
