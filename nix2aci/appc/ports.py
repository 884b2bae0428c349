"""Ports an app listens on, as single ports or ranges (spec/aci.md, app.ports)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import attrs

from ..errors import SpecError
from ..schema import compact

MAX_PORT = 65535


@attrs.frozen(kw_only=True)
class Port:
    """Ports ``port`` … ``port + count - 1`` for ``protocol``, known by ``name`` (an AC Name)."""

    name: str
    protocol: str
    port: int
    count: int = 1
    socket_activated: bool = False

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Port:
        """The port of a schema-valid JSON object."""
        return cls(
            name=obj["name"],
            protocol=obj["protocol"],
            port=obj["port"],
            count=obj.get("count", 1),
            socket_activated=obj.get("socketActivated", False),
        )

    def to_json(self) -> dict[str, Any]:
        """The port as a JSON object, without the defaults (count 1, not socket-activated)."""
        return compact(
            {
                "name": self.name,
                "protocol": self.protocol,
                "port": self.port,
                "count": self.count if self.count != 1 else None,
                "socketActivated": self.socket_activated or None,
            }
        )

    def problems(self) -> Iterator[SpecError]:
        """The rules the port breaks beyond the schema; fields are relative to the port."""
        if self.port + self.count - 1 > MAX_PORT:
            yield SpecError(
                "count",
                f"must keep the range within {MAX_PORT} (port + count - 1 <= {MAX_PORT}),"
                f" so at most {MAX_PORT + 1 - self.port} for port {self.port}; got {self.count}",
            )
