"""The build spec's part for format ``oci-layout`` (nix/oci-image.nix): the image config's arguments.

``image`` holds buildOCIImage's arguments but the packages, prefer, the rootfs
basics, name and compression (a key beside it), with os, arch and variant checked
and the tag defaulted. :mod:`nix2aci.oci.layout` makes the image config, manifest
and index of it. The keys, beside the common ones:

"""

from __future__ import annotations

import attrs

from ...schema import load_json
from .typed import STRING, Record, contract, key, list_of, nullable, object_of, one_of, record

ARGV = nullable(list_of(STRING))
# The compressions nix2aci gives an OCI layer: the OCI format's own list, which nix/oci-image.nix reads too.
COMPRESSIONS = tuple(load_json("nix2aci.oci", "layer-compressions.json"))


@attrs.frozen
class LayoutImage(Record):
    """The image's own arguments, from which its config and index are made."""

    os: str = attrs.field(metadata=key(STRING, "the config's and the index's os (Go's names)"))
    arch: str = attrs.field(metadata=key(STRING, "the config's and the index's architecture (Go's names)"))
    variant: str | None = attrs.field(
        metadata=key(nullable(STRING), "the architecture's variant (arm's v7); null: none")
    )
    tag: str = attrs.field(metadata=key(STRING, "the image's tag, its ref name in the index"))
    entrypoint: tuple[str, ...] | None = attrs.field(metadata=key(ARGV, "the config's Entrypoint; null: none"))
    cmd: tuple[str, ...] | None = attrs.field(metadata=key(ARGV, "the config's Cmd; null: none"))
    env: dict[str, str] = attrs.field(metadata=key(object_of(STRING), "the config's Env, by name"))
    working_dir: str | None = attrs.field(
        metadata=key(nullable(STRING), "the config's WorkingDir; null: none", "workingDir")
    )
    user: str | None = attrs.field(metadata=key(nullable(STRING), "the config's User (USER or USER:GROUP); null: none"))
    exposed_ports: tuple[str, ...] = attrs.field(
        metadata=key(list_of(STRING), "the config's ExposedPorts (80/tcp)", "exposedPorts")
    )
    labels: dict[str, str] = attrs.field(metadata=key(object_of(STRING), "the config's Labels"))


@attrs.frozen
class LayoutOutput(Record):
    """What format ``oci-layout`` adds to the common keys: the image's arguments and the layer's compression."""

    image: LayoutImage = attrs.field(metadata=key(record(LayoutImage), "the image's own arguments"))
    compression: str = attrs.field(metadata=key(one_of(*COMPRESSIONS), "the layer's compression"))


__doc__ += "\n".join(contract(LayoutOutput, "    ")) + "\n"
