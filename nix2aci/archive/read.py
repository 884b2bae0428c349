"""Reading tar archives back, in bounded memory: the tar stream over uncompressed pieces.

Input: the uncompressed pieces of an archive (from
:func:`nix2aci.archive.compression.uncompressed`). Output: a forward-only file
object tarfile can read (:class:`TarStream`), with a limit on header sizes,
and a check of how the tar ended (:func:`end_problem`). An uncompressed tar in a
regular file can instead be indexed by its headers alone (:func:`tar_headers`),
its members' contents skipped by seeking and read later where they lie. What cannot be read
raises :class:`Unreadable`; what is over a limit raises NotChecked. The ACI and
OCI readers share it; nothing here knows either format.
"""

from __future__ import annotations

import contextlib
import io
import tarfile
from collections.abc import Iterator
from typing import BinaryIO

from ..errors import NotChecked, SpecError

# The largest manifest nix2aci reads, which bounds the header extensions it reads too.
MAX_MANIFEST_SIZE = 1 << 20
# The most header bytes read for one member, PAX and GNU extensions included:
# tarfile reads each extension whole, and a hostile one may claim gigabytes.
MAX_HEADER_SIZE = MAX_MANIFEST_SIZE + (64 << 10)
# The most uncompressed bytes made at once.
PIECE_SIZE = 1 << 20
ZERO_BLOCK = bytes(tarfile.BLOCKSIZE)


class Unreadable(SpecError):
    """The archive cannot be read as a (compressed) tar; ``rule`` says why."""

    def __init__(self, rule: str) -> None:
        super().__init__("", rule)


def is_tar_header(block: bytes) -> bool:
    """Whether ``block`` (512 bytes) is a tar header block with a right checksum."""
    try:
        tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    except (tarfile.HeaderError, ValueError):
        return False
    return True


def _check_budget(size: int | None, budget: int) -> None:
    """Raise NotChecked when a read of ``size`` bytes (None or negative: all) is over ``budget``."""
    if size is None or size < 0 or size > budget:
        raise NotChecked(
            f"it has tar headers (with their PAX or GNU extensions) of over {MAX_HEADER_SIZE} bytes"
            " for one member, more than nix2aci reads"
        )


# What tarfile raises for an archive it cannot read (the stream itself raises Unreadable or NotChecked).
TAR_ERRORS = (tarfile.TarError, ValueError, OverflowError, IndexError, RecursionError, EOFError)


@contextlib.contextmanager
def tar_errors(rule: str) -> Iterator[None]:
    """Turn what tarfile raises for a damaged archive into Unreadable: "must be ``rule``: why", on one line."""
    try:
        yield
    except TAR_ERRORS as error:
        if str(error) == "unexpected end of data":  # what tarfile says when a member's contents are cut
            raise Unreadable("ends in the middle of a member's contents: it is cut short") from None
        # tarfile lists what it tried over several lines: keep the message on one.
        reason = " ".join(str(error).split()) or type(error).__name__
        raise Unreadable(f"must be {rule}: {reason}") from None


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
        _check_budget(size, self.budget)
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


def end_problem(tar: tarfile.TarFile, stream: TarStream | _SeekingStream, members: int) -> str | None:
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


class _SeekingStream:
    """An uncompressed tar in a regular file as tarfile reads its headers: reads within a budget (see
    :class:`TarStream`), contents skipped by seeking, so only the headers are read."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self.position = 0
        self.last = b""
        self.budget = MAX_HEADER_SIZE

    def read(self, size: int = -1) -> bytes:
        """The next ``size`` bytes (fewer at the end)."""
        _check_budget(size, self.budget)
        self.last = self._file.read(size)
        self.position += len(self.last)
        self.budget -= len(self.last)
        return self.last

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Go to ``offset`` (past the end, as in a file, later reads return nothing)."""
        self.position = self._file.seek(offset, whence)
        return self.position

    def tell(self) -> int:
        """Where the next read starts."""
        return self.position


def tar_headers(file: BinaryIO, rule: str, max_members: int) -> Iterator[tarfile.TarInfo]:
    """The members of the uncompressed tar in the regular ``file`` (read from its start), headers only.

    Each member's contents lie at ``offset_data``, ``size`` bytes: they are
    skipped by seeking, never read. The iteration ends by checking how the tar
    ends (:func:`end_problem`). Raises Unreadable (with ``rule``, what the file
    must be) for what is no readable tar, NotChecked for headers over
    MAX_HEADER_SIZE or over ``max_members`` members, OSError for a failed read.
    """
    stream = _SeekingStream(file)
    with tar_errors(rule):  # a TarFile over a stream holds nothing to close
        tar = tarfile.TarFile(fileobj=stream)  # type: ignore[arg-type]
    members = 0
    while True:
        stream.budget = MAX_HEADER_SIZE
        with tar_errors(rule):
            member = tar.next()
        if member is None:
            break
        tar.members.clear()  # tarfile keeps every member read
        members += 1
        if members > max_members:
            raise NotChecked(f"it has over {max_members} members, more than nix2aci reads")
        yield member
    with tar_errors(rule):
        end = end_problem(tar, stream, members)
    if end is not None:
        raise Unreadable(end)
