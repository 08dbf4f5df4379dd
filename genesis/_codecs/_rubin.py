"""Rubin's alert schemas, built in when Rubin's own package ``lsst-alert-packet`` is installed.

The package (the extra ``genesis-streaming[rubin]``; GPLv3, so not a dependency of our BSD
package) ships every schema 3.0-11.1 under ``lsst/alert/packet/schema/<major>/<minor>/``, a
sample packet per version (``sample_data/fakeAlert.avro``, an Avro container) and
``latest.txt``. Rubin registers schema X.Y under id ``X*100 + Y`` (DMTN-210; 11.1 is 1101), so a
Confluent wire-format message names its version by its id. genesis finds the package's files
without importing it (its ``__init__`` pulls in numpy, requests and lsst-resources).

* :class:`RubinSchemas`: a schema source (like a directory) over the package's schemas, which
  the :class:`~genesis._codecs.Decoder` uses when neither ``schemas=`` nor ``schema_registry=``
  is given;
* :func:`versions`, :func:`latest`, :func:`schema_id`, :func:`version_of`, :func:`load`,
  :func:`sample`: what the package holds;
* :func:`convert`: a real alert of one version as an alert of another (``genesis inject``).
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import re
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import load_schema

from genesis.errors import ConfigError, DecodeError

from ._avro import fit
from ._schemas import SchemaDirectory

#: what users install to get Rubin's schemas, and the package that brings them
EXTRA = "genesis-streaming[rubin]"
PACKAGE = "lsst-alert-packet"
#: Rubin's public, read-only schema registry (DMTN-210), for schemas newer than the package
REGISTRY = "https://rubin-alert-schemas.slac.stanford.edu/schema-registry/"
_VERSION = re.compile(r"(\d+)\.(\d+)")


@functools.cache
def schema_root() -> Path | None:
    """``lsst/alert/packet/schema`` of the installed package, or ``None`` without it."""
    try:
        spec = importlib.util.find_spec("lsst.alert.packet")
    except (ImportError, ValueError):  # lsst installed without the alert package, or a broken install
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations))) / "schema"
    return root if (root / "latest.txt").is_file() else None


def available() -> bool:
    """Whether Rubin's schemas are installed (``pip install 'genesis-streaming[rubin]'``)."""
    return schema_root() is not None


def package_version() -> str:
    """The installed ``lsst-alert-packet`` version ("not installed" without it)."""
    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _root() -> Path:
    root = schema_root()
    if root is None:
        raise ConfigError(f"Rubin's alert schemas come with {PACKAGE}: pip install '{EXTRA}'")
    return root


def schema_id(version: str) -> int:
    """Rubin's registry id of schema ``version`` ("11.1" -> 1101)."""
    match = _VERSION.fullmatch(version.strip())
    if not match or int(match[2]) >= 100:
        raise ConfigError(f"{version!r} is not a Rubin schema version like 11.1")
    return int(match[1]) * 100 + int(match[2])


def version_of(schema_id: int) -> str:
    """The Rubin schema version an id stands for (1101 -> "11.1")."""
    major, minor = divmod(schema_id, 100)
    return f"{major}.{minor}"


@functools.cache
def versions() -> tuple[str, ...]:
    """Every schema version the installed package ships, oldest first."""
    return tuple(version_of(i) for i in RubinSchemas().ids())


def latest() -> str:
    """The package's newest schema version (its ``latest.txt``)."""
    return (_root() / "latest.txt").read_text().strip()


def check_version(version: str | None) -> str:
    """``version`` (default: the newest), checked against what the package ships."""
    if version is None:
        return latest()
    if version not in versions():
        raise ConfigError(
            f"Rubin schema {version} is not among the schemas of {PACKAGE} {package_version()} "
            f"({', '.join(versions())}); choose one of them, or upgrade {PACKAGE} for newer ones"
        )
    return version


def _directory(version: str) -> Path:
    major, minor = version.split(".")
    return _root() / major / minor


@functools.cache
def _load(version: str) -> dict[str, Any]:
    major, minor = check_version(version).split(".")
    return load_schema(str(_directory(version) / f"lsst.v{major}_{minor}.alert.avsc"), _write_hint=False)  # type: ignore[return-value]


def load(version: str) -> dict[str, Any]:
    """Rubin's alert schema ``version`` as JSON-ready data, every named type inlined (to encode with)."""
    return _load(version)


@functools.cache
def _sample(version: str) -> dict[str, Any]:
    with (_directory(check_version(version)) / "sample_data" / "fakeAlert.avro").open("rb") as f:
        return next(iter(fastavro.reader(f)))  # type: ignore[arg-type]  # records: dicts


def sample(version: str) -> dict[str, Any]:
    """The package's sample packet of schema ``version`` (synthetic, without cutouts), as a record."""
    return _sample(version)


def convert(record: dict[str, Any], version: str) -> dict[str, Any]:
    """A Rubin alert of any version as one of schema ``version``.

    Every field both versions have keeps its value (nested records and history rows alike); a
    field new in ``version``, or one whose value no longer fits (a field that became required), is
    taken from the package's sample packet of that version. Raises :class:`ConfigError` if the
    result does not validate.
    """
    schema = fastavro.parse_schema(load(version))
    converted = fit(record, schema, sample(version))
    try:
        fastavro.validation.validate(converted, schema, raise_errors=True)
    except Exception as exc:
        raise ConfigError(f"the alert does not convert to Rubin schema {version}: {exc}") from exc
    return converted


def missing_extra(schema_id: int) -> DecodeError:
    """The error for a wire-format message when no schema source is given and the package is absent."""
    return DecodeError(
        f"the message is in the Confluent wire format with schema id {schema_id} (read as Rubin's: schema "
        f"{version_of(schema_id)}), but Rubin's schemas are not installed: pip install '{EXTRA}', or pass "
        f"schemas= (a directory of .avsc files) or schema_registry= (e.g. Rubin's, {REGISTRY})"
    )


class RubinSchemas(SchemaDirectory):
    """Rubin's schemas by id (``major*100 + minor``) from the installed ``lsst-alert-packet``."""

    def __init__(self) -> None:
        super().__init__(_root())

    def _index(self) -> dict[int, Path]:
        files: dict[int, Path] = {}
        for folder in sorted(p for p in self.path.glob("*/*") if p.is_dir()):
            major, minor = folder.parent.name, folder.name
            file = folder / f"lsst.v{major}_{minor}.alert.avsc"
            if major.isdigit() and minor.isdigit() and file.is_file():
                files[int(major) * 100 + int(minor)] = file
        return files

    def where(self, schema_id: int) -> str:
        """How the id was read, for decode errors."""
        return f"read as Rubin's schema {version_of(schema_id)} from {PACKAGE} {package_version()}"

    def not_found(self, schema_id: int) -> str:
        """Why an id is not among the package's schemas, and what to do."""
        return (
            f"schema id {schema_id}, read as Rubin's schema {version_of(schema_id)}, is not among the schemas of "
            f"{PACKAGE} {package_version()} ({', '.join(version_of(i) for i in self.ids())}): upgrade {PACKAGE}, "
            f"or pass schema_registry= (Rubin's is {REGISTRY}) or schemas= (a directory of .avsc files)"
        )

    def __repr__(self) -> str:
        return f"RubinSchemas({PACKAGE} {package_version()})"

    def __reduce__(self) -> tuple[Any, ...]:
        return RubinSchemas, ()


__all__ = [
    "EXTRA",
    "REGISTRY",
    "RubinSchemas",
    "available",
    "check_version",
    "convert",
    "latest",
    "load",
    "missing_extra",
    "package_version",
    "sample",
    "schema_id",
    "version_of",
    "versions",
]
