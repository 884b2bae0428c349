"""``nix2aci sbom docker://HOST[:PORT]/REPO:TAG``: the SBOM pushed with an image, read back from the registry.

Input: the reference, how to reach the registry (:class:`.skopeo.Options`) and, for an image index, the
platform whose image is meant (``OS/ARCH[/VARIANT]``, default the host's). Output: the SBOM's bytes.

The steps, each answer of the registry checked before the next request:

1. the tag's manifest; its digest is that of the bytes served. For an image index, the digest its entry
   for the platform gives;
2. the referrers of that manifest (the referrers API, else the fallback tag ``sha256-<hex>``,
   :mod:`.referrers`) of ``artifactType`` ``application/spdx+json``: exactly one;
3. that artifact's manifest, fetched by digest: the bytes must have that digest, its ``subject`` must be
   the image's manifest, its one layer the SPDX document;
4. the layer, fetched by digest, must have its digest.

Every problem (no such tag, no SBOM, several, a referrer about another image, a document that is no JSON
or too big, an unreachable registry) is one Nix2AciError line naming the reference.
"""

from __future__ import annotations

import os
import re

from .. import inputs
from ..build.sbom import MEDIA_TYPE
from ..errors import Nix2AciError, UsageError
from ..oci.layout import ARTIFACT
from ..schema import json_or_none
from . import referrers
from .reference import Destination
from .registry import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, Client
from .skopeo import Options

# The largest SBOM read: about 1 KiB per store path.
SBOM_LIMIT = 64 << 20
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
PLATFORM = re.compile(r"[a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9]+)?")
# uname's machine names -> Go's architecture[/variant], as image indexes name platforms.
GO_ARCH = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "i686": "386",
    "armv7l": "arm/v7",
    "armv6l": "arm/v6",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}


def host_platform() -> str:
    """This host's platform as an image index names it: ``linux/amd64``."""
    uname = os.uname()
    return f"{uname.sysname.lower()}/{GO_ARCH.get(uname.machine, uname.machine)}"


def check_platform(text: str) -> str:
    """``--platform OS/ARCH[/VARIANT]``, checked."""
    if not PLATFORM.fullmatch(text):
        raise UsageError(f"--platform {text!r}: give OS/ARCH[/VARIANT] in Go's names, such as linux/arm64")
    return text


def _document(data: bytes, what: str) -> dict:
    """The JSON object ``data``; one line naming ``what`` when it is none."""
    document = json_or_none(data)
    if not isinstance(document, dict):
        raise Nix2AciError(f"{what} is not a JSON object")
    return document


def _platform_of(entry: dict) -> str:
    """An index entry's ``os/architecture[/variant]`` ("?" for a part it lacks), escaped when not printable (the
    registry's text, shown in an error)."""
    platform = entry.get("platform") if isinstance(entry.get("platform"), dict) else {}
    parts = [platform.get("os") or "?", platform.get("architecture") or "?", platform.get("variant")]
    return inputs.shown("/".join(str(part) for part in parts if part))


def image_digest(client: Client, tag: str, platform: str | None, where: str) -> str:
    """The digest of the image manifest ``tag`` names: its own, or for an image index its entry's for
    ``platform`` (None: the host's)."""
    found = client.manifest(tag)
    if found is None:
        raise Nix2AciError(f"{where}: no such image or tag")
    media_type, data = found
    document = _document(data, f"{where}'s manifest")
    if media_type not in (OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST):
        media_type = document.get("mediaType")
    if media_type in (OCI_MANIFEST, DOCKER_MANIFEST):
        return referrers.sha256(data)
    if media_type not in (OCI_INDEX, DOCKER_LIST) or not isinstance(document.get("manifests"), list):
        raise Nix2AciError(f"{where} serves a {media_type!r}, neither an image manifest nor an image index")
    wanted = platform or host_platform()
    entries = [entry for entry in document["manifests"] if isinstance(entry, dict)]
    chosen = [entry for entry in entries if _platform_of(entry) == wanted]
    if not chosen:
        offered = ", ".join(sorted({_platform_of(entry) for entry in entries})) or "none"
        raise Nix2AciError(f"{where} is an image index without a {wanted} image (it has: {offered}); pass --platform")
    digest = chosen[0].get("digest")
    if not isinstance(digest, str) or not DIGEST.fullmatch(digest):
        raise Nix2AciError(f"{where}: the index's {wanted} entry has no sha256 digest: {digest!r}")
    return digest


def _sbom_manifest(client: Client, digest: str, subject: str, where: str) -> dict:
    """The SBOM's layer descriptor of the artifact manifest ``digest``, checked: its bytes have that digest, its
    subject is ``subject``, it has one layer, an SPDX document with a sha256 digest."""
    found = client.manifest(digest)
    if found is None:
        raise Nix2AciError(f"{where}: the SBOM {digest} is listed as a referrer, but the registry has no such manifest")
    _, data = found
    if referrers.sha256(data) != digest:
        raise Nix2AciError(f"{where}: the registry served another manifest than {digest}")
    manifest = _document(data, f"{where}: the SBOM's manifest {digest}")
    about = manifest.get("subject").get("digest") if isinstance(manifest.get("subject"), dict) else None
    if about != subject:
        raise Nix2AciError(f"{where}: the referrer {digest} is about {about!r}, not the image {subject}")
    layers = manifest.get("layers")
    layer = layers[0] if isinstance(layers, list) and len(layers) == 1 and isinstance(layers[0], dict) else {}
    if layer.get("mediaType") != MEDIA_TYPE or not isinstance(layer.get("digest"), str):
        raise Nix2AciError(f"{where}: the SBOM's manifest {digest} must have one layer, of media type {MEDIA_TYPE}")
    if not DIGEST.fullmatch(layer["digest"]):
        raise Nix2AciError(f"{where}: the SBOM's layer names no sha256 digest: {layer['digest']!r}")
    return layer


def fetch(reference: Destination, options: Options, platform: str | None = None) -> bytes:
    """The SBOM of the image ``reference`` (``docker://HOST/REPO:TAG``) names (see the module's docstring)."""
    if reference.transport != "docker" or not reference.tag:
        raise UsageError(f"IMAGE {reference}: a registry image is docker://HOST[:PORT]/REPO:TAG")
    where = str(reference)
    client = Client(reference.name, options)
    subject = image_digest(client, reference.tag, platform, where)
    listed = [entry for entry in referrers.listed(client, subject) if entry.get(ARTIFACT) == MEDIA_TYPE]
    if not listed:
        raise Nix2AciError(
            f"{where}: no SBOM: nothing of artifactType {MEDIA_TYPE} refers to {subject} (neither the referrers API "
            f"nor the tag {referrers.fallback_tag(subject)} lists one)"
        )
    if len(listed) > 1:
        digests = inputs.shown(", ".join(str(entry["digest"]) for entry in listed))
        raise Nix2AciError(f"{where}: {len(listed)} SBOMs refer to {subject} ({digests}); nix2aci pushes one")
    digest = listed[0]["digest"]
    if not DIGEST.fullmatch(digest):
        raise Nix2AciError(f"{where}: the SBOM listed for {subject} names no sha256 digest: {digest!r}")
    layer = _sbom_manifest(client, digest, subject, where)
    sbom = client.blob(layer["digest"], SBOM_LIMIT)
    if referrers.sha256(sbom) != layer["digest"]:
        raise Nix2AciError(f"{where}: the registry served another SBOM than {layer['digest']}")
    return sbom
