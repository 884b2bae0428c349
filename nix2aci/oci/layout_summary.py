"""What an OCI image layout holds, for ``nix2aci inspect``: its images (an image index's, per platform) and artifacts.

The layout is checked first, as ``nix2aci validate`` checks it
(:func:`nix2aci.oci.layout.checked`: no link followed but a blob's into the Nix
store, each document bounded, each blob read once, layers hashed); the summary
is then read from that check's cache, so no file is opened twice and what is
shown is what was checked. A layout the check finds a problem in is refused, as
one it could not read whole (a missing blob, an index inside an index: what
validate only warns about), since its summary would lack a part.
"""

from __future__ import annotations

from typing import Any

from .. import inputs
from ..errors import Nix2AciError, NotChecked
from . import layout


def _layer(check: layout.LayoutCheck, descriptor: dict[str, Any], where: str) -> dict[str, Any]:
    """A layer as inspect shows it: its descriptor's digest, size and media type, and its diffID (the digest of
    its uncompressed tar, which the check computed)."""
    return {
        "digest": descriptor["digest"],
        "size": descriptor["size"],
        "mediaType": descriptor["mediaType"],
        "diffID": check.blob(descriptor, where, None),
    }


def _image(check: layout.LayoutCheck, entry: dict[str, Any], where: str) -> dict[str, Any]:
    """The image whose manifest ``entry`` (a checked descriptor at ``where``) names: its manifest's digest and
    size, its platform, its config's digest and document, its layers."""
    manifest = check.blob(entry, where, "manifest")
    config = check.blob(manifest["config"], f"{where} config", "config")
    return {
        "platform": layout.platform_name(config),
        "digest": entry["digest"],
        "size": entry["size"],
        "configDigest": manifest["config"]["digest"],
        "layers": [_layer(check, layer, f"{where} layers[{j}]") for j, layer in enumerate(manifest["layers"])],
        "config": config,
    }


def _images(check: layout.LayoutCheck, entry: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """The images an entry of index.json names, each with the entry's tag: its image, or each of its image
    index's (with the index's digest)."""
    tag = entry.get("annotations", {}).get(layout.REF_NAME)
    if entry["mediaType"] != layout.INDEX:
        return [{"tag": tag, **_image(check, entry, where)}]
    index = check.blob(entry, where, "index")
    return [
        {"tag": tag, "index": entry["digest"], **_image(check, inner, f"{where} manifests[{j}]")}
        for j, inner in enumerate(index["manifests"])
    ]


def _artifact(check: layout.LayoutCheck, entry: dict[str, Any], where: str) -> dict[str, Any]:
    """An artifact index.json names: its type, manifest digest and size, and its subject's digest."""
    manifest = check.blob(entry, where, "artifact")
    return {
        "artifactType": entry[layout.ARTIFACT],
        "digest": entry["digest"],
        "size": entry["size"],
        "subject": manifest["subject"]["digest"],
    }


def summary(path: str) -> dict[str, Any]:
    """The summary of the valid OCI image layout directory ``path``: its images in index.json's order (an image
    index's, one per platform), then its artifacts.

    Raises Nix2AciError for an invalid layout, one that cannot be read whole, or
    a failed read.
    """
    warnings: list[str] = []
    try:
        check = layout.checked(path, warnings=warnings)
    except NotChecked as reason:
        raise Nix2AciError(f"{inputs.shown(path)} cannot be inspected: {reason}") from None
    if check.found:
        raise Nix2AciError(f"{inputs.shown(path)} is not a valid OCI image layout: {check.found[0]}")
    if warnings:
        raise Nix2AciError(f"{inputs.shown(path)} cannot be inspected whole: {warnings[0]}")
    images: list[dict[str, Any]] = []
    artifacts: list[dict[str, Any]] = []
    for i, entry in enumerate(check.index["manifests"]):
        where = f"index.json.manifests[{i}]"
        if layout.names_artifact(entry):
            artifacts.append(_artifact(check, entry, where))
        else:
            images += _images(check, entry, where)
    return {"file": path, "format": "oci-layout", "images": images, "artifacts": artifacts}
