"""Where Avro schemas come from when a message names one by id: a directory or a registry.

Rubin/LSST messages use the Confluent wire format (magic byte 0, 4-byte schema id),
so the decoder needs a source that maps ids to schemas:

* :class:`SchemaDirectory`: ``.avsc`` files on disk, in lsst/alert_packet's layout
  (``9.0/lsst.v9_0.alert.avsc`` is id 900, Rubin's major*100+minor convention) or
  named ``<id>.avsc``;
* :class:`SchemaRegistry`: a Confluent-compatible schema registry over HTTP(S).

Both parse a schema once and keep it; both pickle as their configuration only, so
they travel to multiprocessing workers cheaply.
"""

from __future__ import annotations

import base64
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import load_schema

from genesis.errors import ConfigError

#: lsst/alert_packet's alert schema file, e.g. ``lsst.v11_0.alert.avsc`` (id 1100).
_LSST_ALERT = re.compile(r"lsst\.v(\d+)_(\d+)\.alert\.avsc")
#: A schema file named after its id, e.g. ``1101.avsc``.
_BY_ID = re.compile(r"(\d+)\.avsc")
_REGISTRY_JSON = "application/vnd.schemaregistry.v1+json"


class SchemaDirectory:
    """Avro schemas by id from a directory of ``.avsc`` files.

    Recognised, in ``path`` itself and in its immediate subdirectories:
    ``lsst.v<major>_<minor>.alert.avsc`` (id ``major*100+minor``, or the file's
    ``"confluent:version"``; named types live in sibling files) and ``<id>.avsc``.
    So both ``lsst/schema`` (all versions) and ``lsst/schema/9.0`` (one) work.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        if not self.path.is_dir():
            raise ConfigError(f"schema directory {self.path} does not exist or is not a directory")
        self._files = self._index()
        self._parsed: dict[int, Any] = {}

    def _index(self) -> dict[int, Path]:
        files: dict[int, Path] = {}
        for folder in (self.path, *sorted(p for p in self.path.iterdir() if p.is_dir())):
            for file in sorted(folder.glob("*.avsc")):
                if match := _LSST_ALERT.fullmatch(file.name):
                    files[_declared_id(file) or int(match[1]) * 100 + int(match[2])] = file
                elif match := _BY_ID.fullmatch(file.name):
                    files[int(match[1])] = file
        return files

    def ids(self) -> list[int]:
        """The schema ids this directory holds, ascending."""
        return sorted(self._files)

    def file(self, schema_id: int) -> Path | None:
        """The ``.avsc`` file of ``schema_id`` (``None`` when absent)."""
        return self._files.get(schema_id)

    def get(self, schema_id: int) -> Any | None:
        """The parsed schema with id ``schema_id``, ready for fastavro; ``None`` when absent."""
        schema = self._parsed.get(schema_id)
        if schema is None and schema_id in self._files:
            schema = self._parsed[schema_id] = fastavro.parse_schema(self.schema(schema_id) or {})
        return schema

    def schema(self, schema_id: int) -> Any:
        """The schema as plain JSON-ready data with every named type inlined (to register or embed)."""
        file = self._files.get(schema_id)
        if file is None:
            return None
        try:
            return load_schema(str(file), _write_hint=False)
        except Exception as exc:
            raise ConfigError(
                f"{file} is not a valid Avro schema (or a type it names is missing from {file.parent}): {exc}"
            ) from exc

    def __contains__(self, schema_id: object) -> bool:
        return schema_id in self._files

    def __repr__(self) -> str:
        return f"SchemaDirectory({str(self.path)!r})"

    def __reduce__(self) -> tuple[Any, ...]:  # pickled as its configuration; the parse cache is rebuilt
        return SchemaDirectory, (self.path,)


def _declared_id(file: Path) -> int | None:
    try:
        doc = json.loads(file.read_bytes())
    except (OSError, ValueError):
        return None  # reported when the schema is actually loaded
    version = doc.get("confluent:version") if isinstance(doc, dict) else None
    return version if isinstance(version, int) else None


class SchemaRegistry:
    """A client of a Confluent-compatible schema registry, on plain ``urllib``.

    ``url`` may carry ``user:password@`` for HTTP basic authentication. Schemas are
    fetched once per id (ids are immutable in a registry) and kept. Failures to reach
    the registry raise :class:`ConfigError` naming the URL.
    """

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"schema registry URL {url!r} must look like https://host[:port][/path]")
        self._auth = None
        if parts.username is not None:
            user = urllib.parse.unquote(parts.username)
            password = urllib.parse.unquote(parts.password or "")
            self._auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
            netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
            parts = parts._replace(netloc=netloc)
        self.url = urllib.parse.urlunsplit(parts).rstrip("/")
        self.timeout = timeout
        self._given_url = url
        self._parsed: dict[int, Any] = {}

    def get(self, schema_id: int) -> Any | None:
        """The parsed schema with id ``schema_id``; ``None`` when the registry does not know it."""
        schema = self._parsed.get(schema_id)
        if schema is None:
            doc = self._request("GET", f"/schemas/ids/{schema_id}")
            if doc is None:
                return None
            named: dict[str, Any] = {}
            schema = self._parsed[schema_id] = self._parse(doc, named, f"schema id {schema_id}")
        return schema

    def register(self, subject: str, schema: str | Mapping[str, Any]) -> int:
        """Register ``schema`` (JSON text or dict) under ``subject``; return its id.

        Registering a schema the subject already has returns the existing id.
        """
        if not isinstance(schema, str):  # drop fastavro's parse markers, if any
            schema = {k: v for k, v in schema.items() if k not in ("__fastavro_parsed", "__named_schemas")}
        text = schema if isinstance(schema, str) else json.dumps(schema)
        path = f"/subjects/{urllib.parse.quote(subject, safe='')}/versions"
        doc = self._request("POST", path, {"schema": text})
        if doc is None or not isinstance(doc.get("id"), int):
            raise ConfigError(f"the schema registry at {self.url} did not return an id for subject {subject!r}: {doc}")
        return doc["id"]

    def _parse(self, doc: dict, named: dict[str, Any], what: str) -> Any:
        kind = doc.get("schemaType", "AVRO")
        if kind != "AVRO":
            raise ConfigError(f"{what} in the registry at {self.url} is a {kind} schema; genesis decodes Avro only")
        for ref in doc.get("references") or ():  # named types registered under other subjects
            subject = urllib.parse.quote(str(ref.get("subject")), safe="")
            sub = self._request("GET", f"/subjects/{subject}/versions/{ref.get('version')}")
            if sub is None:
                raise ConfigError(
                    f"{what} in the registry at {self.url} references "
                    f"{ref.get('subject')} version {ref.get('version')}, which is missing"
                )
            self._parse(sub, named, f"{what} (reference {ref.get('name')})")
        try:
            return fastavro.parse_schema(json.loads(doc["schema"]), named)
        except Exception as exc:
            raise ConfigError(f"{what} from the registry at {self.url} is not a valid Avro schema: {exc}") from exc

    def _request(self, method: str, path: str, body: dict | None = None) -> dict | None:
        """One JSON request; ``None`` on 404, :class:`ConfigError` on any other failure."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Accept", _REGISTRY_JSON)
        if data is not None:
            request.add_header("Content-Type", _REGISTRY_JSON)
        if self._auth:
            request.add_header("Authorization", self._auth)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            detail = _error_detail(exc)
            if exc.code in (401, 403):
                raise ConfigError(
                    f"the schema registry at {self.url} refused the request "
                    f"({exc.code}): check the user:password in the URL. {detail}"
                ) from exc
            raise ConfigError(
                f"the schema registry at {self.url} answered {method} {path} with HTTP {exc.code}: {detail}"
            ) from exc
        except (urllib.error.URLError, OSError) as exc:  # refused, DNS, TLS, timeout
            reason = getattr(exc, "reason", exc)
            raise ConfigError(
                f"the schema registry at {self.url} is unreachable ({reason}); "
                "check schema_registry= and that the registry is running"
            ) from exc
        except ValueError as exc:
            raise ConfigError(
                f"the schema registry at {self.url} sent a response that is not JSON for {method} {path}"
            ) from exc

    def __repr__(self) -> str:
        return f"SchemaRegistry({self.url!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return _registry, (self._given_url, self.timeout)


def _registry(url: str, timeout: float) -> SchemaRegistry:
    """Unpickle a :class:`SchemaRegistry` (its timeout is keyword-only)."""
    return SchemaRegistry(url, timeout=timeout)


def _error_detail(exc: urllib.error.HTTPError) -> str:
    try:
        doc = json.loads(exc.read())
        return str(doc.get("message", doc))
    except Exception:
        return exc.reason or ""


class SchemaMap:
    """Schemas by id given in memory, ``{id: schema}`` (JSON text or dict); parsed on first use."""

    def __init__(self, schemas: Mapping[int, Any]) -> None:
        self._schemas = dict(schemas)
        self._parsed: dict[int, Any] = {}

    def get(self, schema_id: int) -> Any | None:
        schema = self._parsed.get(schema_id)
        if schema is None and schema_id in self._schemas:
            raw = self._schemas[schema_id]
            try:
                schema = fastavro.parse_schema(json.loads(raw) if isinstance(raw, (str, bytes)) else raw)
            except Exception as exc:
                raise ConfigError(f"the schema given for id {schema_id} is not valid Avro: {exc}") from exc
            self._parsed[schema_id] = schema
        return schema

    def __repr__(self) -> str:
        return f"SchemaMap(ids={sorted(self._schemas)})"

    def __reduce__(self) -> tuple[Any, ...]:
        return SchemaMap, (self._schemas,)
