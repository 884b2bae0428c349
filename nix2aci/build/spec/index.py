"""The build spec of an OCI image index over images of several platforms (nix/oci-index.nix): format ``oci-index``.

Each image is an OCI image layout that buildOCIImage wrote, with the platform Nix
knows it by: :mod:`nix2aci.oci.index` reads each image's config, checks that it says
that platform, and writes a layout whose index.json names one image index listing
the images' manifests. The keys:

"""

from __future__ import annotations

import attrs

from .typed import STRING, Record, contract, key, list_of, nullable, one_of, record


@attrs.frozen
class IndexPlatform(Record):
    """The platform an image is for, in Go's names (as its config and the index say it)."""

    os: str = attrs.field(metadata=key(STRING, "the operating system (linux)"))
    arch: str = attrs.field(metadata=key(STRING, "the architecture (amd64, arm64)"))
    variant: str | None = attrs.field(
        metadata=key(nullable(STRING), "the architecture's variant (arm's v7); null: none")
    )

    def to_json(self) -> dict[str, str]:
        """The platform object of an index's descriptor (image-spec image-index.md)."""
        return {"os": self.os, "architecture": self.arch, **({"variant": self.variant} if self.variant else {})}

    def __str__(self) -> str:
        return "/".join(part for part in (self.os, self.arch, self.variant) if part)


@attrs.frozen
class IndexImage(Record):
    """One image of the index: its layout in the store and the platform it is for."""

    layout: str = attrs.field(metadata=key(STRING, "an OCI image layout of buildOCIImage (format oci-layout)"))
    platform: IndexPlatform = attrs.field(metadata=key(record(IndexPlatform), "the platform Nix knows it by"))


@attrs.frozen
class IndexSpec(Record):
    """An OCI image index over images of several platforms, written as an image layout."""

    format: str = attrs.field(metadata=key(one_of("oci-index"), "this spec's kind"))
    tag: str = attrs.field(metadata=key(STRING, "the index's tag, its ref name in index.json"))
    images: tuple[IndexImage, ...] = attrs.field(
        metadata=key(list_of(record(IndexImage)), "the images, in the index's order, one per platform")
    )
    out: str


__doc__ += "\n".join(contract(IndexSpec, "    ")) + "\n"
