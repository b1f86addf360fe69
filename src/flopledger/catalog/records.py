"""What the packaged YAML catalogs share: validated loading, lookup by id and matching by alias.

Each catalog (accelerators, model architectures) declares its rows as a pydantic model with an
``id`` and a ``to_record()`` giving its frozen record, and its records carry ``id`` and ``aliases``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from typing import Protocol, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from flopledger.errors import ConfigError, UnknownNameError

__all__ = ["Named", "Row", "get_record", "match_alias", "packaged_text", "parse_records"]


class Named(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def aliases(self) -> tuple[str, ...]: ...


R = TypeVar("R", bound=Named)
R_co = TypeVar("R_co", covariant=True)
F = TypeVar("F", bound=BaseModel)


class Row(Protocol[R_co]):
    """A validated catalog row: its id, and the frozen record it stands for."""

    @property
    def id(self) -> str: ...

    def to_record(self) -> R_co: ...


def packaged_text(file: str) -> str:
    """A data file shipped in ``flopledger.catalog``'s ``data`` folder."""
    return resources.files("flopledger.catalog").joinpath("data", file).read_text("utf-8")


def parse_records(
    text: str,
    file_model: type[F],
    rows: Callable[[F], Iterable[Row[R_co]]],
    *,
    catalog: str,
    kind: str,
    origin: str,
) -> dict[str, R_co]:
    """Validate YAML ``text`` with ``file_model`` and index the records of its ``rows`` by id.

    Raises :class:`ConfigError` naming ``origin``, the ``catalog`` and, for a repeated id, the ``kind``.
    """
    try:
        parsed = file_model.model_validate(yaml.safe_load(text))
    except (ValidationError, yaml.YAMLError) as exc:
        raise ConfigError(f"{origin}: invalid {catalog} catalog: {exc}") from exc
    records: dict[str, R_co] = {}
    for row in rows(parsed):
        if row.id in records:
            raise ConfigError(f"{origin}: duplicate {kind} id {row.id!r}")
        records[row.id] = row.to_record()
    return records


def get_record(records: Mapping[str, R], record_id: str, kind: str) -> R:
    """The record with this id; an unknown id raises an error suggesting the closest known ones."""
    try:
        return records[record_id]
    except KeyError:
        raise UnknownNameError(kind, record_id, list(records)) from None


def match_alias(records: Iterable[R], description: str) -> R | None:
    """The record whose id or alias is found in free text; the longest match wins."""
    text = description.lower()
    best: tuple[int, R] | None = None
    for record in records:
        for alias in (record.id, *record.aliases):
            if alias.lower() in text and (best is None or len(alias) > best[0]):
                best = (len(alias), record)
    return best[1] if best else None
