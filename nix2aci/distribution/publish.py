"""``nix2aci push`` and ``nix2aci verify docker://...``: the steps, on checked arguments.

A push resolves the image (:mod:`.source`) and its destination (:mod:`.reference`), copies it with
skopeo (:mod:`.skopeo`), reads back the registry's manifest to check its digest is the one built,
and, asked to sign, has skopeo sign it with nix2aci's key into the registries.d store, then
verifies that signature with only the public key, as a consumer would (:mod:`.simple_signing`).
To a registry, the artifacts the layout holds about the image (its SBOM; each platform's, for an
index) follow it as referrers (:mod:`.referrers`), unsigned: each is bound to its image by its
``subject``, and the signature covers the image's manifest only. Other destinations (Docker, podman's
storage, a layout) keep no artifacts: they get the image alone.

An unchanged image is not copied again: when the registry's tag already names the manifest built (asked by
:func:`already_there`, one request), the image is there with all its blobs, since a registry accepts a manifest
only once it holds every blob it names, so skopeo is not run. The referrers are still attached, as on every
push. Asked to sign, a push skips the copy only when the lookaside already holds a signature of that digest,
for that identity, by nix2aci's key, that verifies: otherwise skopeo copies (nothing is uploaded: the blobs
are there) and signs, as on a first push. Whatever makes that question fail (no tag, another digest, an
error) leads to the copy. An image index counts as signed only when each of its platform images is too
(:mod:`.platform_signatures`: a consumer pulling one platform checks that image's signature).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from ..errors import Nix2AciError, UsageError
from . import platform_signatures, referrers, registries_d, registry, simple_signing, skopeo
from .reference import Destination
from .source import Source


@dataclass(frozen=True)
class Pushed:
    """What a push did: the destination (with its tag), the registry's manifest digest (None elsewhere),
    the signer's fingerprint (None unsigned), the referrers attached to the image (a registry's), and whether
    the registry already served the image, so that nothing was copied (``unchanged``)."""

    destination: Destination
    digest: str | None
    signer: str | None
    attached: tuple[referrers.Attached, ...] = ()
    unchanged: bool = False


def tagged(destination: Destination, source: Source) -> Destination:
    """``destination`` with the image's tag when it names none. Only a layout (``oci:``, ``oci-archive:``) may
    hold an untagged image: elsewhere an image with no tag of its own needs one in DEST."""
    if destination.tag:
        return destination
    if source.tag:
        return destination.with_tag(source.tag)
    if destination.transport in ("oci", "oci-archive"):
        return destination
    raise UsageError(f"DEST {destination}: the image has no tag of its own: add :TAG to DEST")


def signature_store(destination: Destination, directory: str) -> str:
    """The file:// URL where the signatures of ``destination`` are written, from registries.d ``directory``."""
    if destination.transport != "docker":
        raise UsageError(f"--sign: only a registry (docker://) destination keeps signatures, not {destination}")
    stores = registries_d.stores_for(directory, destination.docker_reference())
    if stores is None or stores.write is None:
        raise Nix2AciError(
            f"--sign: {directory} configures no lookaside for {destination.name}: add a YAML file there with "
            f"docker: {{{destination.registry}: {{lookaside-staging: file:///DIR}}}} (or pass --registries.d DIR)"
        )
    if not stores.write.startswith("file://"):
        raise Nix2AciError(f"--sign: {stores.source} writes signatures to {stores.write}; only file:// can be written")
    return stores.write


def registry_manifest(destination: Destination, options: skopeo.Options) -> tuple[str, bytes]:
    """The digest and the bytes of the manifest the registry serves for ``destination``."""
    manifest = skopeo.raw_manifest(str(destination), destination.name, options)
    return "sha256:" + hashlib.sha256(manifest).hexdigest(), manifest


def served_digest(client: registry.Client, tag: str) -> str | None:
    """The digest of the manifest (image or index) the registry of ``client`` serves for ``tag``, hashed from its
    bytes; None when the tag names none."""
    found = client.manifest(tag)
    return None if found is None else referrers.sha256(found[1])


def already_there(client: registry.Client, destination: Destination, digest: str) -> bool:
    """Whether the registry of ``client`` serves the manifest ``digest`` for ``destination``'s tag; False when it
    serves none or another, or the question fails (the copy that follows will tell why)."""
    try:
        return served_digest(client, destination.tag) == digest
    except Nix2AciError:
        return False


def signed_by(client: registry.Client, store: str, destination: Destination, digest: str, keys: bytes) -> str | None:
    """The fingerprint of the signer of a signature of ``digest`` for ``destination`` in the lookaside ``store``
    that ``keys`` verify, and, for an index, of each of its platform images (the registry of ``client`` serves
    it); None when one is missing (or cannot be read)."""
    try:
        signatures = simple_signing.read_signatures(store, destination.repository, digest)
        signer = simple_signing.verify(signatures, keys, destination.docker_reference(), digest).fingerprint
        served = client.manifest(digest)
        platform_signatures.verify_platforms(store, destination, served[1] if served else b"", keys)
        return signer
    except Nix2AciError:
        return None


def artifacts(source: Source) -> list[referrers.Artifact]:
    """The artifacts ``source``'s layout lists, read and checked: each refers to an image of the source."""
    found = []
    for descriptor in source.artifacts:
        artifact = referrers.read_artifact(source.path, descriptor, f"the artifact {descriptor.get('digest')}")
        if artifact.subject not in source.subjects:
            raise Nix2AciError(
                f"{source.path}/index.json: the artifact {descriptor.get('digest')} refers to {artifact.subject!r}, "
                "which is not the layout's image"
            )
        found.append(artifact)
    return found


def push(source: Source, destination: Destination, options: skopeo.Options, sign: bool) -> Pushed:
    """Copy ``source`` to ``destination`` (tagged) and, to a registry, its artifacts; sign the image when asked.
    See the module's docstring."""
    from ..signing import openpgp

    destination = tagged(destination, source)
    if destination.transport == "oci-archive" and os.path.lexists(destination.name):
        # skopeo writes the archive whole, through a link too: what was there would be lost.
        raise UsageError(f"DEST {destination}: {destination.name} exists; remove it or name a new file")
    # Read before anything is sent: a bad layout stops the push before the registry changes.
    to_attach = artifacts(source) if destination.transport == "docker" else []
    key = keys = store = None
    if sign:
        store = signature_store(destination, options.registries_d)
        gpg, key = openpgp.find_key()
        keys = openpgp.export_public_key(gpg, key).encode()
    client = registry.Client(destination.name, options) if destination.transport == "docker" else None
    if client and source.digest and already_there(client, destination, source.digest):
        signer = signed_by(client, store, destination, source.digest, keys) if key else None
        if signer or not key:
            attached = tuple(referrers.attach(client, artifact) for artifact in to_attach)
            return Pushed(destination, source.digest, signer, attached, unchanged=True)
    skopeo.copy(
        source.reference,
        str(destination),
        destination.registry if destination.transport == "docker" else str(destination),
        options,
        all_images=source.index,
        sign_by=key.fingerprint if key else None,
        gnupg_home=openpgp.default_home() if key else None,
    )
    if destination.transport != "docker":
        return Pushed(destination, None, None)
    digest = served_digest(client, destination.tag)
    if digest is None:
        raise Nix2AciError(f"{destination}: the registry serves no manifest for the tag just pushed")
    if source.digest and digest != source.digest:
        raise Nix2AciError(f"{destination} has the manifest {digest}, not the {source.digest} that was built")
    signer = None
    if key:
        signatures = simple_signing.read_signatures(store, destination.repository, digest)
        signer = simple_signing.verify(signatures, keys, destination.docker_reference(), digest).fingerprint
        served = client.manifest(digest)
        platform_signatures.verify_platforms(store, destination, served[1] if served else b"", keys)
    attached = tuple(referrers.attach(client, artifact) for artifact in to_attach)
    return Pushed(destination, digest, signer, attached)


def verify_pushed(destination: Destination, keys: bytes, options: skopeo.Options) -> list[tuple[str, str, str]]:
    """Verify the image a registry serves for ``destination`` (``docker://HOST/REPO:TAG``) against its signatures
    in the lookaside ``options.registries_d`` (a directory) gives, with only ``keys`` (armored public keys), and,
    for an index, each platform image's; return ``(platform, digest, signer)`` of each, the served manifest's
    first (its platform "")."""
    if destination.transport != "docker" or not destination.tag:
        raise UsageError(f"IMAGE {destination}: verify takes docker://HOST[:PORT]/REPO:TAG")
    stores = registries_d.stores_for(options.registries_d, destination.docker_reference())
    if stores is None or stores.read is None:
        raise Nix2AciError(
            f"{options.registries_d} configures no lookaside for {destination.name}: pass --registries.d DIR"
        )
    digest, manifest = registry_manifest(destination, options)
    signatures = simple_signing.read_signatures(stores.read, destination.repository, digest)
    signer = simple_signing.verify(signatures, keys, destination.docker_reference(), digest)
    return [
        ("", digest, signer.fingerprint),
        *platform_signatures.verify_platforms(stores.read, destination, manifest, keys),
    ]


def default_registries_d(option: str | None) -> str:
    """The registries.d directory: the option, else containers' default; it must be a directory when named."""
    if option is not None and not os.path.isdir(option):
        raise UsageError(f"--registries.d {option} is not a directory")
    return option or registries_d.default_directory()
