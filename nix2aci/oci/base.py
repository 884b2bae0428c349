"""The image buildOCIImage's ``fromImage`` names: its layers come first, its config is inherited.

Two steps. :func:`build` (format ``oci-base-image``, one derivation per base image)
makes the base an OCI image layout: a layout (nix2aci's, or one skopeo copied) is
linked as it is; a docker-archive (ours, ``docker save``'s, ``podman save``'s: a
``.tar`` in the store, or a directory holding exactly one) is checked as ``nix2aci
validate`` checks one, and its config and layers are copied out of the tar, each
streamed into a blob while it is hashed and decompressed (its diff_id must be the
config's): an uncompressed layer keeps media type ...tar (its digest is its
diff_id), a gzip one ...tar+gzip. The images built on it link those blobs, so the
store holds them once.

:func:`read` then reads that layout (the layering and image steps): a
:class:`BaseImage`, its config document and its layers (descriptor, diff_id, the
host file of the blob). The layout is checked as ``nix2aci validate`` checks one,
but for the layers' digests: the base lies in the Nix store, immutable, and every
engine checks a blob's digest when it pulls it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from typing import BinaryIO

import attrs

from .. import inputs
from ..archive.read import Unreadable
from ..build.spec import BaseImageSpec
from ..errors import Nix2AciError, NotChecked
from . import archive_check
from .layout import (
    CONFIG,
    INDEX,
    MANIFEST,
    MAX_DOCUMENT,
    REF_NAME,
    Descriptor,
    canonical,
    layer_media_type,
    names_artifact,
    problems,
    read_layer,
)


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
        return json.loads(file.read(MAX_DOCUMENT))


def blob_name(root: str, digest: str) -> str:
    """``blobs/ALG/ENCODED`` of ``digest`` in ``root``, relative."""
    algorithm, _, encoded = digest.partition(":")
    return f"blobs/{algorithm}/{encoded}"


def host_file(root: str, relative: str) -> str:
    """The host file a blob's bytes are in: the blob, or the store file it links to."""
    path = os.path.join(root, relative)
    return os.readlink(path) if os.path.islink(path) else os.path.realpath(path)


def image_entries(index: dict) -> list[dict]:
    """The entries of the image manifests an ``index`` lists: an artifact's (nix2aci's SBOM, which refers to
    the image) is none, nor an index."""
    return [entry for entry in index["manifests"] if entry["mediaType"] == MANIFEST and not names_artifact(entry)]


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
    images = image_entries(read_document(path, "index.json", "index"))
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


def _archive(path: str) -> BinaryIO:
    """The docker-archive ``path`` opened: a file, or the one .tar of a directory. Raises
    Nix2AciError saying what fromImage may be."""
    if os.path.isdir(path) and (name := archive_check.archive_in(path)):
        return inputs.open_beneath(path, name, "fromImage's archive")
    if os.path.isdir(path):
        raise Nix2AciError(
            f"fromImage: {path} is neither an OCI image layout (oci-layout, index.json, blobs/) nor a directory"
            " holding exactly one docker-archive (a .tar)"
        )
    return inputs.open_input(path, "fromImage")


def _checked_image(path: str, index: archive_check.ArchiveIndex) -> archive_check.ArchiveImage:
    """The one image of the docker-archive ``index`` (of ``path``), checked but for its layers' bytes."""
    reading = archive_check.read_index(index, hash_layers=False)
    if reading.problems:
        raise Nix2AciError(f"fromImage: {path} is not a valid docker-archive: {reading.problems[0]}")
    if len(reading.images) != 1:
        tags = sorted(tag for image in reading.images for tag in image.repo_tags)
        raise Nix2AciError(
            f"fromImage: {path} must hold one image, holds {len(reading.images)} ({', '.join(tags) or 'untagged'})"
        )
    return reading.images[0]


def _copied_layer(path: str, index: archive_check.ArchiveIndex, member: str, diff_id: str, blobs: str) -> Descriptor:
    """Copy the layer ``member`` into ``blobs`` (named by its digest), hashing and decompressing it as it streams;
    its descriptor. Raises Nix2AciError when it is no layer or its diff_id is not ``diff_id``."""
    partial = os.path.join(blobs, "partial")
    with index.open(index.resolve(member, "layer"), "layer") as (file, _), open(partial, "xb") as sink:
        layer = read_layer(file, "sha256", None, copy_to=sink)
    where = f"fromImage: {path}: layer {member!r}"
    if layer.layer_problem or layer.compression is None:
        raise Nix2AciError(f"{where} must be a tar, uncompressed, gzip or zstd: it {layer.layer_problem}")
    if layer.diff_id != diff_id:
        raise Nix2AciError(
            f"{where} has the uncompressed sha256 {layer.diff_id}, but the config's diff_id is {diff_id}"
        )
    os.replace(partial, os.path.join(blobs, str(layer.digest)))  # a layer named twice is one blob
    return Descriptor(layer_media_type(layer.compression), f"sha256:{layer.digest}", layer.size)


def _write_blob(blobs: str, media_type: str, content: bytes) -> Descriptor:
    """Write ``content`` as a blob of ``blobs``; its descriptor."""
    digest = hashlib.sha256(content).hexdigest()
    with open(os.path.join(blobs, digest), "wb") as file:
        file.write(content)
    return Descriptor(media_type, f"sha256:{digest}", len(content))


def _layout_of_archive(path: str, file: BinaryIO, out: str) -> Iterator[str]:
    """Write the docker-archive opened as ``file`` as an OCI layout in ``out``; yield what it holds, for the log."""
    try:
        index = archive_check.ArchiveIndex(file)
        image = _checked_image(path, index)
    except (Unreadable, NotChecked) as error:
        raise Nix2AciError(f"fromImage: {path} is not a docker-archive nix2aci reads: {error}") from None
    blobs = os.path.join(out, "blobs", "sha256")
    os.makedirs(blobs)
    layers = [
        _copied_layer(path, index, layer.member, diff_id, blobs)
        for layer, diff_id in zip(image.layers, image.config["rootfs"]["diff_ids"], strict=True)
    ]
    with index.open(index.resolve(image.config_member, "config"), "config") as (config_file, _):
        config = _write_blob(blobs, CONFIG, config_file.read(MAX_DOCUMENT + 1))
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": config.to_json(),
        "layers": [layer.to_json() for layer in layers],
    }
    manifest_blob = _write_blob(blobs, MANIFEST, canonical(manifest))
    tag = image.repo_tags[0].rpartition(":")[2] if image.repo_tags else "latest"
    documents = {
        "index.json": {
            "schemaVersion": 2,
            "mediaType": INDEX,
            "manifests": [manifest_blob.to_json(annotations={REF_NAME: tag})],
        },
        "oci-layout": {"imageLayoutVersion": "1.0.0"},
    }
    for name, document in documents.items():
        with open(os.path.join(out, name), "xb") as written:
            written.write(canonical(document))
    found = problems(out, hash_layers=False)
    if found:
        raise Nix2AciError(f"fromImage: {path} made an invalid OCI layout: {found[0]}")
    yield f"{len(layers)} layers of {', '.join(image.repo_tags) or 'an untagged image'}"
    yield from (f"{layer.media_type} {layer.digest}" for layer in layers)


def build(spec: BaseImageSpec) -> str:
    """Make ``spec.out`` the base image ``spec.image`` as an OCI layout: a link to a layout, or a docker-archive's
    config and layers copied out; return the log summary. Raises Nix2AciError, one line, for what is neither."""
    if os.path.isdir(spec.image) and os.path.lexists(os.path.join(spec.image, "oci-layout")):
        os.symlink(spec.image, spec.out)
        return f"the base image is the OCI layout {spec.image}"
    with _archive(spec.image) as file:
        lines = list(_layout_of_archive(spec.image, file, spec.out))
    return "\n".join([f"the base image is the docker-archive {spec.image}: {lines[0]}", *lines[1:]])
