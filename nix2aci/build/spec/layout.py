"""The build spec of an OCI image from its layers (nix/oci-image.nix): formats ``oci-layout`` and ``docker-archive``.

The layers are built apart (:mod:`.layers`); this spec names their outputs, in
order, after the base image's, and holds the image config's arguments:
:mod:`nix2aci.oci.image` makes the config, manifest and index of them, and writes
them as the format says, with ``postprocess.sh`` beside them
(:mod:`nix2aci.build.postprocess_script`). The store paths the image holds are no
input of this build (only the layers are), so the image references its layers, not
their paths.
The keys:

"""

from __future__ import annotations

import attrs

from ...schema import load_json
from .typed import BOOLEAN, STRING, Record, contract, key, list_of, nullable, object_of, one_of, record

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
    name: str = attrs.field(metadata=key(STRING, "the image's repository name (docker-archive's RepoTags)"))
    tag: str = attrs.field(metadata=key(STRING, "the image's tag, its ref name in the index"))
    created: str = attrs.field(metadata=key(STRING, "the config's and history's creation time (RFC 3339)"))
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
class LayerInput(Record):
    """One of the image's own layers: a layer build's output, and what its history entry says."""

    layer: str = attrs.field(
        metadata=key(STRING, "the output of an oci-store-layer or oci-rootfs-layer build: blob and layer.json")
    )
    comment: str = attrs.field(metadata=key(STRING, "its history entry's comment: what it holds"))


@attrs.frozen
class ImageSpec(Record):
    """An OCI image from its layers (formats ``oci-layout`` and ``docker-archive``)."""

    format: str = attrs.field(metadata=key(one_of("oci-layout", "docker-archive"), "how the image is written"))
    image: LayoutImage = attrs.field(metadata=key(record(LayoutImage), "the image's own arguments"))
    layers: tuple[LayerInput, ...] = attrs.field(
        metadata=key(list_of(record(LayerInput)), "the image's own layers, bottom first, after the base image's")
    )
    base_image: str | None = attrs.field(
        metadata=key(nullable(STRING), "the base image (an OCI layout or a docker-archive); null: none", "baseImage")
    )
    sign: bool = attrs.field(
        metadata=key(BOOLEAN, "whether postprocess.sh --push signs the pushed image (false: it pushes unsigned)")
    )
    command: str = attrs.field(
        metadata=key(STRING, "the .drv file of nix2aci's command line, which postprocess.sh runs")
    )
    out: str


__doc__ += "\n".join(contract(ImageSpec, "    ")) + "\n"
