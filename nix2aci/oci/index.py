"""An OCI image index over images of several platforms, written as an image layout.

Input: an :class:`~nix2aci.build.spec.IndexSpec`: the image layouts buildOCIImage
wrote, each with the platform Nix knows it by. Output in ``$out``: ``oci-layout``,
``index.json`` naming one image index (tagged) and each image's SBOM artifact (its
subject that image's manifest, listed untagged as in the image's own layout), and
``blobs/sha256/``: the index, and every blob of every image and artifact as a link
to the file holding it (the image's manifest and config in its layout, each layer
in its layer's build), so nothing is stored twice and the index references its images.

Each image is checked as a layout, must hold exactly one image, and its config must
say the platform Nix gave: the index's platforms are the configs'.
"""

from __future__ import annotations

import attrs

from ..build.spec import IndexSpec
from ..build.spec.index import IndexImage
from ..errors import Nix2AciError
from . import base
from .image import Blob, document_blob, write_layout_files
from .layout import INDEX, MANIFEST, REF_NAME, Descriptor, canonical, names_artifact, platform_name, problems


@attrs.frozen
class IndexedImage:
    """One image of the index: its manifest's descriptor (with platform), the index.json entries of the
    artifacts about it (its SBOM), and every blob they name."""

    manifest: dict
    artifacts: tuple[dict, ...]
    blobs: tuple[Blob, ...]


def _blob(layout: str, descriptor: dict) -> Blob:
    """The blob ``descriptor`` names in ``layout``, as a link to the file holding it."""
    return Blob(
        Descriptor(descriptor["mediaType"], descriptor["digest"], descriptor["size"]),
        path=base.host_file(layout, base.blob_name(layout, descriptor["digest"])),
    )


def read_image(image: IndexImage, where: str) -> IndexedImage:
    """The image in the layout ``image.layout``, which must be valid, hold one image, and be for ``image.platform``.

    ``where`` (``images[1]``) names it in errors (Nix2AciError).
    """
    layout = image.layout
    found = problems(layout, hash_layers=False)
    if found:
        raise Nix2AciError(f"{where}: {layout} is not a valid OCI image layout: {found[0]}")
    index = base.read_document(layout, "index.json", "index")
    entries = base.image_entries(index)
    if len(entries) != 1:
        raise Nix2AciError(f"{where}: {layout} must hold one image (one manifest in index.json), holds {len(entries)}")
    entry = entries[0]
    manifest = base.read_document(layout, base.blob_name(layout, entry["digest"]), "manifest")
    config = base.read_document(layout, base.blob_name(layout, manifest["config"]["digest"]), "config")
    said = platform_name(config)
    if said != str(image.platform):
        raise Nix2AciError(f"{where}: {layout}'s config is for {said}, but Nix gave its platform as {image.platform}")
    # The layout is valid: each artifact's subject is its one image.
    artifacts = tuple(entry for entry in index["manifests"] if names_artifact(entry))
    named = [entry, manifest["config"], *manifest["layers"]]
    for artifact in artifacts:
        document = base.read_document(layout, base.blob_name(layout, artifact["digest"]), "artifact")
        named += [artifact, document["config"], *document["layers"]]
    descriptor = {
        "mediaType": MANIFEST,
        "digest": entry["digest"],
        "size": entry["size"],
        "platform": image.platform.to_json(),
    }
    return IndexedImage(descriptor, artifacts, tuple(_blob(layout, part) for part in named))


def build(spec: IndexSpec) -> Descriptor:
    """Write the index of ``spec`` as an image layout into ``spec.out``; return the index's descriptor."""
    images = [read_image(image, f"images[{i}]") for i, image in enumerate(spec.images)]
    index = document_blob(
        INDEX, {"schemaVersion": 2, "mediaType": INDEX, "manifests": [image.manifest for image in images]}
    )
    top = {
        "schemaVersion": 2,
        "mediaType": INDEX,
        "manifests": [
            index.descriptor.to_json(annotations={REF_NAME: spec.tag}),
            *(artifact for image in images for artifact in image.artifacts),
        ],
    }
    blobs = (index, *(blob for image in images for blob in image.blobs))
    write_layout_files(blobs, canonical(top), canonical({"imageLayoutVersion": "1.0.0"}), spec.out)
    return index.descriptor
