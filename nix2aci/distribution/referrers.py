"""Referrers (image-spec 1.1, distribution-spec 1.1): an artifact about an image, pushed beside it and found again.

A referrer is a manifest whose ``subject`` is the image's manifest (nix2aci's SBOM artifact). Pushing one
(:func:`attach`): its blobs, then its manifest by digest; a registry with the referrers API answers that
``PUT`` with the header ``OCI-Subject`` and lists it from then on. One without (distribution 2.8, Docker
Hub until 2023...) gets the tag-schema fallback: the tag ``sha256-<hex of the image's digest>`` names an image
index whose ``manifests`` are the referrers' descriptors (with ``artifactType``); nix2aci reads what the tag
holds, adds its descriptor unless it is there, and writes the index back, so others' referrers stay. Two
pushers updating the tag at the same instant can lose one of the two entries: the distribution API has no
compare-and-swap for tags.

Finding them (:func:`listed`): the referrers API, else the fallback tag. What either returns is the
registry's word only: the artifact manifest it names is fetched by digest and checked by the reader.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from .. import inputs
from ..errors import Nix2AciError
from ..oci.layout import ARTIFACT
from ..schema import json_or_none
from .registry import OCI_INDEX, OCI_MANIFEST, Client

# What a referrer's parts may weigh: the artifact's manifest is a document, its blobs an SBOM (~1 KiB per path).
ARTIFACT_LIMIT = 64 << 20


@dataclass(frozen=True)
class Artifact:
    """A referrer to push: its manifest's ``descriptor`` (as index.json lists it, with ``artifactType``), the
    manifest's bytes, its blobs (config, layers) as ``(digest, bytes)``, and the ``subject``'s digest."""

    descriptor: dict
    manifest: bytes
    blobs: tuple[tuple[str, bytes], ...]
    subject: str


@dataclass(frozen=True)
class Attached:
    """A referrer pushed: its digest, its subject's, and what lists it: ``referrers API`` or the fallback tag
    (``docker://HOST/REPO:sha256-HEX``)."""

    digest: str
    subject: str
    listed_by: str


def sha256(data: bytes) -> str:
    """``sha256:HEX`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def fallback_tag(digest: str) -> str:
    """The tag-schema fallback's tag for the manifest ``digest`` (``sha256:HEX`` -> ``sha256-HEX``)."""
    return digest.replace(":", "-", 1)


def _layout_blob(root: str, digest: object, what: str) -> bytes:
    """The blob ``digest`` of the layout ``root`` (it may link into the store), checked against its digest."""
    algorithm, _, encoded = digest.partition(":") if isinstance(digest, str) else ("", "", "")
    if algorithm != "sha256" or len(encoded) != 64 or not all(c in "0123456789abcdef" for c in encoded):
        raise Nix2AciError(f"{inputs.shown(root)}: {what} names no sha256 blob (digest {digest!r})")
    with inputs.open_beneath(root, f"blobs/sha256/{encoded}", what, store_links=True) as file:
        data = file.read(ARTIFACT_LIMIT + 1)
    if len(data) > ARTIFACT_LIMIT:
        raise Nix2AciError(f"{inputs.shown(root)}: {what} is over {ARTIFACT_LIMIT} bytes")
    if sha256(data) != digest:
        raise Nix2AciError(f"{inputs.shown(root)}: {what} does not match its digest {digest}")
    return data


def read_artifact(root: str, descriptor: dict, where: str) -> Artifact:
    """The artifact the layout ``root``'s index.json lists as ``descriptor`` (``where`` names it): its manifest,
    config and layers read and checked against their digests."""
    if descriptor.get("mediaType") != OCI_MANIFEST or not isinstance(descriptor.get(ARTIFACT), str):
        raise Nix2AciError(
            f"{inputs.shown(root)}: {where} is no artifact's descriptor (an image manifest's, with {ARTIFACT})"
        )
    manifest = _layout_blob(root, descriptor.get("digest"), where)
    if descriptor.get("size") != len(manifest):
        raise Nix2AciError(f"{inputs.shown(root)}: {where}.size is not its manifest's size {len(manifest)}")
    document = json_or_none(manifest)
    subject = document.get("subject") if isinstance(document, dict) else None
    parts = [document.get("config"), *(document.get("layers") or [])] if isinstance(document, dict) else []
    if not isinstance(subject, dict) or not all(isinstance(part, dict) for part in parts) or len(parts) < 2:
        raise Nix2AciError(f"{inputs.shown(root)}: {where} is no artifact manifest (config, layers and subject)")
    blobs = tuple((part.get("digest"), _layout_blob(root, part.get("digest"), f"{where}'s blob")) for part in parts)
    return Artifact(descriptor, manifest, blobs, subject.get("digest"))


def _listed_descriptors(data: bytes, where: str) -> list[dict]:
    """The ``manifests`` of the image index ``data`` (a referrers list); one line naming ``where`` when it is
    not one."""
    document = json_or_none(data)
    manifests = document.get("manifests") if isinstance(document, dict) else None
    if (
        not isinstance(document, dict)
        or document.get("mediaType", OCI_INDEX) != OCI_INDEX
        or not isinstance(manifests, list)
        or not all(isinstance(entry, dict) and isinstance(entry.get("digest"), str) for entry in manifests)
    ):
        raise Nix2AciError(f"{where} holds no image index listing referrers (descriptors with a digest)")
    return manifests


def _fallback_where(client: Client, digest: str) -> str:
    """``docker://HOST/REPO:sha256-HEX``: the fallback tag of ``digest``, as errors name it."""
    return f"docker://{client.host}/{client.repository}:{fallback_tag(digest)}"


def fallback_list(client: Client, digest: str) -> list[dict] | None:
    """The descriptors the fallback tag of ``digest`` lists; None when there is no such tag."""
    found = client.manifest(fallback_tag(digest))
    if found is None:
        return None
    media_type, data = found
    where = _fallback_where(client, digest)
    if media_type != OCI_INDEX:
        shown = inputs.shown(media_type)  # the registry's header: escaped when not printable
        raise Nix2AciError(f"{where} (the referrers fallback tag) holds a {shown}, not an image index")
    return _listed_descriptors(data, where)


def listed(client: Client, digest: str) -> list[dict]:
    """The referrers' descriptors the registry lists for the manifest ``digest``: its referrers API's, else its
    fallback tag's ([] when neither has any)."""
    data = client.referrers(digest)
    if data is not None:
        return _listed_descriptors(data, f"{client.host}/{client.repository}: the referrers of {digest}")
    return fallback_list(client, digest) or []


def attach(client: Client, artifact: Artifact) -> Attached:
    """Push ``artifact`` to the repository of ``client`` and make it a referrer of its subject there (see the
    module's docstring); say how."""
    for digest, data in artifact.blobs:
        if not client.has_blob(digest):
            client.upload_blob(digest, data)
    digest = artifact.descriptor["digest"]
    headers = client.put_manifest(digest, OCI_MANIFEST, artifact.manifest)
    if headers.get("OCI-Subject") == artifact.subject:
        return Attached(digest, artifact.subject, "the registry's referrers API")
    existing = fallback_list(client, artifact.subject) or []
    if not any(entry["digest"] == digest for entry in existing):
        entry = {key: artifact.descriptor[key] for key in ("mediaType", "digest", "size", ARTIFACT)}
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [*existing, entry]}
        client.put_manifest(
            fallback_tag(artifact.subject), OCI_INDEX, json.dumps(index, separators=(",", ":")).encode()
        )
    return Attached(digest, artifact.subject, _fallback_where(client, artifact.subject))
