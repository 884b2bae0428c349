"""What ``nix2aci push`` sends: a build result named by the user, as a skopeo source reference.

IMAGE may be

- an OCI image layout (a directory holding ``oci-layout`` and ``index.json``, as ``buildOCIImage``
  makes): ``oci:PATH[:TAG]``; its index names exactly one image, an image manifest or an image
  index (a multi-platform image, copied whole: ``skopeo copy --all``), and the artifacts about it
  (entries with an ``artifactType``: nix2aci's SBOMs, whose subject is the image or one of the
  index's images), pushed beside it as referrers (:mod:`.referrers`);
- a docker-archive (``buildOCIImage { format = "docker-archive"; }``): the ``.tar`` itself, or the
  result directory holding exactly one ``.tar``: ``docker-archive:PATH``; its ``manifest.json``
  names exactly one image.

The image's own tag (the index's ``org.opencontainers.image.ref.name`` annotation, or the
archive's ``RepoTags``) is the tag pushed when DEST names none.
"""

from __future__ import annotations

import json
import os
import tarfile
from dataclasses import dataclass

from .. import inputs
from ..errors import Nix2AciError, UsageError
from ..oci.layout import ARTIFACT, INDEX, MANIFEST, REF_NAME, problems

MANIFEST_MEDIA_TYPES = (MANIFEST, "application/vnd.docker.distribution.manifest.v2+json")
# index.json and manifest.json are a few hundred bytes; more is not an image nix2aci made.
DOCUMENT_LIMIT = 1 << 20


@dataclass(frozen=True)
class Source:
    """A checked image: ``reference`` for skopeo, its ``tag`` (or None), whether it is a multi-platform
    ``index`` (copied with ``--all``), and the ``digest`` of its top manifest when the layout records it
    (a docker-archive has no manifest of its own: skopeo makes one). A layout's also has its ``path``, the
    descriptors of the ``artifacts`` index.json lists beside the image, and the digests of the image
    manifests they may refer to (``subjects``: the image's, or each of the index's)."""

    reference: str
    tag: str | None
    index: bool
    digest: str | None
    path: str | None = None
    artifacts: tuple[dict, ...] = ()
    subjects: frozenset[str] = frozenset()


def _json(data: bytes, what: str, kind: type) -> dict | list:
    """``data`` parsed as JSON of ``kind`` (dict or list); one line naming ``what`` when it is not one."""
    if len(data) > DOCUMENT_LIMIT:
        raise Nix2AciError(f"{what} is larger than {DOCUMENT_LIMIT} bytes")
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as error:  # RecursionError: nesting deeper than the parser goes
        raise Nix2AciError(f"{what} is not JSON: {error}") from None
    if not isinstance(document, kind):
        raise Nix2AciError(f"{what} is not a JSON {'object' if kind is dict else 'list'}")
    return document


def _check_path(path: str) -> None:
    """skopeo's ``oci:`` and ``docker-archive:`` split their argument at the first colon."""
    if ":" in path:
        raise UsageError(f"IMAGE {inputs.shown(path)}: a path with ':' cannot be given to skopeo; rename or link it")


def _index_images(path: str, digest: str) -> frozenset[str]:
    """The digests of the manifests the image index blob ``digest`` of the layout ``path`` lists."""
    algorithm, _, encoded = digest.partition(":")
    if algorithm != "sha256" or len(encoded) != 64 or not all(c in "0123456789abcdef" for c in encoded):
        raise Nix2AciError(f"{path}/index.json: the image index's digest {digest!r} is no sha256 digest")
    with inputs.open_beneath(path, f"blobs/sha256/{encoded}", "the image index", store_links=True) as file:
        index = _json(file.read(DOCUMENT_LIMIT + 1), f"{path}: the image index {digest}", dict)
    manifests = index.get("manifests")
    if not isinstance(manifests, list) or not all(isinstance(entry, dict) for entry in manifests):
        raise Nix2AciError(f"{path}: the image index {digest} has no list of manifests")
    return frozenset(entry.get("digest") for entry in manifests if isinstance(entry.get("digest"), str))


def from_layout(path: str) -> Source:
    """The one image of the OCI layout ``path``, and the artifacts about it. The whole layout is checked as
    nix2aci checks its own (:func:`nix2aci.oci.layout.problems`, layers not hashed): skopeo, which reads it
    next, follows a blob's link anywhere, and would upload what it points at."""
    _check_path(path)
    with inputs.open_beneath(path, "index.json", "the layout's index", store_links=True) as file:
        index = _json(file.read(DOCUMENT_LIMIT + 1), f"{path}/index.json", dict)
    manifests = index.get("manifests")
    if not isinstance(manifests, list) or not all(isinstance(entry, dict) for entry in manifests):
        raise Nix2AciError(f"{path}/index.json: manifests must be a list of descriptors")
    images = [entry for entry in manifests if ARTIFACT not in entry]
    artifacts = tuple(entry for entry in manifests if ARTIFACT in entry)
    if len(images) != 1:
        raise Nix2AciError(
            f"{path}/index.json: manifests must list exactly one image (and artifacts about it), it lists {len(images)}"
        )
    (entry,) = images
    media_type = entry.get("mediaType")
    if media_type not in (INDEX, *MANIFEST_MEDIA_TYPES):
        raise Nix2AciError(
            f"{path}/index.json: the image's mediaType {media_type!r} is neither an image manifest nor an index"
        )
    tag = (entry.get("annotations") or {}).get(REF_NAME) if isinstance(entry.get("annotations"), dict) else None
    if tag is not None and not isinstance(tag, str):
        raise Nix2AciError(f"{path}/index.json: the image's annotations[{REF_NAME!r}] is not a string")
    if tag is None and artifacts:
        raise Nix2AciError(
            f"{path}/index.json: the image has no {REF_NAME} annotation, which skopeo needs beside artifacts"
        )
    digest = entry.get("digest") if isinstance(entry.get("digest"), str) else None
    subjects = frozenset()
    if artifacts and digest:
        subjects = _index_images(path, digest) if media_type == INDEX else frozenset([digest])
    found = problems(path, hash_layers=False)
    if found:
        raise Nix2AciError(f"IMAGE {inputs.shown(path)} is not a valid OCI image layout: {found[0]}")
    # Without a tag, skopeo takes the index's only image.
    reference = f"oci:{path}:{tag}" if tag else f"oci:{path}"
    return Source(reference, tag, media_type == INDEX, digest, path, artifacts, subjects)


def from_archive(path: str) -> Source:
    """The one image of the docker-archive ``path``, read as a stream for its ``manifest.json``."""
    _check_path(path)
    manifest = None
    try:
        with inputs.open_input(path, "IMAGE") as file, tarfile.open(fileobj=file, mode="r|") as archive:
            for member in archive:
                if member.name in ("manifest.json", "./manifest.json") and member.isfile():
                    manifest = archive.extractfile(member).read(DOCUMENT_LIMIT + 1)
                    break
    except tarfile.TarError as error:
        raise Nix2AciError(f"IMAGE {inputs.shown(path)} is not a tar archive: {error}") from None
    if manifest is None:
        raise Nix2AciError(f"IMAGE {inputs.shown(path)} has no manifest.json: not a docker-archive")
    images = _json(manifest, f"{inputs.shown(path)}: manifest.json", list)
    if len(images) != 1 or not isinstance(images[0], dict):
        raise Nix2AciError(f"{inputs.shown(path)}: manifest.json must be a list of exactly one image")
    tags = images[0].get("RepoTags") or []
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise Nix2AciError(f"{inputs.shown(path)}: manifest.json's RepoTags is not a list of names")
    # "NAME:TAG": the tag follows the last colon that comes after the last slash.
    tag = tags[0].rpartition(":")[2] if tags and ":" in tags[0].rsplit("/", 1)[-1] else None
    return Source(f"docker-archive:{path}", tag, False, None)


def resolve(path: str) -> Source:
    """The image at ``path`` (see the module's docstring); one line when it is none of them."""
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, "oci-layout")):
            return from_layout(path)
        archives = sorted(name for name in os.listdir(path) if name.endswith(".tar"))
        if len(archives) == 1:
            return from_archive(os.path.join(path, archives[0]))
        raise UsageError(
            f"IMAGE {inputs.shown(path)} is neither an OCI image layout (no oci-layout file) "
            f"nor a docker-archive result (it holds {len(archives)} .tar files, not one)"
        )
    if path.endswith(".tar"):
        return from_archive(path)
    if not os.path.exists(path):
        raise UsageError(f"IMAGE {inputs.shown(path)} does not exist")
    raise UsageError(f"IMAGE {inputs.shown(path)}: give an OCI image layout directory or a docker-archive .tar")
