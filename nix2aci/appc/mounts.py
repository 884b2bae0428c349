"""Mount points: where an app expects external data (spec/aci.md, app.mountPoints)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from ..schema import compact


@attrs.frozen(kw_only=True)
class MountPoint:
    """A volume mounted at absolute ``path``, looked up by ``name`` (an AC Name)."""

    name: str
    path: str
    read_only: bool = False

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> MountPoint:
        """The mount point of a schema-valid JSON object."""
        return cls(name=obj["name"], path=obj["path"], read_only=obj.get("readOnly", False))

    def to_json(self) -> dict[str, Any]:
        """The mount point as a JSON object, without the default (read-write)."""
        return compact({"name": self.name, "path": self.path, "readOnly": self.read_only or None})
