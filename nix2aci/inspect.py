"""``nix2aci inspect``: what an ACI, a docker-archive or an OCI image layout holds, read in one bounded pass.

Input: the path of an ACI, of an OCI image layout, or of a docker-archive (a tar not named .aci, or a
directory holding exactly one, as ``nix2aci validate`` tells them apart). Output: a
JSON-able summary. Of an ACI: the manifest, the image ID (sha512 of the
uncompressed tar), both sizes and the file count. The file is opened once
(:func:`nix2aci.inputs.open_input`) and read once, by the checks of ``nix2aci
validate`` (:func:`nix2aci.aci.members.read_aci`, bounded in memory), which hash
and count as they go. Of a docker-archive: each image's tags, ID (its config's
digest), config and layers (member, size, digest, diff_id, compression), from
the checks of :mod:`nix2aci.oci.archive_check`. Of an OCI image layout (a
directory holding ``oci-layout``): its images and artifacts, see
:mod:`nix2aci.oci.layout_summary`.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from collections.abc import Iterator
from typing import Any, BinaryIO

from . import inputs
from .aci.members import checked_manifest, clean_name, read_aci
from .errors import Nix2AciError, NotChecked
from .oci import archive_check, layout_summary
from .validate import detect_directory, detect_file


class _Tally:
    """The image ID, uncompressed size and member counts of one read of an archive."""

    def __init__(self) -> None:
        self.hash = hashlib.sha512()
        self.size = 0
        self.entries = 0
        self.files = 0
        self._pieces: Iterator[bytes] = iter(())

    def pieces_through(self, pieces: Iterator[bytes]) -> Iterator[bytes]:
        """``pieces``, hashed and counted as they pass (kept to read on after the tar's end)."""
        self._pieces = self._hashed(pieces)
        return self._pieces

    def _hashed(self, pieces: Iterator[bytes]) -> Iterator[bytes]:
        for piece in pieces:
            self.hash.update(piece)
            self.size += len(piece)
            yield piece

    def on_member(self, member: tarfile.TarInfo) -> None:
        """Count a member, and a regular file of the rootfs."""
        self.entries += 1
        self.files += member.isreg() and clean_name(member.name).startswith("rootfs/")

    def finish(self) -> None:
        """Hash what follows the tar's end (a plain tar's padding): the image ID covers the whole uncompressed file."""
        for _ in self._pieces:
            pass


def inspect(path: str) -> dict[str, Any]:
    """The summary of the valid ACI, docker-archive or OCI image layout at ``path``.

    Raises InputError for what is neither a regular file nor a docker-archive's
    or OCI image layout's directory, Nix2AciError for an invalid image, one that cannot be checked, or
    a failed read.
    """
    if os.path.isdir(path) and detect_directory(path) == "oci-layout":
        return layout_summary.summary(path)
    if os.path.isdir(path) and (name := archive_check.archive_in(path)):
        with inputs.open_beneath(path, name, "docker-archive") as file:
            return inspect_archive(path, file)
    with inputs.open_input(path, "image") as file:
        if detect_file(path, file.read(tarfile.BLOCKSIZE)) == "docker-archive":
            return inspect_archive(path, file)
        return inspect_aci(path, file)


def _layer_summary(layer: archive_check.ArchiveLayer) -> dict[str, Any]:
    """A layer of a docker-archive image, as inspect shows it."""
    return {
        "member": layer.member,
        "size": layer.size,
        "digest": f"sha256:{layer.digest}",
        "diffID": layer.diff_id,
        "compression": layer.compression,
    }


def inspect_archive(path: str, file: BinaryIO) -> dict[str, Any]:
    """The summary of the valid docker-archive opened as ``file`` (``path`` names it in messages and output)."""
    try:
        reading = archive_check.read(file)
    except NotChecked as reason:
        raise Nix2AciError(f"{inputs.shown(path)} cannot be inspected: {reason}") from None
    except OSError as error:
        raise Nix2AciError(f"{inputs.shown(path)} cannot be read: {error.strerror or error}") from None
    if reading.problems:
        raise Nix2AciError(f"{inputs.shown(path)} is not a valid docker-archive: {reading.problems[0]}")
    images = [
        {
            "repoTags": list(image.repo_tags),
            "configMember": image.config_member,
            "layers": [_layer_summary(layer) for layer in image.layers],
            "config": image.config,
        }
        for image in reading.images
    ]
    return {"file": path, "format": "docker-archive", "size": os.fstat(file.fileno()).st_size, "images": images}


def inspect_aci(path: str, file: BinaryIO) -> dict[str, Any]:
    """The summary of the valid ACI at ``path``, opened as ``file`` (read from its start).

    Raises Nix2AciError for an invalid ACI, one that cannot be checked, or a
    failed read.
    """
    tally = _Tally()
    try:
        manifest, problems = checked_manifest(
            read_aci(path, file, pieces_through=tally.pieces_through, on_member=tally.on_member)
        )
        if problems:
            raise Nix2AciError(f"{inputs.shown(path)} is not a valid ACI: {problems[0]}")
        tally.finish()
    except NotChecked as reason:
        raise Nix2AciError(f"{inputs.shown(path)} cannot be inspected: {reason}") from None
    except OSError as error:
        raise Nix2AciError(f"{inputs.shown(path)} cannot be read: {error.strerror or error}") from None
    compressed_size = os.fstat(file.fileno()).st_size
    return {
        "file": path,
        "imageID": f"sha512-{tally.hash.hexdigest()}",
        "compressedSize": compressed_size,
        "uncompressedSize": tally.size,
        "entries": tally.entries,
        "files": tally.files,
        "manifest": manifest.to_json(),
    }
