"""Deterministic tar archives of a plan, hashed and compressed in one pass.

Input: plan entries (see :mod:`nix2aci.plan`) already named as tar members.
Output: the compressed archive written to a binary stream, and an
:class:`ArchiveSummary` with the digest of the uncompressed tar (the ACI image
ID, the OCI diff_id) and of the compressed bytes (the OCI blob digest).

Nothing here knows about ACI or OCI. Determinism: members in plan order, one
fixed mtime, owners from the plan (named root when 0),
PAX format, and compressors that write no name or time.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import tarfile
import zlib
from collections.abc import Iterable
from typing import BinaryIO

import attrs

from .plan import Entry, Kind

# The store's own mtime: what Nix gives every file in /nix/store.
MTIME = 1
COMPRESSIONS = ("gzip", "xz", "bzip2", "none")
_TAR_TYPES = {Kind.DIRECTORY: tarfile.DIRTYPE, Kind.FILE: tarfile.REGTYPE, Kind.SYMLINK: tarfile.SYMTYPE}


@attrs.frozen
class ArchiveSummary:
    """What writing an archive measured."""

    members: int
    uncompressed_size: int
    uncompressed_digest: str
    compressed_size: int
    compressed_digest: str


class _Tee:
    """A write-only stream that hashes and counts what passes through it."""

    def __init__(self, sink: BinaryIO, algorithm: str) -> None:
        self.sink = sink
        self.hash = hashlib.new(algorithm)
        self.size = 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        return self.sink.write(data)

    def flush(self) -> None:
        self.sink.flush()


class _Compressor:
    """A write-only stream that compresses into ``sink``; ``close`` ends the stream, not ``sink``."""

    def __init__(self, sink: BinaryIO, compression: str, level: int | None) -> None:
        self.sink = sink
        self._compressor = _compressor(compression, level)

    def write(self, data: bytes) -> int:
        self.sink.write(self._compressor.compress(data) if self._compressor else data)
        return len(data)

    def close(self) -> None:
        if self._compressor:
            self.sink.write(self._compressor.flush())


def _compressor(compression: str, level: int | None):
    """A compress/flush object for ``compression`` at ``level`` (None: the tool's default), or None for "none"."""
    if compression == "gzip":
        # wbits 31: a gzip header with no file name and time zero, as gzip -n writes.
        return zlib.compressobj(6 if level is None else level, zlib.DEFLATED, 31)
    if compression == "xz":
        return lzma.LZMACompressor(format=lzma.FORMAT_XZ, preset=6 if level is None else level)
    if compression == "bzip2":
        return bz2.BZ2Compressor(9 if level is None else max(level, 1))
    if compression == "none":
        return None
    raise ValueError(f"compression must be one of {', '.join(COMPRESSIONS)}, got {compression!r}")


def _tar_info(entry: Entry) -> tarfile.TarInfo:
    """The tar header of one entry."""
    info = tarfile.TarInfo(entry.path)
    info.type = _TAR_TYPES[entry.kind]
    info.mode = entry.mode
    info.uid, info.gid = entry.uid, entry.gid
    info.uname = "root" if entry.uid == 0 else ""
    info.gname = "root" if entry.gid == 0 else ""
    info.mtime = MTIME
    if entry.kind is Kind.FILE:
        info.size = entry.size
    elif entry.kind is Kind.SYMLINK:
        info.linkname = entry.target
    return info


def write_archive(
    entries: Iterable[Entry],
    output: BinaryIO,
    *,
    compression: str = "gzip",
    level: int | None = None,
    uncompressed_digest: str = "sha512",
    compressed_digest: str = "sha256",
) -> ArchiveSummary:
    """Write ``entries`` in order as one compressed tar to ``output``.

    Each file's bytes are streamed from its source; nothing image-sized is held
    in memory or written twice. The digests are hex strings of the named
    hashlib algorithms.
    """
    compressed = _Tee(output, compressed_digest)
    compressor = _Compressor(compressed, compression, level)
    uncompressed = _Tee(compressor, uncompressed_digest)
    members = 0
    with tarfile.open(fileobj=uncompressed, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            info = _tar_info(entry)
            if entry.kind is Kind.FILE and entry.source is not None:
                with open(entry.source, "rb") as source:
                    tar.addfile(info, source)
            elif entry.kind is Kind.FILE:
                tar.addfile(info, io.BytesIO(entry.content or b""))
            else:
                tar.addfile(info)
            members += 1
    compressor.close()
    return ArchiveSummary(
        members=members,
        uncompressed_size=uncompressed.size,
        uncompressed_digest=uncompressed.hash.hexdigest(),
        compressed_size=compressed.size,
        compressed_digest=compressed.hash.hexdigest(),
    )


# How to read the compressions an ACI may use, by their magic bytes (spec/aci.md).
_MAGIC = ((b"\x1f\x8b", gzip.open), (b"BZh", bz2.open), (b"\xfd7zXZ\x00", lzma.open))


def open_decompressed(path: str) -> BinaryIO:
    """The uncompressed byte stream of a tar, gzip, bzip2 or xz file."""
    with open(path, "rb") as file:
        head = file.read(6)
    opener = next((opener for magic, opener in _MAGIC if head.startswith(magic)), open)
    return opener(path, "rb")
