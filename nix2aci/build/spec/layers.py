"""The build specs of an OCI image's layers (nix/oci-image.nix): how the closure is split, and one layer each.

A layered image is several derivations, so that a rebuild packs only the layers whose
store paths changed (see :mod:`nix2aci.oci.layering`):

- ``oci-base-image``: the base image (``fromImage``) as an OCI layout the other steps
  read: a layout is taken as it is, a docker-archive's layers and config are copied
  out into one (:class:`BaseImageSpec`), once for every image built on it;
- ``oci-layering``: from the closure of ``roots``, the groups of store paths that get
  a layer each (:class:`LayeringSpec`; Nix reads the answer back while it evaluates);
- ``oci-store-layer``: the layer of one group (:class:`StoreLayerSpec`); it names
  nothing of the image, so every image holding the same group shares its derivation;
- ``oci-rootfs-layer``: the image's last layer, the profile, the rootfs basics and the
  user's files, made from the common keys (:class:`RootfsLayerOutput` adds its own).

The keys of each:

"""

from __future__ import annotations

import attrs

from ..closure import Closure
from .layout import COMPRESSIONS
from .typed import BOOLEAN, STRING, Record, contract, integer_from, key, list_of, nullable, one_of

STORE_PATHS = list_of(STRING)
# maxLayers is a JSON number: at most what Nix's integers hold.
MAX_LAYERS = integer_from(1, (1 << 63) - 1)


@attrs.frozen
class LayeringSpec(Record):
    """Which store paths of the closure of ``roots`` get a layer of their own (format ``oci-layering``)."""

    format: str = attrs.field(metadata=key(one_of("oci-layering"), "this spec's kind"))
    roots: tuple[str, ...] = attrs.field(metadata=key(STORE_PATHS, "the image's roots; closure-N is root N's"))
    first: tuple[str, ...] = attrs.field(
        metadata=key(STORE_PATHS, "the image's own store paths (its packages, what its command names): layers first")
    )
    max_layers: int = attrs.field(
        metadata=key(MAX_LAYERS, "the image's layers at most, the base image's included", "maxLayers")
    )
    base_image: str | None = attrs.field(
        metadata=key(nullable(STRING), "the base image (an OCI layout or a docker-archive); null: none", "baseImage")
    )
    closure: Closure
    out: str


@attrs.frozen
class BaseImageSpec(Record):
    """The base image as an OCI layout (format ``oci-base-image``): a link to a layout, or a docker-archive's."""

    format: str = attrs.field(metadata=key(one_of("oci-base-image"), "this spec's kind"))
    image: str = attrs.field(
        metadata=key(STRING, "fromImage: an OCI layout, a docker-archive (.tar) or a directory holding exactly one")
    )
    out: str


@attrs.frozen
class StoreLayerSpec(Record):
    """The layer of a group of store paths (format ``oci-store-layer``): their copies and /nix/store."""

    format: str = attrs.field(metadata=key(one_of("oci-store-layer"), "this spec's kind"))
    paths: tuple[str, ...] = attrs.field(metadata=key(STORE_PATHS, "the store paths the layer holds"))
    compression: str = attrs.field(metadata=key(one_of(*COMPRESSIONS), "the layer's compression"))
    out: str


@attrs.frozen
class RootfsLayerOutput(Record):
    """What format ``oci-rootfs-layer`` adds to the common keys."""

    compression: str = attrs.field(metadata=key(one_of(*COMPRESSIONS), "the layer's compression"))
    include_store: bool = attrs.field(
        metadata=key(
            BOOLEAN,
            "true: the layer holds the closure too (the image's one layer); false: no store path",
            "includeStore",
        )
    )


for _spec in (BaseImageSpec, LayeringSpec, StoreLayerSpec, RootfsLayerOutput):
    __doc__ += f"{_spec.__name__}:\n" + "\n".join(contract(_spec, "    ")) + "\n"
