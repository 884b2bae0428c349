"""The image buildOCIImage's ``fromImage`` names: its layers come first, its config is inherited.

Input: a store path holding an OCI image layout with one image (nix2aci's, or one
skopeo copied). Output: a :class:`BaseImage`: its config document and its layers
(descriptor, diff_id, the host file of the blob). The layout is checked as
``nix2aci validate`` checks one, but for the layers' digests: the base lies in the
Nix store, immutable, and every engine checks a blob's digest when it pulls it.
"""

from __future__ import annotations

import json
import os

import attrs

from .. import inputs
from ..errors import Nix2AciError
from .layout import MANIFEST, REF_NAME, Descriptor, problems

# The largest JSON document read; real ones are KiBs.
_MAX_DOCUMENT = 4 << 20


@attrs.frozen
class BaseLayer:
    """A layer of the base image: its descriptor, its diff_id and the host file holding its blob."""

    descriptor: Descriptor
    diff_id: str
    path: str


@attrs.frozen
class BaseImage:
    """The base image: its config document and its layers, bottom first."""

    config: dict
    layers: tuple[BaseLayer, ...]


def read_document(root: str, relative: str, what: str) -> dict:
    """The JSON document at ``relative`` in the layout ``root`` (a blob may link into the store)."""
    with inputs.open_beneath(root, relative, what, store_links=True) as file:
        return json.loads(file.read(_MAX_DOCUMENT))


def blob_name(root: str, digest: str) -> str:
    """``blobs/ALG/ENCODED`` of ``digest`` in ``root``, relative."""
    algorithm, _, encoded = digest.partition(":")
    return f"blobs/{algorithm}/{encoded}"


def host_file(root: str, relative: str) -> str:
    """The host file a blob's bytes are in: the blob, or the store file it links to."""
    path = os.path.join(root, relative)
    return os.readlink(path) if os.path.islink(path) else os.path.realpath(path)


def read(path: str) -> BaseImage:
    """The base image in the layout ``path``: checked, its one image's config and layers.

    Raises Nix2AciError naming ``fromImage`` and the first problem when it is no valid
    layout or holds other than one image.
    """
    if not os.path.isdir(path):
        raise Nix2AciError(f"fromImage: {path} is not an OCI image layout (a directory with oci-layout, index.json)")
    found = problems(path, hash_layers=False)
    if found:
        raise Nix2AciError(f"fromImage: {path} is not a valid OCI image layout: {found[0]}")
    index = read_document(path, "index.json", "index")
    images = [entry for entry in index["manifests"] if entry["mediaType"] == MANIFEST]
    if len(images) != 1:
        tags = sorted(entry.get("annotations", {}).get(REF_NAME, "?") for entry in images)
        raise Nix2AciError(f"fromImage: {path} must hold one image, holds {len(images)} ({', '.join(tags)})")
    manifest = read_document(path, blob_name(path, images[0]["digest"]), "manifest")
    config = read_document(path, blob_name(path, manifest["config"]["digest"]), "config")
    layers = tuple(
        BaseLayer(
            Descriptor(layer["mediaType"], layer["digest"], layer["size"]),
            diff_id,
            host_file(path, blob_name(path, layer["digest"])),
        )
        for layer, diff_id in zip(manifest["layers"], config["rootfs"]["diff_ids"], strict=True)
    )
    return BaseImage(config, layers)


def layer_count(path: str) -> int:
    """How many layers the base image in ``path`` has (see :func:`read`)."""
    return len(read(path).layers)
