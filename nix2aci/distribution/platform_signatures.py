"""The signatures of an image index's platform images, which its consumers check.

A consumer of an image index pulling one platform (``skopeo copy --override-arch arm64``, ``podman pull`` on
an arm64 machine; containers/image as skopeo 1.9 and podman 4.3 carry it) checks the signature of the
platform's image manifest, not the index's: with the index signed and that image not, the pull is refused
("A signature was required, but no signature exists"). ``skopeo copy --all --sign-by`` (what ``nix2aci push
--sign`` runs for an index) signs the index and each image, all for the tag pushed. So a pushed index counts
as signed, and ``nix2aci verify`` accepts it, only when every image it lists is signed too.

Input: the served index's bytes (hostile: a digest not ``sha256:HEX`` is refused, in one line, before it
names a file). Output: each platform's digest and signer.
"""

from __future__ import annotations

import json
import re

from ..errors import Nix2AciError
from . import simple_signing
from .reference import Destination
from .registry import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST

DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def _platform(entry: dict) -> str:
    """``OS/ARCHITECTURE[/VARIANT]`` of an index entry's platform, "unknown platform" when it names none."""
    platform = entry.get("platform")
    parts = [platform.get(key) for key in ("os", "architecture", "variant")] if isinstance(platform, dict) else []
    named = [part for part in parts if isinstance(part, str) and part.isprintable()]
    return "/".join(named) or "unknown platform"


def platform_images(manifest: bytes) -> list[tuple[str, str]]:
    """``(platform, digest)`` of each image manifest the index ``manifest`` (its bytes as served) lists; none
    when it is no index. Raises Nix2AciError for a listed image whose digest is not ``sha256:HEX``."""
    try:
        document = json.loads(manifest)
    except ValueError:
        return []
    if not isinstance(document, dict) or document.get("mediaType") not in (OCI_INDEX, DOCKER_LIST):
        return []
    entries = document.get("manifests")
    found = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or entry.get("mediaType") not in (OCI_MANIFEST, DOCKER_MANIFEST):
            continue  # an artifact, or a nested index: no consumer pulls it as a platform's image
        digest = entry.get("digest")
        if not isinstance(digest, str) or not DIGEST.fullmatch(digest):
            raise Nix2AciError(f"the index lists the image {digest!r} for {_platform(entry)}: give sha256:HEX")
        found.append((_platform(entry), digest))
    return found


def verify_platforms(store: str, destination: Destination, manifest: bytes, keys: bytes) -> list[tuple[str, str, str]]:
    """``(platform, digest, signer)`` of each image of the index ``manifest`` that ``destination`` serves, each
    signature read from the lookaside ``store`` and verified with ``keys`` for ``destination``'s reference.
    Raises Nix2AciError, one line naming the platform, for an image without a good signature."""
    verified = []
    for platform, digest in platform_images(manifest):
        try:
            signatures = simple_signing.read_signatures(store, destination.repository, digest)
            signer = simple_signing.verify(signatures, keys, destination.docker_reference(), digest)
        except Nix2AciError as error:
            raise Nix2AciError(
                f"the {platform} image of the index: {error} (a consumer pulling that platform checks its own"
                " signature)"
            ) from None
        verified.append((platform, digest, signer.fingerprint))
    return verified
