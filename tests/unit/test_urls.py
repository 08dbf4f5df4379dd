import pytest

from genesis._urls import parse_url
from genesis.errors import ConfigError, URLError


def test_notebook_urls():
    s = parse_url("kafka://genesis.alerts.wtf/small")
    assert s.brokers == ("genesis.alerts.wtf:9092",) and s.topics == ("small",) and s.group is None
    s = parse_url("kafka://AB12CD34@localhost/small")
    assert s.group == "AB12CD34" and s.bootstrap_servers == "localhost:9092"


def test_several_brokers_topics_ports_and_ipv6():
    s = parse_url("kafka://g.1@h1:9093,h2,[::1]:19092/ztf_a,ztf-b")
    assert s.brokers == ("h1:9093", "h2:9092", "[::1]:19092")
    assert s.hosts == ("h1", "h2", "::1")
    assert s.topics == ("ztf_a", "ztf-b")
    assert s.url() == "kafka://g.1@h1:9093,h2:9092,[::1]:19092/ztf_a,ztf-b"


def test_regex_topic():
    assert parse_url("kafka://localhost/^ztf_.*").topics == ("^ztf_.*",)
    with pytest.raises(URLError, match="regular expression"):
        parse_url("kafka://localhost/^ztf_(")


def test_file_url():
    s = parse_url("file:///data/alerts.tar.gz")
    assert s.scheme == "file" and s.path == "/data/alerts.tar.gz"
    with pytest.raises(URLError, match="absolute"):
        parse_url("file://relative/x")


@pytest.mark.parametrize(
    "url, why",
    [
        ("localhost/small", "no scheme"),
        ("http://localhost/small", "scheme"),
        ("kafka://localhost", "no topic"),
        ("kafka://localhost/", "no topic"),
        ("kafka://localhost/a/b", "only one '/'"),
        ("kafka://@localhost/a", "group id"),
        ("kafka://g@/a", "no broker host"),
        ("kafka://local host/a", "host"),
        ("kafka://localhost:99999/a", "out of range"),
        ("kafka://localhost:x/a", "host"),
        ("kafka://localhost/bad topic", "valid topic"),
    ],
)
def test_bad_urls_say_what_is_wrong_and_show_the_form(url, why):
    with pytest.raises(URLError, match=why) as info:
        parse_url(url)
    assert "kafka://[group@]host[:port]" in str(info.value) or "file://" in str(info.value)
    assert isinstance(info.value, ConfigError)


def test_not_a_string():
    with pytest.raises(URLError):
        parse_url(None)
