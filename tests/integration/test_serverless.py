"""genesis.serverless.lambda_handler over events in AWS Lambda's documented Kafka format, built from
the messages of the local cluster (ZTF containers from ``small``, Rubin wire-format alerts written to
a topic of the test's): the alerts the function gets are the ones gs.open yields."""

from __future__ import annotations

import base64
import uuid

import pytest
from helpers import read_topic, same

import genesis.streaming as gs
from genesis import errors
from genesis._codecs import encode_wire
from genesis.samples import real_lsst_alerts
from genesis.serverless import lambda_handler, records_of

pytestmark = pytest.mark.integration


def event_of(messages, source: str = "SelfManagedKafka", *, drop_keys: bool = False) -> dict:
    """A Lambda Kafka event holding ``messages`` (confluent-kafka Messages), as AWS documents it:
    records grouped by "topic-partition", key and value base64, headers as lists of byte values."""
    records: dict[str, list[dict]] = {}
    for i, m in enumerate(messages):
        record = {
            "topic": m.topic(),
            "partition": m.partition(),
            "offset": m.offset(),
            "timestamp": m.timestamp()[1],
            "timestampType": "CREATE_TIME",
            "value": base64.b64encode(m.value()).decode(),
            "headers": [{k: list(v)} for k, v in (m.headers() or [])],
        }
        if m.key() is not None and not drop_keys:
            record["key"] = base64.b64encode(m.key()).decode()
        elif i % 2:
            record["key"] = None  # absent or null: both happen
        records.setdefault(f"{m.topic()}-{m.partition()}", []).append(record)
    return {"eventSource": source, "bootstrapServers": "b-1:9092", "records": records}


def test_every_alert_of_small_reaches_the_function_as_gs_open_yields_it(demo):
    with gs.open(demo.url("small"), start_at="earliest") as stream:
        expected = {a["candid"]: a for _, a in stream(until_eos=True)}
    messages = read_topic(demo.bootstrap_servers, "small", settle=0.5)
    got, metas = [], []
    handler = lambda_handler(lambda alert, meta: (got.append(alert), metas.append(meta)), metadata=True)
    for source in ("SelfManagedKafka", "aws:kafka"):  # the MSK event has the same records
        got.clear()
        counts = handler(event_of(messages, source, drop_keys=True), None)
        assert counts == {"records": len(messages), "alerts": len(expected), "skipped": 0}
        assert sorted(a["candid"] for a in got) == sorted(expected)
        assert all(same(a, expected[a["candid"]]) for a in got)
    partitions = [m.partition for m in metas[-len(got) :]]
    runs = [p for i, p in enumerate(partitions) if i == 0 or partitions[i - 1] != p]
    assert len(runs) == len(set(runs))  # partition by partition, as the event lists them
    for p in set(partitions):
        offsets = [m.offset for m in metas[-len(got) :] if m.partition == p]
        assert offsets == sorted(offsets)  # each in offset order
    assert all(m.value is not None and m.timestamp is not None for m in metas)


@pytest.fixture
def rubin_topic(cluster, data_dir):
    """Rubin alerts in the Confluent wire format, written to a topic of the test's."""
    name = "lambda-rubin-" + uuid.uuid4().hex[:8]
    cluster.create_topic(name, partitions=2)
    every = real_lsst_alerts(data_dir)
    found = [a for a in every if a.schema == every[0].schema][:6]  # one schema: the id 1 of the test
    with gs.open(cluster.url(name), "w") as writer:
        for a in found:
            writer.write(encode_wire(a.record, a.schema, 1), key=str(a.record["diaSourceId"]).encode())
    yield name, found
    cluster.delete_topic(name)


def test_rubin_wire_format_with_schemas_and_a_failing_function_fails_the_invocation(cluster, rubin_topic, tmp_path):
    import json

    name, found = rubin_topic
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    (schemas / "1.avsc").write_text(json.dumps(found[0].schema))
    event = event_of(read_topic(cluster.bootstrap_servers, name, settle=0.5))
    got = []
    counts = lambda_handler(got.append, schemas=str(schemas))(event, None)
    assert counts["alerts"] == len(found) == len(got)
    assert sorted(a["diaSourceId"] for a in got) == sorted(a.record["diaSourceId"] for a in found)
    assert all(m.key is not None for m in records_of(event))

    def boom(alert):
        raise ValueError("no such field")

    with pytest.raises(
        errors.FilterError, match=r"raised ValueError: no such field on alert 0 of the record at"
    ) as err:
        lambda_handler(boom, schemas=str(schemas))(event, None)
    assert isinstance(err.value.__cause__, ValueError) and "Lambda retries the batch" in str(err.value)


def test_a_corrupt_record_fails_or_is_skipped_or_quarantined_as_chosen(demo, tmp_path):
    messages = read_topic(demo.bootstrap_servers, "small", settle=0.5)[:5]
    event = event_of(messages)
    first = next(iter(event["records"].values()))
    first[0]["value"] = base64.b64encode(b"\x00not an alert").decode()
    first[-1]["value"] = "%%% not base64"
    with pytest.raises(errors.DecodeError, match="cannot decode the message at"):
        lambda_handler(lambda a: None)(event, None)
    assert lambda_handler(lambda a: None, "skip")(event, None)["skipped"] == (2 if len(first) > 1 else 1)
    box = tmp_path / "quarantine"
    counts = lambda_handler(lambda a: None, "quarantine", quarantine=str(box))(event, None)
    assert counts["skipped"] == len(list(box.glob("*.json"))) > 0
    with pytest.raises(errors.ConfigError, match="not a Kafka event of Lambda"):
        lambda_handler(print)({"Records": [{"s3": {}}]}, None)
