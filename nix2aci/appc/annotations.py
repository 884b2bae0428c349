"""Annotations: free-form image metadata, some with well-known meanings (spec/aci.md)."""

from __future__ import annotations

import datetime
import re
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import attrs

from ..errors import SpecError
from ..schema import unique

_RFC3339 = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:Z|[+-](\d{2}):(\d{2}))", re.ASCII)


@attrs.frozen
class Annotation:
    """An annotation: ``name`` (an AC Identifier) and a string ``value``."""

    name: str
    value: str

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Annotation:
        """The annotation of a schema-valid JSON object."""
        return cls(obj["name"], obj["value"])

    def to_json(self) -> dict[str, Any]:
        """The annotation as a JSON object."""
        return {"name": self.name, "value": self.value}


def is_timestamp(value: str) -> bool:
    """Whether ``value`` is an RFC 3339 date-time with ``T`` between date and time (spec/types.md)."""
    match = _RFC3339.fullmatch(value)
    if not match:
        return False
    year, month, day, hour, minute, second, offset_hour, offset_minute = (int(part or 0) for part in match.groups())
    try:
        datetime.date(year, month, day)
    except ValueError:
        return False
    # RFC 3339 allows a leap second (60).
    return hour < 24 and minute < 60 and second <= 60 and offset_hour < 24 and offset_minute < 60


def is_http_url(value: str) -> bool:
    """Whether ``value`` is an http or https URL with a host."""
    try:
        url = urllib.parse.urlsplit(value)
    except ValueError:
        return False
    return url.scheme in ("http", "https") and bool(url.hostname)


# Well-known annotation name -> (check of its value, what the check allows).
WELL_KNOWN: Mapping[str, tuple[Callable[[str], bool], str]] = {
    "created": (is_timestamp, "an RFC 3339 date-time with a T between date and time (e.g. 2024-01-02T03:04:05Z)"),
    "homepage": (is_http_url, "an http or https URL"),
    "documentation": (is_http_url, "an http or https URL"),
    "appc.io/executor/supports-systemd-notify": (lambda value: value in ("true", "false"), '"true" or "false"'),
}


def annotation_problems(annotations: Sequence[Annotation]) -> Iterator[SpecError]:
    """The rules ``annotations`` break; fields are relative to the list (``[0].value``)."""
    yield from unique((annotation.name for annotation in annotations), "[{}].name")
    for index, annotation in enumerate(annotations):
        if annotation.name not in WELL_KNOWN:
            continue
        check, allowed = WELL_KNOWN[annotation.name]
        if not check(annotation.value):
            yield SpecError(f"[{index}].value", f"must be {allowed}; got {annotation.value!r}")
