"""Image IDs: the content hash naming an image (spec/types.md, Image ID; spec/aci.md)."""

from __future__ import annotations

import hashlib
from typing import Any

import attrs

from ..errors import SpecError
from ..schema import compile_pattern, show
from .identifiers import MANIFEST_SCHEMA

_DEFINITION = MANIFEST_SCHEMA.definition("imageID")
IMAGE_ID = compile_pattern(_DEFINITION["pattern"])


@attrs.frozen
class ImageID:
    """An Image ID, ``sha512-`` and 128 lowercase hex digits (not rkt's shortened form).

    Raises SpecError (field ``imageID``) for any other string.
    """

    value: str = attrs.field()

    @value.validator
    def _check(self, attribute: Any, value: Any) -> None:
        """Raise SpecError unless ``value`` is a full Image ID."""
        if not (isinstance(value, str) and IMAGE_ID.search(value)):
            raise SpecError("imageID", f"must be {_DEFINITION['description']}; got {show(value)}")

    @classmethod
    def of(cls, tar: bytes) -> ImageID:
        """The Image ID of an image from its *uncompressed* tar bytes."""
        return cls("sha512-" + hashlib.sha512(tar).hexdigest())

    def __str__(self) -> str:
        """The Image ID as written in manifests."""
        return self.value
