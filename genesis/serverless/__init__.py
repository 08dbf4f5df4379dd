"""Alerts to functions that run without a loop to babysit: AWS Lambda's Kafka event sources.

::

    # handler.py, deployed with genesis' wheel in a layer (docs/serverless.md: an AWS SAM template)
    from genesis.serverless import lambda_handler

    def notify(alert):
        if alert["candidate"]["magpsf"] < 16:
            print("bright:", alert["objectId"])

    handler = lambda_handler(notify)           # Handler: handler.handler

Lambda's self-managed Apache Kafka and Amazon MSK event sources poll the topic and invoke the
function with a batch of records; :func:`lambda_handler` decodes each into the dicts ``gs.open``
yields and calls the function for every alert.
"""

from ._lambda import lambda_handler, records_of

__all__ = ["lambda_handler", "records_of"]
