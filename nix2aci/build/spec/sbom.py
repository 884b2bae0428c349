"""The build spec's SBOM parts: what Nix knew of some store paths, and the SBOM step of an OCI image.

nix/common.nix (``provenance``) writes ``provenance`` at evaluation from the roots'
``meta`` (license, homepage) and, for the offline set's Debian imports, their
``debian`` records, following each import's ``libraries``. Formats ``aci`` and
``oci-bundle`` carry it beside their other keys; an OCI image's SBOM is a step of
its own (format ``sbom``, :class:`SbomSpec`), so its layers do not change.
:mod:`nix2aci.build.sbom` makes the document. The keys:

"""

from __future__ import annotations

import attrs

from ..closure import Closure
from .typed import STRING, Record, contract, key, list_of, nullable, object_of, one_of, record


@attrs.frozen
class Debian(Record):
    """A Debian package a store path was made from."""

    package: str = attrs.field(metadata=key(STRING, "the Debian package's name"))
    version: str = attrs.field(metadata=key(STRING, "its Debian version (epoch and revision included)"))
    arch: str = attrs.field(metadata=key(STRING, "its Debian architecture (amd64, all, ...)"))


@attrs.frozen
class License(Record):
    """A license of a package, as nixpkgs' ``meta.license`` gives it."""

    spdx_id: str | None = attrs.field(
        metadata=key(nullable(STRING), "its SPDX license identifier; null: it has none", "spdxId")
    )
    name: str = attrs.field(metadata=key(STRING, "its name"))


@attrs.frozen
class Provenance(Record):
    """What Nix knew at evaluation of one store path."""

    debian: tuple[Debian, ...] = attrs.field(
        metadata=key(list_of(record(Debian)), "the Debian packages it was made from")
    )
    licenses: tuple[License, ...] = attrs.field(metadata=key(list_of(record(License)), "its meta.license"))
    homepage: str | None = attrs.field(metadata=key(nullable(STRING), "its meta.homepage; null: none"))


# The ``provenance`` key's type: {store path: Provenance}.
PROVENANCE = object_of(record(Provenance))


@attrs.frozen
class SbomSpec(Record):
    """An OCI image's SBOM (format ``sbom``): the SPDX document of the closure of ``roots``."""

    format: str = attrs.field(metadata=key(one_of("sbom"), "this spec's kind"))
    name: str = attrs.field(metadata=key(STRING, "the document's name (NAME:TAG)"))
    file_name: str = attrs.field(metadata=key(STRING, "the file written into $out (NAME-TAG.spdx.json)", "fileName"))
    created: str = attrs.field(metadata=key(STRING, "the image's creation time (RFC 3339), the document's"))
    roots: tuple[str, ...] = attrs.field(metadata=key(list_of(STRING), "the image's roots; closure-N is root N's"))
    provenance: dict[str, Provenance] = attrs.field(
        metadata=key(PROVENANCE, "what Nix knew of some store paths, by store path")
    )
    closure: Closure
    out: str


__doc__ += "\n".join(contract(SbomSpec, "    ")) + "\n"
