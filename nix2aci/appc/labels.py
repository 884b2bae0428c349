"""Labels: the image's (and a dependency's) name/value pairs used for discovery (spec/aci.md).

The schema checks each label; this module checks the list: unique names, and the
well-known ``os``/``arch`` pair against appc's ``types.ValidOSArch`` table.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import attrs

from ..errors import SpecError
from ..schema import load_json, unique

# os -> its arch values; the Nix side reads the same file.
VALID_OS_ARCH: Mapping[str, Sequence[str]] = load_json(__package__, "os-arch.json")


@attrs.frozen
class Label:
    """A label: ``name`` (an AC Identifier other than ``name``) and a string ``value``."""

    name: str
    value: str

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Label:
        """The label of a schema-valid JSON object."""
        return cls(obj["name"], obj["value"])

    def to_json(self) -> dict[str, Any]:
        """The label as a JSON object."""
        return {"name": self.name, "value": self.value}


def label_problems(labels: Sequence[Label]) -> Iterator[SpecError]:
    """The list rules ``labels`` break; fields are relative to the list (``[1].value``)."""
    yield from unique((label.name for label in labels), "[{}].name")
    where = {label.name: index for index, label in enumerate(labels)}
    if "os" not in where:
        return
    os = labels[where["os"]].value
    if os not in VALID_OS_ARCH:
        yield SpecError(f"[{where['os']}].value", f"must be an appc os: one of {', '.join(VALID_OS_ARCH)}; got {os!r}")
    elif "arch" in where and labels[where["arch"]].value not in VALID_OS_ARCH[os]:
        yield SpecError(
            f"[{where['arch']}].value",
            f"must be an appc arch of os {os!r}: one of {', '.join(VALID_OS_ARCH[os])};"
            f" got {labels[where['arch']].value!r}",
        )
