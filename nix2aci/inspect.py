"""``nix2aci inspect``: what an ACI holds, read in one bounded pass.

Input: the path of an ACI. Output: a JSON-able summary with the manifest, the
image ID (sha512 of the uncompressed tar), both sizes and the file count. The
file is opened once (:func:`nix2aci.inputs.open_input`) and read once, by the
checks of ``nix2aci validate`` (:func:`nix2aci.aci.members.read_aci`, bounded in memory),
which hash and count as they go.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from collections.abc import Iterator
from typing import Any

from . import inputs
from .aci.members import checked_manifest, clean_name, read_aci
from .errors import Nix2AciError, NotChecked


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
    """The summary of the valid ACI at ``path``.

    Raises InputError for what is not a regular file, Nix2AciError for an
    invalid ACI, one that cannot be checked, or a failed read.
    """
    tally = _Tally()
    with inputs.open_input(path, "image") as file:
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
