"""The ``app`` object: how to run the image as an application (spec/aci.md)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import attrs

from ..errors import SpecError
from ..schema import compact, prefixed, unique
from .isolators import Isolator, isolator_problems
from .mounts import MountPoint
from .ports import Port


@attrs.frozen
class EventHandler:
    """A command run at a lifecycle event: ``name`` is ``pre-start`` or ``post-stop``."""

    name: str
    exec: tuple[str, ...] = attrs.field(converter=tuple)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> EventHandler:
        """The event handler of a schema-valid JSON object."""
        return cls(obj["name"], obj["exec"])

    def to_json(self) -> dict[str, Any]:
        """The event handler as a JSON object."""
        return {"name": self.name, "exec": list(self.exec)}


@attrs.frozen
class EnvironmentVariable:
    """An environment variable of the app: ``name`` and string ``value``."""

    name: str
    value: str

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> EnvironmentVariable:
        """The variable of a schema-valid JSON object."""
        return cls(obj["name"], obj["value"])

    def to_json(self) -> dict[str, Any]:
        """The variable as a JSON object."""
        return {"name": self.name, "value": self.value}


@attrs.frozen(kw_only=True)
class App:
    """The app of an image: its command, identity, environment and resources.

    ``exec`` may be empty (an executor then needs a command from elsewhere); a
    relative ``exec[0]`` is looked up in ``PATH`` (spec v0.7.2 and later).
    """

    user: str
    group: str
    exec: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    supplementary_gids: tuple[int, ...] = attrs.field(default=(), converter=tuple)
    event_handlers: tuple[EventHandler, ...] = attrs.field(default=(), converter=tuple)
    working_directory: str | None = None
    environment: tuple[EnvironmentVariable, ...] = attrs.field(default=(), converter=tuple)
    isolators: tuple[Isolator, ...] = attrs.field(default=(), converter=tuple)
    mount_points: tuple[MountPoint, ...] = attrs.field(default=(), converter=tuple)
    ports: tuple[Port, ...] = attrs.field(default=(), converter=tuple)
    user_annotations: Mapping[str, str] = attrs.field(factory=dict, converter=dict)
    user_labels: Mapping[str, str] = attrs.field(factory=dict, converter=dict)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> App:
        """The app of a schema-valid JSON object."""
        return cls(
            user=obj["user"],
            group=obj["group"],
            exec=obj.get("exec", ()),
            supplementary_gids=obj.get("supplementaryGIDs", ()),
            event_handlers=[EventHandler.from_json(item) for item in obj.get("eventHandlers", ())],
            working_directory=obj.get("workingDirectory"),
            environment=[EnvironmentVariable.from_json(item) for item in obj.get("environment", ())],
            isolators=[Isolator.from_json(item) for item in obj.get("isolators", ())],
            mount_points=[MountPoint.from_json(item) for item in obj.get("mountPoints", ())],
            ports=[Port.from_json(item) for item in obj.get("ports", ())],
            user_annotations=obj.get("userAnnotations", {}),
            user_labels=obj.get("userLabels", {}),
        )

    def to_json(self) -> dict[str, Any]:
        """The app as a JSON object in spec key order, without absent or empty fields."""
        return compact(
            {
                "exec": list(self.exec),
                "user": self.user,
                "group": self.group,
                "supplementaryGIDs": list(self.supplementary_gids),
                "eventHandlers": [handler.to_json() for handler in self.event_handlers],
                "workingDirectory": self.working_directory,
                "environment": [variable.to_json() for variable in self.environment],
                "isolators": [isolator.to_json() for isolator in self.isolators],
                "mountPoints": [mount.to_json() for mount in self.mount_points],
                "ports": [port.to_json() for port in self.ports],
                "userAnnotations": dict(self.user_annotations),
                "userLabels": dict(self.user_labels),
            }
        )

    def problems(self) -> Iterator[SpecError]:
        """The rules the app breaks beyond the schema; fields are relative to the app."""
        yield from unique((handler.name for handler in self.event_handlers), "eventHandlers[{}].name")
        yield from unique((variable.name for variable in self.environment), "environment[{}].name")
        yield from prefixed("isolators", isolator_problems(self.isolators))
        yield from unique((mount.name for mount in self.mount_points), "mountPoints[{}].name")
        yield from unique((port.name for port in self.ports), "ports[{}].name")
        for index, port in enumerate(self.ports):
            yield from prefixed(f"ports[{index}]", port.problems())
