"""Reading archives back: tar streams of any compression an image may use, in bounded memory.

Input: an opened file (plain tar, gzip, bzip2 or xz, also several streams one
after another). Output: its uncompressed bytes in pieces of at most 1 MiB, and a
forward-only file object tarfile can read (:class:`TarStream`), with limits on
header sizes and xz memory, and a check of how the tar ended. Damaged, cut or
unknown compressed data raises :class:`Unreadable`; what is over a limit raises
NotChecked. The ACI and OCI readers share it; nothing here knows either format.
"""

from __future__ import annotations

import bz2
import io
import lzma
import tarfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO

from ..errors import NotChecked, SpecError

# The largest manifest nix2aci reads, which bounds the header extensions it reads too.
MAX_MANIFEST_SIZE = 1 << 20
# The most header bytes read for one member, PAX and GNU extensions included:
# tarfile reads each extension whole, and a hostile one may claim gigabytes.
MAX_HEADER_SIZE = MAX_MANIFEST_SIZE + (64 << 10)
# xz streams that need more memory than this are not decompressed: xz -9 needs
# 65 MiB, but a stream's header may ask for a 1.5 GiB dictionary.
XZ_MEMORY_LIMIT = 128 << 20
# Compressed bytes read at a time, and the most uncompressed bytes made at once.
_CHUNK = 1 << 16
PIECE_SIZE = 1 << 20
ZERO_BLOCK = bytes(tarfile.BLOCKSIZE)


class Unreadable(SpecError):
    """The archive cannot be read as a (compressed) tar; ``rule`` says why."""

    def __init__(self, rule: str) -> None:
        super().__init__("", rule)


class _Inflate:
    """zlib's decompressor of one gzip member, with the interface of bz2's and lzma's."""

    def __init__(self) -> None:
        self._zlib = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)

    @property
    def eof(self) -> bool:
        return self._zlib.eof

    @property
    def unused_data(self) -> bytes:
        return self._zlib.unused_data

    @property
    def needs_input(self) -> bool:
        return not self._zlib.unconsumed_tail

    def decompress(self, data: bytes, max_length: int) -> bytes:
        return self._zlib.decompress(self._zlib.unconsumed_tail + data, max_length)


# The compressions an ACI may use (spec/aci.md), by magic bytes.
_COMPRESSIONS: tuple[tuple[bytes, str, Callable[[], Any]], ...] = (
    (b"\x1f\x8b", "gzip", _Inflate),
    (b"BZh", "bzip2", bz2.BZ2Decompressor),
    (b"\xfd7zXZ\x00", "xz", lambda: lzma.LZMADecompressor(format=lzma.FORMAT_XZ, memlimit=XZ_MEMORY_LIMIT)),
)
# Compressions it may not use, recognised to say so.
_OTHER_COMPRESSIONS = (
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x5d\x00\x00", "lzma (the legacy .lzma format, not xz)"),
    (b"\x04\x22\x4d\x18", "lz4"),
    (b"\x1f\x9d", "compress (.Z)"),
)


def is_tar_header(block: bytes) -> bool:
    """Whether ``block`` (512 bytes) is a tar header block with a right checksum."""
    try:
        tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    except (tarfile.HeaderError, ValueError):
        return False
    return True


def _compression_named(head: bytes, compressions: Iterable[tuple[Any, ...]]) -> tuple[Any, ...] | None:
    """The entry of ``compressions`` whose magic ``head`` starts with, unless ``head`` is a tar header."""
    if is_tar_header(head[: tarfile.BLOCKSIZE]):
        return None
    return next((entry for entry in compressions if head.startswith(entry[0])), None)


def compression_of(head: bytes) -> str | None:
    """The compression, allowed or not, whose magic ``head`` starts with; None for a tar header or anything else."""
    entry = _compression_named(head, _COMPRESSIONS + _OTHER_COMPRESSIONS)
    return None if entry is None else entry[1]


def _decompressed(chunks: Iterator[bytes], name: str, new: Callable[[], Any]) -> Iterator[bytes]:
    """A file's uncompressed bytes, from its ``chunks`` (``name`` streams, one after another), in PIECE_SIZE pieces.

    Reads to the end of the file: what follows a stream must be another one
    (gzip, bzip2 and xz files may be concatenated), and a damaged or cut stream
    is an error (Unreadable), so the whole file is checked, as rkt reads it.
    """
    decompressor, data, streams, produced = new(), b"", 1, False
    while True:
        if decompressor.eof:
            data = decompressor.unused_data or next(chunks, b"")
            if not data:
                return
            decompressor, streams, produced = new(), streams + 1, False
        elif decompressor.needs_input:
            data = next(chunks, b"")
            if not data:
                if streams > 1 and not produced:
                    raise Unreadable(f"has bytes after the end of its {name} data that are not {name} data")
                raise Unreadable(f"has {name} data that ends early: it is cut short")
        else:
            data = b""
        try:
            piece = decompressor.decompress(data, PIECE_SIZE)
        except (zlib.error, OSError, EOFError, lzma.LZMAError) as error:
            if isinstance(error, lzma.LZMAError) and "memory usage limit" in str(error).lower():
                raise NotChecked(
                    f"its xz data needs over {XZ_MEMORY_LIMIT >> 20} MiB of memory to decompress,"
                    " more than nix2aci uses"
                ) from None
            if streams > 1 and not produced:
                raise Unreadable(f"has bytes after the end of its {name} data that are not {name} data") from None
            raise Unreadable(f"has damaged {name} data: {error}") from None
        if piece:
            produced = True
            yield piece


class TarStream:
    """The uncompressed bytes of an archive as tarfile reads them: forward only, in bounded reads.

    tarfile reads headers and member contents with read(), skips contents with
    seek() (here: reading on), and asks tell() where it is. ``budget`` is how many
    more bytes read() may return (the caller sets it before each step); a read
    beyond it is NotChecked, as tarfile reads each header extension whole.
    """

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self._pieces = pieces
        self._piece = b""
        self._at = 0  # how much of _piece has been read
        self.position = 0
        self.last = b""  # what the last read() returned
        self.budget = MAX_HEADER_SIZE

    def _fill(self) -> bool:
        """Make sure _piece has unread bytes; False at the end of the archive."""
        while self._at == len(self._piece):
            piece = next(self._pieces, None)
            if piece is None:
                return False
            self._piece, self._at = piece, 0
        return True

    def peek(self, size: int) -> bytes:
        """The next ``size`` bytes (fewer at the end), left unread."""
        while len(self._piece) - self._at < size:
            piece = next(self._pieces, None)
            if piece is None:
                break
            self._piece, self._at = self._piece[self._at :] + piece, 0
        return self._piece[self._at : self._at + size]

    def read(self, size: int = -1) -> bytes:
        """The next ``size`` bytes (fewer at the end)."""
        if size is None or size < 0 or size > self.budget:
            raise NotChecked(
                f"it has tar headers (with their PAX or GNU extensions) of over {MAX_HEADER_SIZE} bytes"
                " for one member, more than nix2aci reads"
            )
        parts = []
        while size and self._fill():
            part = self._piece[self._at : self._at + size]
            self._at += len(part)
            size -= len(part)
            parts.append(part)
        self.last = b"".join(parts)
        self.position += len(self.last)
        self.budget -= len(self.last)
        return self.last

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Read on to ``offset``; past the end, as in a file, later reads return nothing."""
        if whence != io.SEEK_SET or offset < self.position:
            raise io.UnsupportedOperation("an archive is read forward only")
        while self.position < offset and self._fill():
            step = min(offset - self.position, len(self._piece) - self._at)
            self._at += step
            self.position += step
        self.position = offset
        return offset

    def tell(self) -> int:
        """Where the next read starts."""
        return self.position

    def drain(self) -> None:
        """Read to the end (which checks what is left of the compressed data)."""
        while self._fill():
            self._at = len(self._piece)


def _chunks(file: BinaryIO, head: bytes, size: int) -> Iterator[bytes]:
    """``head``, then the rest of ``file`` in reads of ``size`` bytes: each byte read once, never a seek."""
    if head:
        yield head
    yield from iter(lambda: file.read(size), b"")


def uncompressed(file: BinaryIO) -> tuple[Iterator[bytes], str | None]:
    """The uncompressed bytes of an opened file in pieces, and the name of its compression (None: none).

    The file is read once, forward, from where it is (it may be a pipe, and is
    never read twice: what was checked is what is used). Raises Unreadable for a
    compression other than gzip, bzip2 or xz.
    """
    head = file.read(tarfile.BLOCKSIZE)
    compression = _compression_named(head, _COMPRESSIONS)
    if compression is not None:
        _, name, new = compression
        return _decompressed(_chunks(file, head, _CHUNK), name, new), name
    other = _compression_named(head, _OTHER_COMPRESSIONS)
    if other is not None:
        raise Unreadable(f"is compressed with {other[1]}; images may only be compressed with gzip, bzip2 or xz")
    return _chunks(file, head, PIECE_SIZE), None


def uncompressed_pieces(file: BinaryIO) -> Iterator[bytes]:
    """The uncompressed bytes of an opened tar, gzip, bzip2 or xz file, in pieces of at most 1 MiB.

    Memory stays bounded whatever the file (an xz stream asking for more than
    XZ_MEMORY_LIMIT raises NotChecked); damaged, cut or unknown compressed data
    raises SpecError (field "", the rule broken).
    """
    pieces, _ = uncompressed(file)
    return pieces


def end_problem(tar: tarfile.TarFile, stream: TarStream, members: int) -> str | None:
    """Why the tar stopped where it did, if not at its end-of-archive marker (two zero blocks).

    tarfile stops silently at a header it cannot read after the first, so a
    cut or damaged archive would pass for a shorter one without this check.
    """
    where, block = tar.offset, stream.last
    if stream.position == where + tarfile.BLOCKSIZE and block == ZERO_BLOCK:
        stream.budget = tarfile.BLOCKSIZE
        second = stream.read(tarfile.BLOCKSIZE)
        if second == ZERO_BLOCK:
            return None
        if len(second) < tarfile.BLOCKSIZE:
            return "ends after one zero block: a tar archive ends with two (it is cut short)"
        return f"has a zero block followed by data at offset {where}: a damaged tar header"
    if stream.position == where and not block:
        return f"ends after {members} members without the tar end-of-archive marker (two zero blocks): it is cut short"
    if stream.position == where + len(block) and len(block) < tarfile.BLOCKSIZE:
        return f"ends in the middle of the tar header at offset {where}: it is cut short"
    reason = "bad checksum" if len(block) == tarfile.BLOCKSIZE and not is_tar_header(block) else "bad extension"
    return f"has an unreadable tar header at offset {where} ({reason})"
