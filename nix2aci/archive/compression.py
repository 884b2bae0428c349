"""Every compression nix2aci knows, in one registry: how each is recognised, written and read back.

A :class:`Compression` holds a compression's name, its magic bytes, its OCI
media-type suffix, its compressor and its bounded decompressor. A format says
which it allows with an :class:`Allowed` set (the ACI's in :mod:`nix2aci.aci.members`,
the OCI layers' in :mod:`nix2aci.oci.layout`); nothing here knows either format.

Writing: :meth:`Compression.writer` (gzip on every core with :mod:`.pgzip`, the
others on one core). Reading: :func:`uncompressed` recognises a file's
compression by its magic, refuses one the format does not allow, and
decompresses in bounded memory. Some compressions are only recognised, to say
what a file is (legacy lzma, lz4, compress): no format may allow those until
they have a compressor and a decompressor here. Standard library only (the
builder writes with it), but for zstd: the ``zstandard`` module (Debian's
python3-zstandard, nixpkgs' python3Packages.zstandard), imported by
:func:`zstandard_module` only when zstd data is written or read.
"""

from __future__ import annotations

import bz2
import lzma
import sys
import tarfile
import zlib
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, Protocol

import attrs

from ..errors import NotChecked
from .pgzip import ParallelGzipWriter
from .read import PIECE_SIZE, Unreadable, is_tar_header

# xz streams that need more memory than this are not decompressed: xz -9 needs
# 65 MiB, but a stream's header may ask for a 1.5 GiB dictionary.
XZ_MEMORY_LIMIT = 128 << 20
# Compressed bytes read at a time.
_CHUNK = 1 << 16
# zstd's level: its own default (its command line's). On 42 MiB of tar of Perl's library it compresses 3 times
# faster on one core than pgzip's gzip -6 on two, 11% smaller; level 9 is 14% smaller still, but 3 times slower.
ZSTD_LEVEL = 3
# zstd frames that ask for a larger window (the history a decompressor keeps) than this are not decompressed:
# zstd's own default limit, which its command line keeps without --memory, and xz's limit above.
ZSTD_WINDOW_LIMIT = 128 << 20
# Compressed bytes handed to zstd per call: zstandard's decompressor has no output limit, and a 4-byte zstd
# block can stand for 128 KiB, so one call makes at most 8 MiB whatever the data.
_ZSTD_SLICE = 256


class Writer(Protocol):
    """A write-only stream, used as a context manager: leaving it without an exception ends the compressed data."""

    def write(self, data: bytes) -> int: ...

    def __enter__(self) -> Writer: ...

    def __exit__(self, kind, value, traceback) -> None: ...


class _OneCore:
    """A write-only stream that writes what ``compressor`` (compress/flush, or None: copy) makes of its input.

    ``close`` ends the compressed stream, not ``sink``; used as a context manager,
    it ends it only when no exception came.
    """

    def __init__(self, sink: BinaryIO, compressor: Any) -> None:
        self.sink = sink
        self._compressor = compressor

    def write(self, data: bytes) -> int:
        self.sink.write(self._compressor.compress(data) if self._compressor else data)
        return len(data)

    def close(self) -> None:
        if self._compressor:
            self.sink.write(self._compressor.flush())

    def __enter__(self) -> _OneCore:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.close()


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


class MissingLibrary(NotChecked):
    """The Python module a compression needs is not in the interpreter running nix2aci; says what to install."""


class _Damaged(Exception):
    """A decompressor found damaged data (what zlib.error, OSError and lzma.LZMAError say for the others)."""


def zstandard_module() -> Any:
    """The ``zstandard`` module, imported here, on the first use of zstd, and nowhere else: a build without zstd
    loads only the standard library, attrs and jsonschema. Raises MissingLibrary saying what to install."""
    try:
        import zstandard
    except ImportError:
        raise MissingLibrary(
            f"zstd needs the Python module zstandard, which {sys.executable} lacks:"
            " install Debian's python3-zstandard, or nixpkgs' python3Packages.zstandard"
        ) from None
    return zstandard


def _zstd_writer(sink: BinaryIO, level: int | None, workers: int | None) -> _OneCore:
    """A zstd frame of the input, written to ``sink`` at ``level`` (None: ZSTD_LEVEL).

    One thread whatever ``workers``: the bytes are then the same on any
    machine (zstd's multi-threaded frames differ from one-threaded ones, and
    one core compresses a layer at level 3 faster than pgzip does on two).
    Nothing in the frame depends on the run: a checksum, no content size (not
    known before the end of a stream), no dictionary ID.
    """
    zstandard = zstandard_module()
    compressor = zstandard.ZstdCompressor(
        level=ZSTD_LEVEL if level is None else level,
        write_checksum=True,
        write_content_size=False,
        write_dict_id=False,
        threads=0,
    )
    return _OneCore(sink, compressor.compressobj())


class _Unzstd:
    """zstandard's decompressor of one zstd frame, with the interface of bz2's, in bounded memory.

    zstandard's ``decompress`` has no ``max_length``: the compressed bytes go
    to it in slices of _ZSTD_SLICE, which bounds what one call makes, and
    what exceeds ``max_length`` waits here for the next call. A frame asking
    for a window over ZSTD_WINDOW_LIMIT raises NotChecked.
    """

    def __init__(self) -> None:
        zstandard = zstandard_module()
        self._error = zstandard.ZstdError
        self._zstd = zstandard.ZstdDecompressor(max_window_size=ZSTD_WINDOW_LIMIT).decompressobj()
        self._input = memoryview(b"")  # compressed bytes not yet given to zstd
        self._output = bytearray()  # decompressed bytes not yet returned

    @property
    def eof(self) -> bool:
        return self._zstd.eof and not self._output

    @property
    def unused_data(self) -> bytes:
        return self._zstd.unused_data + bytes(self._input) if self._zstd.eof else b""

    @property
    def needs_input(self) -> bool:
        return not self._input and not self._output and not self._zstd.eof

    def decompress(self, data: bytes, max_length: int) -> bytes:
        if data:
            self._input = memoryview(bytes(self._input) + data)
        while len(self._output) < max_length and self._input and not self._zstd.eof:
            piece, self._input = self._input[:_ZSTD_SLICE], self._input[_ZSTD_SLICE:]
            try:
                self._output += self._zstd.decompress(piece)
            except self._error as error:
                reason = str(error).removeprefix("zstd decompressor error: ")
                if "too much memory" in reason:
                    raise NotChecked(
                        f"its zstd data needs a window over {ZSTD_WINDOW_LIMIT >> 20} MiB to decompress,"
                        " more than nix2aci uses"
                    ) from None
                raise _Damaged(reason) from None
        piece = bytes(self._output[:max_length])
        del self._output[:max_length]
        return piece


@attrs.frozen
class Compression:
    """One compression.

    ``name``: how arguments, messages and media types name it; ``described``:
    how a message names it (default: ``name``); ``magic``: the bytes its data
    starts with (empty for "none"); ``media_suffix``: what it adds to an OCI
    media type ("+gzip"; "" for none; None: OCI registers none);
    ``compressor(sink, level, workers)``: the write-only stream of its data
    (``level`` None: ``default_level``; ``workers``: threads, where it has
    several); ``decompressor()``: a new decompressor of one stream, with the
    interface of :class:`bz2.BZ2Decompressor` (eof, unused_data, needs_input,
    decompress(data, max_length)). Without both, it is only recognised.
    ``library()``: imports the module outside the standard library that both
    need, raising MissingLibrary without it (None: they need none).
    """

    name: str
    magic: bytes
    media_suffix: str | None
    compressor: Callable[[BinaryIO, int | None, int | None], Writer] | None = None
    decompressor: Callable[[], Any] | None = None
    library: Callable[[], Any] | None = None
    described: str = attrs.field()

    @described.default
    def _described_default(self) -> str:
        return self.name

    @property
    def available(self) -> bool:
        """Whether nix2aci can write and read it (not only recognise it)."""
        return self.compressor is not None and (self.decompressor is not None or not self.magic)

    def check_library(self) -> None:
        """Raise MissingLibrary when the interpreter lacks the module this compression needs."""
        if self.library is not None:
            self.library()

    def writer(self, sink: BinaryIO, level: int | None = None, workers: int | None = None) -> Writer:
        """The write-only stream (a context manager) that writes this compression of its input to ``sink``."""
        if self.compressor is None:
            raise ValueError(f"nix2aci cannot write {self.described} data")
        return self.compressor(sink, level, workers)


NONE = Compression("none", b"", "", compressor=lambda sink, level, workers: _OneCore(sink, None))
# The registry, by name, in the order messages list them.
REGISTRY: dict[str, Compression] = {}


def register(compression: Compression) -> Compression:
    """Add ``compression`` to the registry (its name and magic must be new); return it."""
    if compression.name in REGISTRY:
        raise ValueError(f"a compression named {compression.name!r} is registered already")
    if compression.magic and any(compression.magic == known.magic for known in REGISTRY.values()):
        raise ValueError(f"the magic bytes of {compression.name!r} are another compression's")
    REGISTRY[compression.name] = compression
    return compression


register(NONE)
GZIP = register(
    Compression(
        "gzip",
        b"\x1f\x8b",
        "+gzip",
        compressor=lambda sink, level, workers: ParallelGzipWriter(sink, 6 if level is None else level, workers),
        decompressor=_Inflate,
    )
)
register(
    Compression(
        "bzip2",
        b"BZh",
        None,
        # bzip2 has no level 0: 0 is its fastest, 1.
        compressor=lambda sink, level, workers: _OneCore(
            sink, bz2.BZ2Compressor(9 if level is None else max(level, 1))
        ),
        decompressor=bz2.BZ2Decompressor,
    )
)
register(
    Compression(
        "xz",
        b"\xfd7zXZ\x00",
        None,
        compressor=lambda sink, level, workers: _OneCore(
            sink, lzma.LZMACompressor(format=lzma.FORMAT_XZ, preset=6 if level is None else level)
        ),
        decompressor=lambda: lzma.LZMADecompressor(format=lzma.FORMAT_XZ, memlimit=XZ_MEMORY_LIMIT),
    )
)
register(
    Compression(
        "zstd",
        b"\x28\xb5\x2f\xfd",
        "+zstd",
        compressor=_zstd_writer,
        decompressor=_Unzstd,
        library=zstandard_module,
    )
)
register(Compression("lzma", b"\x5d\x00\x00", None, described="lzma (the legacy .lzma format, not xz)"))
register(Compression("lz4", b"\x04\x22\x4d\x18", None))
register(Compression("compress", b"\x1f\x9d", None, described="compress (.Z)"))


def named(name: str) -> Compression:
    """The registered compression ``name``; raises ValueError naming the registered ones."""
    if name not in REGISTRY:
        raise ValueError(f"compression must be one of {', '.join(REGISTRY)}, got {name!r}")
    return REGISTRY[name]


def detect(head: bytes) -> Compression:
    """The compression whose magic ``head`` (a file's first bytes) starts with; NONE for a tar header or else."""
    if is_tar_header(head[: tarfile.BLOCKSIZE]):
        return NONE
    return next((known for known in REGISTRY.values() if known.magic and head.startswith(known.magic)), NONE)


@attrs.frozen
class Allowed:
    """The compressions a format allows, by name; ``what`` names the format's files in messages ("images")."""

    what: str
    names: tuple[str, ...]

    def __attrs_post_init__(self) -> None:
        for name in self.names:
            if not named(name).available:
                raise ValueError(f"{name} is not available in nix2aci: no format may allow it")

    def __contains__(self, compression: Compression) -> bool:
        return compression.name in self.names

    def named(self, name: str) -> Compression:
        """The allowed compression ``name``; raises ValueError naming the allowed ones."""
        if name not in self.names:
            raise ValueError(f"compression must be one of {', '.join(self.names)}, got {name!r}")
        return REGISTRY[name]

    def listed(self) -> str:
        """The allowed compressions for a message: "gzip, bzip2 or xz" (no compression goes without saying)."""
        compressed = [name for name in self.names if name != NONE.name]
        return " or ".join(filter(None, [", ".join(compressed[:-1]), *compressed[-1:]]))

    def refusal(self, compression: Compression) -> str:
        """The rule broken by data compressed with ``compression``, which this set does not allow."""
        if compression is NONE:
            return f"is not {self.listed()} data, which {self.what} must be"
        if not self.listed():
            return f"is compressed with {compression.described}; {self.what} may not be compressed"
        return f"is compressed with {compression.described}; {self.what} may only be compressed with {self.listed()}"


def _decompressed(chunks: Iterator[bytes], compression: Compression) -> Iterator[bytes]:
    """A file's uncompressed bytes, from its ``chunks`` (``compression`` streams, one after another), in PIECE_SIZE
    pieces.

    Reads to the end of the file: what follows a stream must be another one
    (gzip, bzip2 and xz files may be concatenated), and a damaged or cut stream
    is an error (Unreadable), so the whole file is checked, as rkt reads it.
    """
    name, new = compression.name, compression.decompressor
    assert new is not None, "only an allowed (so available) compression is decompressed"
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
        except (zlib.error, OSError, EOFError, lzma.LZMAError, _Damaged) as error:
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


def _chunks(file: BinaryIO, head: bytes, size: int) -> Iterator[bytes]:
    """``head``, then the rest of ``file`` in reads of ``size`` bytes: each byte read once, never a seek."""
    if head:
        yield head
    yield from iter(lambda: file.read(size), b"")


def uncompressed(file: BinaryIO, allowed: Allowed) -> tuple[Iterator[bytes], Compression]:
    """The uncompressed bytes of an opened file in pieces of at most PIECE_SIZE, and its compression.

    The file is read once, forward, from where it is (it may be a pipe, and is
    never read twice: what was checked is what is used). Memory stays bounded
    whatever the file (an xz stream asking for more than XZ_MEMORY_LIMIT raises
    NotChecked). Raises Unreadable for a compression ``allowed`` does not allow,
    and, while the pieces are read, for damaged or cut compressed data. What no
    magic names is taken as uncompressed: the tar reader judges it.
    """
    head = file.read(tarfile.BLOCKSIZE)
    compression = detect(head)
    if compression not in allowed:
        raise Unreadable(allowed.refusal(compression))
    if compression is NONE:
        return _chunks(file, head, PIECE_SIZE), compression
    return _decompressed(_chunks(file, head, _CHUNK), compression), compression
