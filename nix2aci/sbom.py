"""``nix2aci sbom``: find the SBOM nix2aci built with an image, checked against what the image records.

Input: an image as nix2aci builds it (:mod:`nix2aci.build.sbom` says what each holds):

- an ACI (``X.aci``): the manifest's annotations ``nix2aci/sbom`` (a file beside the
  image) and ``nix2aci/sbom-digest``;
- an OCI image layout directory: the artifact of ``artifactType`` ``application/spdx+json``
  in ``index.json`` (its manifest and the SBOM blob checked against their digests);
- an OCI runtime bundle directory: ``config.json``'s annotations ``org.nix2aci.sbom``
  and ``org.nix2aci.sbom.digest``;
- a docker-archive: ``NAME-TAG.tar`` or its directory: ``NAME-TAG.spdx.json`` beside it.

Output: the SBOM's bytes. Every problem is one Nix2AciError (or InputError) line
naming the image and what is missing or wrong; nothing outside the named image and
its directory is read, and no file through a link but a layout blob's into the store.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from . import inputs
from . import inspect as aci_inspect
from .aci.build import SBOM_ANNOTATION, SBOM_DIGEST_ANNOTATION
from .build.sbom import MEDIA_TYPE, SUFFIX
from .errors import Nix2AciError
from .oci.bundle import SBOM_ANNOTATION as BUNDLE_SBOM_ANNOTATION
from .oci.bundle import SBOM_DIGEST_ANNOTATION as BUNDLE_SBOM_DIGEST_ANNOTATION
from .oci.layout import ARTIFACT, MANIFEST

# The largest SBOM or JSON document read: an SBOM is about 1 KiB per store path.
MAX_SIZE = 64 << 20


def _read(file: Any, what: str) -> bytes:
    """All of an opened file, at most MAX_SIZE bytes; Nix2AciError naming ``what`` when it is larger."""
    data = file.read(MAX_SIZE + 1)
    if len(data) > MAX_SIZE:
        raise Nix2AciError(f"{what} is over {MAX_SIZE} bytes, more than an SBOM")
    return data


def _json(data: bytes, what: str) -> Any:
    """The JSON document ``data``; Nix2AciError naming ``what`` when it is none."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        raise Nix2AciError(f"{what} is not a JSON document") from None


def _checked(data: bytes, digest: Any, what: str) -> bytes:
    """``data`` when its ``sha256:HEX`` is ``digest``; else Nix2AciError naming ``what``."""
    if digest != f"sha256:{hashlib.sha256(data).hexdigest()}":
        raise Nix2AciError(f"{what} does not match its recorded digest {digest!r}: it changed since the build")
    return data


def _beside(directory: str, name: Any, digest: Any, image: str) -> bytes:
    """The SBOM file ``name`` (a plain ``*.spdx.json`` name) in ``directory``, checked against ``digest``
    when one is given (not None)."""
    if not isinstance(name, str) or "/" in name or name in ("", ".", "..") or not name.endswith(SUFFIX):
        raise Nix2AciError(f"{inputs.shown(image)} names its SBOM {name!r}, which is no *{SUFFIX} file beside it")
    what = inputs.shown(os.path.join(directory, name))
    with inputs.open_beneath(directory, name, "SBOM") as file:
        data = _read(file, what)
    return data if digest is None else _checked(data, digest, what)


def _from_aci(path: str) -> bytes:
    """The SBOM the ACI at ``path`` names."""
    annotations = {item["name"]: item["value"] for item in aci_inspect.inspect(path)["manifest"].get("annotations", [])}
    if SBOM_ANNOTATION not in annotations or SBOM_DIGEST_ANNOTATION not in annotations:
        raise Nix2AciError(f"{inputs.shown(path)} names no SBOM (its manifest has no {SBOM_ANNOTATION} annotation)")
    directory = os.path.dirname(path) or "."
    return _beside(directory, annotations[SBOM_ANNOTATION], annotations[SBOM_DIGEST_ANNOTATION], path)


def _blob(root: str, descriptor: Any, what: str) -> bytes:
    """The blob a layout's ``descriptor`` names (it may link into the store), checked against its digest."""
    digest = descriptor.get("digest") if isinstance(descriptor, dict) else None
    algorithm, _, encoded = digest.partition(":") if isinstance(digest, str) else ("", "", "")
    if algorithm != "sha256" or len(encoded) != 64 or not all(c in "0123456789abcdef" for c in encoded):
        raise Nix2AciError(f"{what} names no sha256 blob (digest {digest!r})")
    with inputs.open_beneath(root, f"blobs/sha256/{encoded}", what, store_links=True) as file:
        return _checked(_read(file, what), digest, what)


def _from_layout(root: str) -> bytes:
    """The SBOM artifact's blob in the OCI image layout ``root``: the one artifact of the SPDX type."""
    with inputs.open_beneath(root, "index.json", "index") as file:
        index = _json(_read(file, "index.json"), f"{inputs.shown(root)}/index.json")
    entries = index.get("manifests") if isinstance(index, dict) else None
    found = [
        entry
        for entry in (entries if isinstance(entries, list) else [])
        if isinstance(entry, dict) and entry.get("mediaType") == MANIFEST and entry.get(ARTIFACT) == MEDIA_TYPE
    ]
    if len(found) != 1:
        raise Nix2AciError(
            f"{inputs.shown(root)} must hold one SBOM (an index.json entry of {ARTIFACT} {MEDIA_TYPE}),"
            f" holds {len(found)}"
        )
    manifest = _json(_blob(root, found[0], "the SBOM's manifest"), "the SBOM's manifest")
    layers = manifest.get("layers") if isinstance(manifest, dict) else None
    if not isinstance(layers, list) or len(layers) != 1 or not isinstance(layers[0], dict):
        raise Nix2AciError(f"{inputs.shown(root)}: the SBOM's manifest must have one layer, the SBOM")
    if layers[0].get("mediaType") != MEDIA_TYPE:
        raise Nix2AciError(f"{inputs.shown(root)}: the SBOM's layer must be of media type {MEDIA_TYPE}")
    return _blob(root, layers[0], "the SBOM")


def _from_bundle(root: str) -> bytes:
    """The SBOM the runtime bundle ``root``'s config.json names."""
    with inputs.open_beneath(root, "config.json", "config.json") as file:
        config = _json(_read(file, "config.json"), f"{inputs.shown(root)}/config.json")
    annotations = config.get("annotations") if isinstance(config, dict) else None
    annotations = annotations if isinstance(annotations, dict) else {}
    if BUNDLE_SBOM_ANNOTATION not in annotations or BUNDLE_SBOM_DIGEST_ANNOTATION not in annotations:
        raise Nix2AciError(f"{inputs.shown(root)} names no SBOM (config.json has no {BUNDLE_SBOM_ANNOTATION})")
    return _beside(root, annotations[BUNDLE_SBOM_ANNOTATION], annotations[BUNDLE_SBOM_DIGEST_ANNOTATION], root)


def _from_archive_directory(root: str) -> bytes:
    """The SBOM beside the one docker-archive (``NAME-TAG.tar``) in the directory ``root``."""
    archives = sorted(name for name in os.listdir(root) if name.endswith(".tar"))
    if len(archives) != 1:
        raise Nix2AciError(
            f"{inputs.shown(root)} is no image nix2aci built: no index.json, config.json or one NAME-TAG.tar"
            f" (found {len(archives)} .tar files)"
        )
    return _beside(root, archives[0].removesuffix(".tar") + SUFFIX, None, root)


def find(image: str) -> bytes:
    """The SBOM of ``image`` (an ACI, an OCI layout, a runtime bundle, a docker-archive or its directory).

    Raises InputError for a path that is missing or neither a directory nor a regular
    file, Nix2AciError for an image without an SBOM, or whose SBOM is not the one recorded.
    """
    if os.path.isdir(image):
        if os.path.lexists(os.path.join(image, "index.json")):
            return _from_layout(image)
        if os.path.lexists(os.path.join(image, "config.json")):
            return _from_bundle(image)
        return _from_archive_directory(image)
    inputs.open_input(image, "image").close()
    if image.endswith(".aci"):
        return _from_aci(image)
    if image.endswith(".tar"):
        name = os.path.basename(image).removesuffix(".tar") + SUFFIX
        return _beside(os.path.dirname(image) or ".", name, None, image)
    raise Nix2AciError(
        f"{inputs.shown(image)} is no image nix2aci built: give an .aci, a docker-archive .tar, "
        "an OCI layout or runtime bundle directory"
    )
