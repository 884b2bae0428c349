"""Parallel, deterministic gzip: the pigz approach with the standard library.

Input: bytes written to a :class:`ParallelGzipWriter` in any pieces.
Output: one gzip member (RFC 1952) written to a binary sink: a header as
``gzip -n`` writes it (no name, mtime 0), one deflate stream, and the CRC-32
and length trailer.

The uncompressed stream is cut into blocks of :data:`BLOCK_SIZE` bytes at fixed
offsets. Each block is compressed by its own raw-deflate compressor, primed with
the last 32 KiB before it as a preset dictionary (so matches may reach back
across the cut, as in one long stream) and ended with a sync flush, which ends
on a byte boundary, so the compressed blocks concatenate into one valid deflate
stream; the last block ends it. A block's bytes depend only on its own input,
the 32 KiB before it and the level, never on which thread compressed it or
when: the output is the same for any number of workers. zlib releases the GIL
while it compresses, so the workers are threads. At most ``2 x workers`` blocks
are in flight, which bounds memory whatever the input size.
"""

from __future__ import annotations

import collections
import os
import struct
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO

# Fixed, never derived from the core count: the cut points shape the output.
# On Perl's library, 256 KiB blocks compress as fast as 1 MiB ones and within 0.1%
# as small (the dictionary keeps matches across cuts), and they still give every
# core work on small images.
BLOCK_SIZE = 256 << 10
# deflate's window: how far back a match may reach, so all a block needs to see.
WINDOW = 32 << 10
_METHOD_DEFLATE = 8
_OS_UNIX = 3


def default_workers() -> int:
    """The compression threads to use: ``$NIX_BUILD_CORES`` in a Nix build, else every usable core.

    Nix sets ``NIX_BUILD_CORES`` to the ``cores`` setting, where 0 means all cores.
    """
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        cores = int(os.environ.get("NIX_BUILD_CORES", "0"))
    except ValueError:
        cores = 0
    return cores if cores > 0 else usable


def gzip_header(level: int) -> bytes:
    """The 10-byte gzip header zlib writes for ``level`` with no name and mtime 0 (``gzip -n``)."""
    extra_flags = 2 if level == 9 else 4 if level < 2 else 0
    return struct.pack("<BBBBIBB", 0x1F, 0x8B, _METHOD_DEFLATE, 0, 0, extra_flags, _OS_UNIX)


def gzip_trailer(crc: int, size: int) -> bytes:
    """The 8-byte gzip trailer: the CRC-32 of the data and its length ``size`` modulo 2**32 (ISIZE, RFC 1952),
    so that a stream of 4 GiB or more still ends as gzip readers expect."""
    return struct.pack("<II", crc, size & 0xFFFFFFFF)


def deflate_block(block: bytes, dictionary: bytes, level: int, last: bool) -> bytes:
    """Raw deflate of ``block`` as the continuation of a stream whose last bytes were ``dictionary``.

    Output: a byte-aligned piece of a deflate stream: ended by a sync flush, or
    the end-of-stream block when ``last``.
    """
    compressor = (
        zlib.compressobj(level, zlib.DEFLATED, -15, zdict=dictionary)
        if dictionary
        else zlib.compressobj(level, zlib.DEFLATED, -15)
    )
    return compressor.compress(block) + compressor.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


class ParallelGzipWriter:
    """A write-only stream that gzips into ``sink`` using ``workers`` threads.

    ``close`` writes the end of the gzip member; it does not close ``sink``. Used
    as a context manager, an exception abandons the output (no trailer) and
    stops the threads. ``block_size`` is a parameter for tests; the output of
    the same input differs between block sizes, never between worker counts.
    """

    def __init__(
        self, sink: BinaryIO, level: int = 6, workers: int | None = None, block_size: int = BLOCK_SIZE
    ) -> None:
        if not 0 <= level <= 9:
            raise ValueError(f"gzip level must be 0 to 9, got {level}")
        if block_size < WINDOW:
            # A shorter block would not hold the whole dictionary of the next one.
            raise ValueError(f"block_size must be at least {WINDOW}, got {block_size}")
        self.sink = sink
        self.level = level
        self.block_size = block_size
        self.workers = workers or default_workers()
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="pgzip")
        self._in_flight: collections.deque[Future[bytes]] = collections.deque()
        self._buffer = bytearray()
        self._dictionary = b""
        self._crc = 0
        self._size = 0
        self._closed = False
        sink.write(gzip_header(level))

    def write(self, data: bytes) -> int:
        """Take ``data``; every full block is handed to a worker at once.

        Whole blocks are sliced straight from ``data``; only the pieces around
        them wait in the buffer, so most bytes are copied once.
        """
        with memoryview(data) as view:
            start = 0
            if self._buffer:
                start = min(len(view), self.block_size - len(self._buffer))
                self._buffer += view[:start]
                if len(self._buffer) == self.block_size:
                    self._submit(bytes(self._buffer), last=False)
                    self._buffer.clear()
            while len(view) - start >= self.block_size:
                self._submit(bytes(view[start : start + self.block_size]), last=False)
                start += self.block_size
            self._buffer += view[start:]
        return len(data)

    def close(self) -> None:
        """Compress what is left as the last block, write every block in order, then the trailer."""
        if self._closed:
            return
        self._closed = True
        try:
            self._submit(bytes(self._buffer), last=True)
            self._buffer.clear()
            self._drain(0)
            self.sink.write(gzip_trailer(self._crc, self._size))
        finally:
            self._pool.shutdown(cancel_futures=True)

    def abort(self) -> None:
        """Stop the workers without writing the rest of the output."""
        self._closed = True
        self._pool.shutdown(cancel_futures=True)

    def __enter__(self) -> ParallelGzipWriter:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()

    def _submit(self, block: bytes, last: bool) -> None:
        """Queue ``block`` for compression; write finished blocks while too many are in flight."""
        # The CRC is computed here, in stream order, at a cost far below compressing.
        self._crc = zlib.crc32(block, self._crc)
        self._size += len(block)
        self._in_flight.append(self._pool.submit(deflate_block, block, self._dictionary, self.level, last))
        self._dictionary = block[-WINDOW:]
        self._drain(2 * self.workers)

    def _drain(self, keep: int) -> None:
        """Write the oldest blocks' output, in order, until at most ``keep`` are in flight."""
        while len(self._in_flight) > keep:
            self.sink.write(self._in_flight.popleft().result())
