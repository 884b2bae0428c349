"""``nix2aci inspect``: what an ACI holds, read in one pass.

Input: the path of an ACI. Output: a JSON-able summary with the manifest, the
image ID (sha512 of the uncompressed tar), both sizes and the file count.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from typing import Any

from . import aci
from .errors import Nix2AciError
from .unarchive import open_decompressed


class _HashingReader:
    """A read-only stream that hashes and counts what is read from it."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.hash = hashlib.sha512()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.hash.update(data)
        self.size += len(data)
        return data


def inspect(path: str) -> dict[str, Any]:
    """The summary of the valid ACI at ``path``; raises Nix2AciError for an invalid one."""
    manifest, problems = aci.validate_archive(path)
    if problems:
        raise Nix2AciError(f"{path} is not a valid ACI: {problems[0]}")
    entries = files = 0
    with open_decompressed(path) as stream:
        # Reading the decompressed stream ourselves lets one pass give the image ID.
        reader = _HashingReader(stream)
        with tarfile.open(fileobj=reader, mode="r|") as tar:
            for member in tar:
                entries += 1
                files += member.isreg() and aci.clean_name(member.name).startswith("rootfs/")
        while reader.read(1 << 20):
            pass
    return {
        "file": path,
        "imageID": f"sha512-{reader.hash.hexdigest()}",
        "compressedSize": os.path.getsize(path),
        "uncompressedSize": reader.size,
        "entries": entries,
        "files": files,
        "manifest": manifest.to_json(),
    }
