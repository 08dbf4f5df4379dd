"""genesis.serverless without Kafka: the deploy recipe parses, and bad events say what they are."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from genesis import errors
from genesis.serverless import lambda_handler, records_of

TEMPLATE = Path(__file__).resolve().parents[2] / "docs" / "serverless" / "template.yaml"


def test_the_sam_template_is_yaml_with_a_self_managed_kafka_event_source_and_the_layer() -> None:
    doc = yaml.safe_load(TEMPLATE.read_text())
    function = doc["Resources"]["AlertFunction"]["Properties"]
    assert doc["Transform"] == "AWS::Serverless-2016-10-31"
    assert function["Handler"] == "handler.handler" and function["Layers"] == [{"Ref": "GenesisLayer"}]
    source = function["Events"]["Alerts"]
    assert source["Type"] == "SelfManagedKafka"
    assert {"KafkaBootstrapServers", "Topics", "StartingPosition", "SourceAccessConfigurations"} <= set(
        source["Properties"]
    )


def test_records_keep_partition_then_offset_order_and_keys_may_be_absent_or_null() -> None:
    value = base64.b64encode(b"{}").decode()
    event = {
        "eventSource": "SelfManagedKafka",
        "records": {
            "t-1": [
                {"topic": "t", "partition": 1, "offset": 7, "value": value, "key": None, "headers": []},
                {"topic": "t", "partition": 1, "offset": 5, "value": value, "headers": [{"h": [104, 105]}]},
            ],
        },
    }
    metas = records_of(event)
    assert [(m.partition, m.offset) for m in metas] == [(1, 5), (1, 7)]
    assert metas[0].headers == (("h", b"hi"),) and metas[0].key is None and metas[1].key is None


def test_what_is_not_a_kafka_event_or_not_a_function_is_a_config_error() -> None:
    with pytest.raises(errors.ConfigError, match="not a Kafka event of Lambda"):
        records_of({"Records": []})
    with pytest.raises(errors.ConfigError, match="lacks its topic, partition or offset"):
        records_of({"records": {"t-0": [{"value": ""}]}})
    with pytest.raises(errors.ConfigError, match="needs the function"):
        lambda_handler("notify")  # type: ignore[arg-type]
    with pytest.raises(errors.ConfigError, match="needs quarantine="):
        lambda_handler(print, "quarantine")
