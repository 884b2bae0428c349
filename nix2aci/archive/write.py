"""Deterministic tar archives of a plan, hashed and compressed in one pass.

Input: plan entries (see :mod:`nix2aci.build.plan`) already named as tar members.
Output: the compressed archive written to a binary stream, and an
:class:`ArchiveSummary` with the digest of the uncompressed tar (the ACI image
ID, the OCI diff_id) and of the compressed bytes (the OCI blob digest).

Nothing here knows about ACI or OCI. Determinism: members in plan order, one
fixed mtime, owners from the plan (named root when 0),
PAX format, and compressors that write no name or time.

The compressor is the registry's (:mod:`nix2aci.archive.compression`): gzip is
compressed on every core by :mod:`nix2aci.archive.pgzip`, with the same bytes for
any number of cores. xz, bzip2 and zstd stay one stream on one core: xz needs
about 94 MiB per compressor at its default preset, so one per core would break
the memory bound; zstd at its level 3 is faster on one core than gzip on two;
all three are opt-in.
"""

from __future__ import annotations

import hashlib
import struct
import tarfile
from collections.abc import Iterable
from typing import BinaryIO

import attrs

from ..build.plan import Entry, Kind
from ..errors import Nix2AciError
from .compression import GZIP, Compression

# The store's own mtime: what Nix gives every file in /nix/store.
MTIME = 1
# Bytes read from a source file per call: large, so a big file costs few calls.
_READ_SIZE = 1 << 20
# Writes below this size are joined before they go on (see _Batcher).
_BATCH_SIZE = 64 << 10
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


# A ustar header (POSIX.1-1988) as tarfile lays it out; the 12 bytes at the end are padding.
_USTAR = struct.Struct("100s8s8s8s12s12s8s1s100s8s32s32s8s8s155s12x")
_CHECKSUM_AT = 148
_PAX_NAME = b"././@PaxHeader"


def _ustar(
    name: bytes,
    kind: bytes,
    *,
    mode: int = 0,
    uid: int = 0,
    gid: int = 0,
    size: int = 0,
    mtime: int = 0,
    target: bytes = b"",
    owner: bytes = b"",
) -> bytes:
    """One 512-byte ustar header block, fields cut to their width, as tarfile packs it.

    ``owner`` is the user and group name, given only to the IDs that are 0.
    """
    header = _USTAR.pack(
        name,
        b"%07o\0" % mode,
        b"%07o\0" % uid,
        b"%07o\0" % gid,
        b"%011o\0" % size,
        b"%011o\0" % mtime,
        b" " * 8,
        kind,
        target,
        tarfile.POSIX_MAGIC,
        owner if uid == 0 else b"",
        owner if gid == 0 else b"",
        b"",
        b"",
        b"",
    )
    # The checksum is the sum of the header's bytes with its own field as spaces.
    checksum = b"%06o\0" % sum(header)
    return header[:_CHECKSUM_AT] + checksum + header[_CHECKSUM_AT + len(checksum) :]


def _pax_record(keyword: bytes, value: bytes) -> bytes:
    """``LENGTH keyword=value\\n``, LENGTH counting its own digits (POSIX pax)."""
    length = len(keyword) + len(value) + 3
    total = length + len(str(length))
    while total != length + len(str(total)):
        total = length + len(str(total))
    return b"%d %s=%s\n" % (total, keyword, value)


def _tar_header(entry: Entry) -> bytes:
    """The tar header of one entry: exactly the bytes of tarfile's PAX_FORMAT ``tobuf``.

    Entries with ASCII names and targets and ustar-sized numbers, the store's
    usual, are packed here, several times faster than tarfile does it, which
    matters for closures of many small files: in ustar fields, with a pax
    ``path`` or ``linkpath`` record before them when a name is too long. The
    rest (non-ASCII names, large numbers) tarfile encodes.
    """
    name = f"{entry.path}/" if entry.kind is Kind.DIRECTORY else entry.path
    target = entry.target or ""
    if not (
        name.isascii()
        and target.isascii()
        and 0 <= entry.uid < 8**7
        and 0 <= entry.gid < 8**7
        and 0 <= entry.size < 8**11
    ):
        return _tar_info(entry).tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    name_bytes, target_bytes = name.encode("ascii"), target.encode("ascii")
    header = _ustar(
        name_bytes,
        _TAR_TYPES[entry.kind],
        mode=entry.mode & 0o7777,
        uid=entry.uid,
        gid=entry.gid,
        size=entry.size if entry.kind is Kind.FILE else 0,
        mtime=MTIME,
        target=target_bytes,
        owner=b"root",
    )
    records = b""
    if len(name_bytes) > tarfile.LENGTH_NAME:
        records += _pax_record(b"path", name_bytes)
    if len(target_bytes) > tarfile.LENGTH_LINK:
        records += _pax_record(b"linkpath", target_bytes)
    if not records:
        return header
    # tarfile's pax header block: only its name, type and size are set.
    pax = _ustar(_PAX_NAME, tarfile.XHDTYPE, size=len(records))
    return pax + records + bytes(-len(records) % tarfile.BLOCKSIZE) + header


def _write_contents(entry: Entry, sink: _Batcher) -> None:
    """Write a FILE entry's ``size`` bytes, then the zeros that fill its last 512-byte tar block.

    Each read asks for one byte more than is left, so a file's end is seen
    without an extra call; a source whose size changed since it was planned is
    an error, as it would make the header lie.
    """
    if entry.source is None:
        content = entry.content or b""
        if len(content) != entry.size:
            raise Nix2AciError(f"/{entry.path}: {len(content)} bytes of content, but size {entry.size}")
        sink.write(content)
    else:
        with open(entry.source, "rb") as source:
            remaining = entry.size
            while True:
                wanted = min(remaining + 1, _READ_SIZE)
                chunk = source.read(wanted)
                if len(chunk) > remaining:
                    raise Nix2AciError(f"{entry.source} became longer while it was archived")
                sink.write(chunk)
                remaining -= len(chunk)
                if len(chunk) < wanted:  # the end of the file
                    break
            if remaining:
                raise Nix2AciError(f"{entry.source} became shorter while it was archived")
    sink.write(bytes(-entry.size % tarfile.BLOCKSIZE))


class _Batcher:
    """Joins small writes (headers, small files, padding) into pieces of at least :data:`_BATCH_SIZE` bytes.

    Every layer below (hashing, CRC, block cutting) has a cost per call; a
    closure of many small files would otherwise pay it several times a file.
    """

    def __init__(self, sink: _Tee) -> None:
        self.sink = sink
        self._pending = bytearray()

    def write(self, data: bytes) -> None:
        if len(data) >= _BATCH_SIZE:
            self.flush()
            self.sink.write(data)
            return
        self._pending += data
        if len(self._pending) >= _BATCH_SIZE:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self.sink.write(bytes(self._pending))
            self._pending.clear()


def write_archive(
    entries: Iterable[Entry],
    output: BinaryIO,
    *,
    compression: Compression = GZIP,
    level: int | None = None,
    workers: int | None = None,
    uncompressed_digest: str = "sha512",
    compressed_digest: str = "sha256",
) -> ArchiveSummary:
    """Write ``entries`` in order as one compressed tar to ``output``.

    Each file's bytes are streamed from its source; nothing image-sized is held
    in memory or written twice. ``compression`` is a registered one (the caller's
    format has allowed it), at ``level`` (None: its default). The digests are hex
    strings of the named hashlib algorithms. ``workers``: the threads that
    compress gzip (None: see :func:`nix2aci.archive.pgzip.default_workers`; the
    others use one); the bytes do not depend on it.

    The bytes are those of tarfile's stream mode ("w|", PAX format), which the
    tests check, but written here directly: headers from :func:`_tar_header`,
    contents in large pieces, without tarfile's 10 KiB record buffer.
    """
    compressed = _Tee(output, compressed_digest)
    members = 0
    with compression.writer(compressed, level, workers) as compressor:
        uncompressed = _Tee(compressor, uncompressed_digest)
        batcher = _Batcher(uncompressed)
        size = 0
        for entry in entries:
            header = _tar_header(entry)
            batcher.write(header)
            size += len(header)
            if entry.kind is Kind.FILE:
                _write_contents(entry, batcher)
                size += entry.size + -entry.size % tarfile.BLOCKSIZE
            members += 1
        # The end-of-archive marker, then zeros up to a whole record, as tarfile ends a stream.
        end = size + 2 * tarfile.BLOCKSIZE
        batcher.write(bytes(2 * tarfile.BLOCKSIZE + -end % tarfile.RECORDSIZE))
        batcher.flush()
    return ArchiveSummary(
        members=members,
        uncompressed_size=uncompressed.size,
        uncompressed_digest=uncompressed.hash.hexdigest(),
        compressed_size=compressed.size,
        compressed_digest=compressed.hash.hexdigest(),
    )
