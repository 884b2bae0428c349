"""The compression registry: each compression written and read back, recognised by its magic, allowed per format."""

from __future__ import annotations

import hashlib
import io
import json
import os
import zlib

import pytest
from handmade import oci_layout

from nix2aci.aci import members
from nix2aci.archive import compression
from nix2aci.archive.compression import NONE, REGISTRY, Allowed, Compression, detect, named, uncompressed
from nix2aci.archive.read import PIECE_SIZE, Unreadable
from nix2aci.archive.write import write_archive
from nix2aci.build import plan
from nix2aci.oci import layout

AVAILABLE = sorted(name for name, known in REGISTRY.items() if known.available)
# Many gzip blocks of pgzip and decompressed pieces: some of it hard to compress, and zeros that one read of
# compressed data makes far more than a piece of.
DATA = (
    b"".join(hashlib.sha256(b"%d" % i).digest() * (i % 7 + 1) for i in range(12000))
    + os.urandom(300 << 10)
    + bytes(3 << 20)
)
assert len(DATA) > PIECE_SIZE


def compressed(known: Compression, data: bytes, level: int | None = None) -> bytes:
    """``data`` written through ``known``'s compressor."""
    sink = io.BytesIO()
    with known.writer(sink, level, workers=2) as writer:
        writer.write(data)
    return sink.getvalue()


def read_back(data: bytes, allowed: Allowed) -> tuple[bytes, Compression]:
    """The bytes :func:`uncompressed` makes of ``data``, and the compression it found."""
    pieces, found = uncompressed(io.BytesIO(data), allowed)
    pieces = list(pieces)
    assert all(len(piece) <= PIECE_SIZE for piece in pieces)
    return b"".join(pieces), found


def test_the_available_compressions_are_the_standard_library_s_and_zstd():
    assert AVAILABLE == ["bzip2", "gzip", "none", "xz", "zstd"]
    assert not named("lz4").available and named("zstd").media_suffix == "+zstd"


@pytest.mark.parametrize("name", AVAILABLE)
@pytest.mark.parametrize("level", [None, 1])
def test_every_available_compression_round_trips(name, level):
    known = named(name)
    data = compressed(known, DATA, level)
    assert data.startswith(known.magic)
    assert (data == DATA) is (known is NONE)
    assert read_back(data, Allowed("tests", (name,))) == (DATA, known)


@pytest.mark.parametrize("name", sorted(name for name in REGISTRY if name != "none"))
def test_each_compression_is_recognised_by_its_magic(name):
    known = named(name)
    assert detect(known.magic + b"\0" * 600) is known


def test_a_tar_header_is_no_compression_even_when_its_name_starts_like_a_magic():
    sink = io.BytesIO()
    write_archive([plan.file_with_content("BZh91AY", b"x")], sink, compression=NONE)
    assert sink.getvalue().startswith(named("bzip2").magic)
    assert detect(sink.getvalue()) is NONE
    assert detect(b"what no magic names") is NONE


def test_each_format_allows_its_own_set():
    assert set(members.COMPRESSIONS.names) == {"gzip", "bzip2", "xz", "none"}
    assert set(layout.LAYER_COMPRESSIONS.names) == {"gzip", "zstd", "none"}
    assert members.COMPRESSIONS.listed() == "gzip, bzip2 or xz"
    assert layout.layer_media_type(named("gzip")) == "application/vnd.oci.image.layer.v1.tar+gzip"
    assert layout.layer_media_type(NONE) == "application/vnd.oci.image.layer.v1.tar"
    with pytest.raises(ValueError, match="OCI layers may not be compressed with xz"):
        layout.layer_media_type(named("xz"))


def test_no_format_may_allow_a_compression_nix2aci_only_recognises():
    with pytest.raises(ValueError, match="lz4 is not available"):
        Allowed("OCI layers", ("gzip", "lz4", "none"))


@pytest.mark.parametrize("name", ["zstd", "lz4"])
def test_a_recognised_compression_outside_the_set_is_refused_by_name(name):
    with pytest.raises(Unreadable, match=f"^is compressed with {name}; images may only be compressed with gzip, bzip2"):
        uncompressed(io.BytesIO(named(name).magic + b"\0" * 600), members.COMPRESSIONS)


def test_a_set_without_none_refuses_what_is_not_compressed():
    with pytest.raises(Unreadable, match=r"^is not gzip data, which layers of this test must be$"):
        uncompressed(io.BytesIO(b"plain text"), Allowed("layers of this test", ("gzip",)))


# An ACI, as the builder plans one.
MANIFEST = {"acKind": "ImageManifest", "acVersion": "0.8.11", "name": "example.com/toy"}
ACI_ENTRIES = [
    plan.file_with_content("manifest", json.dumps(MANIFEST).encode()),
    plan.directory("rootfs"),
    plan.file_with_content("rootfs/data", DATA[:5000]),
]


@pytest.mark.parametrize("name", sorted(members.COMPRESSIONS.names))
def test_an_aci_in_each_allowed_compression_is_read(tmp_path, name):
    path = tmp_path / "toy.aci"
    with path.open("wb") as output:
        write_archive(ACI_ENTRIES, output, compression=members.COMPRESSIONS.named(name))
    manifest, problems = members.checked_manifest(members.read_aci(str(path)))
    assert problems == [] and manifest is not None and manifest.name == "example.com/toy"


class _ToyDecompressor:
    """A throw-away compression's reader: its magic, then a zlib stream (the bz2 decompressor's interface)."""

    def __init__(self) -> None:
        self._magic_left = len(TOY_MAGIC)
        self._zlib = zlib.decompressobj()

    eof = property(lambda self: self._zlib.eof)
    unused_data = property(lambda self: self._zlib.unused_data)
    needs_input = property(lambda self: not self._zlib.unconsumed_tail)

    def decompress(self, data: bytes, max_length: int) -> bytes:
        skipped = min(self._magic_left, len(data))
        self._magic_left -= skipped
        return self._zlib.decompress(self._zlib.unconsumed_tail + data[skipped:], max_length)


class _ToyWriter:
    """A throw-away compression's writer: its magic, then one zlib stream."""

    def __init__(self, sink, level, workers) -> None:
        self.sink, self._zlib = sink, zlib.compressobj(6 if level is None else level)
        sink.write(TOY_MAGIC)

    def write(self, data: bytes) -> int:
        self.sink.write(self._zlib.compress(data))
        return len(data)

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.sink.write(self._zlib.flush())


TOY_MAGIC = b"TOY\x01"


@pytest.fixture
def toy(monkeypatch):
    """A compression "toy" added to the registry and to the OCI layers' set only, as zstd was."""
    known = compression.register(Compression("toy", TOY_MAGIC, "+toy", _ToyWriter, _ToyDecompressor))
    try:
        monkeypatch.setattr(
            layout, "LAYER_COMPRESSIONS", Allowed("OCI layers", (*layout.LAYER_COMPRESSIONS.names, "toy"))
        )
        # What importing oci/layout.py does with the set: its schema's layer media types.
        monkeypatch.setattr(layout, "SCHEMAS", layout.schemas())
        yield known
    finally:
        del compression.REGISTRY["toy"]


def test_a_compression_registered_for_oci_layers_is_written_and_read_there_and_refused_in_an_aci(tmp_path, toy):
    # OCI: the writer writes it, the layout's media type names it, the checker decompresses it.
    layer = io.BytesIO()
    summary = write_archive(
        ACI_ENTRIES[1:], layer, compression=layout.LAYER_COMPRESSIONS.named("toy"), uncompressed_digest="sha256"
    )
    assert layer.getvalue().startswith(TOY_MAGIC)
    media_type = layout.layer_media_type(toy)
    assert media_type == "application/vnd.oci.image.layer.v1.tar+toy"
    oci_layout(tmp_path / "oci", layer.getvalue(), media_type, f"sha256:{summary.uncompressed_digest}")
    assert layout.problems(str(tmp_path / "oci")) == []
    # The checker really decompressed it: a wrong diff_id is found.
    oci_layout(tmp_path / "wrong", layer.getvalue(), media_type, "sha256:" + "0" * 64)
    assert "must be the uncompressed layers' digests" in str(layout.problems(str(tmp_path / "wrong"))[0])
    # ACI: the builder's set refuses it, and the reader says what it is.
    with pytest.raises(ValueError, match="compression must be one of gzip, bzip2, xz, none, got 'toy'"):
        members.COMPRESSIONS.named("toy")
    aci = tmp_path / "toy.aci"
    with aci.open("wb") as output:
        write_archive(ACI_ENTRIES, output, compression=toy)
    problems = members.read_aci(str(aci)).problems
    assert [str(problem) for problem in problems] == [
        "is compressed with toy; images may only be compressed with gzip, bzip2 or xz"
    ]


def test_an_oci_layer_is_read_as_its_media_type_says(tmp_path):
    layer = compressed(named("bzip2"), b"not even a tar")
    oci_layout(tmp_path, layer, layout.layer_media_type(named("gzip")), "sha256:" + "0" * 64)
    (problem,) = layout.problems(str(tmp_path))
    assert problem.rule == (
        "must be a readable layer: it is compressed with bzip2; a layer of media type"
        " application/vnd.oci.image.layer.v1.tar+gzip may only be compressed with gzip"
    )
