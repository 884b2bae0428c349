"""Dependencies: images whose rootfs is laid down before this one's (spec/aci.md)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import attrs

from ..errors import SpecError
from ..schema import compact, prefixed
from .imageid import ImageID
from .labels import Label, label_problems


@attrs.frozen(kw_only=True)
class Dependency:
    """A dependency on image ``image_name``, optionally pinned by ``image_id``, ``labels`` and ``size``."""

    image_name: str
    image_id: ImageID | None = None
    labels: tuple[Label, ...] = attrs.field(default=(), converter=tuple)
    size: int | None = None

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Dependency:
        """The dependency of a schema-valid JSON object."""
        return cls(
            image_name=obj["imageName"],
            image_id=ImageID(obj["imageID"]) if "imageID" in obj else None,
            labels=[Label.from_json(label) for label in obj.get("labels", ())],
            size=obj.get("size"),
        )

    def to_json(self) -> dict[str, Any]:
        """The dependency as a JSON object, without absent fields."""
        return compact(
            {
                "imageName": self.image_name,
                "imageID": str(self.image_id) if self.image_id is not None else None,
                "labels": [label.to_json() for label in self.labels],
                "size": self.size,
            }
        )


def dependency_problems(dependencies: Sequence[Dependency]) -> Iterator[SpecError]:
    """The rules ``dependencies`` break beyond the schema; fields are relative to the list."""
    for index, dependency in enumerate(dependencies):
        yield from prefixed(f"[{index}].labels", label_problems(dependency.labels))
