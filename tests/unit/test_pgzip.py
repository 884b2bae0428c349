"""Parallel gzip: one valid gzip member whose bytes depend on the input alone, not on the workers."""

from __future__ import annotations

import gzip
import io
import random
import subprocess
import threading
import tracemalloc
import zlib

import pytest
from conftest import require

from nix2aci.archive import pgzip
from nix2aci.archive.pgzip import BLOCK_SIZE, WINDOW, ParallelGzipWriter

SMALL_BLOCK = WINDOW


def sample(size: int, seed: int = 9) -> bytes:
    """Seeded data of ``size`` bytes, half text-like and half random, so blocks compress unevenly."""
    rng = random.Random(seed)
    words = [rng.randbytes(rng.randint(2, 9)) for _ in range(300)]
    pieces, length = [], 0
    while length < size:
        piece = rng.randbytes(rng.randint(1, 3000)) if rng.random() < 0.5 else b" ".join(rng.choices(words, k=400))
        pieces.append(piece)
        length += len(piece)
    return b"".join(pieces)[:size]


def compress(data: bytes, workers: int, block_size: int = SMALL_BLOCK, level: int = 6, piece: int = 7001) -> bytes:
    """``data`` through a ParallelGzipWriter, written in pieces of ``piece`` bytes."""
    output = io.BytesIO()
    with ParallelGzipWriter(output, level, workers, block_size) as writer:
        for start in range(0, len(data), piece):
            writer.write(data[start : start + piece])
    return output.getvalue()


def gunzip_with_the_gzip_program(compressed: bytes, tmp_path) -> bytes:
    """``gzip -t`` must accept the file and ``gzip -dc`` return its contents."""
    gzip_program = require("gzip")
    path = tmp_path / "data.gz"
    path.write_bytes(compressed)
    tested = subprocess.run([gzip_program, "-t", str(path)], capture_output=True, check=False)
    assert tested.returncode == 0, tested.stderr
    return subprocess.run([gzip_program, "-dc", str(path)], capture_output=True, check=True).stdout


# Sizes around the block boundaries: nothing, one byte, one block less one, exactly
# one, one more, many blocks with a partial one at the end, many whole blocks.
SIZES = [0, 1, SMALL_BLOCK - 1, SMALL_BLOCK, SMALL_BLOCK + 1, 7 * SMALL_BLOCK + 123, 8 * SMALL_BLOCK]


@pytest.mark.parametrize("size", SIZES)
def test_same_bytes_for_1_2_and_4_workers_and_a_valid_gzip(size, tmp_path):
    data = sample(size)
    outputs = {workers: compress(data, workers) for workers in (1, 2, 4)}
    assert outputs[1] == outputs[2] == outputs[4]
    assert gzip.decompress(outputs[1]) == data
    assert gunzip_with_the_gzip_program(outputs[1], tmp_path) == data


def test_default_block_size_many_blocks_same_bytes_for_any_workers(tmp_path):
    data = sample(9 * BLOCK_SIZE + 4321)
    outputs = {workers: compress(data, workers, BLOCK_SIZE, piece=65536) for workers in (1, 2, 4)}
    assert outputs[1] == outputs[2] == outputs[4]
    assert gzip.decompress(outputs[2]) == data
    assert gunzip_with_the_gzip_program(outputs[2], tmp_path) == data


def test_how_the_input_is_written_does_not_change_the_bytes():
    data = sample(5 * SMALL_BLOCK + 77)
    at_once = compress(data, 2, piece=len(data))
    assert compress(data, 2, piece=1000) == at_once
    assert compress(data, 2, piece=SMALL_BLOCK) == at_once
    assert compress(data, 2, piece=3 * SMALL_BLOCK + 5) == at_once


@pytest.mark.parametrize("level", [0, 1, 6, 9])
def test_every_level_gives_a_valid_stream_independent_of_workers(level):
    data = sample(3 * SMALL_BLOCK + 9)
    outputs = {compress(data, workers, level=level) for workers in (1, 3)}
    assert len(outputs) == 1
    assert gzip.decompress(outputs.pop()) == data


def test_header_is_gzip_n_and_trailer_holds_crc_and_length():
    data = sample(2 * SMALL_BLOCK + 5)
    compressed = compress(data, 2)
    assert compressed[:3] == b"\x1f\x8b\x08"
    assert compressed[3] == 0  # no name, comment, extra field or header CRC
    assert compressed[4:8] == b"\0\0\0\0"  # mtime 0
    assert compressed[9] == 3  # Unix
    assert compressed[-8:-4] == zlib.crc32(data).to_bytes(4, "little")
    assert compressed[-4:] == len(data).to_bytes(4, "little")
    # The header zlib itself writes for the level: readers see a familiar file.
    for level in range(10):
        assert pgzip.gzip_header(level) == zlib.compress(b"", level, 31)[:10]


@pytest.mark.parametrize(
    ("size", "isize"),
    [(0, 0), ((1 << 32) - 1, (1 << 32) - 1), (1 << 32, 0), ((1 << 32) + 5, 5), ((3 << 32) + 7, 7)],
)
def test_trailer_stores_the_length_modulo_2_to_the_32(size, isize):
    crc = zlib.crc32(b"any")
    assert pgzip.gzip_trailer(crc, size) == crc.to_bytes(4, "little") + isize.to_bytes(4, "little")


class Tail:
    """A sink that keeps only the last 8 bytes written: the gzip trailer, once the writer is closed."""

    def __init__(self) -> None:
        self.last = b""

    def write(self, data: bytes) -> int:
        self.last = (self.last + bytes(data))[-8:]
        return len(data)


@pytest.mark.slow
def test_a_stream_over_4_gib_ends_with_its_length_modulo_2_to_the_32():
    # 4 GiB of zeros and 3 bytes more, stored (level 0) to keep it to seconds.
    zeros = bytes(16 << 20)
    tail = Tail()
    with ParallelGzipWriter(tail, 0, 2) as writer:
        for _ in range((4 << 30) // len(zeros)):
            writer.write(zeros)
        writer.write(b"end")
    assert tail.last[4:] == (3).to_bytes(4, "little")


def test_a_repeat_across_a_block_cut_is_found_through_the_dictionary(monkeypatch):
    # Blocks four windows long: the block after the cut opens with the last 24 KiB
    # before it, over and over. Those bytes are only a match if that block is primed
    # with the last 32 KiB of the one before (not its first 32 KiB, not nothing);
    # every other repeat lies within a block and is found anyway.
    block = 4 * WINDOW
    first_block = random.Random(3).randbytes(block)
    repeat = first_block[-(24 << 10) :]
    data = first_block + repeat * 3
    primed = compress(data, 2, block)
    assert gzip.decompress(primed) == data
    # The random block is stored as it is; the repeats cost a few hundred bytes of matches.
    assert len(primed) < block + len(repeat) // 2
    # The measure tells priming apart: switched off, the repeat is paid for again.
    original = pgzip.deflate_block

    def without_dictionary(block, dictionary, level, last):
        return original(block, b"", level, last)

    monkeypatch.setattr(pgzip, "deflate_block", without_dictionary)
    unprimed = compress(data, 2, block)
    assert gzip.decompress(unprimed) == data
    assert len(unprimed) > block + len(repeat)


def test_blocks_are_compressed_at_the_same_time(monkeypatch):
    # Every compression waits until another one is running: if the writer compressed
    # one block at a time, the barrier would break and the write would fail.
    barrier = threading.Barrier(2, timeout=10)
    original = pgzip.deflate_block

    def meeting(block, dictionary, level, last):
        if not last:
            barrier.wait()
        return original(block, dictionary, level, last)

    monkeypatch.setattr(pgzip, "deflate_block", meeting)
    data = sample(6 * SMALL_BLOCK)
    assert gzip.decompress(compress(data, 2)) == data


class Discard:
    """A sink that keeps nothing, so only the writer's own memory is measured."""

    def write(self, data: bytes) -> int:
        return len(data)


def test_memory_stays_bounded_whatever_the_input_size():
    # 64 MiB through the writer, 1 MiB at a time: only a few blocks may be alive.
    piece = sample(1 << 20)
    tracemalloc.start()
    try:
        with ParallelGzipWriter(Discard(), 1, 2) as writer:
            for _ in range(64):
                writer.write(piece)
            _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # A piece's worth of blocks being cut, 2 x workers blocks in flight and their
    # outputs: a few MiB, however long the input.
    assert peak < 8 << 20


def test_an_error_abandons_the_stream_without_a_trailer():
    output = io.BytesIO()
    with pytest.raises(RuntimeError), ParallelGzipWriter(output, 6, 2, SMALL_BLOCK) as writer:
        writer.write(sample(3 * SMALL_BLOCK))
        raise RuntimeError("stop")
    with pytest.raises(EOFError):
        gzip.decompress(output.getvalue())


@pytest.mark.parametrize(
    ("environment", "expected"),
    [({"NIX_BUILD_CORES": "3"}, 3), ({"NIX_BUILD_CORES": "1"}, 1), ({"NIX_BUILD_CORES": "0"}, None), ({}, None)],
)
def test_workers_follow_nix_build_cores_and_zero_means_all(monkeypatch, environment, expected):
    monkeypatch.delenv("NIX_BUILD_CORES", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    usable = len(pgzip.os.sched_getaffinity(0))
    assert pgzip.default_workers() == (usable if expected is None else expected)
    with ParallelGzipWriter(io.BytesIO()) as writer:
        assert writer.workers == pgzip.default_workers()


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="level"):
        ParallelGzipWriter(io.BytesIO(), 10)
    with pytest.raises(ValueError, match="block_size"):
        ParallelGzipWriter(io.BytesIO(), 6, 1, WINDOW - 1)


def test_a_failing_worker_fails_the_write(monkeypatch):
    def broken(block, dictionary, level, last):
        raise MemoryError("no room")

    monkeypatch.setattr(pgzip, "deflate_block", broken)
    with pytest.raises(MemoryError), ParallelGzipWriter(io.BytesIO(), 6, 2, SMALL_BLOCK) as writer:
        writer.write(sample(10 * SMALL_BLOCK))
