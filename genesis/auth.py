"""Credentials for secured brokers (SASL over TLS, as the public alert brokers run them).

``gs.open(url, auth=Auth("alice", "secret"))``, or no ``auth`` at all: then the
environment (``GENESIS_USERNAME`` / ``GENESIS_PASSWORD`` and optional
``GENESIS_MECHANISM``, ``GENESIS_CA``) is used when set.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ._urls import StreamSpec


@dataclass(frozen=True)
class Auth:
    """A SASL login. The password never appears in ``repr``, logs or error messages."""

    username: str
    password: str = field(repr=False)
    mechanism: str = "SCRAM-SHA-512"
    ssl: bool = True
    ca: str | None = None

    def librdkafka_config(self) -> dict[str, Any]:
        """The librdkafka properties for this login."""
        conf: dict[str, Any] = {
            "security.protocol": "SASL_SSL" if self.ssl else "SASL_PLAINTEXT",
            "sasl.mechanism": self.mechanism,
            "sasl.username": self.username,
            "sasl.password": self.password,
        }
        if self.ssl and self.ca:
            conf["ssl.ca.location"] = self.ca
        return conf


def lookup(spec: StreamSpec) -> Auth | None:
    """The credentials to use for ``spec`` when none were passed: the environment, if set."""
    user, password = os.environ.get("GENESIS_USERNAME"), os.environ.get("GENESIS_PASSWORD")
    if user and password:
        return Auth(user, password, mechanism=os.environ.get("GENESIS_MECHANISM", "SCRAM-SHA-512"),
                    ca=os.environ.get("GENESIS_CA"))
    return None
