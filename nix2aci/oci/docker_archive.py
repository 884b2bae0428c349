"""The docker-archive format: one tar that ``docker load`` and ``podman load`` take.

Input: an assembled :class:`~nix2aci.oci.image.Image`. Output: ``$out/NAME-TAG.tar``
(NAME's last part), an uncompressed, deterministic tar of Docker's ``manifest.json``
(``Config``, ``RepoTags``, ``Layers``) and the blobs it names under ``blobs/sha256/``:
the config and the layers, compressed as their builds made them (``docker load``,
``podman load`` and ``ctr images import`` decompress them and check each against the
config's diff_ids). No OCI layout goes beside it, as Docker 25 puts one: podman 4.3
and containerd 1.6 would read the layout's index instead of manifest.json, and name
the image after its tag alone.
"""

from __future__ import annotations

import os
import posixpath
from typing import TYPE_CHECKING

from ..archive.compression import NONE
from ..archive.write import write_archive
from ..build import plan
from .layout import MANIFEST, Descriptor, canonical

if TYPE_CHECKING:
    from .image import Image

# The name Docker's loader reads.
DOCKER_MANIFEST = "manifest.json"


def blob_name(descriptor: Descriptor) -> str:
    """Where a blob lies in the archive: ``blobs/ALG/ENCODED``."""
    algorithm, _, encoded = descriptor.digest.partition(":")
    return f"blobs/{algorithm}/{encoded}"


def file_name(name: str, tag: str) -> str:
    """The archive's file name: the image name's last part and the tag (``busybox-1.35.0.tar``)."""
    return f"{posixpath.basename(name)}-{tag}.tar"


def docker_manifest(image: Image, name: str, tag: str) -> bytes:
    """Docker's manifest.json of ``image``, tagged ``name:tag``."""
    entry = {
        "Config": blob_name(image.config),
        "RepoTags": [f"{name}:{tag}"],
        "Layers": [blob_name(layer) for layer in image.layers],
    }
    return canonical([entry])


def entries(image: Image, name: str, tag: str) -> list[plan.Entry]:
    """The archive's entries in plan order: Docker's manifest.json and the blobs it names."""
    files = {DOCKER_MANIFEST: plan.file_with_content(DOCKER_MANIFEST, docker_manifest(image, name, tag))}
    for blob in image.blobs:
        if blob.descriptor.media_type == MANIFEST:  # the OCI manifest: Docker's manifest.json stands for it
            continue
        path = blob_name(blob.descriptor)
        if blob.content is not None:
            files[path] = plan.file_with_content(path, blob.content)
        else:
            files[path] = plan.Entry(path, plan.Kind.FILE, 0o644, source=blob.path, size=blob.descriptor.size)
    directories = [plan.directory("blobs"), plan.directory("blobs/sha256")]
    return plan.sorted_plan([*directories, *files.values()])


def write(image: Image, name: str, tag: str, out: str) -> str:
    """Write ``image`` as ``out/NAME-TAG.tar``; return its path."""
    os.makedirs(out)
    path = os.path.join(out, file_name(name, tag))
    with open(path, "xb") as file:
        write_archive(
            (entry for entry in plan.contained([plan.directory(""), *entries(image, name, tag)]) if entry.path),
            file,
            compression=NONE,
            uncompressed_digest="sha256",
            compressed_digest="sha256",
        )
    return path
